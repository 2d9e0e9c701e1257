"""The sinks persist final envelopes at deterministic keys and never swallow a failed write."""

from __future__ import annotations

import re
import time

from support.mesh import MeshHarness, wait_for
from support.tcp_proxy import TcpProxy

from asya_runtime.envelope import new_envelope

TRACEPARENT = "00-55555555555555555555555555555555-6666666666666666-01"


def test_sinks_write_each_final_envelope_at_its_status_and_id_and_a_redelivery_overwrites(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    done = new_envelope(route=["x"], payload={"key": "ok"}, headers={"traceparent": TRACEPARENT})
    failed = new_envelope(route=["x"], payload={"key": "bad"}, headers={"traceparent": TRACEPARENT})
    mesh.send("success-sink", done)
    mesh.send("success-sink", done)  # a redelivery of the same envelope
    mesh.send("error-sink", failed)

    succeeded = mesh.wait_records("succeeded", 1)
    wait_for(lambda: mesh.writes()[f"succeeded/{done.id}.json"] == 2, timeout_s=30, what="the second write")
    failures = mesh.wait_records("failed", 1)

    assert succeeded == {done.id: done.model_dump(mode="json")}
    assert failures == {failed.id: failed.model_dump(mode="json")}
    assert len(mesh.records("succeeded")) == 1  # overwritten, not duplicated
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the sink queue to be empty")


def test_a_failed_write_keeps_the_message_queued_until_the_bucket_takes_it(mesh: MeshHarness) -> None:
    mesh.create_sink_queues()  # no bucket yet: every PutObject fails
    for sink in ("success-sink", "error-sink"):
        mesh.start_actor(sink, handler=None, mode=sink, result_bucket=mesh.bucket)
    sink = mesh.actors[0]
    envelope = new_envelope(route=["x"], payload={"key": "waiting"})
    mesh.send("success-sink", envelope)
    wait_for(lambda: "sink write failed" in sink.logs(), timeout_s=30, what="a failed write")
    assert mesh.depth("success-sink") == 1  # not deleted, not lost

    mesh.create_bucket()

    records = mesh.wait_records("succeeded", 1, timeout_s=60)
    assert records == {envelope.id: envelope.model_dump(mode="json")}
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message to be deleted after the write")
    assert "asya_sink_write_failures_total" in sink.read_metrics()


def test_a_body_that_is_no_envelope_is_kept_raw_under_failed(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    mesh.send("error-sink", "definitely { not json")

    [record] = mesh.wait_records("failed", 1).values()

    assert record["raw_body"] == "definitely { not json" and record["reason"] == "malformed envelope"


def test_a_short_s3_outage_is_retried_in_process_and_the_message_is_never_handed_back(mesh: MeshHarness) -> None:
    mesh.create_sink_queues()  # visibility 90 s: the sink may retry S3 for up to 45 s holding the message
    mesh.create_bucket()
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        sink = mesh.start_actor(
            "success-sink", handler=None, mode="success-sink", result_bucket=mesh.bucket, s3_endpoint=proxy.endpoint
        )
        proxy.cut()
        envelope = new_envelope(route=["x"], payload={"key": "hiccup"})
        mesh.send("success-sink", envelope)
        wait_for(lambda: "broker unreachable" in sink.logs(), timeout_s=30, what="the sink noticing the S3 outage")
        time.sleep(2)  # an outage of a few seconds, not a blip
        proxy.restore()

        records = mesh.wait_records("succeeded", 1, timeout_s=60)

    assert records == {envelope.id: envelope.model_dump(mode="json")}
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    assert "sink write failed" not in sink.logs()  # retried in-process, never handed back to SQS
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message to be deleted after the write")
    metrics = sink.read_metrics()
    assert re.search(r'asya_broker_errors_total\{api="put_object"\} [1-9]', metrics), metrics
    assert re.search(r"asya_sink_write_failures_total 0\.0", metrics)
