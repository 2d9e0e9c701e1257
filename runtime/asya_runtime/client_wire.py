"""The front door's wire format, shared by :class:`~asya_runtime.client.GatewayClient` and its async twin.

One source of truth for what both clients send and read: the request of every call (:func:`submit_request` and
the paths), the typed results (:class:`EnvelopeStatus`, :class:`StatusEvent`, :class:`FlyEvent`), the SSE parser
(:class:`SseParser`) and the one place that turns an HTTP answer or a transport failure into an error
(:func:`raise_for_answer`, :func:`unreachable`). The format is upstream Asya's Mesh API (docs/gateway.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

__all__ = [
    "MESH_PATH",
    "TERMINAL",
    "EnvelopeFailed",
    "EnvelopeStatus",
    "Event",
    "FlyEvent",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayUnreachable",
    "ListPage",
    "SseParser",
    "StatusEvent",
    "WaitTimeout",
]

MESH_PATH = "/api/v1/mesh/"
#: The statuses after which nothing changes.
TERMINAL = frozenset({"succeeded", "failed", "canceled"})
#: A refused or unroutable connection fails within this (a gateway that is down is one line, not a hang).
CONNECT_TIMEOUT_S = 2.0
#: A plain request's answer comes within this.
READ_TIMEOUT_S = 30.0


class GatewayError(Exception):
    """The root of every error the client raises; its message says what failed and what to do."""


class GatewayUnreachable(GatewayError):
    """No answer from the gateway: refused, timed out, or the connection dropped."""


class GatewayHTTPError(GatewayError):
    """The gateway answered with a 4xx or 5xx; ``status_code`` and the gateway's own ``detail``."""

    def __init__(self, message: str, *, status_code: int, detail: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail


class WaitTimeout(GatewayError, TimeoutError):
    """:meth:`wait` gave up before the envelope reached a terminal status (it may still finish)."""

    def __init__(self, message: str, *, last: EnvelopeStatus | None) -> None:
        super().__init__(message)
        self.last = last


class EnvelopeFailed(GatewayError):
    """:meth:`result`: the envelope ended ``failed`` or ``canceled``; ``status`` holds the record and its error."""

    def __init__(self, message: str, *, status: EnvelopeStatus) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class EnvelopeStatus:
    """One envelope's status record as the gateway reports it (``GET /api/v1/mesh/{id}``)."""

    id: str
    status: str
    created_at: str = ""
    updated_at: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)
    actor: str | None = None
    attempt: int | None = None
    progress: float | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> EnvelopeStatus:
        """Read a record; ``actor``/``attempt``/``progress``/``error`` may sit at the top or in ``data``."""
        data = obj.get("data") if isinstance(obj.get("data"), Mapping) else {}
        assert isinstance(data, Mapping)

        def pick(name: str) -> Any:
            value = obj.get(name)
            return data.get(name) if value is None else value

        attempt, progress = pick("attempt"), pick("progress")
        return cls(
            id=str(obj.get("id", "")),
            status=str(obj.get("status", "")),
            created_at=str(obj.get("created_at") or ""),
            updated_at=str(obj.get("updated_at") or ""),
            data=dict(data),
            actor=pick("actor"),
            attempt=int(attempt) if isinstance(attempt, int | float) else None,
            progress=float(progress) if isinstance(progress, int | float) else None,
            raw=dict(obj),
        )

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def payload(self) -> Any:
        """The final payload of a succeeded envelope (``data.payload``, or the store's ``data.result``); None
        before."""
        return self.data.get("payload", self.data.get("result"))

    @property
    def error(self) -> Mapping[str, Any] | None:
        """``{type, message, reason}`` of a failed or canceled envelope, when the gateway reports one."""
        error = self.data.get("error", self.raw.get("error"))
        return error if isinstance(error, Mapping) else None

    @property
    def reason(self) -> str:
        """One line saying why the envelope did not succeed (empty for a success)."""
        if self.succeeded:
            return ""
        error = self.error or {}
        parts = [str(error[k]) for k in ("reason", "type", "message") if error.get(k)]
        return ": ".join(dict.fromkeys(parts)) or self.status


@dataclass(frozen=True)
class ListPage:
    """``GET /api/v1/mesh/``: one page of records, newest first, and how many match in all."""

    messages: list[EnvelopeStatus]
    total: int


@dataclass(frozen=True)
class StatusEvent:
    """An SSE ``status`` event: the envelope's record at that moment (the first event is the current one)."""

    status: EnvelopeStatus


@dataclass(frozen=True)
class FlyEvent:
    """An SSE ``fly`` event: what a handler yielded with ``yield "FLY", {...}``."""

    id: str
    data: Mapping[str, Any]


Event = StatusEvent | FlyEvent


class SseParser:
    """Server-sent events, line by line (the text/event-stream format): ``feed`` each line without its newline;
    a blank line ends an event and returns it, as a typed :data:`Event`. Comments (``:keepalive``) and event types
    this client does not know are skipped."""

    def __init__(self, envelope_id: str) -> None:
        self.envelope_id = envelope_id
        self._event = ""
        self._data: list[str] = []

    def feed(self, line: str) -> Event | None:
        if line.startswith(":"):
            return None
        if line:
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
            return None
        kind, text = self._event or "message", "\n".join(self._data)
        self._event, self._data = "", []
        if not text:
            return None
        try:
            body = json.loads(text)
        except ValueError:
            raise GatewayError(f"the gateway sent a {kind!r} event that is not JSON: {text[:200]!r}") from None
        if not isinstance(body, Mapping):
            return None
        if kind == "status":
            return StatusEvent(status=EnvelopeStatus.from_json({"id": self.envelope_id, **body}))
        if kind == "fly":
            return FlyEvent(id=self.envelope_id, data=dict(body))
        return None


def submit_request(
    *,
    route: str | None,
    actor: str | None,
    payload: Any,
    headers: Mapping[str, str] | None,
    timeout: float | None,
    idempotency_key: str | None,
) -> tuple[dict[str, str], dict[str, Any], dict[str, str]]:
    """``POST /api/v1/mesh/``'s query, body and headers; ValueError unless exactly one of route and actor."""
    if (route is None) == (actor is None):
        raise ValueError("submit needs exactly one of route= (a named route) and actor= (the first actor)")
    query = {"route": route} if route is not None else {"actor": str(actor)}
    body: dict[str, Any] = {"payload": payload}
    if headers:
        body["headers"] = dict(headers)
    if timeout is not None:
        body["timeout"] = timeout
    extra = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
    return query, body, extra


def envelope_path(envelope_id: str, suffix: str = "") -> str:
    """``/api/v1/mesh/{id}`` (plus ``/events``); the id is quoted so that it can never name another path."""
    from urllib.parse import quote

    return f"{MESH_PATH}{quote(envelope_id, safe='')}{suffix}"


def client_timeout() -> httpx.Timeout:
    return httpx.Timeout(READ_TIMEOUT_S, connect=CONNECT_TIMEOUT_S)


def auth_headers(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def raise_for_answer(response: httpx.Response, *, what: str) -> None:
    """:class:`GatewayHTTPError` for a 4xx/5xx, with the gateway's own message (its ``error``/``detail``/``message``
    field, or the body's first line)."""
    if response.status_code < 400:
        return
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = ""
    if isinstance(body, Mapping):
        for key in ("error", "detail", "message"):
            value = body.get(key)
            if isinstance(value, Mapping):
                value = value.get("message") or json.dumps(value)
            if value:
                detail = str(value)
                break
    if not detail:
        detail = (response.text or response.reason_phrase).strip().splitlines()[0][:300] if response.text else ""
    hint = " (pass token= / --gateway-token)" if response.status_code in (401, 403) else ""
    raise GatewayHTTPError(
        f"{what}: {response.status_code} {response.reason_phrase}{': ' + detail if detail else ''}{hint}",
        status_code=response.status_code,
        detail=detail,
    )


def unreachable(exc: httpx.TransportError, *, base_url: str, what: str) -> GatewayUnreachable:
    """The one wording of a transport failure: which gateway, what happened, what to check."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        return GatewayUnreachable(
            f"{what}: cannot reach the gateway at {base_url} ({detail}); is it running (`asya dev DIR --gateway` "
            "prints its URL) and is the URL right?"
        )
    kind = "no answer in time" if isinstance(exc, httpx.TimeoutException) else "the connection dropped"
    return GatewayUnreachable(f"{what}: {kind} from the gateway at {base_url} ({detail}); try again")


def list_page(body: Any) -> ListPage:
    """Read ``GET /api/v1/mesh/``'s answer."""
    if not isinstance(body, Mapping) or not isinstance(body.get("messages"), list):
        raise GatewayError(f"the gateway's list answer has no 'messages' list: {str(body)[:200]}")
    messages = [EnvelopeStatus.from_json(m) for m in body["messages"] if isinstance(m, Mapping)]
    return ListPage(messages=messages, total=int(body.get("total", len(messages))))


def submitted_id(body: Any) -> str:
    if not isinstance(body, Mapping) or not body.get("id"):
        raise GatewayError(f"the gateway accepted the envelope but answered no id: {str(body)[:200]}")
    return str(body["id"])


def status_of(body: Any) -> EnvelopeStatus:
    if not isinstance(body, Mapping):
        raise GatewayError(f"the gateway's status answer is not an object: {str(body)[:200]}")
    return EnvelopeStatus.from_json(body)
