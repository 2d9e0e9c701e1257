"""Claim-check: envelopes too large for SQS travel through the mesh's bucket, against the real local broker."""

from __future__ import annotations

import re
import signal
import time
from typing import Any

import pytest
from support.mesh import MeshHarness, wait_for
from support.tcp_proxy import TcpProxy

from asya_pulumi.testing import ActorProcess
from asya_runtime.config import DEFAULT_OFFLOAD_THRESHOLD_BYTES, SidecarConfig
from asya_runtime.envelope import Envelope, EnvelopeError, new_envelope
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar.claimcheck import (
    OFFLOAD_PREFIX,
    PAYLOAD_MISSING,
    Reference,
    offload_key,
    offload_with,
    reference_in,
)

FIVE_MB = 5 * 1000 * 1000


def send_offloaded(mesh: MeshHarness, envelope: Envelope) -> Reference:
    """What a producer does with an envelope too large for SQS: the object first, then the reference."""
    body = offload_with(mesh.s3, bucket=mesh.bucket, envelope=envelope)
    mesh.send(envelope.route.curr, body)
    reference = reference_in(body)
    assert reference is not None and reference.key == offload_key(envelope, to=envelope.route.curr)
    return reference


def offloaded_keys(mesh: MeshHarness) -> list[str]:
    return mesh.keys(OFFLOAD_PREFIX)


def s3_requests(metrics: str) -> dict[str, float]:
    return {m[0]: float(m[1]) for m in re.findall(r'asya_s3_requests_total\{api="(\w+)"\} ([0-9.]+)', metrics)}


# -- pure parts ---------------------------------------------------------------------------------------------------


def test_the_threshold_is_capped_by_the_message_limit_and_off_without_a_bucket() -> None:
    base = {"actor": "a", "namespace": "n"}
    assert SidecarConfig(**base).offload_threshold == 0  # no bucket: nothing to offload to
    with_bucket = SidecarConfig(**base, result_bucket="b")
    assert with_bucket.offload_threshold == DEFAULT_OFFLOAD_THRESHOLD_BYTES == 7 * 64 * 1024
    small_broker = SidecarConfig(**base, result_bucket="b", max_message_bytes=256 * 1024)
    assert small_broker.offload_threshold == 256 * 1024
    assert SidecarConfig(**base, result_bucket="b", offload_threshold_bytes=0).offload_threshold == 0
    env = SidecarConfig(**base, result_bucket="b", offload_threshold_bytes=100_000).to_env()
    assert env["ASYA_OFFLOAD_THRESHOLD_BYTES"] == "100000"


def test_an_outputs_key_never_equals_its_sources_key() -> None:
    source = new_envelope(route=["a", "b"], payload={})
    at_a = source.model_copy(update={"route": source.route.model_copy(update={"curr": "a"})})
    forward = at_a.model_copy(update={"route": source.route.model_copy(update={"prev": ["a"], "curr": "b"})})
    retry = at_a.model_copy(update={"status": at_a.status.model_copy(update={"attempt": 2})})
    keys = {
        offload_key(at_a, to="a"),
        offload_key(forward, to="b"),
        offload_key(retry, to="a"),
        offload_key(at_a, to="error-sink"),
    }
    assert len(keys) == 4
    assert offload_key(at_a, to="a") == offload_key(at_a.model_copy(), to="a")  # a redelivered producer overwrites
    assert all(k.startswith(f"{OFFLOAD_PREFIX}/{source.id}/") for k in keys)


def test_a_reference_round_trips_and_anything_else_is_not_one() -> None:
    reference = Reference(bucket="b", key="offload/x/0-a-1.json", version_id=None, bytes=9, id="x", route={})
    assert reference_in(reference.to_body()) == reference
    assert reference_in(new_envelope(route=["a"], payload={"asya_claim_check": 1}).to_json()) is None
    with pytest.raises(EnvelopeError, match="claim-check reference"):
        reference_in('{"asya_claim_check": {"bucket": "b"}}')


# -- against the local broker -------------------------------------------------------------------------------------


def test_a_5mb_payload_fans_out_through_three_actors_and_every_sink_record_holds_it_whole(mesh: MeshHarness) -> None:
    mesh.standard("a", "b", "c", sinks=True)
    for actor, handler in (("a", "copies"), ("b", "identity"), ("c", "identity")):
        mesh.start_actor(actor, handler=handler, result_bucket=mesh.bucket)
    envelope = new_envelope(route=["a", "b", "c"], payload={"key": "big", "n": 3, "pad": "x" * FIVE_MB})
    reference = send_offloaded(mesh, envelope)

    records = mesh.wait_records("succeeded", 3, timeout_s=180)

    assert sorted(r["payload"]["i"] for r in records.values()) == [0, 1, 2]
    for record in records.values():
        assert record["payload"]["pad"] == "x" * FIVE_MB  # the final record holds the envelope, not a reference
        assert record["route"]["prev"] == ["a", "b", "c"] and record["parent_id"] == envelope.id
    assert len(reference.to_body()) < 400  # what SQS carried instead of 5 MB
    assert mesh.keys("failed") == []
    wait_for(lambda: offloaded_keys(mesh) == [], timeout_s=30, what="every offloaded object to be deleted")
    counts = [s3_requests(actor.read_metrics()) for actor in mesh.actors[2:]]  # a, b, c (after the two sinks)
    assert counts[0] == {"get_object": 1, "put_object": 3, "delete_object": 1}  # 1 in, 3 children out
    assert counts[1] == counts[2] == {"get_object": 3, "put_object": 3, "delete_object": 3}
    assert len(mesh.calls()) == 7


def test_a_sidecar_killed_between_offload_and_send_loses_nothing_and_leaves_no_orphan(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    mesh.create_queue("a", visibility_s=3)  # the killed sidecar's message comes back within seconds
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:  # SQS through the proxy, S3 direct
        actor = mesh.start_actor("a", handler="inflate", result_bucket=mesh.bucket, sqs_endpoint=proxy.endpoint)
        mesh.send("a", new_envelope(route=["a"], payload={"key": "warm-up", "inflate": 10}))
        mesh.wait_records("succeeded", 1)  # the sidecar knows the success sink's queue URL now: no lookup later
        payload = {"key": "k", "inflate": FIVE_MB, "sleep_s": 2, "in": "y" * 600_000}
        envelope = new_envelope(route=["a"], payload=payload)
        send_offloaded(mesh, envelope)  # the input is a reference too: its redelivery must still find the object
        wait_for(lambda: len(mesh.calls()) == 2, timeout_s=60, what="the handler call")
        proxy.cut()
        wait_for(lambda: "offloaded" in actor.logs(), timeout_s=30, what="the output's PutObject")
        # The output's send itself refused by the outage (the warning alone may come from a receive or heartbeat).
        send_failed = r'^asya_broker_errors_total\{api="send_message_batch"\} [1-9]'
        wait_for(lambda: re.search(send_failed, metrics_now(actor), re.M), timeout_s=30, what="the send failing")
        actor.signal_sidecar(signal.SIGKILL)  # after PutObject, before any send was accepted
        assert actor.wait_sidecar(timeout_s=10) == -signal.SIGKILL  # the kill landed: not a sidecar that exited itself
        assert len(offloaded_keys(mesh)) == 2  # the input's object and the unsent output's
        proxy.restore()
        actor.start_sidecar()  # the redelivery after the crash

        record = mesh.wait_records("succeeded", 2, timeout_s=120)[envelope.id]

    assert record["payload"]["pad"] == "x" * FIVE_MB and record["payload"]["in"] == "y" * 600_000
    assert [c["key"] for c in mesh.calls()] == ["warm-up", "k", "k"]  # the killed attempt and the redelivery
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    assert mesh.keys("failed") == []
    # The redelivered producer overwrote its own key: once consumed, nothing is left for the lifecycle rule.
    wait_for(lambda: offloaded_keys(mesh) == [], timeout_s=30, what="every offloaded object to be deleted")


def metrics_now(actor: ActorProcess) -> str:
    """The sidecar's metrics, or "" while a scrape times out (its loop busy with a 5 MB body on a loaded host)."""
    try:
        return actor.read_metrics()
    except OSError:
        return ""


def test_an_s3_outage_during_offload_hands_the_message_back_and_never_sends_a_reference_early(
    mesh: MeshHarness,
) -> None:
    mesh.standard(sinks=True)
    mesh.create_queue("a", visibility_s=4)  # S3 retried for 2 s (half the visibility), then handed back
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:  # S3 through the proxy, SQS direct
        actor = mesh.start_actor("a", handler="inflate", result_bucket=mesh.bucket, s3_endpoint=proxy.endpoint)
        proxy.cut()
        envelope = new_envelope(route=["a"], payload={"key": "k", "inflate": 1_000_000})
        mesh.send("a", envelope)
        wait_for(lambda: "outputs not accepted" in actor.logs(), timeout_s=60, what="the message handed back")
        assert mesh.depth("success-sink") == 0  # no reference was sent for the object that was not written
        time.sleep(1)
        proxy.restore()

        [record] = mesh.wait_records("succeeded", 1, timeout_s=120).values()

    assert record["payload"]["pad"] == "x" * 1_000_000
    assert len(mesh.calls()) >= 2  # handed back, so called again: never error-ended as too large
    assert mesh.keys("failed") == []
    assert "result too large" not in actor.logs()
    wait_for(lambda: offloaded_keys(mesh) == [], timeout_s=30, what="every offloaded object to be deleted")
    assert re.search(r'asya_broker_errors_total\{api="put_object"\} [1-9]', actor.read_metrics())


def test_retries_and_the_error_record_keep_an_offloaded_payload_whole(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "100ms", "jitter": False}}}
    )
    mesh.standard("a", resiliency=resiliency, sinks=True)
    mesh.start_actor("a", handler="fail", resiliency=resiliency, result_bucket=mesh.bucket)
    envelope = new_envelope(route=["a"], payload={"key": "k", "pad": "z" * 2_000_000})
    send_offloaded(mesh, envelope)

    [record] = mesh.wait_records("failed", 1, timeout_s=120).values()

    assert record["payload"]["pad"] == "z" * 2_000_000  # not truncated: the error record was offloaded too
    assert record["status"]["attempt"] == 2 and record["status"]["error"]["reason"] == "retries exhausted"
    assert len(mesh.calls()) == 2
    wait_for(lambda: offloaded_keys(mesh) == [], timeout_s=30, what="every offloaded object to be deleted")


def test_a_reference_to_a_missing_object_is_error_ended_with_its_reason(mesh: MeshHarness) -> None:
    mesh.standard("a", sinks=True)
    actor = mesh.start_actor("a", handler="identity", result_bucket=mesh.bucket)
    envelope = new_envelope(route=["a"], payload={"key": "gone"})
    reference = send_offloaded(mesh, envelope)
    mesh.s3.delete_object(Bucket=mesh.bucket, Key=reference.key)  # e.g. a late duplicate, locally (no versioning)

    [record] = mesh.wait_records("failed", 1, timeout_s=60).values()

    assert record["id"] == envelope.id and record["route"]["curr"] == "a"
    error: dict[str, Any] = record["status"]["error"]
    assert error["reason"] == PAYLOAD_MISSING and error["type"] == "PayloadMissing"
    assert reference.key in error["message"]
    assert record["payload"]["asya_claim_check"]["key"] == reference.key
    assert mesh.calls() == []  # the handler never saw it
    mesh.assert_quiet("a", wait_s=1)
    assert "processing failed" not in actor.logs()


@pytest.mark.parametrize(
    ("forge", "says"),
    [
        (lambda r, other: {**r, "bucket": other}, "not this mesh's"),
        (lambda r, other: {**r, "key": "failed/secret.json"}, "is not an offloaded envelope's"),
        (lambda r, other: {**r, "key": f"{OFFLOAD_PREFIX}/someone-else/0-a-1.json"}, "is not an offloaded envelope's"),
        (lambda r, other: {**r, "id": "x/y"}, "not an envelope id"),
    ],
    ids=["other-bucket", "other-prefix", "other-envelope", "bad-id"],
)
def test_a_forged_reference_is_refused_with_a_record_and_its_object_is_never_read_or_deleted(
    mesh: MeshHarness, forge: Any, says: str
) -> None:
    mesh.standard("a", sinks=True)
    mesh.start_actor("a", handler="identity", result_bucket=mesh.bucket)
    other = f"{mesh.bucket}-other"
    mesh.s3.create_bucket(Bucket=other)
    secret = {"Bucket": other, "Key": "failed/secret.json"}
    mesh.s3.put_object(**secret, Body=b"{}")
    mesh.s3.put_object(Bucket=mesh.bucket, Key="failed/secret.json", Body=b"{}")
    envelope = new_envelope(route=["a"], payload={"key": "forged"})
    real = reference_in(offload_with(mesh.s3, bucket=mesh.bucket, envelope=envelope))  # written, never sent
    assert real is not None
    fields = forge(dict(real.__dict__), other)
    mesh.send("a", Reference(**fields).to_body())

    records = mesh.wait_records("failed", 2, timeout_s=60)  # the error record, and the untouched secret
    [record] = [r for r in records.values() if r.get("status")]

    error = record["status"]["error"]
    assert error["reason"] == "malformed envelope" and says in error["message"]
    assert mesh.calls() == []
    for bucket in (other, mesh.bucket):  # neither object was deleted
        assert mesh.s3.get_object(Bucket=bucket, Key="failed/secret.json")["Body"].read() == b"{}"
