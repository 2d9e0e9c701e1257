"""Claim-check through the CLI: a 5 MB envelope — far over SQS's limit — completes a 3-actor pipeline in
``asya dev`` (through the embedded broker's S3), and ``asya dlq redrive`` brings a dead-lettered reference back."""

from __future__ import annotations

import hashlib
from pathlib import Path

from support.mesh import MeshHarness, wait_for

from asya_pulumi.local.broker import LocalBroker
from asya_runtime.config import OFFLOAD_PREFIX
from asya_runtime.envelope import new_envelope
from asya_runtime.naming import dlq_name
from asya_runtime.sidecar.claimcheck import offload_with
from e2e.conftest import read_jsonl, run_asya

BLOB_BYTES = 5 * 1000 * 1000

HANDLERS = '''
import hashlib


def grow(payload):
    """Turns a small input into a 5 MB envelope."""
    blob = (payload["seed"] * (payload["bytes"] // len(payload["seed"]) + 1))[: payload["bytes"]]
    return {**payload, "blob": blob}


def digest(payload):
    """Sees the whole blob (the sidecar fetched it), and says so."""
    return {**payload, "sha256": hashlib.sha256(payload["blob"].encode()).hexdigest(), "seen": len(payload["blob"])}


def finish(payload):
    return {**payload, "done": True}
'''


def _pipeline(directory: Path) -> None:
    directory.mkdir()
    (directory / "handlers.py").write_text(HANDLERS)
    (directory / "mesh.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: ActorMesh\nmetadata:\n  name: big\n"
        "spec:\n  region: us-east-1\n  routes:\n    big: [grow, digest, finish]\n"
    )
    for actor in ("grow", "digest", "finish"):
        (directory / f"{actor}.yaml").write_text(
            f"apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata:\n  name: {actor}\n"
            f"spec:\n  image: example/big:1\n  handler: handlers.{actor}\n"
        )


def test_a_5mb_envelope_completes_a_three_actor_pipeline(broker: LocalBroker, namespace: str, tmp_path: Path):
    _pipeline(tmp_path / "big")
    seed = "claim-check "
    (tmp_path / "in.jsonl").write_text(f'{{"route": "big", "payload": {{"seed": "{seed}", "bytes": {BLOB_BYTES}}}}}\n')
    results = tmp_path / "results.jsonl"

    run = run_asya(
        "dev", str(tmp_path / "big"), "--input", str(tmp_path / "in.jsonl"), "--results", str(results),
        "--sqs-endpoint", broker.endpoint, "--namespace", namespace,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    [record] = read_jsonl(results)
    assert record["status"]["error"] is None and record["route"]["prev"] == ["grow", "digest", "finish"]
    payload = record["payload"]
    expected = (seed * (BLOB_BYTES // len(seed) + 1))[:BLOB_BYTES]
    assert payload["seen"] == BLOB_BYTES and payload["done"] is True
    assert payload["blob"] == expected  # the final record holds the whole envelope, not a reference
    assert payload["sha256"] == hashlib.sha256(expected.encode()).hexdigest()


def test_a_dead_lettered_reference_is_redriven_and_completes_whole(broker: LocalBroker, mesh: MeshHarness):
    mesh.standard("a", sinks=True)
    envelope = new_envelope(route=["a"], payload={"key": "redriven", "pad": "r" * 2_000_000})
    reference = offload_with(mesh.s3, bucket=mesh.bucket, envelope=envelope)
    dlq = mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor="a"))["QueueUrl"]
    mesh.sqs.send_message(QueueUrl=dlq, MessageBody=reference)  # as SQS moves it after maxReceiveCount

    redrive = run_asya("dlq", "redrive", "a", "--sqs-endpoint", broker.endpoint, "--namespace", mesh.namespace)
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    mesh.start_actor("a", handler="identity", result_bucket=mesh.bucket)

    record = mesh.wait_records("succeeded", 1, timeout_s=120)[envelope.id]
    assert record["payload"]["pad"] == "r" * 2_000_000
    wait_for(lambda: mesh.keys(OFFLOAD_PREFIX) == [], timeout_s=30, what="the redriven object to be deleted")
