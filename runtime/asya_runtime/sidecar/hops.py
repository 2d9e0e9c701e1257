"""Hop history: every attempt an actor finishes appends one compact entry to the envelope's top-level ``hops`` list.

```
"hops": [{"actor": "a", "attempt": 1, "start": 1764500000.123, "end": 1764500000.456, "outcome": "ok",
          "replica": "pod-a-7f9c"}, ...]
```

So every final record in the mesh's bucket carries the envelope's whole path with its timings, and ``asya trace``
needs nothing but the records. Why in the envelope rather than in a store of its own: the envelope is the only thing
that reaches every hop (there is no coordinator), and the sinks persist it anyway — no extra write per hop.

- ``start`` is when this sidecar began processing the message, ``end`` when its outputs were handed to the sender
  (epoch seconds, millisecond precision). ``outcome`` is ``ok`` (the call succeeded: the entry rides on every
  output), ``retry`` (sent back to this actor for another attempt), ``error`` (error-ended: the record in the error
  sink; the error itself is ``status.error``, with its traceback), ``recovered`` (retries ran out and the policy's
  ``onExhausted`` actors take over) or ``canceled`` (its status record says canceled: ended without a call). An
  output the sender refuses (too large, no such actor) becomes an error record that keeps the ``ok`` entry: the call
  did succeed; ``status.error`` says what went wrong after it.
- A failed attempt's entry also names its error type (``"error": "ValueError"``): ``status.error`` keeps only the
  last error's message and traceback, the entries keep every attempt's type.
- ``replica`` names the sidecar: the pod name on Kubernetes (its hostname), ``host:pid`` elsewhere, where several
  local processes share one host.
- Fan-out children copy their parent's history (and carry ``parent_id``), so each child's record shows the whole
  path from the input.
- Bounded: at :data:`MAX_HOPS` entries the oldest are folded into one ``{"summary": true, ...}`` entry at the head
  (how many hops, from when to when, how many of each outcome), so a long or looping route cannot grow the envelope
  past the broker's message size limit. An entry is ~100–150 bytes of JSON, so 64 are 6–10 KiB.
- Attempts that never finished (a sidecar killed mid-call; SQS redelivers) leave no entry: the next entry's
  ``attempt`` then skips a number, which is how a trace shows them.

Pure functions over plain lists and dicts: no model round trip and no extra JSON pass per message; the call sites
in :mod:`asya_runtime.sidecar.actor` add one shallow envelope copy per output.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Sequence
from typing import Any, Final

from asya_runtime.envelope import Envelope
from asya_runtime.sidecar.routing import Outgoing

#: The envelope's top-level field holding the history.
FIELD: Final = "hops"
#: Most entries kept; older ones are folded into the summary entry at the head.
MAX_HOPS: Final = 64
#: Left out of the envelope the handler server receives: no handler needs it, and dumping 20 entries costs ~30 µs
#: per call (outputs take their history from the source envelope, never from the handler's answer).
NOT_FOR_HANDLER: Final[set[str]] = {FIELD}

OK: Final = "ok"
RETRY: Final = "retry"
ERROR: Final = "error"
RECOVERED: Final = "recovered"
#: Ended uncalled because its status record says canceled (sidecar/status_reports.py).
CANCELED: Final = "canceled"


def replica_name(*, environ: dict[str, str] | None = None) -> str:
    """This sidecar's name in hop entries: the pod name on Kubernetes, else ``hostname:pid``."""
    env = os.environ if environ is None else environ
    host = env.get("HOSTNAME") or socket.gethostname()
    if env.get("KUBERNETES_SERVICE_HOST"):
        return host
    return f"{host}:{os.getpid()}"


#: Computed once per process: the name does not change while it runs.
REPLICA: Final = replica_name()


def entry(
    *,
    actor: str,
    attempt: int,
    start: float,
    end: float,
    outcome: str,
    replica: str = REPLICA,
    error: str | None = None,
) -> dict[str, Any]:
    """One hop entry; times are epoch seconds rounded to milliseconds; ``error`` (the error's type name) only when
    the attempt failed."""
    item = {
        "actor": actor,
        "attempt": attempt,
        "start": round(start, 3),
        "end": round(end, 3),
        "outcome": outcome,
        "replica": replica,
    }
    if error is not None:
        item["error"] = error
    return item


def is_summary(item: dict[str, Any]) -> bool:
    return bool(item.get("summary"))


def summary(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One entry standing for ``items`` (entries or earlier summaries): how many hops, first start, last end,
    and how many ended with each outcome."""
    count = 0
    outcomes: dict[str, int] = {}
    for item in items:
        if is_summary(item):
            count += int(item.get("count", 0))
            for name, n in (item.get("outcomes") or {}).items():
                outcomes[name] = outcomes.get(name, 0) + int(n)
        else:
            count += 1
            name = str(item.get("outcome"))
            outcomes[name] = outcomes.get(name, 0) + 1
    starts = [item["start"] for item in items if isinstance(item.get("start"), (int, float))]
    ends = [item["end"] for item in items if isinstance(item.get("end"), (int, float))]
    return {
        "summary": True,
        "count": count,
        "start": min(starts) if starts else None,
        "end": max(ends) if ends else None,
        "outcomes": outcomes,
    }


def appended(
    history: Sequence[dict[str, Any]] | None, item: dict[str, Any], *, cap: int = MAX_HOPS
) -> list[dict[str, Any]]:
    """A new list: ``history`` plus ``item``, at most ``cap`` entries (``cap`` ≥ 2), the oldest folded into a
    summary at the head. ``history`` itself is never changed (fan-out children share their parent's list)."""
    if cap < 2:
        raise ValueError(f"a hop history cap must be at least 2 (a summary and the newest entry), not {cap}")
    items = list(history or ())
    items.append(item)
    if len(items) <= cap:
        return items
    fold = len(items) - cap + 1  # entries (the old summary included) replaced by one summary
    return [summary(items[:fold]), *items[fold:]]


def count(history: Sequence[dict[str, Any]]) -> int:
    """How many hops ``history`` stands for (a summary counts the hops it folded)."""
    return sum(int(item.get("count", 0)) if is_summary(item) else 1 for item in history if isinstance(item, dict))


def visited(history: Sequence[dict[str, Any]]) -> str:
    """The actors of the entries kept (the latest hops), most visited first: ``"a ×32, b ×31"``."""
    seen: dict[str, int] = {}
    for item in history:
        if isinstance(item, dict) and not is_summary(item):
            name = str(item.get("actor"))
            seen[name] = seen.get(name, 0) + 1
    return ", ".join(f"{name} ×{n}" for name, n in sorted(seen.items(), key=lambda kv: (-kv[1], kv[0])))


def history_of(envelope: Envelope) -> list[dict[str, Any]]:
    """The envelope's ``hops`` (empty when it has none yet, or when a sender put something else there)."""
    value = envelope.hops
    return value if isinstance(value, list) else []


def extended(
    envelope: Envelope,
    *,
    actor: str,
    attempt: int,
    start: float,
    outcome: str,
    error: str | None = None,
    end: float | None = None,
    cap: int = MAX_HOPS,
) -> list[dict[str, Any]]:
    """``envelope``'s history with this attempt's entry appended (ending at ``end``, now by default): the one way
    an entry is made. A caller that builds its outputs itself sets ``hops`` in the same copy (the successful
    call's path: no second copy per output); :func:`stamped` does it for outputs already built."""
    item = entry(
        actor=actor, attempt=attempt, start=start, end=time.time() if end is None else end, outcome=outcome,
        error=error,
    )
    return appended(history_of(envelope), item, cap=cap)


def stamped(
    outgoing: Sequence[Outgoing],
    *,
    actor: str,
    attempt: int,
    start: float,
    outcome: str,
    error: str | None = None,
    cap: int = MAX_HOPS,
) -> list[Outgoing]:
    """``outgoing`` with this attempt's entry appended to each envelope's history.

    ``outcome`` is the attempt's (``ok``, ``recovered``, ``canceled``); an output that is an error record says
    ``error`` (a canceled one ``canceled``) and one
    sent back to this actor says ``retry`` — except an ``ok`` call's refused output, which keeps ``ok`` (see the
    module docstring). ``error`` is the failed attempt's error type, kept in the entry of every attempt that
    failed (``status.error`` holds only the last one). Every output gets its own copy of the envelope; none is
    changed in place.
    """
    end = time.time()
    result = []
    for hop in outgoing:
        if hop.retry:
            kind = RETRY
        elif hop.is_error and outcome not in (OK, CANCELED):
            kind = ERROR
        else:
            kind = outcome
        history = extended(
            hop.envelope, actor=actor, attempt=attempt, start=start, outcome=kind, error=error, end=end, cap=cap
        )
        envelope = hop.envelope.model_copy(update={FIELD: history})
        result.append(Outgoing(to=hop.to, envelope=envelope, delay_s=hop.delay_s, retry=hop.retry))
    return result
