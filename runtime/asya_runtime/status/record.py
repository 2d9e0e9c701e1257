"""What the store holds about one envelope, typed: :class:`StatusRecord`, and the updates that write it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from asya_runtime.status.codec import decode_item


@dataclass(frozen=True)
class StatusRecord:
    """One status item as :meth:`StatusStore.get` reads it (docs/gateway.md lists each attribute)."""

    id: str
    status: str
    created_at: str
    updated_at: str
    rank: int = 0
    seq: int = 0
    route: str | None = None
    actor: str | None = None
    attempt: int | None = None
    progress: float | None = None
    deadline_at: str | None = None
    #: The final payload as JSON text (at most 32 KiB); else :attr:`payload_ref`.
    payload: str | None = None
    payload_ref: str | None = None
    error: dict[str, Any] | None = None
    parent_id: str | None = None
    fanout: dict[str, Any] | None = None
    fly_seq: int = 0
    #: The last FLY events, oldest first, each as JSON text.
    fly: tuple[str, ...] = ()
    idempotency_key: str | None = None
    sent: bool = False
    #: Epoch seconds until which :attr:`send_claim`'s holder alone may send the envelope (StatusStore.claim_send).
    send_until: int | None = None
    send_claim: str | None = None
    expires_at: int | None = None

    @property
    def terminal(self) -> bool:
        return self.status in ("succeeded", "failed", "canceled")

    @classmethod
    def from_item(cls, item: Mapping[str, Mapping[str, Any]]) -> StatusRecord:
        """A record from a DynamoDB item (typed JSON); attributes it does not know are ignored."""
        values = decode_item(item)
        known = {name: values[name] for name in cls.__dataclass_fields__ if name in values}
        known["fly"] = tuple(known.get("fly") or ())
        return cls(**known)

    def fly_events(self) -> list[Any]:
        """The FLY events as values (each was a JSON text)."""
        return [json.loads(event) for event in self.fly]

    def to_api(self) -> dict[str, Any]:
        """Asya's Mesh API shape: ``{id, status, created_at, updated_at, data: {...}}`` (upstream
        ``docs/reference/specs/mesh-api.md``); ``data`` has what is known, ``result`` the final payload as a value."""
        data: dict[str, Any] = {
            name: value
            for name, value in (
                ("route", self.route), ("actor", self.actor), ("attempt", self.attempt),
                ("progress", self.progress), ("deadline_at", self.deadline_at), ("payload_ref", self.payload_ref),
                ("error", self.error), ("parent_id", self.parent_id), ("fanout", self.fanout),
            )
            if value is not None
        }
        if self.payload is not None:
            data["result"] = json.loads(self.payload)
        if self.fly_seq:
            data["fly_seq"] = self.fly_seq
            data["fly"] = self.fly_events()
        return {
            "id": self.id,
            "status": self.status,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "data": data,
        }


@dataclass(frozen=True)
class RunningUpdate:
    """One envelope's ``running`` at one hop: where it is and how far it came (``seq``: its hop count)."""

    id: str
    actor: str
    attempt: int
    seq: int
    #: A fan-out child's parent (children's items are created by their first ``running``).
    parent_id: str | None = None
    #: On a parent that fanned out: ``{"actor": ..., "count": ...}``.
    fanout: dict[str, Any] | None = None


@dataclass(frozen=True)
class FlyLog:
    """The FLY events an item holds after a write (the last ``FLY_KEEP``, oldest first) and its counter: what the
    next :meth:`StatusStore.report_fly` of the same hop starts from."""

    events: tuple[str, ...] = ()
    seq: int = 0


@dataclass(frozen=True)
class StatusPage:
    """A page of :meth:`StatusStore.list`: the records, newest first, and how many match in all."""

    records: list[StatusRecord] = field(default_factory=list)
    total: int = 0
