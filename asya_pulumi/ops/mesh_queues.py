"""The mesh's queues as the CLI and the web UI see them: resolve names to URLs, send envelopes, read depths.

Names come from :mod:`asya_runtime.naming` (``asya-{namespace}_{actor}`` and ``..._dlq``), the same functions the
components and the sidecar use, so the CLI always addresses the queues the mesh actually has.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from asya_pulumi.ops.errors import OpsError
from asya_runtime.envelope import Envelope
from asya_runtime.naming import actor_of_queue, dlq_name, mesh_prefix, queue_name

_BATCH = 10  # SendMessageBatch's limit
_DEPTH_ATTRIBUTES = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
]


@dataclass(frozen=True)
class QueueDepth:
    """Messages waiting (visible), being processed (in flight) and waiting out a retry backoff (delayed)."""

    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


class MeshQueues:
    """The queues of one mesh namespace, through one SQS client."""

    def __init__(self, *, sqs: Any, namespace: str) -> None:
        self.sqs = sqs
        self.namespace = namespace
        self._urls: dict[str, str] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="asya-queues")  # reused by every poll

    def url(self, name: str) -> str:
        """The URL of queue ``name``; a missing queue is an :class:`OpsError` (wrong namespace or actor)."""
        if name not in self._urls:
            try:
                self._urls[name] = self.sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as exc:
                if "NonExistent" not in exc.response.get("Error", {}).get("Code", ""):
                    raise
                raise OpsError(
                    f"queue {name!r} does not exist; check the actor name and --namespace {self.namespace!r}"
                ) from None
        return self._urls[name]

    def actor_url(self, actor: str) -> str:
        return self.url(queue_name(namespace=self.namespace, actor=actor))

    def dlq_url(self, actor: str) -> str:
        return self.url(dlq_name(namespace=self.namespace, actor=actor))

    def actors(self) -> list[str]:
        """Every actor (sinks included) that has a queue in this namespace, found by listing the queue prefix."""
        prefix = mesh_prefix(namespace=self.namespace)
        names: list[str] = []
        for page in self.sqs.get_paginator("list_queues").paginate(QueueNamePrefix=prefix):
            names += [url.rsplit("/", 1)[-1] for url in page.get("QueueUrls", [])]
        actors = (actor_of_queue(namespace=self.namespace, name=n) for n in names)
        return sorted(a for a in actors if a is not None)

    def depth(self, url: str) -> QueueDepth:
        attrs = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=_DEPTH_ATTRIBUTES)["Attributes"]
        return QueueDepth(
            visible=int(attrs.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
        )

    def depths(self, urls: Sequence[str]) -> list[QueueDepth]:
        """Depths of several queues, read concurrently (one status tick of a local mesh reads ~10 queues)."""
        return list(self._pool.map(self.depth, urls))

    def send(self, envelopes: Iterable[Envelope]) -> int:
        """Send every envelope to its ``route.curr`` queue in batches of 10; returns how many were sent.

        A batch entry SQS refuses raises RuntimeError naming the envelope and the reason: an input that was not
        sent must never be waited for.
        """
        batches: list[tuple[str, list[Envelope]]] = []
        by_queue: dict[str, list[Envelope]] = {}
        for envelope in envelopes:
            by_queue.setdefault(self.actor_url(envelope.route.curr), []).append(envelope)
        for url, group in by_queue.items():
            batches += [(url, group[i : i + _BATCH]) for i in range(0, len(group), _BATCH)]
        return sum(self._pool.map(lambda batch: self._send_batch(*batch), batches))

    def _send_batch(self, url: str, group: list[Envelope]) -> int:
        entries = [{"Id": str(i), "MessageBody": e.to_json()} for i, e in enumerate(group)]
        failed = self.sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])
        if failed:
            first = failed[0]
            raise RuntimeError(f"SQS refused envelope {group[int(first['Id'])].id}: {first.get('Message', first)}")
        return len(group)
