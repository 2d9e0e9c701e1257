"""A message's outputs: check each, send them all, and only then delete the message — or hand it back.

Every output is checked first: one over the broker's size limit, or addressed to an actor without a queue,
becomes an error-sink record instead (its siblings still go on). Then all are sent through the batcher, in chunks
of :data:`SEND_CHUNK` (a fan-out's serialised children are never all held at once); only when every one was
accepted is the source deleted. If any cannot be sent, the source is not deleted but handed back to SQS with a
backoff, so it is processed again later: the chunks already sent are sent again then, and deterministic ids make the
repeat harmless downstream. (A fan-out over ``ASYA_MAX_FANOUT`` never gets here: it is refused before any output
is made, so none of it is sent; sidecar/handler_client.py.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope
from asya_runtime.naming import ERROR_SINK, queue_name
from asya_runtime.sidecar import fitting, hops, logs, routing
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.batching import SQS_BATCH_MAX, DeleteBatcher, SendBatcher
from asya_runtime.sidecar.claimcheck import ClaimCheck
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.routing import Outgoing
from asya_runtime.sidecar.tracing import HopTracer

#: Outputs checked, serialised and sent at a time: ten full SQS batches. A fan-out's bodies are built chunk by
#: chunk, so the sidecar holds one chunk of serialised children (and their batch entries) at once, not all of them.
SEND_CHUNK = 10 * SQS_BATCH_MAX


class Outputs:
    def __init__(
        self,
        *,
        config: SidecarConfig,
        broker: BrokerClient,
        inflight: InFlight,
        sends: SendBatcher,
        deletes: DeleteBatcher,
        metrics: Metrics,
        tracer: HopTracer | None = None,
    ) -> None:
        self.config = config
        self.broker = broker
        self.inflight = inflight
        self.sends = sends
        self.deletes = deletes
        self.metrics = metrics
        self.tracer = tracer
        self.claims: ClaimCheck | None = None
        if config.offload_threshold and config.result_bucket:
            self.claims = ClaimCheck(
                broker=broker,
                bucket=config.result_bucket,
                threshold=config.offload_threshold,
                visibility_s=inflight.visibility_s,
            )

    async def finish(
        self, message: Received, hops: list[Outgoing], *, delay_seconds: int = 0, source: Envelope | None = None
    ) -> bool:
        """Send every hop, then delete ``message``; on failure hand it back to SQS. True when it was deleted."""
        if self.tracer is not None:  # this hop's span goes into every output's traceparent
            hops, source = self.tracer.stamp(hops, source)
        try:
            checked: list[Outgoing] = []
            for start in range(0, len(hops), SEND_CHUNK):
                checked += await self._send(hops[start : start + SEND_CHUNK], source, delay_seconds=delay_seconds)
        except Exception as exc:
            logs.error(
                "outputs not accepted; the message stays queued for another try",
                message_id=message.message_id,
                error=f"{type(exc).__name__}: {exc}",
            )
            await self.inflight.retry_later(message)
            return False
        if self.tracer is not None:
            self.tracer.sent(checked)
        log_sent = logs.enabled(logging.DEBUG)  # a line per message costs more than the rest of its bookkeeping
        for hop in checked:
            self.metrics.labelled(self.metrics.outputs, hop.to).inc()
            if hop.is_error:
                self.metrics.error_ended.inc()
                error = hop.envelope.status.error
                self.metrics.labelled(self.metrics.failed, error.reason if error else "unknown").inc()
            elif log_sent and hop.to != self.config.actor:
                logs.event(
                    "sent", level=logging.DEBUG, id=hop.envelope.id, to=hop.to, **self._payload_field(hop.envelope)
                )
        if any(not hop.is_error and hop.to != self.config.actor for hop in checked):
            self.metrics.succeeded.inc()
        await self.deletes.delete(queue_url=self.inflight.queue_url, receipt_handle=message.receipt_handle)
        self.inflight.discard(message)
        if self.claims is not None:
            await self.claims.consumed(message.body)
        return True

    async def _send(self, hops: list[Outgoing], source: Envelope | None, *, delay_seconds: int) -> list[Outgoing]:
        """Check, serialise and send one chunk of outputs; the hops as checked, once SQS accepted every one."""
        # One output (the common case) is awaited in place: a gather costs a task per output.
        if len(hops) == 1:
            checked_bodies = [await self._checked(hops[0], source)]
        else:
            checked_bodies = await asyncio.gather(*(self._checked(hop, source) for hop in hops))
        known = self.broker.known_queue_url
        bodies = [(known(hop.to) or await self._url(hop), body) for hop, body in checked_bodies]
        accepted = [self.sends.submit(queue_url=url, body=body, delay_seconds=delay_seconds) for url, body in bodies]
        await (accepted[0] if len(accepted) == 1 else asyncio.gather(*accepted))
        return [hop for hop, _ in checked_bodies]

    async def _checked(self, hop: Outgoing, source: Envelope | None) -> tuple[Outgoing, str]:
        """``hop``, or the error record that replaces it when it is too large or addressed to no queue, with its body.

        Each envelope is serialised once: the body measured against the size limit is the body that is sent.
        With claim-check on, any envelope over the offload threshold — error records and retries included, so
        they keep their whole payload — is written to the bucket and the body sent is its reference.

        Error records and retries are never turned into "result too large" (that would lose the error they carry):
        they are shrunk to fit instead (:func:`asya_runtime.sidecar.fitting.fit_error_record`).
        """
        limit = self.config.max_message_bytes
        if self.claims is not None:
            hop = await self._addressable(hop)
            body = hop.envelope.to_json()
            if self.claims.over(len(body) if body.isascii() else len(body.encode())):  # no copy to measure it
                return hop, await self.claims.offload(hop, body.encode())
            return hop, body  # under the threshold, so under the limit: nothing to fit
        if hop.is_error:
            return _with_body(fitting.fit_error_record(hop, limit=limit))
        if hop.retry:
            return _with_body(fitting.fit_retry(hop, limit=limit, actor=self.config.actor))
        body = hop.envelope.to_json()
        size = len(body.encode())
        if size > limit and source is not None:
            text = (
                f"the result envelope is {size} bytes, over the broker's limit of {self.config.max_message_bytes} "
                f"bytes (ASYA_MAX_MESSAGE_BYTES); return a reference (e.g. an S3 key) instead of the data"
            )
            sized = source.model_copy(
                update={
                    "id": hop.envelope.id,
                    "parent_id": hop.envelope.parent_id,
                    hops.FIELD: hops.history_of(hop.envelope),  # keeps this attempt's entry
                }
            )
            return _with_body(
                fitting.result_too_large(sized, actor=self.config.actor, limit=limit, size=size, message=text)
            )
        addressed = await self._addressable(hop)
        if addressed is not hop:
            return _with_body(fitting.fit_error_record(addressed, limit=limit))
        return hop, body

    async def _addressable(self, hop: Outgoing) -> Outgoing:
        """``hop``, or its "unknown actor" error record when it goes to an actor without a queue (errors and
        retries always have one: the error sink, this actor)."""
        if hop.is_error or hop.retry or hop.to == ERROR_SINK or self.broker.known_queue_url(hop.to) is not None:
            return hop
        if await self.broker.queue_url(hop.to) is not None:
            return hop
        name = queue_name(namespace=self.config.namespace, actor=hop.to)
        text = f"route names actor {hop.to!r}, but its queue {name!r} does not exist in this mesh"
        logs.warning("error-ending envelope", id=hop.envelope.id, reason=routing.UNKNOWN_ACTOR, to=hop.to)
        return routing.error_record(
            envelope=hop.envelope,
            actor=self.config.actor,
            reason=routing.UNKNOWN_ACTOR,
            type_name="UnknownActor",
            message=text,
        )

    async def _url(self, hop: Outgoing) -> str:
        url = await self.broker.queue_url(hop.to)
        if url is None:
            raise RuntimeError(f"queue of {hop.to!r} does not exist")
        return url

    def _payload_field(self, envelope: Envelope) -> dict[str, Any]:
        return {"payload": envelope.payload} if self.config.log_payloads else {}


def _with_body(hop: Outgoing) -> tuple[Outgoing, str]:
    return hop, hop.envelope.to_json()
