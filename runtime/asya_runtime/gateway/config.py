"""The gateway's configuration: every setting is one environment variable, named by its field's alias here.

The ``Gateway`` Pulumi component and ``asya dev --gateway`` build a :class:`GatewayConfig` and render
:meth:`GatewayConfig.to_env` into the process's environment; ``asya-gateway`` reads it back with
:meth:`GatewayConfig.from_env`. The variables the sidecar reads too (namespace, region, endpoints, the status table,
the result bucket) have the sidecar's names, so one mesh's settings read the same everywhere.

The mesh the gateway serves (``ASYA_GATEWAY_MESH``) is JSON: its namespace, the actors a caller may submit to with
``?actor=`` and the named routes (``?route=``, one MCP tool and one A2A skill each).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator, model_validator

from asya_runtime.config import DEFAULT_MAX_MESSAGE_BYTES
from asya_runtime.naming import check_actor_name, check_dns_label
from asya_runtime.retention import DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS

__all__ = ["DEFAULT_MAX_BODY_BYTES", "GatewayConfig", "GatewayMesh", "GatewayRoute", "is_loopback"]

#: The largest request body the Mesh API reads: 256 KiB fits every SQS message limit (AWS's 1 MiB and the 256 KiB
#: older regions and emulators enforce), so an accepted submission always fits the first queue.
DEFAULT_MAX_BODY_BYTES = 256 * 1024
#: Longest ``timeout`` a submission may ask for: 7 days, the status record's lifetime (a deadline past it would
#: outlive the record that reports it).
MAX_TIMEOUT_S = 7 * 24 * 3600.0
#: Default wait of an MCP tool call or a blocking A2A ``message/send`` for the terminal status; also the deadline
#: of the envelope it submits, so nothing runs on after its caller stopped waiting.
DEFAULT_CALL_TIMEOUT_S = 300.0
_ANY_OBJECT: dict[str, Any] = {"type": "object"}


class GatewayRoute(BaseModel):
    """A named route of the mesh: the actors an envelope visits, in order, and how agents see it."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    actors: list[str] = Field(min_length=1, description="The route, first actor first.")
    description: str = Field("", description="What the route does: the MCP tool's and the A2A skill's description.")
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: dict(_ANY_OBJECT),
        alias="inputSchema",
        description="JSON Schema of the payload (an object schema): the MCP tool's input schema. Default: any object.",
    )

    @field_validator("actors")
    @classmethod
    def _check_actors(cls, value: list[str]) -> list[str]:
        for actor in value:
            check_actor_name(actor)
        return value

    @field_validator("input_schema")
    @classmethod
    def _check_schema(cls, value: dict[str, Any]) -> dict[str, Any]:
        if value.get("type", "object") != "object":
            raise ValueError(
                f"inputSchema has type {value.get('type')!r}; a payload is a JSON object, so the schema must have "
                "type 'object' (wrap other values in a property)"
            )
        return {"type": "object", **value}


class GatewayMesh(BaseModel):
    """The mesh one gateway serves: it submits into this namespace's queues and no other."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    namespace: str
    actors: list[str] = Field(default_factory=list, description="Actors a caller may name with `?actor=`.")
    routes: dict[str, GatewayRoute] = Field(default_factory=dict, description="Named routes (`?route=`).")

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return check_dns_label(value, what="mesh namespace")

    @field_validator("actors")
    @classmethod
    def _check_actors(cls, value: list[str]) -> list[str]:
        for actor in value:
            check_actor_name(actor)
        return value

    @field_validator("routes")
    @classmethod
    def _check_route_names(cls, value: dict[str, GatewayRoute]) -> dict[str, GatewayRoute]:
        for name in value:
            check_dns_label(name, what="route name")
        return value

    @model_validator(mode="after")
    def _routes_use_known_actors(self) -> GatewayMesh:
        known = set(self.actors)
        for name, route in self.routes.items():
            unknown = [actor for actor in route.actors if actor not in known]
            if known and unknown:
                raise ValueError(
                    f"route {name!r} names {unknown} that are not in the mesh's actors {sorted(known)}; add them to "
                    "`actors` or fix the route"
                )
        return self

    @property
    def submittable_actors(self) -> set[str]:
        """Every actor a submission may start at: the listed actors and each route's actors."""
        return set(self.actors).union(*(route.actors for route in self.routes.values()))


def is_loopback(host: str) -> bool:
    """True when ``host`` is ``localhost`` or a loopback address (127.0.0.0/8, ::1): reachable from here only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class GatewayConfig(BaseModel):
    """Gateway settings. Field aliases are the environment variable names."""

    model_config = ConfigDict(populate_by_name=True, frozen=True, extra="forbid")

    namespace: str = Field(
        alias="ASYA_NAMESPACE", description="The mesh namespace: the gateway submits into its queues only."
    )
    mesh: GatewayMesh = Field(
        alias="ASYA_GATEWAY_MESH",
        description="The mesh served, as JSON: `{namespace, actors, routes: {name: {actors, description, "
        "inputSchema}}}`.",
    )
    region: str = Field("us-east-1", alias="ASYA_AWS_REGION", description="AWS region of the queues, table and bucket.")
    sqs_endpoint: str | None = Field(
        None, alias="ASYA_SQS_ENDPOINT", description="SQS endpoint override (local servers); unset = AWS."
    )
    s3_endpoint: str | None = Field(None, alias="ASYA_S3_ENDPOINT", description="S3 endpoint override; unset = AWS.")
    dynamodb_endpoint: str | None = Field(
        None, alias="ASYA_DYNAMODB_ENDPOINT", description="DynamoDB endpoint override (a local server); unset = AWS."
    )
    status_table: str = Field(alias="ASYA_STATUS_TABLE", min_length=3, description="The mesh's status table.")
    status_retention_days: int = Field(
        DEFAULT_RETENTION_DAYS, ge=1, le=MAX_RETENTION_DAYS, alias="ASYA_STATUS_RETENTION_DAYS",
        description=f"Days a status record lives after its last write ({DEFAULT_RETENTION_DAYS} by default): the "
        "`expires_at` of what the gateway writes (pending, canceled); the mesh's `gateway.statusRetentionDays`.",
    )
    result_bucket: str | None = Field(
        None,
        alias="ASYA_RESULT_BUCKET",
        description="The mesh's bucket: a final payload too large for the status record is read from it.",
    )
    host: str = Field(
        "127.0.0.1", alias="ASYA_GATEWAY_HOST", min_length=1,
        description="Address to listen on. Loopback by default; any other needs `ASYA_GATEWAY_AUTH=oidc`.",
    )
    port: int = Field(8080, ge=0, le=65535, alias="ASYA_GATEWAY_PORT", description="Port to listen on (0: any free).")
    public_url: str | None = Field(
        None, alias="ASYA_GATEWAY_PUBLIC_URL",
        description="The URL callers reach the gateway at, named in the A2A agent card; unset: http://HOST:PORT.",
    )
    auth: Literal["none", "oidc"] = Field(
        "none", alias="ASYA_GATEWAY_AUTH",
        description="`oidc`: every request but `/health` needs a bearer JWT from the issuer for the audience; "
        "`none`: no authentication, allowed on a loopback host only.",
    )
    oidc_issuer: str | None = Field(
        None, alias="ASYA_GATEWAY_OIDC_ISSUER", description="The issuer a token's `iss` must equal (auth=oidc)."
    )
    oidc_audience: str | None = Field(
        None, alias="ASYA_GATEWAY_OIDC_AUDIENCE", description="The audience a token's `aud` must hold (auth=oidc)."
    )
    oidc_jwks_url: str | None = Field(
        None, alias="ASYA_GATEWAY_OIDC_JWKS_URL",
        description="The issuer's JWKS; unset: `jwks_uri` of `{issuer}/.well-known/openid-configuration`.",
    )
    max_body_bytes: int = Field(
        DEFAULT_MAX_BODY_BYTES, ge=1024, le=DEFAULT_MAX_MESSAGE_BYTES, alias="ASYA_GATEWAY_MAX_BODY_BYTES",
        description="Largest request body; a bigger one is answered 413 before it is read to the end.",
    )
    max_message_bytes: int = Field(
        DEFAULT_MAX_MESSAGE_BYTES, ge=1024, alias="ASYA_MAX_MESSAGE_BYTES",
        description="Largest envelope the broker accepts (the sidecar's setting); a bigger submission is 413.",
    )
    call_timeout_s: float = Field(
        DEFAULT_CALL_TIMEOUT_S, gt=0, le=MAX_TIMEOUT_S, alias="ASYA_GATEWAY_CALL_TIMEOUT_S",
        description="How long an MCP tool call or a blocking A2A message waits for the result; its envelope's "
        "deadline too.",
    )
    poll_interval_s: float = Field(
        0.25, gt=0, le=10, alias="ASYA_GATEWAY_POLL_S",
        description="How often an open SSE stream, MCP call or A2A wait reads the status record (strongly "
        "consistent GetItem).",
    )
    keepalive_s: float = Field(
        15.0, gt=0, le=300, alias="ASYA_GATEWAY_KEEPALIVE_S",
        description="An SSE stream with nothing new for this long gets a `:keepalive` comment.",
    )

    @field_validator("mesh", mode="before")
    @classmethod
    def _parse_mesh(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise ValueError(f"ASYA_GATEWAY_MESH is not JSON ({exc}); set it to the mesh's JSON object") from None
        return value

    @field_serializer("mesh")
    def _dump_mesh(self, value: GatewayMesh) -> str:
        return value.model_dump_json(by_alias=True)

    @model_validator(mode="after")
    def _check(self) -> GatewayConfig:
        if self.mesh.namespace != self.namespace:
            raise ValueError(
                f"ASYA_GATEWAY_MESH is mesh {self.mesh.namespace!r} but ASYA_NAMESPACE is {self.namespace!r}; a "
                "gateway serves its own mesh only, so render both from the same mesh"
            )
        if self.auth == "none" and not is_loopback(self.host):
            raise ValueError(
                f"ASYA_GATEWAY_AUTH=none on host {self.host!r}, which is not a loopback address: anyone who can reach "
                "it could submit into and cancel the mesh's envelopes. Set ASYA_GATEWAY_AUTH=oidc with "
                "ASYA_GATEWAY_OIDC_ISSUER and ASYA_GATEWAY_OIDC_AUDIENCE, or listen on 127.0.0.1"
            )
        if self.auth == "oidc":
            missing = [f.alias for name, f in type(self).model_fields.items()
                       if name in ("oidc_issuer", "oidc_audience") and not getattr(self, name)]
            if missing:
                raise ValueError(f"ASYA_GATEWAY_AUTH=oidc needs {' and '.join(str(m) for m in missing)}; set them")
        return self

    @property
    def url(self) -> str:
        """Where callers reach the gateway: :attr:`public_url`, else ``http://host:port``."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> GatewayConfig:
        names = {f.alias for f in cls.model_fields.values()}
        return cls.model_validate({k: v for k, v in environ.items() if k in names and v != ""})

    def to_env(self) -> dict[str, str]:
        """Every non-default setting as ``{ENV_NAME: text}``; what is left out takes the documented default."""
        dumped = self.model_dump(by_alias=True, exclude_defaults=True, mode="json")
        dumped.update(self.model_dump(by_alias=True, include={"namespace", "mesh", "status_table"}, mode="json"))
        return {k: v if isinstance(v, str) else str(v) for k, v in dumped.items() if v is not None}
