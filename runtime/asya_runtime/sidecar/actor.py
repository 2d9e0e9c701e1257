"""Actor mode: one message through the handler and on to the next queue, retried, or error-ended — never lost.

Per message: parse and check the envelope, count the attempt (``status.attempt + ApproximateReceiveCount - 1``),
bound the call by the effective deadline, call the handler, then send every resulting envelope and only after all
of them were accepted delete the source message. A message whose outputs cannot be sent is handed back to SQS
for a later try; deterministic ids make that harmless downstream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime

from asya_runtime import triggers
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope, EnvelopeError
from asya_runtime.sidecar import claimcheck, handler_batch, hops, logs, routing, tracing
from asya_runtime.sidecar.answer import CallError, HandlerAnswer
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.batching import DeleteBatcher, SendBatcher
from asya_runtime.sidecar.fanin import FanInGatherer
from asya_runtime.sidecar.handler_client import HandlerCallError, HandlerClient, HandlerTimeout
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.outputs import Outputs
from asya_runtime.sidecar.rate_limit import rate_limiter
from asya_runtime.sidecar.retry import RetryDecision, decide, split_delay
from asya_runtime.sidecar.routing import Outgoing
from asya_runtime.sidecar.status_reports import FlyReporter, StatusReports, Ticket, is_tracked

#: Least time a message waits for a (re)starting handler server before the attempt fails as HandlerUnavailable.
HANDLER_WAIT_MIN_S = 60.0


class Slot:
    """A concurrency slot; released once the handler call is over (sending needs no slot)."""

    def __init__(self, on_release: Callable[[], None]) -> None:
        self._on_release: Callable[[], None] | None = on_release

    def release(self) -> None:
        callback, self._on_release = self._on_release, None
        if callback is not None:
            callback()


class ActorProcessor:
    def __init__(
        self,
        *,
        config: SidecarConfig,
        broker: BrokerClient,
        inflight: InFlight,
        sends: SendBatcher,
        deletes: DeleteBatcher,
        handler: HandlerClient,
        metrics: Metrics,
        stopping: asyncio.Event,
        status: StatusReports | None = None,
    ) -> None:
        self.config = config
        #: None unless ASYA_STATUS_TABLE is set (sidecar/status_reports.py): then no request is made for it.
        self.status = status
        self.broker = broker
        self.inflight = inflight
        self.sends = sends
        self.deletes = deletes
        self.handler = handler
        #: None unless the actor batches (``spec.batch``): then calls go through it (sidecar/handler_batch.py).
        self.batches = handler_batch.collector(config=config, handler=handler)
        self.metrics = metrics
        self.stopping = stopping
        self.calls_running = 0
        #: None unless OpenTelemetry tracing is switched on (sidecar/tracing.py): the only per-message cost when off.
        self.tracer = tracing.hop_tracer(config)
        #: None without spec.rateLimit (sidecar/rate_limit.py): calls wait for a token of the actor's shared bucket.
        self.rate_limit = rate_limiter(config=config, broker=broker, metrics=metrics, stopping=stopping)
        self.outputs = Outputs(
            config=config,
            broker=broker,
            inflight=inflight,
            sends=sends,
            deletes=deletes,
            metrics=metrics,
            tracer=self.tracer,
        )
        #: None unless ASYA_FANIN_TIMEOUT is set (sidecar/fanin.py): children are gathered before any call.
        self.fanin = None if not config.fanin_timeout else FanInGatherer(
            config=config, broker=broker, outputs=self.outputs, busy=self
        )

    async def process(self, message: Received, slot: Slot, ticket: Ticket | None = None) -> None:
        """``ticket``: the message's place in its received batch when the status store is on."""
        try:
            if self.tracer is None:
                await self._process(message, slot, ticket)
            else:
                with self.tracer.hop(message_id=message.message_id):
                    await self._process(message, slot, ticket)
        finally:
            slot.release()
            if ticket is not None:
                ticket.close()

    async def _process(self, message: Received, slot: Slot, ticket: Ticket | None) -> None:
        """Read the envelope, refuse what must not be called, call the handler, act on its answer."""
        started = time.time()
        read = await self._read(message, slot, started=started)
        if read is not None and self.fanin is not None:
            read = await self.fanin.gather(message, *read)
        if read is None:
            return
        envelope, body = read
        attempt = envelope.status.attempt + message.receive_count - 1
        if self.tracer is not None:
            self.tracer.begin(envelope=envelope, attempt=attempt)
        fly: FlyReporter | None = None
        if ticket is not None:
            ticket.arrive(envelope, attempt=attempt)
            if await ticket.batch.canceled(envelope):
                slot.release()
                await self._cancel_end(message, envelope, attempt, started=started)
                return
            if self.status is not None and is_tracked(envelope):
                fly = self.status.fly_reporter(envelope, ticket)
        if self.rate_limit is not None:  # before the refusal checks: a deadline that passed meanwhile still counts
            await self.rate_limit.admit()
        now = time.time()
        deadline_at = _timestamp(envelope)
        if await self._refused(message, envelope, attempt=attempt, deadline_at=deadline_at, now=now, slot=slot,
                               started=started):
            return
        # The body as received (history included: no GET path reaches it), else serialised without the history.
        call_json = envelope.call_json(body, exclude=hops.NOT_FOR_HANDLER)
        answer = await self._call(envelope, call_json, deadline_at=deadline_at, slot=slot, on_fly=fly)
        if answer.fly and fly is None:
            logs.event("fly events dropped", level=logging.DEBUG, id=envelope.id, count=answer.fly)
        if answer.ok:
            if fly is not None and len(answer.outputs) > 1 and not await self._fanned_out(message, envelope, answer,
                                                                                          attempt=attempt):
                return
            # The hop entry is set in the same copy that makes each output (hops.stamped would copy each again).
            history = hops.extended(envelope, actor=self.config.actor, attempt=attempt, start=started, outcome=hops.OK)
            outputs = routing.next_hops(source=envelope, outputs=answer.outputs, extra={hops.FIELD: history})
            await self.outputs.finish(message, outputs, source=envelope)
        else:
            await self._failed(
                message,
                envelope,
                answer.error or CallError.from_wire({}),
                attempt=attempt,
                started=started,
                deadline_at=deadline_at,
                reason=answer.reason,
                first_attempt_at=_first_attempt_at(envelope, message, now=now),
            )

    async def _read(self, message: Received, slot: Slot, *, started: float) -> tuple[Envelope, str] | None:
        """``(envelope, the body it was parsed from)``: fetched first when the message is a claim-check reference.
        None when the message was finished here instead (its object gone, or no envelope: an error record)."""
        body = message.body
        if self.config.s3_triggers:  # the first actor of an S3 trigger's route (asya_runtime/triggers.py)
            triggered = triggers.envelope_from_s3_event(body, triggers=self.config.s3_triggers)
            if triggered == triggers.TEST_EVENT:
                slot.release()
                logs.event("s3 test event deleted", message_id=message.message_id)
                await self.outputs.finish(message, [])
                return None
            body = triggered or body
        try:
            reference = claimcheck.reference_in(body)
            if reference is not None:
                fetched = await self._fetch(message, reference)
                if fetched is None:
                    slot.release()
                    return None
                body = fetched
            return self._parse(body), body
        except EnvelopeError as exc:
            slot.release()
            logs.warning("malformed envelope", message_id=message.message_id, detail=exc.detail)
            record = routing.malformed_record(
                raw_body=body, message_id=message.message_id, actor=self.config.actor, detail=str(exc)
            )
            stamped = self._stamped([record], message.receive_count, started, hops.ERROR, "MalformedEnvelope")
            await self.outputs.finish(message, stamped)
            return None

    async def _refused(
        self,
        message: Received,
        envelope: Envelope,
        *,
        attempt: int,
        deadline_at: float | None,
        now: float,
        slot: Slot,
        started: float,
    ) -> bool:
        """Whether the envelope must not be called, and was dealt with: error-ended (delivered too often, its hop
        budget spent, its deadline passed) or requeued (the sidecar is stopping)."""
        refusal = self._refusal(message, envelope, attempt=attempt, deadline_at=deadline_at, now=now)
        if refusal is not None:
            slot.release()
            reason, type_name, text = refusal
            await self._error_end(message, envelope, reason, type_name, text, attempt, started=started)
            return True
        if self.stopping.is_set():
            await self.inflight.requeue([message])
            return True
        return False

    def _refusal(
        self, message: Received, envelope: Envelope, *, attempt: int, deadline_at: float | None, now: float
    ) -> tuple[str, str, str] | None:
        """``(reason, error type, message)`` of why the envelope must be error-ended uncalled, or None."""
        max_attempts = self.config.resiliency.max_attempts
        if attempt > max_attempts:
            text = f"delivered {message.receive_count} times: attempt {attempt} is over maxAttempts {max_attempts}"
            return routing.REDELIVERED_TOO_OFTEN, "RedeliveredTooOften", text
        history = hops.history_of(envelope)
        made = hops.count(history)
        if made >= self.config.hop_budget:
            text = (
                f"the envelope made {made} hops, the mesh's hop budget ({self.config.hop_budget}): a route or "
                f"recovery loop? Its latest hops went round: {hops.visited(history)}"
            )
            return routing.HOP_BUDGET_EXHAUSTED, "HopBudgetExhausted", text
        if deadline_at is not None and deadline_at <= now:
            text = f"the envelope's deadline {envelope.status.deadline_at} passed before the call"
            return routing.DEADLINE_EXCEEDED, "DeadlineExceeded", text
        return None

    async def _fetch(self, message: Received, reference: claimcheck.Reference) -> str | None:
        """The offloaded envelope's text; None when its object is gone and the message was error-ended instead."""
        claims = self.outputs.claims
        if claims is None:  # a reference reached an actor that has no bucket: a deployment mistake, kept
            raise RuntimeError(f"received a claim-check reference ({reference.key}) but ASYA_RESULT_BUCKET is unset")
        try:
            return await claims.fetch(reference)
        except claimcheck.PayloadMissing as exc:
            logs.warning("error-ending envelope", id=reference.id, reason=claimcheck.PAYLOAD_MISSING, key=reference.key)
            record = claimcheck.missing_record(reference=reference, actor=self.config.actor, detail=str(exc))
            await self.outputs.finish(message, [record])
            return None

    def _parse(self, body: str) -> Envelope:
        envelope = Envelope.parse(body)
        if envelope.route.curr != self.config.actor:
            raise EnvelopeError(
                routing.MALFORMED, f"route.curr is {envelope.route.curr!r}, not this actor ({self.config.actor!r})"
            )
        return envelope

    async def _call(
        self, envelope: Envelope, envelope_json: str, *, deadline_at: float | None, slot: Slot,
        on_fly: FlyReporter | None = None,
    ) -> HandlerAnswer:
        """The handler's answer; a call that produced none becomes the sidecar's own ``ok: false`` answer
        (:meth:`HandlerAnswer.no_answer`: retryable, except an answer too large or a fan-out over the cap).

        ``envelope_json`` is ``envelope`` as JSON text (:meth:`Envelope.call_json`: usually the body as received).
        ``on_fly`` (a tracked envelope's, with the status store on) receives each FLY event while the call runs.

        The call may run for the effective deadline, ``min(actorTimeout, the envelope's deadline_at)``, counted
        from the moment a healthy handler server is connected.
        """
        self.calls_running += 1
        started = time.monotonic()
        outcome = "error"
        actor_timeout = self.config.resiliency.actor_timeout
        connect_wait_s = max(actor_timeout, HANDLER_WAIT_MIN_S)
        if deadline_at is not None:
            connect_wait_s = min(connect_wait_s, deadline_at - time.time())

        def budget() -> float:
            return min(actor_timeout, (deadline_at or float("inf")) - time.time())

        if self.tracer is not None:  # the call's span goes into the headers the handler sees: serialise anew
            request = envelope.model_dump(mode="json", exclude=hops.NOT_FOR_HANDLER)
            self.tracer.call_started(request)
            envelope_json = json.dumps(request, separators=(",", ":"))
        try:
            call = self.handler.call if self.batches is None else self.batches.caller(envelope)
            answer = await call(
                envelope_json=envelope_json, budget=budget, connect_wait_s=connect_wait_s, on_fly=on_fly
            )
            outcome = "ok" if answer.ok else "error"
        except HandlerCallError as exc:
            outcome = "timeout" if isinstance(exc, HandlerTimeout) else "crashed"
            logs.warning("handler call failed", id=envelope.id, error=exc.type_name, detail=str(exc))
            answer = HandlerAnswer.no_answer(exc)
        finally:
            self.calls_running -= 1
            slot.release()
            self.metrics.labelled(self.metrics.handler_seconds, outcome).observe(time.monotonic() - started)
            if self.tracer is not None:
                self.tracer.call_ended(outcome=outcome)
            if self.calls_running == 0:
                self.sends.poke()
                self.deletes.poke()
        return answer

    async def _failed(
        self,
        message: Received,
        envelope: Envelope,
        error: CallError,
        *,
        attempt: int,
        started: float,
        deadline_at: float | None,
        first_attempt_at: float,
        reason: str | None = None,
    ) -> None:
        type_name, text, trace = error.type, error.message, error.traceback
        if type_name == "ActorTimeout" and deadline_at is not None and time.time() >= deadline_at:
            await self._error_end(
                message, envelope, routing.DEADLINE_EXCEEDED, type_name, text, attempt, trace, started=started
            )
            return
        if not error.retryable:
            reason = reason or routing.NOT_RETRYABLE
            await self._error_end(message, envelope, reason, type_name, text, attempt, trace, started=started)
            return
        decision = decide(
            resiliency=self.config.resiliency,
            error_types=error.error_types,
            qualified=error.qualified_types,
            attempt=attempt,
            elapsed_s=time.time() - first_attempt_at,
        )
        if not decision.retry and decision.on_exhausted:
            await self._recover(message, envelope, decision, type_name, text, attempt, trace, started=started)
            return
        if not decision.retry:
            await self._error_end(
                message,
                envelope,
                routing.RETRIES_EXHAUSTED,
                type_name,
                text,
                attempt,
                trace,
                decision.exhausted_by,
                started=started,
            )
            return
        await self._retry(message, envelope, decision, error, attempt=attempt, started=started,
                          first_attempt_at=first_attempt_at)

    async def _retry(
        self,
        message: Received,
        envelope: Envelope,
        decision: RetryDecision,
        error: CallError,
        *,
        attempt: int,
        started: float,
        first_attempt_at: float,
    ) -> None:
        """Send the envelope back to this actor's queue for attempt ``attempt + 1``, after the policy's delay: held
        here for the sub-second part, the rest as SQS ``DelaySeconds``."""
        hold_s, delay_seconds = split_delay(decision.delay_s)
        last_error = routing.error_info(
            type_name=error.type, message=error.message, reason="retrying", traceback=error.traceback,
            actor=self.config.actor,
        )
        status = envelope.status.stamped(
            phase="retrying",
            actor=self.config.actor,
            attempt=attempt + 1,
            max_attempts=decision.max_attempts,
            error=last_error,
            first_attempt_at=datetime.fromtimestamp(first_attempt_at, tz=UTC),
        )
        logs.event("retrying", id=envelope.id, error=error.type, attempt=attempt, delay_s=round(decision.delay_s, 3))
        retry = Outgoing(to=self.config.actor, envelope=envelope.model_copy(update={"status": status}), retry=True)
        outputs = self._stamped([retry], attempt, started, hops.RETRY, error.type)  # before the hold: no part of it
        await asyncio.sleep(hold_s)
        if await self.outputs.finish(message, outputs, delay_seconds=delay_seconds, source=envelope):
            self.metrics.retried.inc()

    async def _recover(
        self,
        message: Received,
        envelope: Envelope,
        decision: RetryDecision,
        type_name: str,
        text: str,
        attempt: int,
        trace: str | None,
        *,
        started: float,
    ) -> None:
        """Retries ran out and the policy names recovery actors (``onExhausted``): send the envelope to them."""
        logs.warning(
            "retries exhausted; routing to the recovery actor",
            id=envelope.id,
            error=type_name,
            attempt=attempt,
            by=decision.exhausted_by,
            to=decision.on_exhausted[0],
        )
        error = routing.error_info(
            type_name=type_name,
            message=text,
            reason=routing.RETRIES_EXHAUSTED,
            traceback=trace,
            actor=self.config.actor,
        )
        hop = routing.recovery_hop(envelope=envelope, actors=decision.on_exhausted, error=error)
        stamped = self._stamped([hop], attempt, started, hops.RECOVERED, type_name)
        await self.outputs.finish(message, stamped, source=envelope)

    async def _error_end(
        self,
        message: Received,
        envelope: Envelope,
        reason: str,
        type_name: str,
        text: str,
        attempt: int,
        trace: str | None = None,
        exhausted_by: str = "",
        *,
        started: float,
    ) -> None:
        logs.warning(
            "error-ending envelope",
            id=envelope.id,
            reason=reason,
            error=type_name,
            attempt=attempt,
            **({"by": exhausted_by} if exhausted_by else {}),
        )
        record = routing.error_record(
            envelope=envelope,
            actor=self.config.actor,
            reason=reason,
            type_name=type_name,
            message=text,
            traceback=trace,
            attempt=attempt,
        )
        stamped = self._stamped([record], attempt, started, hops.ERROR, type_name)
        await self.outputs.finish(message, stamped, source=envelope)

    async def _cancel_end(self, message: Received, envelope: Envelope, attempt: int, *, started: float) -> None:
        """Its status record says canceled: to the error sink (reason ``canceled``) without a call. Its record stays
        ``canceled`` (the error sink writes ``canceled`` again, and a terminal state is never overwritten)."""
        logs.event("canceled: ended without calling the handler", id=envelope.id, attempt=attempt)
        record = routing.error_record(
            envelope=envelope, actor=self.config.actor, reason=routing.CANCELED, type_name="Canceled",
            message="the envelope was canceled (its status record says so) before this actor called its handler",
            attempt=attempt,
        )
        await self.outputs.finish(message, self._stamped([record], attempt, started, hops.CANCELED), source=envelope)

    async def _fanned_out(self, message: Received, envelope: Envelope, answer: HandlerAnswer, *, attempt: int) -> bool:
        """Record a tracked parent's fan-out before its children are sent; if that fails, hand the message back."""
        assert self.status is not None
        try:
            await self.status.fanned_out(envelope, attempt=attempt, count=len(answer.outputs))
        except Exception as exc:
            self.status.failed("fanout", exc)
            await self.inflight.retry_later(message)
            return False
        return True

    def _stamped(
        self, outgoing: list[Outgoing], attempt: int, started: float, outcome: str, error: str | None = None
    ) -> list[Outgoing]:
        """``outgoing`` with this attempt's hop entry (:mod:`asya_runtime.sidecar.hops`)."""
        return hops.stamped(
            outgoing, actor=self.config.actor, attempt=attempt, start=started, outcome=outcome, error=error
        )


def _first_attempt_at(envelope: Envelope, message: Received, *, now: float) -> float:
    """When this actor first tried the envelope: ``status.first_attempt_at`` (set on every retry), else when SQS
    first delivered this message (a redelivered first attempt), else now."""
    first = envelope.status.first_attempt_at
    if first is not None:
        return (first if first.tzinfo else first.replace(tzinfo=UTC)).timestamp()
    return min(message.first_received_s or now, now)


def _timestamp(envelope: Envelope) -> float | None:
    deadline = envelope.status.deadline_at
    if deadline is None:
        return None
    if deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)
    return deadline.timestamp()
