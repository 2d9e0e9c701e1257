"""OpenTelemetry across a local mesh: real sidecar processes export their spans over OTLP/gRPC to a collector.

The collector is an OTLP trace service run by the test (the protobuf service the SDK's exporter speaks), so what is
checked is what a real collector would receive: switched on by ``OTEL_EXPORTER_OTLP_ENDPOINT`` alone, one trace per
envelope rooted at the ``traceparent`` that ``asya send`` gives it, each hop's span the child of the previous hop's,
the handler call a child of its hop, and the outcome and error of every attempt.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from e2e.conftest import EXAMPLES, read_jsonl, run_asya
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Status
from support.mesh import MeshHarness, wait_for

from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.records import with_trace
from asya_runtime.envelope import new_envelope
from asya_runtime.resiliency import Resiliency

#: The span id ``asya send``'s traceparent names as the root (asya_pulumi.records.traceparent_for).
SEND_SPAN_ID = "0000000000000001"


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    service: str
    trace_id: str
    span_id: str
    parent_id: str
    start_ns: int
    end_ns: int
    error: bool
    attributes: dict[str, Any]


def _value(value: AnyValue) -> Any:
    return getattr(value, value.WhichOneof("value") or "string_value")


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace endpoint that keeps every span it is sent."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self._lock = threading.Lock()

    def Export(  # the gRPC method's name
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                with self._lock:
                    self.spans += [
                        ReceivedSpan(
                            name=span.name,
                            service=str(resource.get("service.name")),
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_id=span.parent_span_id.hex(),
                            start_ns=span.start_time_unix_nano,
                            end_ns=span.end_time_unix_nano,
                            error=span.status.code == Status.STATUS_CODE_ERROR,
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                        for span in scope_spans.spans
                    ]
        return trace_service_pb2.ExportTraceServiceResponse()

    def trace(self, trace_id: str, *, count: int) -> list[ReceivedSpan]:
        """The spans of ``trace_id`` once ``count`` of them arrived."""
        with self._lock:
            spans = [s for s in self.spans if s.trace_id == trace_id]
        return spans if len(spans) >= count else []


@pytest.fixture
def collector(monkeypatch: pytest.MonkeyPatch) -> Iterator[Collector]:
    """A collector on a free port; the sidecars started afterwards export to it (the env reaches them as in a pod)."""
    collector = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(collector, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")  # ms: export as the spans end, not every 5 s
    monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
    try:
        yield collector
    finally:
        server.stop(grace=None)


def _traceparent(record: dict[str, Any]) -> tuple[str, str]:
    """``(trace id, span id)`` of an envelope's traceparent."""
    _, trace_id, span_id, _ = record["headers"]["traceparent"].split("-")
    return trace_id, span_id


def _hops(spans: list[ReceivedSpan]) -> list[ReceivedSpan]:
    """The hop spans in causal order: each the parent of the next (fails if they are not one chain)."""
    hops = {s.parent_id: s for s in spans if s.name.startswith("process ")}
    chain, parent = [], SEND_SPAN_ID
    while parent in hops:
        chain.append(hops.pop(parent))
        parent = chain[-1].span_id
    assert not hops, f"hop spans outside the chain: {list(hops.values())}"
    return chain


def test_three_actors_make_one_trace_with_a_span_per_hop_each_the_child_of_the_last(
    mesh: MeshHarness, collector: Collector
) -> None:
    actors = ["first", "second", "third"]
    mesh.standard(*actors)
    for actor in actors:
        mesh.start_actor(actor, handler="identity")
    envelope = with_trace(new_envelope(route=actors, payload={"key": "t"}))
    trace_id = envelope.id.replace("-", "")
    mesh.send("first", envelope)

    [record] = mesh.take("success-sink", 1)
    spans = wait_for(lambda: collector.trace(trace_id, count=6), timeout_s=30, what="6 spans of the envelope's trace")

    assert len(spans) == 6 and all(s.trace_id == trace_id for s in spans)
    hops = _hops(spans)
    assert [(h.name, h.service) for h in hops] == [(f"process {a}", a) for a in actors]
    for hop, actor in zip(hops, actors, strict=True):
        assert hop.attributes == hop.attributes | {
            "asya.actor": actor,
            "asya.envelope.id": envelope.id,
            "asya.attempt": 1,
            "asya.outcome": "ok",
            "asya.outputs": 1,
        }
        assert "error.type" not in hop.attributes and not hop.error
        [call] = [s for s in spans if s.parent_id == hop.span_id and s.name.startswith("handler ")]
        assert call.name == f"handler {actor}" and call.attributes["asya.handler.outcome"] == "ok"
        assert hop.start_ns <= call.start_ns <= call.end_ns <= hop.end_ns
    # The envelope leaves the last hop with that hop's span as its parent: a sink or a consumer continues the trace.
    assert _traceparent(record) == (trace_id, hops[-1].span_id)
    # Rewriting the traceparent keeps the rest of the envelope, its hop history included (sidecar/hops.py).
    assert [(h["actor"], h["outcome"]) for h in record["hops"]] == [(a, "ok") for a in actors]


def test_a_retried_then_error_ended_attempt_shows_its_outcome_error_type_and_chain(
    mesh: MeshHarness, collector: Collector
) -> None:
    resiliency = Resiliency.model_validate(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "100ms", "jitter": False}}}
    )
    mesh.standard("first")
    mesh.standard("flaky", resiliency=resiliency)
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("flaky", handler="fail", resiliency=resiliency)
    envelope = with_trace(new_envelope(route=["first", "flaky"], payload={"key": "f"}))
    trace_id = envelope.id.replace("-", "")
    mesh.send("first", envelope)

    [record] = mesh.take("error-sink", 1)
    spans = wait_for(lambda: collector.trace(trace_id, count=6), timeout_s=30, what="6 spans of the envelope's trace")

    assert len(spans) == 6  # a hop span and a handler span for each of the three attempts
    first, retried, ended = _hops(spans)
    assert first.attributes["asya.outcome"] == "ok" and not first.error
    assert retried.attributes["asya.actor"] == ended.attributes["asya.actor"] == "flaky"
    assert (retried.attributes["asya.attempt"], retried.attributes["asya.outcome"]) == (1, "retry")
    assert (ended.attributes["asya.attempt"], ended.attributes["asya.outcome"]) == (2, "error")
    assert retried.attributes["error.type"] == ended.attributes["error.type"] == "ValueError"
    assert retried.attributes["asya.error.reason"] == "retrying"
    assert ended.attributes["asya.error.reason"] == "retries exhausted"
    assert retried.error and ended.error
    calls = [s for s in spans if s.name == "handler flaky"]
    assert sorted(c.parent_id for c in calls) == sorted([retried.span_id, ended.span_id])
    assert all(c.error and c.attributes["asya.handler.outcome"] == "error" for c in calls)
    assert _traceparent(record) == (trace_id, ended.span_id)


def test_asya_dev_traces_every_input_through_its_shared_sidecar_host(
    broker: LocalBroker, collector: Collector, tmp_path: Path
) -> None:
    """The user's path: the shell's OTEL_* reach ``asya dev``'s sidecar host (several sidecars in one process, one
    provider each); every input of the example is one trace whose chain of hops is its record's route."""
    results = tmp_path / "results.jsonl"
    example, namespace = EXAMPLES / "image-scoring", f"otel-{uuid.uuid4().hex[:8]}"
    args = ["dev", str(example), "--input", str(example / "input.jsonl"), "--results", str(results)]
    run = run_asya(*args, "--sqs-endpoint", broker.endpoint, "--namespace", namespace)

    assert run.returncode == 0, run.stdout + run.stderr
    records = read_jsonl(results)
    assert records
    for record in records:
        trace_id, last_span = _traceparent(record)
        assert trace_id == record["id"].replace("-", "")  # asya dev roots each input's trace at its id
        actors = record["route"]["prev"]
        count = 2 * len(actors)  # a hop span and a handler span per actor
        spans = wait_for(lambda t=trace_id, n=count: collector.trace(t, count=n), timeout_s=30, what="the spans")
        hops = _hops(spans)
        assert [(h.service, h.attributes["asya.outcome"]) for h in hops] == [(a, "ok") for a in actors]
        assert hops[-1].span_id == last_span
