"""The hop tracer in-process, its spans collected with the SDK's in-memory exporter: the edges a mesh test does not
reach cheaply (no traceparent, tracestate, sampling off, a message handed back, a bug mid-hop, recovery)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope, new_envelope
from asya_runtime.sidecar import routing, tracing
from asya_runtime.sidecar.routing import Outgoing
from asya_runtime.sidecar.tracing import HopTracer, hop_tracer, outcome_of

PARENT_TRACE, PARENT_SPAN = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def tracer(exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch) -> Iterator[HopTracer]:
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    made = hop_tracer(SidecarConfig(actor="worker", namespace="ns"), exporter=exporter)
    assert made is not None
    yield made
    made.provider.shutdown()


def _traceparent(envelope: Envelope) -> tuple[str, str, str]:
    _, trace_id, span_id, flags = str(envelope.headers["traceparent"]).split("-")
    return trace_id, span_id, flags


def _ids(span: ReadableSpan) -> tuple[str, str]:
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}"


def _one_hop(tracer: HopTracer, envelope: Envelope, *, answer_to: str = "next") -> Outgoing:
    """One attempt that calls the handler and sends one output on; the output as sent."""
    with tracer.hop(message_id="m-1"):
        tracer.begin(envelope=envelope, attempt=1)
        request = envelope.model_dump(mode="json")
        tracer.call_started(request)
        tracer.call_ended(outcome="ok")
        [sent], _ = tracer.stamp([Outgoing(to=answer_to, envelope=envelope)], envelope)
        tracer.sent([sent])
    return sent


def test_a_hop_continues_the_envelopes_trace_and_hands_the_handler_and_the_next_hop_its_span(
    tracer: HopTracer, exporter: InMemorySpanExporter
) -> None:
    envelope = new_envelope(route=["worker", "next"], payload={}, headers={"traceparent": TRACEPARENT, "x": 1})
    with tracer.hop(message_id="m-1"):
        tracer.begin(envelope=envelope, attempt=3)
        request = envelope.model_dump(mode="json")
        tracer.call_started(request)
        tracer.call_ended(outcome="ok")
        [sent], source = tracer.stamp([Outgoing(to="next", envelope=envelope)], envelope)
        tracer.sent([sent])

    call, hop = exporter.get_finished_spans()
    assert (hop.name, hop.kind, call.name) == ("process worker", SpanKind.CONSUMER, "handler worker")
    assert hop.parent is not None and f"{hop.parent.span_id:016x}" == PARENT_SPAN
    assert _ids(hop)[0] == _ids(call)[0] == PARENT_TRACE
    assert call.parent is not None and call.parent.span_id == hop.context.span_id
    assert request["headers"] == {"traceparent": f"00-{PARENT_TRACE}-{_ids(call)[1]}-01", "x": 1}
    assert _traceparent(sent.envelope) == (PARENT_TRACE, _ids(hop)[1], "01") and sent.envelope.headers["x"] == 1
    assert source is not None and source.headers == sent.envelope.headers  # records made while sending link too
    assert envelope.headers["traceparent"] == TRACEPARENT  # the source itself is not changed
    assert dict(hop.attributes or {}) == {
        "asya.actor": "worker",
        "asya.namespace": "ns",
        "asya.envelope.id": envelope.id,
        "asya.attempt": 3,
        "messaging.system": "aws_sqs",
        "messaging.operation.type": "process",
        "messaging.destination.name": "asya-ns_worker",
        "messaging.message.id": "m-1",
        "asya.outputs": 1,
        "asya.outcome": "ok",
    }
    assert hop.status.status_code is StatusCode.UNSET
    assert hop.resource.attributes["service.name"] == "worker"
    assert hop.resource.attributes["service.namespace"] == "ns"


def test_an_envelope_without_traceparent_starts_a_trace_that_its_outputs_carry(
    tracer: HopTracer, exporter: InMemorySpanExporter
) -> None:
    sent = _one_hop(tracer, new_envelope(route=["worker", "next"], payload={}))

    _, hop = exporter.get_finished_spans()
    assert hop.parent is None
    trace_id, span_id, flags = _traceparent(sent.envelope)
    assert (trace_id, span_id) == _ids(hop) and int(flags, 16) & 1  # sampled (the SDK adds W3C's "random" bit)


def test_tracestate_travels_on_and_an_unsampled_trace_exports_nothing_but_still_propagates(
    tracer: HopTracer, exporter: InMemorySpanExporter
) -> None:
    headers = {"traceparent": f"00-{PARENT_TRACE}-{PARENT_SPAN}-00", "tracestate": "vendor=abc"}
    sent = _one_hop(tracer, new_envelope(route=["worker", "next"], payload={}, headers=headers))

    assert exporter.get_finished_spans() == ()  # the sampler follows the sender's decision (ParentBased)
    trace_id, span_id, flags = _traceparent(sent.envelope)
    assert (trace_id, flags) == (PARENT_TRACE, "00") and span_id != PARENT_SPAN
    assert sent.envelope.headers["tracestate"] == "vendor=abc"


def test_a_message_handed_back_unfinished_or_a_bug_mid_hop_ends_the_span_as_released(
    tracer: HopTracer, exporter: InMemorySpanExporter
) -> None:
    envelope = new_envelope(route=["worker"], payload={}, headers={"traceparent": TRACEPARENT})
    with tracer.hop(message_id="m-1"):
        tracer.begin(envelope=envelope, attempt=1)
    with pytest.raises(RuntimeError), tracer.hop(message_id="m-2"):
        tracer.begin(envelope=envelope, attempt=1)
        tracer.call_started({"headers": {}})
        raise RuntimeError("a bug")

    handed_back, cancelled_call, bug = exporter.get_finished_spans()
    for span in (handed_back, bug):
        assert span.attributes is not None and span.attributes["asya.outcome"] == "released"
        assert span.status.status_code is StatusCode.ERROR
    assert cancelled_call.attributes == {"asya.handler.outcome": "cancelled"}
    assert [e.name for e in bug.events] == ["exception"]


def test_a_message_that_never_became_an_envelope_makes_no_span(
    tracer: HopTracer, exporter: InMemorySpanExporter
) -> None:
    hops = [routing.malformed_record(raw_body="{", message_id="m-1", actor="worker", detail="not JSON")]
    with tracer.hop(message_id="m-1"):
        stamped, _ = tracer.stamp(hops, None)
        tracer.sent(stamped)

    assert stamped == hops and exporter.get_finished_spans() == ()


def test_outcomes_read_from_what_an_attempt_sends_on() -> None:
    envelope = new_envelope(route=["worker", "next"], payload={})
    error = routing.error_info(type_name="KeyError", message="k", reason="retrying", traceback=None, actor="worker")
    failed = envelope.model_copy(update={"status": envelope.status.model_copy(update={"error": error})})
    record = routing.error_record(
        envelope=envelope, actor="worker", reason=routing.NOT_RETRYABLE, type_name="TypeError", message="t"
    )
    exhausted = error.model_copy(update={"reason": routing.RETRIES_EXHAUSTED})
    recovery = routing.recovery_hop(envelope=envelope, actors=("fixer",), error=exhausted)

    assert outcome_of([]) == ("ok", None, None)
    assert outcome_of([Outgoing(to="next", envelope=envelope)] * 2) == ("ok", None, None)
    assert outcome_of([Outgoing(to="worker", envelope=failed, retry=True)]) == ("retry", "KeyError", "retrying")
    assert outcome_of([Outgoing(to="next", envelope=envelope), record]) == ("error", "TypeError", "not retryable")
    assert outcome_of([recovery]) == ("recovered", "KeyError", "retries exhausted")


def test_otel_service_name_names_the_service_instead_of_the_actor(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_SERVICE_NAME", "pipeline")
    tracer = hop_tracer(SidecarConfig(actor="worker", namespace="ns"), exporter=exporter)
    assert tracer is not None
    _one_hop(tracer, new_envelope(route=["worker", "next"], payload={}))

    assert {s.resource.attributes["service.name"] for s in exporter.get_finished_spans()} == {"pipeline"}


def test_closing_exports_what_is_left_but_never_waits_longer_than_the_flush_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Stuck(InMemorySpanExporter):
        """A collector that never answers: shutting the exporter down blocks."""

        def shutdown(self) -> None:
            threading.Event().wait(30)

    monkeypatch.setattr(tracing, "SHUTDOWN_FLUSH_S", 0.5)
    exporter = Stuck()
    tracer = hop_tracer(SidecarConfig(actor="worker", namespace="ns"), exporter=exporter)
    assert tracer is not None
    _one_hop(tracer, new_envelope(route=["worker", "next"], payload={}))

    started = time.monotonic()
    # Closing the loop as asyncio.run does (its default executor joined) returns too: nothing waits for the stuck
    # thread. A loop of its own, so the thread's current loop stays as it was for the tests after this one.
    with asyncio.Runner(loop_factory=asyncio.new_event_loop) as runner:
        runner.run(tracer.close())

    assert time.monotonic() - started < 3
    assert len(exporter.get_finished_spans()) == 2
