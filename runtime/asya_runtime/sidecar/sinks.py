"""Sink mode (``ASYA_MODE=success-sink|error-sink``): persist each final envelope to the mesh's result bucket.

The key is ``{status}/{id}.json`` with status ``succeeded`` or ``failed``: a redelivered envelope overwrites its
own record instead of adding one. The message is deleted only after PutObject succeeded. A transient S3 failure
(5xx, throttling, a reset connection) is retried in-process with the broker client's backoff for up to half the
queue's visibility timeout (the heartbeat keeps the message meanwhile), so a short S3 hiccup costs no receive and
never walks a final record towards the sink's DLQ. A write that still failed hands the message back to SQS with a
short, growing visibility backoff, so it is retried until the bucket takes it (and, if it never does, SQS's redrive
policy moves it to the sink's DLQ) — a failure is never swallowed.
"""

from __future__ import annotations

import json

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import EnvelopeError, id_problem
from asya_runtime.naming import SINK_RECORD_PREFIXES, malformed_record_key
from asya_runtime.sidecar import claimcheck, logs
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.batching import DeleteBatcher
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics

#: Share of the queue's visibility timeout a write may spend retrying transient S3 errors before handing back.
S3_RETRY_SHARE_OF_VISIBILITY = 0.5


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


class SinkProcessor:
    def __init__(
        self,
        *,
        config: SidecarConfig,
        broker: BrokerClient,
        inflight: InFlight,
        deletes: DeleteBatcher,
        metrics: Metrics,
    ) -> None:
        if not config.result_bucket:
            raise ValueError(f"ASYA_MODE={config.mode} needs ASYA_RESULT_BUCKET, the bucket final envelopes go to")
        self.bucket = config.result_bucket
        self.config = config
        self.broker = broker
        self.inflight = inflight
        self.deletes = deletes
        self.metrics = metrics
        self.claims = claimcheck.ClaimCheck(
            broker=broker, bucket=self.bucket, threshold=0, visibility_s=inflight.visibility_s
        )

    async def process(self, message: Received) -> None:
        try:
            key, content = await self._record(message)
        except Exception as exc:
            self.metrics.sink_write_failures.inc()
            logs.error("offloaded envelope not read; the message stays queued", error=f"{type(exc).__name__}: {exc}")
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
        self.metrics.succeeded.inc()
        logs.event("persisted", key=key, bucket=self.bucket)
        await self.deletes.delete(queue_url=self.inflight.queue_url, receipt_handle=message.receipt_handle)
        self.inflight.discard(message)
        await self.claims.consumed(message.body)

    async def _record(self, message: Received) -> tuple[str, bytes]:
        """What to store for ``message``: a claim-check reference is resolved first, so the record holds the whole
        envelope (or, if its object is gone, a record saying so under ``failed/``)."""
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
                return claimcheck.missing_sink_record(
                    reference=reference, message_id=message.message_id, mode=self.config.mode, detail=str(exc)
                )
            except EnvelopeError as exc:  # a reference this sink must not follow: kept raw, as a malformed body
                logs.warning("untrusted claim-check reference", message_id=message.message_id, detail=exc.detail)
                body = message.body
        return record_key(mode=self.config.mode, body=body, message_id=message.message_id)
