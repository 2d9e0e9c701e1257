"""The front door of a mesh (docs/gateway.md): the Mesh API, MCP at ``/mcp`` and A2A, in one process
(``asya-gateway``), on the mesh's status store.

``config`` (:class:`GatewayConfig`, one environment variable per setting), ``requests`` (what a caller may ask,
checked), ``submit`` (store, send, mark sent), ``views`` and ``watch`` (reading records back), ``mesh_api``,
``mcp_tools`` and ``a2a_agent`` (the three front ends), ``auth`` (OIDC bearer tokens), ``app`` (the wiring).
"""
