"""Sink mode (``ASYA_MODE=success-sink|error-sink``): persist each final envelope to the mesh's result bucket.

The key is ``{status}/{id}.json`` with status ``succeeded`` or ``failed``: a redelivered envelope overwrites its
own record instead of adding one. The message is deleted only after PutObject succeeded. A transient S3 failure
(5xx, throttling, a reset connection) is retried in-process with the broker client's backoff for up to half the
queue's visibility timeout (the heartbeat keeps the message meanwhile), so a short S3 hiccup costs no receive and
never walks a final record towards the sink's DLQ. A write that still failed hands the message back to SQS with a
short, growing visibility backoff, so it is retried until the bucket takes it (and, if it never does, SQS's redrive
policy moves it to the sink's DLQ) — a failure is never swallowed. With the status store on (``ASYA_STATUS_TABLE``)
a tracked envelope's terminal state is written after its record, under the same rule: the message is deleted only
once both were written (``sidecar/status_reports.py``).

Every actor of a mesh may send to its sinks (any actor may end a route), so IAM alone cannot stop one actor from
writing, or overwriting, the record of an envelope it never held. With ``ASYA_VERIFY_SENDERS`` (deployed sinks) a
record is kept at its id only if SQS's ``SenderId`` — which the sender cannot choose: it is the IAM role its request
was signed with — is the role of the actor the envelope names as its last one (``route.curr``; every record the
runtime writes names its sender there). Anything else is kept under ``failed/`` by its SQS message id, as a
``forged record`` saying who sent it and whom it claimed, where it can overwrite nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from botocore.exceptions import ClientError

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import EnvelopeError, id_problem
from asya_runtime.naming import SINK_RECORD_PREFIXES, check_actor_name, malformed_record_key, role_name
from asya_runtime.sidecar import claimcheck, logs
from asya_runtime.sidecar.aws import BrokerClient, error_code
from asya_runtime.sidecar.batching import DeleteBatcher
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.status_reports import StatusReports

#: Share of the queue's visibility timeout a write may spend retrying transient S3 errors before handing back.
S3_RETRY_SHARE_OF_VISIBILITY = 0.5
#: ``reason`` of a record kept by message id because its sender is not the actor it names (:class:`SenderCheck`).
FORGED_RECORD = "forged record"


def record_key(*, mode: str, body: str, message_id: str) -> tuple[str, bytes]:
    """``(key, content)`` for one sink message; a body that is no envelope is kept raw under ``failed/``.

    No envelope: not JSON, JSON nested too deeply for the parser (``RecursionError``), not an object, or an id
    that cannot be a key segment (:func:`asya_runtime.envelope.id_problem`: empty, with ``/``, over
    ``MAX_ID_BYTES``). Its record's key derives from the SQS MessageId, so a redelivery overwrites it.
    """
    try:
        data = json.loads(body)
        envelope_id = data["id"]
        problem = id_problem(envelope_id)
    except RecursionError:
        problem = "body nests too deeply for the JSON parser"
    except (ValueError, TypeError, KeyError) as exc:
        problem = f"no envelope id ({type(exc).__name__}: {exc})"
    if problem is not None:
        key = malformed_record_key(message_id)
        content = {"raw_body": body, "reason": "malformed envelope", "detail": problem, "sink": mode}
        return key, json.dumps(content).encode()
    return f"{SINK_RECORD_PREFIXES[mode]}/{envelope_id}.json", body.encode()


def claimed_sender(body: str) -> str | None:
    """The actor an envelope record names as its sender (``route.curr``), or None when it names none."""
    try:
        route = json.loads(body).get("route")
        actor = route.get("curr") if isinstance(route, dict) else None
    except (ValueError, AttributeError, RecursionError):
        return None
    return actor if isinstance(actor, str) else None


class SenderCheck:
    """Whether a sink message was sent by the actor it names: its ``SenderId`` against that actor's IAM role.

    A role's id (``AROA…``) is looked up once per actor with ``iam:GetRole`` — the sink's policy allows it on its
    own mesh's roles only — and kept for the process's life: an id changes only when the role is replaced, and a
    replaced role's pods (and this sink) are rolled with it.
    """

    def __init__(self, *, broker: BrokerClient, config: SidecarConfig, within_s: float) -> None:
        self.broker = broker
        self.config = config
        self.within_s = within_s
        self._role_ids: dict[str, str] = {}

    async def problem(self, *, sender_id: str | None, claimed: str | None) -> str | None:
        """Why the record may not be kept at its id (None when it may). A transient IAM failure raises: the
        message goes back to the queue and is checked again."""
        if sender_id is None:
            return "SQS named no sender (SenderId) for this message"
        if claimed is None:
            return f"sent by {sender_id!r}, but the envelope names no actor as its last (route.curr)"
        try:
            check_actor_name(claimed)
        except ValueError as exc:
            return f"sent by {sender_id!r}, claims {claimed!r}, which is no actor name: {exc}"
        role_id = self._role_ids.get(claimed)
        if role_id is None:
            name = role_name(namespace=self.config.namespace, actor=claimed, region=self.config.region)
            try:
                answer = await self.broker.call_iam("get_role", within_s=self.within_s, RoleName=name)
            except ClientError as exc:
                if error_code(exc) in {"NoSuchEntity", "AccessDenied", "AccessDeniedException"}:
                    return f"sent by {sender_id!r}, claims actor {claimed!r}, whose role {name!r} cannot be read: " \
                        f"{error_code(exc)}"
                raise
            role_id = self._role_ids[claimed] = answer["Role"]["RoleId"]
        if sender_id.split(":", 1)[0] != role_id:
            return f"sent by {sender_id!r}, but it claims actor {claimed!r}, whose role is {role_id!r}"
        return None


class SinkProcessor:
    def __init__(
        self,
        *,
        config: SidecarConfig,
        broker: BrokerClient,
        inflight: InFlight,
        deletes: DeleteBatcher,
        metrics: Metrics,
        status: StatusReports | None = None,
    ) -> None:
        if not config.result_bucket:
            raise ValueError(f"ASYA_MODE={config.mode} needs ASYA_RESULT_BUCKET, the bucket final envelopes go to")
        self.bucket = config.result_bucket
        self.config = config
        self.broker = broker
        self.inflight = inflight
        self.deletes = deletes
        self.metrics = metrics
        #: The status store (ASYA_STATUS_TABLE): a tracked envelope's terminal state, after its record is stored.
        self.status = status
        #: Messages whose writes (record, status) are under way: the delete batcher's "busy".
        self.writing = 0
        self.claims = claimcheck.ClaimCheck(
            broker=broker, bucket=self.bucket, threshold=0, visibility_s=inflight.visibility_s
        )
        self.senders = (
            SenderCheck(broker=broker, config=config, within_s=inflight.visibility_s * S3_RETRY_SHARE_OF_VISIBILITY)
            if config.verify_senders
            else None
        )

    async def process(self, message: Received) -> None:
        """Store the record (and, tracked, its status), then delete the message. While other messages are still
        being written, their deletes will come soon: the delete batcher lingers for them (``writing``), as it does
        for an actor's running calls, so a burst's deletes stay batches of ten however uneven the writes' times."""
        self.writing += 1
        counted = True

        def wrote() -> None:  # once per message: its writes are over; the last one lets pending deletes go at once
            nonlocal counted
            if counted:
                counted = False
                self.writing -= 1
                if self.writing == 0:
                    self.deletes.poke()

        try:
            await self._process(message, wrote)
        finally:
            wrote()

    async def _process(self, message: Received, wrote: Callable[[], None]) -> None:
        try:
            key, content, forged = await self._record(message)
        except Exception as exc:
            self.metrics.sink_write_failures.inc()
            logs.error(
                "record not resolved (offloaded envelope or sender); the message stays queued",
                error=f"{type(exc).__name__}: {exc}",
            )
            await self.inflight.retry_later(message)
            return
        try:
            await self.broker.call_s3(
                "put_object",
                within_s=self.inflight.visibility_s * S3_RETRY_SHARE_OF_VISIBILITY,
                Bucket=self.bucket,
                Key=key,
                Body=content,
                ContentType="application/json",
            )
        except Exception as exc:
            self.metrics.sink_write_failures.inc()
            logs.error(
                "sink write failed; the message stays queued",
                key=key,
                bucket=self.bucket,
                receive_count=message.receive_count,
                error=f"{type(exc).__name__}: {exc}",
            )
            await self.inflight.retry_later(message)
            return
        logs.event("persisted", key=key, bucket=self.bucket)
        if self.status is not None and not forged and key != malformed_record_key(message.message_id):
            try:
                await self.status.record_end(mode=self.config.mode, body=content, key=key, bucket=self.bucket)
            except Exception as exc:
                self.metrics.sink_write_failures.inc()
                logs.error(
                    "status write failed; the message stays queued", key=key, receive_count=message.receive_count,
                    error=f"{type(exc).__name__}: {exc}",
                )
                await self.inflight.retry_later(message)
                return
        self.metrics.succeeded.inc()
        wrote()
        await self.deletes.delete(queue_url=self.inflight.queue_url, receipt_handle=message.receipt_handle)
        self.inflight.discard(message)
        if not forged:  # a forged record's reference may be another envelope's offloaded payload: it stays
            await self.claims.consumed(message.body)

    async def _record(self, message: Received) -> tuple[str, bytes, bool]:
        """``(key, content, forged)`` to store for ``message``: a claim-check reference is resolved first, so the
        record holds the whole envelope (or, if its object is gone, a record saying so under ``failed/``); then the
        sender is checked (:class:`SenderCheck`) if this sink verifies senders."""
        body = message.body
        try:
            reference = claimcheck.reference_in(body)
        except EnvelopeError:
            reference = None  # kept raw as a malformed body by record_key
        if reference is not None:
            try:
                body = await self.claims.fetch(reference)
            except claimcheck.PayloadMissing as exc:
                logs.warning("offloaded envelope missing", key=reference.key, id=reference.id)
                key, content = claimcheck.missing_sink_record(
                    reference=reference, message_id=message.message_id, mode=self.config.mode, detail=str(exc)
                )
                return key, content, False
            except EnvelopeError as exc:  # a reference this sink must not follow: kept raw, as a malformed body
                logs.warning("untrusted claim-check reference", message_id=message.message_id, detail=exc.detail)
                body = message.body
        key, content = record_key(mode=self.config.mode, body=body, message_id=message.message_id)
        if self.senders is None or key == malformed_record_key(message.message_id):
            return key, content, False  # a record by message id overwrites nothing, whoever sent it
        problem = await self.senders.problem(sender_id=message.sender_id, claimed=claimed_sender(body))
        if problem is None:
            return key, content, False
        logs.warning("forged record refused", message_id=message.message_id, detail=problem)
        record = {"raw_body": body, "reason": FORGED_RECORD, "detail": problem, "sink": self.config.mode}
        return malformed_record_key(message.message_id), json.dumps(record).encode(), True
