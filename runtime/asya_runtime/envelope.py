"""The envelope (contract 1): one JSON object per SQS message, carrying its own route.

```
{ "id": "uuid", "parent_id": null | "uuid",
  "route": {"prev": ["a"], "curr": "b", "next": ["c", "d"]},
  "headers": {"traceparent": "...", ...},
  "status": {"attempt": 1, "max_attempts": 3, "deadline_at": null | iso8601, "error": null | {...}},
  "payload": { ... } }
```
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Envelope", "EnvelopeError", "ErrorInfo", "Route", "Status", "child_id", "new_envelope"]


class EnvelopeError(ValueError):
    """The message is not a valid envelope; ``reason`` is a short, stable phrase for metrics and the error sink."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Route(_Model):
    prev: list[str] = Field(default_factory=list)
    curr: str
    next: list[str] = Field(default_factory=list)

    def advanced(self) -> Route | None:
        """The route after ``curr`` succeeded, or None when nothing is left (→ the success sink)."""
        if not self.next:
            return None
        return Route(prev=[*self.prev, self.curr], curr=self.next[0], next=self.next[1:])


class ErrorInfo(_Model):
    type: str
    message: str
    reason: str
    traceback: str | None = None
    actor: str | None = None


class Status(_Model):
    attempt: int = Field(1, ge=1)
    max_attempts: int | None = None
    deadline_at: datetime | None = None
    error: ErrorInfo | None = None


class Envelope(_Model):
    id: str
    parent_id: str | None = None
    route: Route
    headers: dict[str, Any] = Field(default_factory=dict)
    status: Status = Field(default_factory=Status)
    payload: Any = Field(default_factory=dict)

    @classmethod
    def parse(cls, body: str | bytes) -> Envelope:
        """Parse an SQS body, raising :class:`EnvelopeError` with a reason for every way it can be wrong."""
        import json

        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError("malformed envelope", f"body is not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise EnvelopeError("malformed envelope", f"body is JSON {type(data).__name__}, not an object")
        if "route" not in data:
            raise EnvelopeError("malformed envelope", "no 'route'")
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError("malformed envelope", f"{where}: {first['msg']}") from None

    def to_json(self) -> str:
        return self.model_dump_json(exclude_none=False)


def new_envelope(
    *, route: list[str], payload: Any, headers: dict[str, Any] | None = None, envelope_id: str | None = None
) -> Envelope:
    """A fresh envelope addressed to ``route[0]`` (how `asya send` and tests start a pipeline)."""
    if not route:
        raise ValueError("a route needs at least one actor")
    return Envelope(
        id=envelope_id or str(uuid.uuid4()),
        route=Route(prev=[], curr=route[0], next=list(route[1:])),
        headers=dict(headers or {}),
        payload=payload,
    )


def child_id(*, parent_id: str, actor: str, index: int) -> str:
    """Deterministic id of fan-out child ``index``: a redelivered parent yields the same children, not new ones."""
    namespace = uuid.UUID(parent_id) if _is_uuid(parent_id) else uuid.NAMESPACE_URL
    return str(uuid.uuid5(namespace, f"{parent_id}/{actor}/{index}"))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
