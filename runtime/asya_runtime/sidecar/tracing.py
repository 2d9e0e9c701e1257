"""OpenTelemetry for the sidecar: one span per hop, the handler call as its child, the trace carried by the envelope.

Each actor sidecar opens a span for every attempt of an envelope (``process {actor}``, kind CONSUMER), from the
moment it took the message until its outputs were sent, as a child of the span named by the envelope's W3C
``traceparent`` header (``asya send`` roots it at the envelope's id; an envelope without one starts a new trace).
The handler call is a child span (``handler {actor}``) whose context the handler sees in ``.headers.traceparent``, so
a handler that uses OpenTelemetry itself continues the same trace. Every outgoing envelope (next hops, fan-out
children, the retry, the recovery hop, the error record) leaves with this hop's span in its ``traceparent``, so the
next hop's span is this one's child and the whole path of an envelope is one trace. Attributes: ``asya.actor``,
``asya.envelope.id``, ``asya.attempt``, ``asya.outcome`` (ok, retry, error, recovered; released when the message
was handed back to SQS unfinished), ``error.type`` and ``asya.error.reason`` when the attempt failed.

**On only when asked, through the standard OpenTelemetry environment**: when ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``
or ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set, unless ``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Spans
go over OTLP/gRPC (``OTEL_EXPORTER_OTLP_PROTOCOL``, if set, must be ``grpc``) through a batch processor; the other
standard variables apply as the SDK defines them (``OTEL_EXPORTER_OTLP_HEADERS``, ``_INSECURE``, ``_TIMEOUT``,
``OTEL_TRACES_SAMPLER``, ``OTEL_BSP_*``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_SERVICE_NAME``: the default service
name is the actor's name). It needs the ``asya-runtime[otel]`` extra; an endpoint set without it logs one warning
and the sidecar runs untraced. No ``ASYA_`` switch: an actor's spec may not set ``ASYA_`` variables, and the
standard ones are what collectors and operators already set.

**Off, it costs nothing**: this module then imports no OpenTelemetry, :func:`hop_tracer` returns None, and the
sidecar's only per-message work is checking that its tracer is None (tests/runtime/test_otel_off.py).

Per message the state lives in a context variable: each received message is processed in its own asyncio task,
so :meth:`HopTracer.hop` scopes it to that task and the calls in between need not pass it along.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import dataclasses
import os
import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asya_runtime.config import SHUTDOWN_FLUSH_S, SidecarConfig
from asya_runtime.envelope import Envelope
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.routing import Outgoing

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span

__all__ = ["ENDPOINT_VARIABLES", "EXTRA_HINT", "HopTracer", "enabled", "hop_tracer", "outcome_of"]

#: Either one switches tracing on (the signal-specific one wins as the endpoint, as the SDK defines).
ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
_PROTOCOL_VARIABLES = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
EXTRA_HINT = "install the extra: pip install 'asya-runtime[otel]' (or build the runtime image with it)"
_TRACEPARENT, _TRACESTATE = "traceparent", "tracestate"
#: ``asya.outcome`` of a hop whose message went back to SQS unfinished (stopping, outputs not accepted, a bug).
RELEASED = "released"


def enabled(environ: Mapping[str, str]) -> tuple[bool, str]:
    """Whether the environment asks for tracing, and why not when it does not (empty when it does)."""
    if not any(environ.get(name) for name in ENDPOINT_VARIABLES):
        return False, "no OTLP endpoint set"
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False, "OTEL_SDK_DISABLED=true"
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False, "OTEL_TRACES_EXPORTER=none"
    for name in _PROTOCOL_VARIABLES:
        protocol = environ.get(name, "").strip().lower()
        if protocol and protocol != "grpc":
            return False, f"{name}={protocol}: the sidecar exports OTLP over gRPC only; set it to grpc or unset it"
        if protocol:
            break
    return True, ""


def hop_tracer(config: SidecarConfig, *, exporter: SpanExporter | None = None) -> HopTracer | None:
    """The actor's tracer when tracing is on (see the module docstring), else None without importing OpenTelemetry.

    ``exporter`` replaces the OTLP exporter and switches tracing on regardless of the environment (tests collect
    spans with the SDK's in-memory exporter this way).
    """
    if exporter is None:
        on, why_not = enabled(os.environ)
        if not on:
            if why_not.startswith("OTEL_EXPORTER_OTLP"):
                logs.warning("tracing off", reason=why_not)
            return None
    try:
        return HopTracer(config=config, exporter=exporter)
    except ImportError as exc:
        logs.warning("tracing off: OpenTelemetry is not installed", error=str(exc), fix=EXTRA_HINT)
        return None


def outcome_of(hops: Sequence[Outgoing]) -> tuple[str, str | None, str | None]:
    """``(outcome, error type, error reason)`` of an attempt, read from what it sends on.

    An error record means the envelope was error-ended; a retry, another attempt is due; an onward hop that still
    carries ``status.error`` is the recovery hop of ``onExhausted``; anything else (including no output) is ok.
    """
    for hop in hops:
        error = hop.envelope.status.error
        if hop.is_error:
            return "error", error.type if error else None, error.reason if error else None
        if hop.retry:
            return "retry", error.type if error else None, error.reason if error else None
        if error is not None:
            return "recovered", error.type, error.reason
    return "ok", None, None


@dataclass
class _Hop:
    """One message's tracing state, from receipt to the end of its task."""

    received_ns: int
    message_id: str
    span: Span | None = None
    call: Span | None = None
    outcome: str = RELEASED


_CURRENT: contextvars.ContextVar[_Hop | None] = contextvars.ContextVar("asya_hop", default=None)


class HopTracer:
    """Makes the spans of one actor; its own provider, so each actor is its own ``service.name``."""

    def __init__(self, *, config: SidecarConfig, exporter: SpanExporter | None = None) -> None:
        from opentelemetry import trace
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

        processor: BatchSpanProcessor | SimpleSpanProcessor
        if exporter is None:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
            processor = BatchSpanProcessor(exporter)
        else:
            processor = SimpleSpanProcessor(exporter)
        attributes = {
            "service.namespace": config.namespace,
            "service.instance.id": socket.gethostname(),
            "asya.actor": config.actor,
        }
        if not os.environ.get("OTEL_SERVICE_NAME"):
            attributes["service.name"] = config.actor
        # Closed by the sidecar (:meth:`close`), not at interpreter exit, which the sidecar skips (host.exit_now).
        self.provider: TracerProvider = TracerProvider(resource=Resource.create(attributes), shutdown_on_exit=False)
        self.provider.add_span_processor(processor)
        self._tracer = self.provider.get_tracer("asya_runtime.sidecar")
        self._trace = trace
        self._propagator = TraceContextTextMapPropagator()
        self._config = config
        self._queue = config.queue_name
        endpoint = next((os.environ[n] for n in ENDPOINT_VARIABLES if os.environ.get(n)), None)
        logs.event("tracing on", exporter=type(exporter).__name__, endpoint=endpoint)

    # -- one message ------------------------------------------------------------------------------------------------

    @contextlib.contextmanager
    def hop(self, *, message_id: str) -> Iterator[None]:
        """Scope one received message: its span (if :meth:`begin` started one) ends when the block does."""
        state = _Hop(received_ns=time.time_ns(), message_id=message_id)
        token = _CURRENT.set(state)
        try:
            yield
        except BaseException as exc:
            if state.span is not None:
                state.span.record_exception(exc)
            raise
        finally:
            _CURRENT.reset(token)
            self._end(state)

    def begin(self, *, envelope: Envelope, attempt: int) -> None:
        """Start the hop's span, from the moment the message was taken, under the envelope's ``traceparent``."""
        state = _CURRENT.get()
        if state is None:
            return
        carrier = {k: v for k, v in envelope.headers.items() if k in (_TRACEPARENT, _TRACESTATE) and isinstance(v, str)}
        state.span = self._tracer.start_span(
            f"process {self._config.actor}",
            context=self._propagator.extract(carrier),
            kind=self._trace.SpanKind.CONSUMER,
            start_time=state.received_ns,
            attributes={
                "asya.actor": self._config.actor,
                "asya.namespace": self._config.namespace,
                "asya.envelope.id": envelope.id,
                "asya.attempt": attempt,
                "messaging.system": "aws_sqs",
                "messaging.operation.type": "process",
                "messaging.destination.name": self._queue,
                "messaging.message.id": state.message_id,
            },
        )

    def call_started(self, request: dict[str, Any]) -> None:
        """Start the handler call's span; ``request`` (the envelope the handler gets) carries its ``traceparent``."""
        state = _CURRENT.get()
        if state is None or state.span is None:
            return
        state.call = self._tracer.start_span(
            f"handler {self._config.actor}", context=self._trace.set_span_in_context(state.span)
        )
        headers = request.setdefault("headers", {})
        if isinstance(headers, dict):
            self._inject(state.call, headers)

    def call_ended(self, *, outcome: str) -> None:
        """End the handler call's span: ``outcome`` is ok, error (the handler raised), timeout or crashed."""
        state = _CURRENT.get()
        if state is None or state.call is None:
            return
        state.call.set_attribute("asya.handler.outcome", outcome)
        if outcome != "ok":
            state.call.set_status(self._trace.Status(self._trace.StatusCode.ERROR, outcome))
        state.call.end()
        state.call = None

    def stamp(self, hops: list[Outgoing], source: Envelope | None) -> tuple[list[Outgoing], Envelope | None]:
        """``hops`` (and ``source``, which error records made while sending are built from) carrying this hop's
        span in their ``traceparent``: the next hop's span becomes its child. Unchanged when no span is open."""
        state = _CURRENT.get()
        if state is None or state.span is None:
            return hops, source
        stamped = [dataclasses.replace(hop, envelope=self._stamped(state.span, hop.envelope)) for hop in hops]
        return stamped, None if source is None else self._stamped(state.span, source)

    def sent(self, hops: Sequence[Outgoing]) -> None:
        """Record the attempt's outcome from the outputs that were sent (after any was turned into an error record)."""
        state = _CURRENT.get()
        if state is None or state.span is None:
            return
        outcome, error_type, reason = outcome_of(hops)
        state.outcome = outcome
        state.span.set_attribute("asya.outputs", len(hops))
        if error_type is not None:
            state.span.set_attribute("error.type", error_type)
        if reason is not None:
            state.span.set_attribute("asya.error.reason", reason)

    # -- process --------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Export what is still batched, then stop: off the event loop (the other sidecars of a host go on
        draining) and bounded by ``SHUTDOWN_FLUSH_S``, since an unreachable collector must not hold up the exit.

        A daemon thread of its own, not the loop's executor: ``asyncio.run`` joins the executor's threads before
        it returns, which would wait for the exporter's retries after all.
        """
        loop = asyncio.get_running_loop()
        done = asyncio.Event()

        def shut_down() -> None:
            try:
                self.provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
                    loop.call_soon_threadsafe(done.set)

        threading.Thread(target=shut_down, name=f"otel-close-{self._config.actor}", daemon=True).start()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=SHUTDOWN_FLUSH_S)

    def _end(self, state: _Hop) -> None:
        if state.call is not None:  # the task ended mid-call (cancelled)
            state.call.set_attribute("asya.handler.outcome", "cancelled")
            state.call.end()
        span = state.span
        if span is None:
            return
        span.set_attribute("asya.outcome", state.outcome)
        if state.outcome != "ok":
            span.set_status(self._trace.Status(self._trace.StatusCode.ERROR, state.outcome))
        span.end()

    def _stamped(self, span: Span, envelope: Envelope) -> Envelope:
        headers = dict(envelope.headers)
        headers.pop(_TRACESTATE, None)  # re-injected from the span's own context (absent when it has none)
        self._inject(span, headers)
        return envelope.model_copy(update={"headers": headers})

    def _inject(self, span: Span, headers: dict[str, Any]) -> None:
        self._propagator.inject(headers, context=self._trace.set_span_in_context(span))
