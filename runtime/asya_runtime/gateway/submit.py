"""Submitting an envelope: store ``pending``, send it to the first actor's queue, mark it sent — in that order.

The order is what keeps a submission from being lost or run twice:

* the record is written first (conditional on the id being new), so an envelope that reaches a queue always has a
  record, and a caller that got ``201`` can always read one;
* only the holder of the record's send lease sends (:meth:`StatusStore.claim_send`, one conditional write): the
  request that created the record holds it; a request with the same ``Idempotency-Key`` — on this replica or any
  other, at the same instant or later — that finds the record unsent takes the lease only when nobody holds an
  unexpired one, and otherwise waits until the holder marked it sent (then answers the same id without sending),
  so the pipeline runs once however many replicas get the key at once. Requests on one replica also take turns (a
  lock per id), which saves them the store's reads;
* a crash or a failed send between the two leaves the record ``pending`` with ``sent`` false: a failed send gives
  its lease back at once, a crashed replica's lease runs out after :data:`SEND_LEASE_S`; then a retry with the same
  key derives the same id, finds that record, takes the lease and sends, so the submission is never lost. One that
  finds ``sent`` true returns the id without sending;
* a submission without a key whose send fails is ended ``failed`` (reason ``not sent``), so no record waits for an
  envelope that never left, and the caller gets 503;
* a send that succeeded but could not be marked sent still answers the id (the envelope is on its way and has its
  record); only a retry with the same key after its lease ran out sends it a second time (SQS and DynamoDB share no
  transaction: this window is what at-least-once delivery leaves, and the sidecars' idempotent status writes
  tolerate it).

The MCP tools and the A2A handler submit through the same :class:`Submitter`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from asya_runtime.envelope import Envelope, new_envelope
from asya_runtime.gateway.errors import ApiError
from asya_runtime.gateway.requests import Submission, submission_id
from asya_runtime.naming import queue_name
from asya_runtime.status import StatusStore
from asya_runtime.status.schema import TRACKED_HEADER, TRACKED_VALUE, iso_timestamp
from asya_runtime.status.store import SEND_LEASE_S

__all__ = ["SEND_LEASE_S", "Submitter", "build_envelope"]

log = logging.getLogger("asya.gateway")

#: How often a request that found another one holding the send lease reads whether it was sent.
LEASE_POLL_S = 0.05

#: The gateway's SQS client (``app.open_backends``): a send that cannot reach the broker fails within ~40 s (3 s to
#: connect, 10 s to answer, 3 attempts) and is answered 503, instead of holding the request for botocore's 60 s ones.
SQS_CLIENT_CONFIG: dict[str, Any] = {
    "connect_timeout": 3, "read_timeout": 10, "retries": {"total_max_attempts": 3, "mode": "standard"},
}


def build_envelope(*, submission: Submission, envelope_id: str, now: datetime) -> Envelope:
    """The envelope of ``submission``: its route, payload and the caller's headers with ``x-asya-tracked`` set,
    the deadline ``timeout`` seconds after ``now``."""
    headers = {**submission.headers, TRACKED_HEADER: TRACKED_VALUE}
    envelope = new_envelope(
        route=submission.route, payload=submission.payload, headers=headers, envelope_id=envelope_id
    )
    if submission.timeout_s is not None:
        deadline = now + timedelta(seconds=submission.timeout_s)
        envelope = envelope.model_copy(update={"status": envelope.status.model_copy(update={"deadline_at": deadline})})
    return envelope


class Submitter:
    """Submits into one mesh: its status store and its actors' queues (``asya-{namespace}_{actor}``)."""

    def __init__(
        self, *, namespace: str, store: StatusStore, sqs: Any, max_message_bytes: int,
        send_lease_s: int = SEND_LEASE_S, lease_poll_s: float = LEASE_POLL_S,
    ) -> None:
        self._namespace = namespace
        self._send_lease_s = send_lease_s
        self._lease_poll_s = lease_poll_s
        self._store = store
        self._sqs = sqs
        self._max_message_bytes = max_message_bytes
        self._queue_urls: dict[str, str] = {}
        #: Per idempotent id: its lock and how many requests hold or wait for it.
        self._locks: dict[str, tuple[asyncio.Lock, int]] = {}

    async def submit(self, submission: Submission) -> str:
        """Store, send and mark sent; the envelope's id. Idempotent for a submission with a key."""
        envelope_id = submission_id(namespace=self._namespace, idempotency_key=submission.idempotency_key)
        if submission.idempotency_key is None:
            return await self._submit(submission, envelope_id=envelope_id)
        lock, waiting = self._locks.get(envelope_id, (asyncio.Lock(), 0))
        self._locks[envelope_id] = (lock, waiting + 1)
        try:
            async with lock:
                return await self._submit(submission, envelope_id=envelope_id)
        finally:
            lock, waiting = self._locks[envelope_id]
            if waiting == 1:
                del self._locks[envelope_id]  # the last one out: no lock per key outlives its requests
            else:
                self._locks[envelope_id] = (lock, waiting - 1)

    async def _submit(self, submission: Submission, *, envelope_id: str) -> str:
        now = datetime.now(UTC)
        envelope = build_envelope(submission=submission, envelope_id=envelope_id, now=now)
        body = envelope.to_json()
        if len(body.encode()) > self._max_message_bytes:
            raise ApiError(413, f"the envelope is {len(body.encode())} bytes, over the queue's "
                                f"{self._max_message_bytes}; send a smaller payload (or a reference to it)")
        deadline_at = iso_timestamp(envelope.status.deadline_at) if envelope.status.deadline_at else None
        claim = uuid.uuid4().hex
        keyed = submission.idempotency_key is not None  # only a key's id can be submitted twice: it needs a lease
        created = await self._store.create_pending(
            id=envelope_id, actor=submission.route[0], route=submission.route_name, deadline_at=deadline_at,
            idempotency_key=submission.idempotency_key, send_claim=claim if keyed else None,
            send_lease_s=self._send_lease_s,
        )
        if not created and not await self._claimed(envelope_id, claim=claim):
            return envelope_id  # sent (or ended) by the request that holds the lease: the pipeline runs once
        try:
            await self._send(envelope_id=envelope_id, actor=submission.route[0], body=body, ends_on_failure=not keyed)
        except ApiError:
            if keyed:
                with contextlib.suppress(Exception):  # else it runs out: a retry waits for it, then sends
                    await self._store.release_send(id=envelope_id, claim=claim)
            raise
        try:
            await self._store.mark_sent(id=envelope_id)
        except Exception as exc:  # the envelope is on its way and has its record: the caller still gets its id
            log.warning("sent %s but could not mark it sent: %s", envelope_id, exc)
        return envelope_id

    async def _claimed(self, envelope_id: str, *, claim: str) -> bool:
        """For a submission whose record existed: True once this request holds the send lease (it sends), False
        when the envelope was sent or ended meanwhile (it does not). While another request holds the lease this
        waits — for the holder to mark it sent, or for its lease to run out (a crashed holder)."""
        give_up = time.monotonic() + self._send_lease_s + 10 * self._lease_poll_s + 5
        while True:
            existing = await self._store.get(id=envelope_id)
            if existing is None:
                raise ApiError(503, f"envelope {envelope_id!r} vanished while it was submitted; retry with the same "
                                    "Idempotency-Key")
            if existing.sent or existing.terminal:
                return False
            if await self._store.claim_send(id=envelope_id, claim=claim, lease_s=self._send_lease_s):
                return True
            if time.monotonic() >= give_up:
                raise ApiError(503, f"envelope {envelope_id!r} is being sent by another request that does not "
                                    "finish; retry with the same Idempotency-Key")
            await asyncio.sleep(self._lease_poll_s)

    async def _send(self, *, envelope_id: str, actor: str, body: str, ends_on_failure: bool) -> None:
        try:
            url = await self._queue_url(actor)
            await self._sqs.send_message(QueueUrl=url, MessageBody=body)
        except Exception as exc:  # the broker's every failure: the record says so, the caller gets 503
            log.warning("send of %s to %s failed: %s", envelope_id, actor, exc)
            if ends_on_failure:
                with contextlib.suppress(Exception):  # the store failing too leaves the record pending: still 503
                    await self._store.finish(
                        id=envelope_id, status="failed",
                        error={"type": type(exc).__name__, "message": str(exc)[:500], "reason": "not sent"},
                    )
            retry = "retry with the same Idempotency-Key" if not ends_on_failure else "submit it again"
            raise ApiError(503, f"the envelope could not be sent to actor {actor!r}'s queue ({type(exc).__name__}); "
                                f"{retry}") from None

    async def _queue_url(self, actor: str) -> str:
        url = self._queue_urls.get(actor)
        if url is None:
            name = queue_name(namespace=self._namespace, actor=actor)
            url = (await self._sqs.get_queue_url(QueueName=name))["QueueUrl"]
            self._queue_urls[actor] = url
        return url
