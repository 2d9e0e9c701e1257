"""The sinks persist final envelopes at deterministic keys and never swallow a failed write."""

from __future__ import annotations

from support.mesh import MeshHarness, wait_for

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
    wait_for(lambda: mesh.versions(f"succeeded/{done.id}.json") == 2, timeout_s=30, what="the second write")
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
    assert mesh.versions(f"succeeded/{envelope.id}.json") == 1
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message to be deleted after the write")
    assert "asya_sink_write_failures_total" in sink.read_metrics()


def test_a_body_that_is_no_envelope_is_kept_raw_under_failed(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    mesh.send("error-sink", "definitely { not json")

    [record] = mesh.wait_records("failed", 1).values()

    assert record["raw_body"] == "definitely { not json" and record["reason"] == "malformed envelope"
