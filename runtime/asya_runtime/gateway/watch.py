"""Watching one envelope: its status changes and FLY events, read by polling the status store.

The store is DynamoDB, which pushes nothing a gateway could subscribe to without a stream consumer per replica, so
each watcher (an SSE stream, an MCP tool call, a blocking A2A message) reads the record with a strongly consistent
GetItem every ``poll_s`` (0.25 s by default: at most 4 reads per second per open watcher, each one read unit for an
item under 4 KB) and reports what changed since the last read. A change of status, actor, attempt or hop is a
``status`` event; each FLY event the record's counter says is new (of the last ones it keeps) is a ``fly`` event.
The watch ends after the terminal status, or when the record is gone (expired).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from asya_runtime.status import StatusRecord, StatusStore

__all__ = ["Change", "wait_terminal", "watch"]


@dataclass(frozen=True)
class Change:
    """One thing a watcher reports: ``kind`` ``status`` (with the record) or ``fly`` (with the event's value);
    ``tick`` when a poll found nothing new (an SSE stream counts these for its keepalive)."""

    kind: str
    record: StatusRecord | None = None
    fly: Any = None


def _signature(record: StatusRecord) -> tuple[Any, ...]:
    return record.status, record.actor, record.attempt, record.seq


def _new_fly(record: StatusRecord, *, seen: int) -> list[Any]:
    fresh = max(0, record.fly_seq - seen)
    events = record.fly[len(record.fly) - min(fresh, len(record.fly)):] if fresh else ()
    out = []
    for text in events:
        try:
            out.append(json.loads(text))
        except ValueError:
            out.append(text)
    return out


async def watch(
    *, store: StatusStore, record: StatusRecord, poll_s: float, skip_old_fly: bool = True
) -> AsyncIterator[Change]:
    """Changes of the envelope whose current ``record`` the caller has read: first that record as a ``status``,
    then every change until (and including) the terminal status. FLY events already in ``record`` are not
    reported again unless ``skip_old_fly`` is false."""
    yield Change("status", record=record)
    last, fly_seen = _signature(record), record.fly_seq if skip_old_fly else 0
    if not skip_old_fly:
        for event in _new_fly(record, seen=0):
            yield Change("fly", fly=event)
    current = record
    while not current.terminal:
        await asyncio.sleep(poll_s)
        fresh = await store.get(id=current.id)
        if fresh is None:
            return  # expired under the watcher: nothing more will come
        changed = False
        for event in _new_fly(fresh, seen=fly_seen):
            changed = True
            yield Change("fly", fly=event)
        fly_seen = max(fly_seen, fresh.fly_seq)
        if _signature(fresh) != last:
            changed = True
            last = _signature(fresh)
            yield Change("status", record=fresh)
        if not changed:
            yield Change("tick")
        current = fresh


async def wait_terminal(
    *, store: StatusStore, envelope_id: str, poll_s: float, timeout_s: float,
    on_fly: Callable[[Any], Awaitable[None]] | None = None,
) -> StatusRecord | None:
    """The envelope's terminal record, waiting at most ``timeout_s``; ``None`` when it did not finish in time (or
    its record is gone). Each FLY event on the way is passed to ``on_fly``."""
    record = await store.get(id=envelope_id)
    if record is None:
        return None
    with anyio.move_on_after(timeout_s):
        async for change in watch(store=store, record=record, poll_s=poll_s, skip_old_fly=False):
            if change.kind == "fly" and on_fly is not None:
                await on_fly(change.fly)
            elif change.kind == "status" and change.record is not None and change.record.terminal:
                return change.record
    return None
