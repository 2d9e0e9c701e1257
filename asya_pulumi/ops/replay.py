"""Replay: send failed envelopes again — error-sink records or DLQ messages — after the cause was fixed.

A replay is a new envelope made from the failed one: a fresh ``status`` (attempt 1, no error, no deadline — the old
one has usually passed), ``route.curr`` set to the actor that failed it (or ``to``), the rest of the route, the
headers, the payload and the hop history kept, and the original id in ``replay_of``. Its id is derived from the
original's (:func:`replay_id`), so it is the same however often the same record is replayed.

**None twice.** Each replay is recorded in the bucket as ``replays/{original id}.json`` (:class:`Marker`: the
replay's id, target, source and time), written right after the broker accepted the envelope. A later selection
skips every record that has a marker, so replaying "all failures of actor X" twice sends each once; a replay that
fails again leaves its own error record (under its own id), which a later replay picks up in turn. If the marker
write is lost (the process dies between the send and the write), the next replay sends the same id again; the
sinks' deterministic keys then turn the second final record into an overwrite of the first, so there is still one
success record per original (the actor itself runs twice, the mesh's usual at-least-once).

DLQ messages (``from_dlq``) are received (hidden while the plan exists), sent back as replays, and deleted from
the DLQ only after the broker accepted the replay; a dry run releases them again at once. Bodies that are no
envelope, and claim-check references (the envelope is in the bucket), stay in the DLQ: ``asya dlq redrive`` moves
those unchanged.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from asya_pulumi.ops import queues as mesh_queues
from asya_pulumi.ops.errors import OpsError
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.ops.records import RecordQuery, error_type, failed_actor, find_records, within
from asya_pulumi.records import FinalRecord
from asya_runtime.envelope import Envelope, EnvelopeError, Route, Status
from asya_runtime.naming import check_actor_name

#: Key prefix of the replay markers in the mesh's bucket.
REPLAY_PREFIX = "replays"
#: The envelope field naming the envelope a replay was made from.
REPLAY_OF = "replay_of"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://asya.sh/replay")
_SEND_BATCH = 10


def replay_id(original_id: str) -> str:
    """The id of ``original_id``'s replay: the same on every run, so a repeated replay overwrites, never adds."""
    return str(uuid.uuid5(_ID_NAMESPACE, original_id))


def marker_key(original_id: str) -> str:
    return f"{REPLAY_PREFIX}/{original_id}.json"


@dataclass(frozen=True)
class Marker:
    """The record that ``original_id`` was replayed, as ``replay_id``, into ``to``'s queue, from ``source``."""

    original_id: str
    replay_id: str
    to: str
    source: str
    at: float

    def to_json(self) -> dict[str, Any]:
        return {"original_id": self.original_id, "replay_id": self.replay_id, "to": self.to, "source": self.source,
                "at": self.at}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Marker:
        return cls(original_id=str(data["original_id"]), replay_id=str(data["replay_id"]), to=str(data["to"]),
                   source=str(data.get("source", "")), at=float(data.get("at", 0.0)))


def read_marker(*, s3: Any, bucket: str, original_id: str) -> Marker | None:
    """The marker of ``original_id``'s replay, or None when it was never replayed."""
    try:
        body = s3.get_object(Bucket=bucket, Key=marker_key(original_id))["Body"].read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    try:
        return Marker.from_json(json.loads(body))
    except (ValueError, KeyError, TypeError):
        return None


def replayed_ids(*, s3: Any, bucket: str) -> set[str]:
    """The ids of every envelope that was replayed, from one listing of the markers (no marker is read: the
    replay's id derives from the original's, :func:`replay_id`)."""
    prefix = f"{REPLAY_PREFIX}/"
    found: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        found.update(str(item["Key"])[len(prefix) : -len(".json")] for item in page.get("Contents", []))
    return found


@dataclass(frozen=True)
class ReplayItem:
    """One failed envelope and what the replay does with it: send ``envelope`` to ``to``, or skip it (``skipped``
    says why)."""

    original_id: str
    #: Where it was found: the record's key, or ``dlq:{actor}``.
    source: str
    to: str | None
    error_type: str | None
    envelope: Envelope | None = None
    skipped: str | None = None
    dlq_message: mesh_queues.DlqMessage | None = None

    @property
    def replay_id(self) -> str:
        return replay_id(self.original_id)

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "original_id": self.original_id,
            "replay_id": self.replay_id,
            "source": self.source,
            "to": self.to,
            "error_type": self.error_type,
        }
        if self.skipped is not None:
            data["skipped"] = self.skipped
        return data


@dataclass
class ReplayPlan:
    """What a replay would send and what it skips (with reasons), before anything is sent."""

    items: list[ReplayItem] = field(default_factory=list)

    @property
    def to_send(self) -> list[ReplayItem]:
        return [item for item in self.items if item.skipped is None]

    @property
    def skipped(self) -> list[ReplayItem]:
        return [item for item in self.items if item.skipped is not None]

    @property
    def held(self) -> list[mesh_queues.DlqMessage]:
        """DLQ messages this plan received and holds hidden (released by :func:`release`, deleted by :func:`send`)."""
        return [item.dlq_message for item in self.items if item.dlq_message is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "send": [item.to_json() for item in self.to_send],
            "skip": [item.to_json() for item in self.skipped],
        }


@dataclass(frozen=True)
class ReplayResult:
    """What :func:`send` did: sent (each recorded by a marker) and refused by the broker (with its reason)."""

    sent: list[ReplayItem]
    refused: list[tuple[ReplayItem, str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "sent": [item.to_json() for item in self.sent],
            "refused": [{**item.to_json(), "reason": reason} for item, reason in self.refused],
        }


def replay_envelope(envelope: Envelope, *, to: str) -> Envelope:
    """The replay of ``envelope``: attempts reset, sent to ``to``, the original id kept in ``replay_of``."""
    route = Route(prev=list(envelope.route.prev), curr=to, next=list(envelope.route.next))
    status = Status().stamped(phase="pending", actor=to)  # a new envelope, stamped as new_envelope stamps one
    return envelope.model_copy(
        update={"id": replay_id(envelope.id), "route": route, "status": status, REPLAY_OF: envelope.id}
    )


def check_target(queues: MeshQueues, to: str) -> str:
    """``to`` if it is an actor of this mesh with a queue; otherwise an :class:`OpsError` naming the fix."""
    try:
        check_actor_name(to)
    except ValueError as exc:
        raise OpsError(f"cannot replay into {to!r}: {exc}") from None
    queues.actor_url(to)  # an OpsError naming the queue when it does not exist
    return to


def plan_records(
    *, s3: Any, bucket: str, queues: MeshQueues, query: RecordQuery, to: str | None = None
) -> ReplayPlan:
    """A plan replaying the error records ``query`` selects (its ``status`` is forced to ``failed``), each into
    ``to`` or, by default, the actor that failed it. ``query.limit`` bounds the records to *send* (newest first);
    records skipped (already replayed, not replayable) are listed besides and do not count."""
    if to is not None:
        check_target(queues, to)
    selection = dataclasses.replace(query, status="failed", limit=None)
    failed = find_records(s3=s3, bucket=bucket, query=selection)
    replayed = replayed_ids(s3=s3, bucket=bucket)
    known: dict[str, str | None] = {}
    items = [_record_item(r, to=to, replayed=r.id in replayed, queues=queues, known=known) for r in failed]
    if query.limit is not None:
        sendable = [item for item in items if item.skipped is None][: query.limit]
        items = sendable + [item for item in items if item.skipped is not None]
    return ReplayPlan(items=items)


def with_payload(plan: ReplayPlan, *, payload: Any) -> ReplayPlan:
    """``plan``, which must send exactly one envelope, with that envelope's payload replaced by ``payload``.

    Why: the fix for a failure is sometimes in the input (a field a handler cannot read), not in the code; the
    operator edits the payload and replays. Only one envelope at a time, so an edit can never be copied onto
    envelopes the operator did not look at; everything else (new id, ``replay_of``, the marker) is as for any replay.
    """
    sendable = plan.to_send
    if len(plan.items) != 1 or len(sendable) != 1 or sendable[0].envelope is None:
        reasons = "; ".join(f"{i.original_id}: {i.skipped}" for i in plan.skipped)
        raise OpsError(
            f"a replacement payload replays exactly one envelope; this selection sends {len(sendable)}"
            + (f" ({reasons})" if reasons else "")
        )
    item = sendable[0]
    envelope = item.envelope.model_copy(update={"payload": payload}) if item.envelope is not None else None
    return ReplayPlan(items=[dataclasses.replace(item, envelope=envelope)])


def _record_item(
    record: FinalRecord, *, to: str | None, replayed: bool, queues: MeshQueues, known: dict[str, str | None]
) -> ReplayItem:
    kind = error_type(record)
    item = functools.partial(ReplayItem, original_id=record.id, source=record.key, error_type=kind)
    if replayed:
        return item(to=None, skipped=f"already replayed as {replay_id(record.id)}")
    if "route" not in record.envelope:
        return item(to=None, skipped="the body was no envelope (kept raw); nothing to replay")
    try:
        envelope = Envelope.model_validate(record.envelope)
    except ValidationError as exc:
        return item(to=None, skipped=f"not a valid envelope ({exc.errors()[0]['msg']})")
    payload = envelope.payload
    if isinstance(payload, dict) and payload.get("truncated") is True and set(payload) == {"truncated", "bytes"}:
        return item(to=None, skipped="its payload was dropped to fit the error record; cannot replay")
    target = to or failed_actor(record) or envelope.route.curr
    problem = _target_problem(queues, target, known)
    if problem is not None:
        return item(to=target, skipped=problem)
    return item(to=target, envelope=replay_envelope(envelope, to=target))


def _target_problem(queues: MeshQueues, target: str, known: dict[str, str | None]) -> str | None:
    """Why ``target`` cannot take a replay (None when it can), asked once per actor."""
    if target not in known:
        try:
            check_target(queues, target)
            known[target] = None
        except OpsError as exc:
            known[target] = str(exc)
        except Exception as exc:  # AWS could not say (MeshQueues raises OpsError for a queue that does not exist)
            known[target] = str(exc)
    return known[target]


def plan_dlq(
    *,
    s3: Any,
    bucket: str,
    queues: MeshQueues,
    actor: str,
    ids: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
    to: str | None = None,
    hide_s: int = 300,
) -> ReplayPlan:
    """A plan replaying the messages of ``actor``'s DLQ (those of ``ids`` only, when given; sent to the actor's
    queue within ``[since, until]``), into ``to`` or ``actor``. The messages are received and stay hidden for
    ``hide_s`` seconds: call :func:`send` or :func:`release` with the plan. Messages left out by the filters are
    released at once."""
    target = check_target(queues, to or actor)
    received = mesh_queues.receive_dlq(queues, actor=actor, hide_s=hide_s)
    chosen: list[mesh_queues.DlqMessage] = []
    others: list[mesh_queues.DlqMessage] = []
    for message in received:
        wanted = (not ids or message.envelope_id in ids) and within(message.sent_at, since=since, until=until)
        (chosen if wanted else others).append(message)
    mesh_queues.release(queues, others)
    replayed = replayed_ids(s3=s3, bucket=bucket) if chosen else set()
    return ReplayPlan(items=[_dlq_item(m, to=target, replayed=replayed) for m in chosen])


def _dlq_item(message: mesh_queues.DlqMessage, *, to: str, replayed: set[str]) -> ReplayItem:
    from asya_runtime.sidecar import claimcheck  # the sidecar's aiobotocore: only when DLQ messages are replayed

    source = f"dlq:{message.actor}"
    original = message.envelope_id or message.message_id
    item = functools.partial(ReplayItem, original_id=original, source=source, error_type=None, dlq_message=message)
    if original in replayed:
        return item(to=None, skipped=f"already replayed as {replay_id(original)}; left in the DLQ")
    try:
        if claimcheck.reference_in(message.body) is not None:
            return item(to=to, skipped="a claim-check reference; move it with `asya dlq redrive`")
        envelope = Envelope.parse(message.body)
    except EnvelopeError as exc:
        return item(to=None, skipped=f"not an envelope ({exc.detail}); left in the DLQ")
    return item(to=to, envelope=replay_envelope(envelope, to=to))


def release(plan: ReplayPlan, *, queues: MeshQueues) -> None:
    """Give back the DLQ messages a plan holds (a dry run, or a plan not sent)."""
    mesh_queues.release(queues, plan.held)


def send(plan: ReplayPlan, *, s3: Any, bucket: str, queues: MeshQueues) -> ReplayResult:
    """Send every item of ``plan`` that is not skipped, ten per request to each target queue; record each one the
    broker accepted with its marker, and delete accepted DLQ messages. Skipped DLQ messages are released.
    """
    sent: list[ReplayItem] = []
    refused: list[tuple[ReplayItem, str]] = []
    by_target: dict[str, list[ReplayItem]] = {}
    for item in plan.to_send:
        by_target.setdefault(str(item.to), []).append(item)
    for target, items in by_target.items():
        url = queues.actor_url(target)
        for start in range(0, len(items), _SEND_BATCH):
            batch = items[start : start + _SEND_BATCH]
            entries = [{"Id": str(i), "MessageBody": _body(item)} for i, item in enumerate(batch)]
            answer = queues.sqs.send_message_batch(QueueUrl=url, Entries=entries)
            for failure in answer.get("Failed", []):
                refused.append((batch[int(failure["Id"])], str(failure.get("Message") or failure.get("Code"))))
            sent += [batch[int(ok["Id"])] for ok in answer.get("Successful", [])]
    now = time.time()
    for item in sent:
        marker = Marker(original_id=item.original_id, replay_id=item.replay_id, to=str(item.to), source=item.source,
                        at=round(now, 3))
        s3.put_object(Bucket=bucket, Key=marker_key(item.original_id), Body=json.dumps(marker.to_json()).encode(),
                      ContentType="application/json")
    mesh_queues.delete(queues, [item.dlq_message for item in sent if item.dlq_message is not None])
    done = {id(item) for item in sent}
    mesh_queues.release(queues, [item.dlq_message for item in plan.items
                                 if item.dlq_message is not None and id(item) not in done])
    return ReplayResult(sent=sent, refused=refused)


def _body(item: ReplayItem) -> str:
    if item.envelope is None:  # plan.to_send holds only items with an envelope
        raise ValueError(f"replay of {item.original_id} has no envelope")
    return item.envelope.to_json()
