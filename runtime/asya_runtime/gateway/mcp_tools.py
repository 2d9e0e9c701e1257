"""MCP over Streamable HTTP at ``/mcp``: one tool per named route of the mesh (the official ``mcp`` SDK, v2).

A tool is named after its route, described by the route's ``description``, and takes the payload as its
arguments (the route's ``inputSchema``; any object by default). A call submits the payload to the route (as
``POST /api/v1/mesh/?route=NAME`` would, with the call timeout as its deadline), waits for the terminal status and
returns the final payload as structured content; a failed or canceled envelope, or one still running at the call
timeout, is an error result naming why (so the model sees it, as the MCP spec asks for tool errors). FLY events
on the way are progress notifications when the client sent a progress token (the SDK sends none otherwise). A call
the client abandons — ``notifications/cancelled``, which the SDK's client sends when its caller gives up or its read
timeout passes — cancels the envelope, as ``DELETE /api/v1/mesh/{id}`` would: the next sidecar ends it uncalled.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import jsonschema
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings

from asya_runtime.gateway.config import GatewayConfig, is_loopback
from asya_runtime.gateway.errors import ApiError
from asya_runtime.gateway.requests import Submission
from asya_runtime.gateway.submit import Submitter
from asya_runtime.gateway.views import RecordViews
from asya_runtime.gateway.watch import wait_terminal
from asya_runtime.status import StatusStore

__all__ = ["McpTools"]


def _error(message: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


class McpTools:
    """The MCP server of one mesh and its Streamable HTTP session manager (run in the app's lifespan)."""

    def __init__(
        self, *, config: GatewayConfig, submitter: Submitter, store: StatusStore, views: RecordViews
    ) -> None:
        self.config = config
        self.submitter = submitter
        self.store = store
        self.views = views
        self.server: Server[Any] = Server(
            f"asya-{config.namespace}", version="1",
            instructions=f"The pipelines of actor mesh {config.namespace!r}: each tool runs one named route.",
            on_list_tools=self._list_tools, on_call_tool=self._call_tool,
        )
        security = None
        if is_loopback(config.host):  # a page in a browser must not reach a gateway on the user's machine
            security = TransportSecuritySettings(
                enable_dns_rebinding_protection=True,
                allowed_hosts=["127.0.0.1:*", "localhost:*", "[::1]:*"],
                allowed_origins=["http://127.0.0.1:*", "http://localhost:*", "http://[::1]:*"],
            )
        self.sessions = StreamableHTTPSessionManager(
            app=self.server, security_settings=security, max_request_body_size=config.max_body_bytes,
        )
        self.asgi = StreamableHTTPASGIApp(self.sessions)

    def tools(self) -> list[types.Tool]:
        return [
            types.Tool(name=name, description=route.description or f"Runs route {name} ({' → '.join(route.actors)}).",
                       input_schema=route.input_schema)
            for name, route in sorted(self.config.mesh.routes.items())
        ]

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.tools())

    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        route = self.config.mesh.routes.get(params.name)
        if route is None:
            return _error(f"no tool {params.name!r}; the tools are {sorted(self.config.mesh.routes)}")
        payload = dict(params.arguments or {})
        try:
            jsonschema.validate(payload, route.input_schema)
        except jsonschema.ValidationError as exc:
            where = "/".join(str(p) for p in exc.absolute_path) or "(the arguments)"
            return _error(f"arguments do not match the tool's input schema at {where}: {exc.message}")
        submission = Submission(route_name=params.name, route=list(route.actors), payload=payload,
                                timeout_s=self.config.call_timeout_s)
        try:
            envelope_id = await self.submitter.submit(submission)
        except ApiError as exc:
            return _error(exc.message)
        seen = 0

        async def progress(event: Any) -> None:
            nonlocal seen
            seen += 1
            value = event.get("progress") if isinstance(event, dict) else None
            number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else float(seen)
            await ctx.session.report_progress(number, None, json.dumps(event)[:1000])

        try:
            record = await wait_terminal(store=self.store, envelope_id=envelope_id,
                                         poll_s=self.config.poll_interval_s, timeout_s=self.config.call_timeout_s,
                                         on_fly=progress)
        except anyio.get_cancelled_exc_class():  # the client abandoned the call (notifications/cancelled)
            with anyio.CancelScope(shield=True):
                await self.store.cancel(id=envelope_id)
            raise
        if record is None:
            return _error(f"envelope {envelope_id} did not finish within {self.config.call_timeout_s:g} s; "
                          f"GET /api/v1/mesh/{envelope_id} says where it is")
        if record.status != "succeeded":
            error = record.error or {}
            why = error.get("message") or error.get("reason") or record.status
            return _error(f"envelope {envelope_id} {record.status}: {why}")
        view = await self.views.render(record, children=False)
        result = view["data"].get("payload")
        structured = result if isinstance(result, dict) else {"result": result}
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(result))], structured_content=structured,
        )
