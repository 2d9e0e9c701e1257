"""Looking into a mesh's queues without taking anything away: depths, and the messages a DLQ holds.

SQS has no "peek": the only way to see a message is to receive it, which counts as a delivery. On an actor's queue
that would cost the envelope an attempt (the sidecar counts ``ApproximateReceiveCount``), so actor queues are only
ever counted, never read. A DLQ is different: nothing consumes it, and its receive count means nothing to anyone,
so :func:`receive_dlq` receives its messages (hidden for a while so one pass sees each once) and the caller either
deletes them (a replay sent them back) or :func:`release` makes them visible again at once.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from asya_pulumi.cli.mesh_queues import MeshQueues, QueueDepth
from asya_runtime.naming import SINKS

#: How long a DLQ message received for a look stays hidden: one pass over the DLQ must not see it twice.
LOOK_VISIBILITY_S = 30
#: Most DLQ messages one pass receives.
DLQ_SCAN_MAX = 1000


@dataclass(frozen=True)
class Depth:
    """One actor's queue (sinks included) and its DLQ, counted."""

    actor: str
    waiting: int
    in_flight: int
    delayed: int
    dead_lettered: int

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.in_flight or self.delayed)

    def to_json(self) -> dict[str, Any]:
        return {
            "actor": self.actor,
            "waiting": self.waiting,
            "in_flight": self.in_flight,
            "delayed": self.delayed,
            "dlq": self.dead_lettered,
        }


@dataclass(frozen=True)
class DlqMessage:
    """A message received from a DLQ (hidden until deleted or released)."""

    actor: str
    message_id: str
    receipt_handle: str
    body: str
    #: When it was first sent to the actor's queue (epoch seconds), if the server said.
    sent_at: float | None

    @property
    def envelope_id(self) -> str | None:
        """The id of the envelope in the body, if the body is one (a claim-check reference has one too)."""
        try:
            data = json.loads(self.body)
        except ValueError:
            return None
        value = data.get("id") if isinstance(data, dict) else None
        return value if isinstance(value, str) else None


def depths(queues: MeshQueues) -> list[Depth]:
    """Every actor of the mesh (sinks included) with its queue's and DLQ's counts, read concurrently."""
    actors = queues.actors()
    main = queues.depths([queues.actor_url(a) for a in actors])
    dead = queues.depths([queues.dlq_url(a) for a in actors])
    return [
        _depth(actor, depth, dlq.visible) for actor, depth, dlq in zip(actors, main, dead, strict=True)
    ]


def _depth(actor: str, depth: QueueDepth, dead: int) -> Depth:
    return Depth(actor=actor, waiting=depth.visible, in_flight=depth.in_flight, delayed=depth.delayed,
                 dead_lettered=dead)


def receive_dlq(
    queues: MeshQueues,
    *,
    actor: str,
    hide_s: int = LOOK_VISIBILITY_S,
    max_messages: int = DLQ_SCAN_MAX,
) -> list[DlqMessage]:
    """Receive up to ``max_messages`` from ``actor``'s DLQ, each hidden for ``hide_s`` seconds; stops when a
    receive comes back empty. The caller deletes or :func:`release`\\ s them."""
    url = queues.dlq_url(actor)
    found: list[DlqMessage] = []
    while len(found) < max_messages:
        batch = queues.sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(10, max_messages - len(found)),
            WaitTimeSeconds=0,
            VisibilityTimeout=hide_s,
            AttributeNames=["SentTimestamp"],
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            sent = message.get("Attributes", {}).get("SentTimestamp")
            found.append(
                DlqMessage(
                    actor=actor,
                    message_id=message["MessageId"],
                    receipt_handle=message["ReceiptHandle"],
                    body=message.get("Body", ""),
                    sent_at=int(sent) / 1000 if sent else None,
                )
            )
    return found


def release(queues: MeshQueues, messages: list[DlqMessage]) -> None:
    """Make received DLQ messages visible again at once (visibility 0), ten per request."""
    by_actor: dict[str, list[DlqMessage]] = {}
    for message in messages:
        by_actor.setdefault(message.actor, []).append(message)
    for actor, group in by_actor.items():
        url = queues.dlq_url(actor)
        for start in range(0, len(group), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(group[start : start + 10])
            ]
            queues.sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def delete(queues: MeshQueues, messages: list[DlqMessage]) -> None:
    """Delete received DLQ messages, ten per request."""
    by_actor: dict[str, list[DlqMessage]] = {}
    for message in messages:
        by_actor.setdefault(message.actor, []).append(message)
    for actor, group in by_actor.items():
        url = queues.dlq_url(actor)
        for start in range(0, len(group), 10):
            chunk = group[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)]
            queues.sqs.delete_message_batch(QueueUrl=url, Entries=entries)


def find_in_dlqs(queues: MeshQueues, *, envelope_id: str, actors: list[str]) -> DlqMessage | None:
    """The DLQ message holding envelope ``envelope_id``, looking through the DLQs of ``actors`` (sinks skipped
    unless named); every message looked at is released again before returning."""
    for actor in actors:
        seen = receive_dlq(queues, actor=actor)
        try:
            for message in seen:
                if message.envelope_id == envelope_id:
                    return message
        finally:
            release(queues, seen)
    return None


def actors_with_dead_letters(depth_list: list[Depth], *, include_sinks: bool = True) -> list[str]:
    return [d.actor for d in depth_list if d.dead_lettered and (include_sinks or d.actor not in SINKS)]
