"""What a caller asks for, checked: a submission (route, payload, headers, timeout, idempotency key) and a listing.

Every way a request can be wrong is refused here with an :class:`~asya_runtime.gateway.errors.ApiError` that names
the field and the fix, before anything is stored or sent, so a refused request leaves no trace and an accepted one
can always be built into an envelope (JSON that every hop can parse and write again).
"""

from __future__ import annotations

import json
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asya_runtime.envelope import MAX_NESTING, id_problem, nesting_over
from asya_runtime.gateway.config import MAX_TIMEOUT_S, GatewayMesh
from asya_runtime.gateway.errors import ApiError
from asya_runtime.status import STATUSES

__all__ = [
    "LIST_LIMIT_MAX", "RESERVED_HEADER_PREFIX", "ListQuery", "Submission", "check_envelope_id",
    "parse_list_query", "parse_submission", "submission_id",
]

#: Headers only the mesh sets (``x-asya-tracked``, the hop bookkeeping): a caller may not set or forge them.
RESERVED_HEADER_PREFIX = "x-asya-"
LIST_LIMIT_DEFAULT = 20
LIST_LIMIT_MAX = 100
#: Deepest ``?offset=``: listing pages through the by-status index, so a deeper offset costs a longer scan.
LIST_OFFSET_MAX = 10_000
#: Longest ``Idempotency-Key`` (what Stripe and the IETF draft allow).
IDEMPOTENCY_KEY_MAX = 255
_BODY_FIELDS = ("payload", "headers", "timeout")
#: The envelope nests the payload two levels down (envelope → payload): the rest of MAX_NESTING is the payload's.
_PAYLOAD_NESTING = MAX_NESTING - 2


@dataclass(frozen=True, kw_only=True)
class Submission:
    """A checked submission: where it goes and what it carries."""

    route_name: str
    route: list[str]
    payload: dict[str, Any]
    headers: dict[str, Any] = field(default_factory=dict)
    timeout_s: float | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, kw_only=True)
class ListQuery:
    status: str | None
    limit: int
    offset: int


def submission_id(*, namespace: str, idempotency_key: str | None) -> str:
    """The envelope id: derived from the key when there is one (the same key gives the same id, so a retried
    submission finds its record instead of starting the pipeline again), else random."""
    if idempotency_key is None:
        return str(uuid.uuid4())
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"asya-gateway/{namespace}/{idempotency_key}"))


def check_envelope_id(value: str) -> str:
    """``value`` if it can be an envelope id, else 400 naming why (an id names an S3 key and a DynamoDB item)."""
    problem = id_problem(value)
    if problem is not None:
        raise ApiError(400, f"envelope {problem}")
    return value


def _refuse_constant(spelling: str) -> Any:
    raise ValueError(f"the number {spelling} is not JSON; send it as a string")


def _checked_float(spelling: str) -> float:
    value = float(spelling)
    if not math.isfinite(value):
        raise ValueError(f"the number {spelling[:40]} is beyond a float's range; send it as a string")
    return value


def parse_json(body: bytes, *, what: str) -> Any:
    """``body`` as strict JSON: UTF-8, no NaN/Infinity, no number beyond a float, no lone surrogate, not too deep."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(400, f"{what} is not UTF-8 text ({exc.reason} at byte {exc.start}); send UTF-8 JSON") from None
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_float=_checked_float)
    except RecursionError:
        raise ApiError(400, f"{what} nests too deeply; at most {_PAYLOAD_NESTING} levels") from None
    except ValueError as exc:
        raise ApiError(400, f"{what} is not valid JSON: {exc}") from None
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(
            400, f"{what} holds a lone UTF-16 surrogate escape, which is not text; escape a character outside the "
            "BMP as a surrogate pair"
        ) from None
    if isinstance(data, (dict, list)) and nesting_over(data, limit=_PAYLOAD_NESTING):
        raise ApiError(400, f"{what} nests deeper than {_PAYLOAD_NESTING} levels; flatten it")
    return data


def _check_namespace(query: Mapping[str, str], *, mesh: GatewayMesh) -> None:
    """Asya's ``?namespace=`` may name this gateway's own mesh only: one mesh's gateway never reaches another's."""
    namespace = query.get("namespace")
    if namespace is not None and namespace != mesh.namespace:
        raise ApiError(
            403, f"namespace {namespace[:64]!r} is another mesh; this gateway serves mesh {mesh.namespace!r} only "
            "(leave `namespace` out or use that mesh's own gateway)"
        )


def _route_of(*, query: Mapping[str, str], mesh: GatewayMesh) -> tuple[str, list[str]]:
    _check_namespace(query, mesh=mesh)
    actor, route = query.get("actor"), query.get("route")
    if (actor is None) == (route is None):
        raise ApiError(400, "name exactly one of `?actor=NAME` (an actor of the mesh) or `?route=NAME` (a named route)")
    if route is not None:
        if route not in mesh.routes:
            known = ", ".join(sorted(mesh.routes)) or "none"
            raise ApiError(404, f"route {route!r} is not a route of mesh {mesh.namespace!r} (its routes: {known})")
        return route, list(mesh.routes[route].actors)
    assert actor is not None
    if actor not in mesh.submittable_actors:
        known = ", ".join(sorted(mesh.submittable_actors)) or "none"
        raise ApiError(404, f"actor {actor!r} is not an actor of mesh {mesh.namespace!r} (its actors: {known})")
    return actor, [actor]


def _timeout_of(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ApiError(400, f"timeout is {type(value).__name__} {value!r:.40}; send a number of seconds, e.g. 30")
    if not math.isfinite(value) or value <= 0:
        raise ApiError(400, f"timeout {value!r} must be a positive number of seconds")
    if value > MAX_TIMEOUT_S:
        raise ApiError(400, f"timeout {value!r} is over {MAX_TIMEOUT_S:.0f} s (7 days, a status record's lifetime)")
    return float(value)


def _headers_of(value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError(400, f"headers is JSON {type(value).__name__}; send an object of header names to values")
    reserved = sorted(name for name in value if name.lower().startswith(RESERVED_HEADER_PREFIX))
    if reserved:
        raise ApiError(
            400, f"headers {reserved} are reserved: `{RESERVED_HEADER_PREFIX}*` headers are set by the mesh only; "
            "rename them"
        )
    return dict(value)


def _idempotency_key_of(value: str | None) -> str | None:
    if value is None:
        return None
    if not value or len(value) > IDEMPOTENCY_KEY_MAX or not value.isprintable():
        raise ApiError(
            400, f"Idempotency-Key must be 1 to {IDEMPOTENCY_KEY_MAX} printable characters (a UUID is a good key)"
        )
    return value


def parse_submission(
    *, body: bytes, query: Mapping[str, str], idempotency_key: str | None, mesh: GatewayMesh
) -> Submission:
    """The submission ``POST /api/v1/mesh/`` asks for, or an :class:`ApiError` naming what is wrong."""
    route_name, route = _route_of(query=query, mesh=mesh)
    key = _idempotency_key_of(idempotency_key)
    data = parse_json(body, what="request body") if body.strip() else {}
    if not isinstance(data, dict):
        raise ApiError(400, f"request body is JSON {type(data).__name__}; send an object {{payload, headers, timeout}}")
    unknown = sorted(set(data) - set(_BODY_FIELDS))
    if unknown:
        raise ApiError(400, f"request body has unknown fields {unknown}; it takes {list(_BODY_FIELDS)}")
    payload = data.get("payload", {})
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ApiError(400, f"payload is JSON {type(payload).__name__}; a payload is an object (wrap the value in one)")
    return Submission(
        route_name=route_name, route=route, payload=payload, headers=_headers_of(data.get("headers")),
        timeout_s=_timeout_of(data.get("timeout")), idempotency_key=key,
    )


def _int_param(query: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ApiError(400, f"{name} {text[:40]!r} is not an integer; send one from {low} to {high}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name} {value} is out of range; send one from {low} to {high}")
    return value


def parse_list_query(query: Mapping[str, str], *, mesh: GatewayMesh) -> ListQuery:
    """``?status=&limit=&offset=`` of ``GET /api/v1/mesh/``, checked."""
    _check_namespace(query, mesh=mesh)
    status = query.get("status") or None
    if status is not None and status not in STATUSES:
        raise ApiError(400, f"status {status[:40]!r} is not a status; use one of {', '.join(STATUSES)}")
    return ListQuery(
        status=status,
        limit=_int_param(query, "limit", default=LIST_LIMIT_DEFAULT, low=1, high=LIST_LIMIT_MAX),
        offset=_int_param(query, "offset", default=0, low=0, high=LIST_OFFSET_MAX),
    )
