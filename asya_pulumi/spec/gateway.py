"""``GatewaySpec``: the mesh's front door (``MeshSpec.gateway``, an ActorMesh manifest's ``spec.gateway``).

Off (None) by default: its sidecars carry no status settings and nothing serves HTTP (the mesh has a status table only
if an actor has ``rateLimit``: its token bucket lives there).
On, ``ActorMesh`` creates the status table and a ``Gateway`` component (docs/gateway.md, "Deploy"). Everything here is
checked when the spec is built, so ``asya render`` names the file, the field, the limit and the fix; what only a
deployment needs (authentication: ``asya dev --gateway`` serves loopback without it) is refused by the component,
before anything is registered (:func:`check_deployable`).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from asya_pulumi.spec.actor import ResourcesSpec
from asya_pulumi.spec.base import SpecModel, json_text_schema, json_text_to_mapping
from asya_pulumi.spec.limits import check_image
from asya_pulumi.spec.runtime_pin import DEFAULT_GATEWAY_IMAGE
from asya_runtime.retention import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS

#: The gateway's Deployment, Service and ServiceAccount in the mesh namespace. An actor's objects are named after
#: the actor, so while the gateway is on no actor may take this name (:func:`check_gateway`).
GATEWAY_NAME = "asya-gateway"
#: The gateway's requests and limits unless the spec names its own: an async HTTP server holding SSE streams.
DEFAULT_GATEWAY_RESOURCES = {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}}
DEFAULT_REPLICAS = 2
MAX_REPLICAS = 100
#: The runtime's (asya_runtime.status.schema): the gateway and the sidecars apply it (ASYA_STATUS_RETENTION_DAYS).
DEFAULT_STATUS_RETENTION_DAYS = DEFAULT_RETENTION_DAYS
MAX_STATUS_RETENTION_DAYS = MAX_RETENTION_DAYS
#: An MCP tool's description is read by a model with the tool list: long enough for a paragraph, no more.
TOOL_DESCRIPTION_MAX = 1024
#: An input schema travels in ``ASYA_GATEWAY_MESH`` (one env value, at most 128 KiB for every route together).
INPUT_SCHEMA_MAX_BYTES = 16 * 1024
AUDIENCE_MAX = 256
ISSUER_MAX = 512
_AUDIENCE = re.compile(r"[\x21-\x7e]+")  # printable ASCII, no space: what appears in a JWT's aud claim



#: A free-form JSON object: a mapping in manifests, JSON text from the cross-language SDKs.
JsonSchemaObject = Annotated[
    dict[str, Any], json_text_to_mapping(what="inputSchema", example="JSON.stringify(schema)"),
    json_text_schema(what="inputSchema"),
]


def check_issuer(value: str) -> str:
    """An OIDC issuer: an ``https://`` URL with a host, no query or fragment (OpenID Connect Discovery 1.0 §3),
    whose ``/.well-known/openid-configuration`` the gateway fetches its signing keys from."""
    parts = urlsplit(value)
    if (len(value) > ISSUER_MAX or any(c.isspace() or not c.isprintable() for c in value)
            or parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment):
        raise ValueError(
            f"{value!r} is not an OIDC issuer URL; write the issuer exactly as its tokens' iss claim says it, an "
            f"https:// URL with a host and no query or fragment (at most {ISSUER_MAX} characters), e.g. "
            "'https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE' or 'https://login.example.com/'"
        )
    return value


def check_audience(value: str) -> str:
    if len(value) > AUDIENCE_MAX or not _AUDIENCE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a token audience; use 1 to {AUDIENCE_MAX} printable characters without spaces, "
            "the aud claim callers' tokens carry, e.g. 'asya-gateway'"
        )
    return value


def check_input_schema(value: dict[str, Any]) -> dict[str, Any]:
    """An MCP tool's input schema: a JSON Schema (draft 2020-12, what MCP names) describing an object, the payload.

    The meta-schema check needs ``jsonschema`` (with the ``render`` and ``gateway`` extras; the ``mcp`` SDK brings
    it); without it only the object form is checked here and the gateway checks the rest when it starts.
    """
    if value.get("type") != "object":
        raise ValueError(
            f"inputSchema has type {value.get('type')!r}; an MCP tool's arguments are an object (the payload): start "
            "it with type: object and list the payload's fields under properties"
        )
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > INPUT_SCHEMA_MAX_BYTES:
        raise ValueError(
            f"inputSchema is {size} bytes as JSON, over {INPUT_SCHEMA_MAX_BYTES}; it travels in the gateway's "
            "environment: describe the payload's top-level fields and leave the rest to the handler"
        )
    try:
        import jsonschema
    except ModuleNotFoundError:
        return value
    try:
        jsonschema.Draft202012Validator.check_schema(value)
    except jsonschema.SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(top)"
        raise ValueError(
            f"inputSchema is not a valid JSON Schema at {where}: {exc.message}; fix it (draft 2020-12, "
            "https://json-schema.org/draft/2020-12)"
        ) from None
    return value


class GatewayAuthSpec(SpecModel):
    """Who may call the gateway: OIDC bearer JWTs, signed by ``issuer``'s keys and carrying ``audience``."""

    issuer: str | None = Field(
        None,
        description="The tokens' issuer (their `iss`). null (default): the EKS cluster's own OIDC issuer, which the "
        "stack passes (`ActorMesh(gateway_issuer=cluster.oidc_issuer_url)`): pods of the cluster call with a "
        "projected service-account token whose audience is `audience`. Set it for another identity provider.",
    )
    audience: str = Field(description="The `aud` claim a token must carry, e.g. `asya-gateway`.")

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str | None) -> str | None:
        return None if value is None else check_issuer(value)

    @field_validator("audience")
    @classmethod
    def _check_audience(cls, value: str) -> str:
        return check_audience(value)


class GatewayToolSpec(SpecModel):
    """How a named route appears as an MCP tool (and an A2A skill): its description and its arguments' schema."""

    description: str = Field(
        "", max_length=TOOL_DESCRIPTION_MAX,
        description="Empty (default): the tool is described as the route's actors in order.",
    )
    input_schema: JsonSchemaObject | None = Field(
        None,
        description="A JSON Schema of the payload (`type: object`). null (default): any JSON object is accepted.",
    )

    @field_validator("input_schema")
    @classmethod
    def _check_input_schema(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        return None if value is None else check_input_schema(value)


class GatewaySpec(SpecModel):
    """The front door: a Mesh API, MCP and A2A server (``asya-gateway``) and the mesh's status table."""

    image: str = Field(
        DEFAULT_GATEWAY_IMAGE,
        description="The gateway image built beside the runtime image, pinned by digest (default): the runtime "
        "image's layers and one with the MCP and A2A SDKs (docs/runtime.md, \"Gateway image\").",
    )
    replicas: int = Field(
        DEFAULT_REPLICAS, ge=1, le=MAX_REPLICAS,
        description=f"{DEFAULT_REPLICAS} (default): a rollout or a node drain leaves one replica serving (a "
        "PodDisruptionBudget keeps it). The replicas share nothing but the status table.",
    )
    resources: ResourcesSpec = Field(
        default_factory=lambda: ResourcesSpec.model_validate(DEFAULT_GATEWAY_RESOURCES),
        description="Default: requests 100m CPU and 128Mi, limit 512Mi (the CPU limit is 4 × the request, at "
        "least one CPU, as for handlers).",
    )
    auth: GatewayAuthSpec | None = Field(
        None,
        description="null (default): no authentication, which only `asya dev --gateway` (loopback) accepts; a "
        "deployed gateway without `auth` is refused at render.",
    )
    status_retention_days: int = Field(
        DEFAULT_STATUS_RETENTION_DAYS, ge=1, le=MAX_STATUS_RETENTION_DAYS,
        description=f"{DEFAULT_STATUS_RETENTION_DAYS} (default): DynamoDB's TTL deletes an envelope's status this "
        "many days after its last update — for a finished envelope, its end (the final record stays in the result "
        "bucket). The gateway and every sidecar of the mesh set it on each write (`ASYA_STATUS_RETENTION_DAYS`).",
    )
    tools: dict[str, GatewayToolSpec] = Field(
        default_factory=dict,
        description="Named route → its MCP tool's description and input schema. Default: every route is a tool "
        "taking any object.",
    )
    deletion_protection: bool = Field(
        False,
        description="False (default): `pulumi destroy` deletes the status table. True (the prod stack sets it): "
        "DynamoDB refuses to delete it until the flag is turned off.",
    )


    @field_validator("image")
    @classmethod
    def _check_image(cls, value: str) -> str:
        return check_image(value, what="gateway.image")


def check_gateway(gateway: GatewaySpec, *, routes: dict[str, list[str]], actors: list[str]) -> None:
    """Every ``gateway.tools`` entry names a route of the mesh (a tool is a route), and no actor takes the name of
    the gateway's objects."""
    if GATEWAY_NAME in actors:
        raise ValueError(
            f"actor {GATEWAY_NAME!r} has the name of the gateway's Deployment and Service, which the gateway needs in "
            "the mesh namespace; rename the actor"
        )
    unknown = sorted(set(gateway.tools) - set(routes))
    if unknown:
        known = ", ".join(sorted(routes)) or "none; add routes first"
        raise ValueError(f"gateway.tools names route(s) {unknown} the mesh does not have; known routes: {known}")


def check_deployable(gateway: GatewaySpec, *, issuer_given: bool) -> None:
    """Refuse a gateway that would be reachable off loopback without authentication (``asya dev`` is the only
    place ``auth`` may be left out), and an ``auth`` whose issuer neither the spec nor the stack names."""
    if gateway.auth is None:
        raise ValueError(
            "gateway.auth is not set: a deployed gateway would accept unauthenticated requests; set gateway.auth."
            "audience (and gateway.auth.issuer, or pass the cluster's OIDC issuer), e.g. auth: {audience: "
            "asya-gateway}; only `asya dev --gateway` serves without auth, on loopback"
        )
    if gateway.auth.issuer is None and not issuer_given:
        raise ValueError(
            "gateway.auth.issuer is not set and no issuer was passed: set gateway.auth.issuer to your identity "
            "provider's issuer URL, or pass ActorMesh(gateway_issuer=cluster.oidc_issuer_url)"
        )
