"""Messages received and not yet deleted, and the visibility heartbeat that keeps them ours.

Every ``visibility/3`` seconds one ChangeMessageVisibilityBatch (per 10 messages) resets their visibility to the
queue's full VisibilityTimeout, so a handler may run far longer than the queue's window without SQS delivering
the message a second time. A message leaves the set when it is deleted, released (visibility 0, e.g. at
shutdown) or handed back for a later retry (visibility = a short backoff); one the handler never saw is requeued
at shutdown as a fresh copy instead, so that it does not lose an attempt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asya_runtime.sidecar import logs
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.batching import SQS_BATCH_MAX

#: Longest a message handed back for a later try stays invisible (the backoff grows with its receive count).
RETRY_LATER_MAX_S = 60


@dataclass
class Received:
    """One SQS message as the sidecar holds it."""

    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    #: When SQS first delivered this message (epoch seconds; None if the broker did not say): a redelivered first
    #: attempt's start, which ``maxDuration`` counts from.
    first_received_s: float | None = None
    #: SQS's SenderId: the sender's IAM identity (for a role, ``{role id}:{session}``); None if not asked for.
    sender_id: str | None = None

    @classmethod
    def from_sqs(cls, message: dict[str, Any]) -> Received:
        attributes = message.get("Attributes", {})
        first_ms = attributes.get("ApproximateFirstReceiveTimestamp")
        return cls(
            message_id=message["MessageId"],
            receipt_handle=message["ReceiptHandle"],
            body=message.get("Body", ""),
            receive_count=int(attributes.get("ApproximateReceiveCount", "1")),
            first_received_s=int(first_ms) / 1000 if first_ms else None,
            sender_id=attributes.get("SenderId"),
        )


class InFlight:
    """The set of held messages of one queue, with the heartbeat over them."""

    def __init__(self, *, broker: BrokerClient, queue_url: str, visibility_s: int) -> None:
        self.broker = broker
        self.queue_url = queue_url
        self.visibility_s = visibility_s
        self._held: dict[str, Received] = {}
        #: Called whenever a message stops being held: the receive loop, waiting while it holds too many, checks
        #: whether it may receive again.
        self.on_leave: Callable[[], None] = _nothing

    def __len__(self) -> int:
        return len(self._held)

    def held(self) -> list[Received]:
        return list(self._held.values())

    def add(self, message: Received) -> None:
        self._held[message.receipt_handle] = message

    def discard(self, message: Received) -> None:
        self._held.pop(message.receipt_handle, None)
        self.on_leave()

    async def heartbeat(self) -> None:
        """Run forever: extend the visibility of every held message every third of the queue's window.

        A tick that fails (transient errors are already retried by the broker client; this is anything else) is
        logged and counted in ``asya_heartbeat_failures``, and the next tick tries again: a heartbeat that died
        silently would let every long call be redelivered to another replica while it still runs.
        """
        interval = max(self.visibility_s / 3, 0.2)
        while True:
            await asyncio.sleep(interval)
            try:
                await self._set_visibility(list(self._held.values()), self.visibility_s, why="heartbeat")
            except Exception as exc:
                self.broker.metrics.heartbeat_failures.inc()
                logs.error("visibility heartbeat failed; trying again next tick", error=f"{type(exc).__name__}: {exc}")

    async def release(self, messages: list[Received]) -> None:
        """Make ``messages`` visible again now (they were not processed; another replica may take them)."""
        for message in messages:
            self.discard(message)
        await self._set_visibility(messages, 0, why="release")

    async def requeue(self, messages: list[Received]) -> None:
        """Hand back messages the handler never saw as fresh copies, so that handing them back costs no attempt.

        A release (visibility 0) raises the next delivery's ApproximateReceiveCount, which counts as an attempt:
        with maxAttempts 1, a message released at scale-in would be error-ended without ever running. A copy sent
        anew (same body, so the same ``status.attempt``) starts at receive count 1; the original is deleted only
        after its copy was accepted. One that cannot be copied is released instead (an attempt, never a loss).
        """
        for message in messages:
            self.discard(message)
        sent = await asyncio.gather(
            *(self.broker.call("send_message", QueueUrl=self.queue_url, MessageBody=m.body) for m in messages),
            return_exceptions=True,
        )
        copied = [m for m, result in zip(messages, sent, strict=True) if not isinstance(result, BaseException)]
        not_copied = [m for m in messages if m not in copied]
        if not_copied:
            logs.warning("requeue failed; releasing instead", count=len(not_copied))
            await self._set_visibility(not_copied, 0, why="release")
        for start in range(0, len(copied), SQS_BATCH_MAX):
            chunk = copied[start : start + SQS_BATCH_MAX]
            result = await self.broker.call(
                "delete_message_batch",
                QueueUrl=self.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m.receipt_handle} for i, m in enumerate(chunk)],
            )
            for failed in result.get("Failed", []):
                # The copy is queued and the original will reappear: one extra run, made harmless by the ids.
                message = chunk[int(failed["Id"])]
                logs.warning("requeued original not deleted", message_id=message.message_id, code=failed.get("Code"))
        if copied:
            logs.event("requeued unstarted messages", count=len(copied))

    async def retry_later(self, message: Received) -> None:
        """Stop holding ``message`` and let it reappear after a backoff that grows with its receive count."""
        self.discard(message)
        after = min(2 ** (message.receive_count - 1), RETRY_LATER_MAX_S)
        await self._set_visibility([message], after, why="retry later")

    async def _set_visibility(self, messages: list[Received], seconds: int, *, why: str) -> None:
        for start in range(0, len(messages), SQS_BATCH_MAX):
            chunk = messages[start : start + SQS_BATCH_MAX]
            result = await self.broker.call(
                "change_message_visibility_batch",
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": seconds}
                    for i, m in enumerate(chunk)
                ],
            )
            for failed in result.get("Failed", []):
                # Usually a message deleted meanwhile; otherwise it may be redelivered, which ids make harmless.
                message = chunk[int(failed["Id"])]
                if message.receipt_handle in self._held:
                    logs.warning(
                        "visibility change failed", why=why, message_id=message.message_id, code=failed.get("Code")
                    )


def _nothing() -> None:
    pass
