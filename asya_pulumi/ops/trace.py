"""An envelope's trace: its path through the mesh as a timeline, from the hop history its final records carry.

Each final record holds the envelope's ``hops`` (``asya_runtime.sidecar.hops``): one entry per finished attempt
with actor, attempt, start, end, outcome and replica. A trace is one :class:`Branch` per final record — one for a
plain envelope, one per fan-out child (each carrying the parent's entries as its prefix) — with the error
(type, message, traceback) on the step that ended a failed record, and any replays of failed branches followed to
their own records (:mod:`asya_pulumi.ops.replay`'s markers).

An envelope with no final record yet is reported honestly: in a DLQ (found by looking at the DLQs, which
costs nothing to anyone), else in flight with the queues that hold messages right now — an actor's queue is never
read, since receiving a message there would cost the envelope an attempt — else not found.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asya_pulumi.ops import queues as mesh_queues
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.ops.records import hops_of, records_of, status_of
from asya_pulumi.ops.replay import REPLAY_OF, Marker, read_marker
from asya_pulumi.records import FinalRecord

#: Replays of replays followed at most this deep.
MAX_REPLAY_DEPTH = 10


@dataclass(frozen=True)
class Step:
    """One hop entry: an attempt of ``actor`` (or, with ``folded``, that many early hops summarised)."""

    actor: str | None
    attempt: int | None
    start: float | None
    end: float | None
    outcome: str
    replica: str | None = None
    #: The attempt's error type (failed attempts).
    error_type: str | None = None
    #: The whole error (type, message, reason, traceback) on the step that ended the record in the error sink.
    error: dict[str, Any] | None = None
    #: A summary entry: how many early hops it stands for (0 for a real entry).
    folded: int = 0
    #: Seconds between the previous step's end and this one's start (time spent queued).
    waited_s: float | None = None

    @property
    def duration_s(self) -> float | None:
        return None if self.start is None or self.end is None else round(self.end - self.start, 3)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "actor": self.actor,
            "attempt": self.attempt,
            "start": self.start,
            "end": self.end,
            "duration_s": self.duration_s,
            "waited_s": self.waited_s,
            "outcome": self.outcome,
            "replica": self.replica,
        }
        if self.error_type is not None:
            data["error_type"] = self.error_type
        if self.error is not None:
            data["error"] = self.error
        if self.folded:
            data["folded"] = self.folded
        return data


@dataclass(frozen=True)
class Branch:
    """One final record's path."""

    envelope_id: str
    parent_id: str | None
    status: str
    key: str
    steps: list[Step]
    replay_of: str | None = None
    #: The marker of this branch's replay, when a failed branch was replayed.
    replayed_as: Marker | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.envelope_id,
            "parent_id": self.parent_id,
            "status": self.status,
            "record": self.key,
            "replay_of": self.replay_of,
            "replayed_as": self.replayed_as.to_json() if self.replayed_as else None,
            "steps": [step.to_json() for step in self.steps],
        }


@dataclass(frozen=True)
class Location:
    """Where an envelope without a final record is: in a DLQ (``dlq``), or in flight somewhere in ``busy``."""

    dlq: str | None = None
    busy: list[mesh_queues.Depth] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"dlq": self.dlq, "busy_queues": [d.to_json() for d in self.busy]}


@dataclass(frozen=True)
class Trace:
    """What is known of envelope ``id``. ``state``: ``succeeded``, ``failed`` (every branch failed),
    ``partly failed`` (some fan-out branches did), ``replayed`` (failed, and every failure's replay succeeded),
    ``dead-lettered``, ``in flight``, ``not found`` (no record, not in a DLQ, no queue busy), or ``no record``
    (when the queues were not looked at)."""

    id: str
    state: str
    branches: list[Branch] = field(default_factory=list)
    location: Location | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "state": self.state,
            "branches": [b.to_json() for b in self.branches],
            "location": self.location.to_json() if self.location else None,
        }


def steps_of(record: FinalRecord) -> list[Step]:
    """The record's hop entries as steps; a failed record's ending step carries the error. A failed record with no
    history (written before hop history existed, or a body that was no envelope) gets one step from its error."""
    steps: list[Step] = []
    previous_end: float | None = None
    for entry in hops_of(record):
        start, end = _number(entry.get("start")), _number(entry.get("end"))
        waited = round(start - previous_end, 3) if start is not None and previous_end is not None else None
        if entry.get("summary"):
            outcomes = entry.get("outcomes") or {}
            steps.append(
                Step(actor=None, attempt=None, start=start, end=end, folded=int(entry.get("count") or 0),
                     outcome=", ".join(f"{n} {name}" for name, n in sorted(outcomes.items())) or "summary")
            )
        else:
            steps.append(
                Step(
                    actor=_text(entry.get("actor")),
                    attempt=int(entry["attempt"]) if isinstance(entry.get("attempt"), int) else None,
                    start=start,
                    end=end,
                    outcome=str(entry.get("outcome") or "?"),
                    replica=_text(entry.get("replica")),
                    error_type=_text(entry.get("error")),
                    waited_s=waited,
                )
            )
        previous_end = end if end is not None else previous_end
    if record.succeeded:
        return steps
    error = record.error or _raw_error(record)
    if steps and steps[-1].outcome == "error":
        last = steps[-1]
        steps[-1] = Step(**{**last.__dict__, "error": error})
    else:  # the error came after the last attempt (e.g. a refused output), or there is no history
        status = record.envelope.get("status") or {}
        steps.append(Step(actor=_text(error.get("actor")), attempt=status.get("attempt"), start=None, end=None,
                          outcome="error", error_type=_text(error.get("type")), error=error))
    return steps


def _raw_error(record: FinalRecord) -> dict[str, Any]:
    """The error of a record whose body was no envelope (the sink kept it raw)."""
    return {"type": "MalformedEnvelope", "message": str(record.envelope.get("detail", "")),
            "reason": str(record.envelope.get("reason", "malformed envelope"))}


def branch_of(record: FinalRecord, *, replayed_as: Marker | None = None) -> Branch:
    replay_of = record.envelope.get(REPLAY_OF)
    return Branch(
        envelope_id=record.id,
        parent_id=record.parent_id,
        status=status_of(record),
        key=record.key,
        steps=steps_of(record),
        replay_of=str(replay_of) if replay_of else None,
        replayed_as=replayed_as,
    )


def trace(*, s3: Any, bucket: str, envelope_id: str, queues: MeshQueues | None = None) -> Trace:
    """The trace of ``envelope_id`` from the records in ``bucket``; with ``queues``, an envelope with no record is
    looked for in the DLQs and the busy queues are named."""
    records = records_of(s3=s3, bucket=bucket, envelope_id=envelope_id)
    if not records:
        return Trace(id=envelope_id, state="no record") if queues is None else _unfinished(queues, envelope_id)
    branches = _with_replays(s3, bucket, records)
    return Trace(id=envelope_id, state=_state(branches), branches=branches)


def _with_replays(s3: Any, bucket: str, records: list[FinalRecord]) -> list[Branch]:
    """A branch per record, followed by the branches of the replays of failed ones (a replay's own replay too)."""
    branches: list[Branch] = []
    pending = [(record, 0) for record in records]
    seen: set[str] = set()  # a fan-out root's descendants already include its children's replays (same trace)
    while pending:
        record, depth = pending.pop(0)
        if record.key in seen:
            continue
        seen.add(record.key)
        marker = None
        if not record.succeeded and depth < MAX_REPLAY_DEPTH:
            marker = read_marker(s3=s3, bucket=bucket, original_id=record.id)
        branches.append(branch_of(record, replayed_as=marker))
        if marker is not None:
            pending += [(r, depth + 1) for r in records_of(s3=s3, bucket=bucket, envelope_id=marker.replay_id)]
    return branches


def _state(branches: list[Branch]) -> str:
    replayed = {b.replay_of for b in branches if b.replay_of}
    finals = [b for b in branches if b.envelope_id not in replayed and not (b.status == "failed" and b.replayed_as)]
    # ``finals``: the outcome of each line of descent (a failed branch that was replayed is judged by its replay)
    failed = [b for b in finals if b.status == "failed"]
    if not failed:
        return "replayed" if replayed else "succeeded"
    return "failed" if len(failed) == len(finals) else "partly failed"


def _unfinished(queues: MeshQueues, envelope_id: str) -> Trace:
    location = _locate(queues, envelope_id)
    if location.dlq is not None:
        return Trace(id=envelope_id, state="dead-lettered", location=location)
    return Trace(id=envelope_id, state="in flight" if location.busy else "not found", location=location)


def _locate(queues: MeshQueues, envelope_id: str) -> Location:
    depths = mesh_queues.depths(queues)
    with_dead = [d.actor for d in depths if d.dead_lettered]
    found = mesh_queues.find_in_dlqs(queues, envelope_id=envelope_id, actors=with_dead)
    return Location(dlq=found.actor if found else None, busy=[d for d in depths if d.busy])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return str(value) if value is not None else None
