"""``asya dev``: a 5 MB envelope — far over SQS's limit — completes a 3-actor pipeline through the broker's S3."""

from __future__ import annotations

import hashlib
from pathlib import Path

from asya_pulumi.local.broker import LocalBroker
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
