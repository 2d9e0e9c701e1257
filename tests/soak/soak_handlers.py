"""The soak's handler: identity, with a deterministic 10 % transient failure and a side-effect log.

It runs behind the real handler server. As a generator it asks for the envelope's id, attempt and current actor
(``GET`` commands), so the failure decision depends on ``(id, actor, attempt)`` only: the same attempt fails again
when it is redelivered, and the next attempt usually succeeds. Every call appends one JSON line to
``$SOAK_CALLS_DIR/{pid}.jsonl`` *before* it returns (a side effect that a kill can duplicate), with ``ok`` telling
whether this call succeeded; one file per process keeps concurrent appends from interleaving.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Generator
from typing import Any

#: Share of handler calls that raise :class:`TransientError`.
FAILURE_PERCENT = 10


class TransientError(Exception):
    """A failure that goes away on the next attempt (e.g. a flaky downstream service)."""


def fails(*, envelope_id: str, actor: str, attempt: int) -> bool:
    digest = hashlib.sha256(f"{envelope_id}/{actor}/{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % 100 < FAILURE_PERCENT


def _record(entry: dict[str, Any]) -> None:
    directory = os.environ["SOAK_CALLS_DIR"]
    with open(os.path.join(directory, f"{os.getpid()}.jsonl"), "a") as out:
        out.write(json.dumps(entry) + "\n")
        out.flush()


def flaky_identity(payload: dict[str, Any]) -> Generator[Any, Any, None]:
    envelope_id = yield ("GET", ".id")
    attempt = yield ("GET", ".status.attempt")
    actor = yield ("GET", ".route.curr")
    failing = fails(envelope_id=envelope_id, actor=actor, attempt=int(attempt))
    _record({"id": envelope_id, "actor": actor, "attempt": attempt, "ok": not failing})
    if failing:
        raise TransientError(f"injected transient failure of {envelope_id} at {actor}, attempt {attempt}")
    yield payload
