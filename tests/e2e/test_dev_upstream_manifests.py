"""``asya dev`` runs a pipeline directory of upstream Asya's AsyncActor manifests as they are
(tests/conformance/manifests/pipeline: ``spec.actor``, list-form env, ``secretRefs`` with keys, ``volumeMounts``,
GPUs under resources, ``scaling.enabled: false`` with ``replicas``, ``initialDelay``, a ``sidecar`` block)."""

from __future__ import annotations

import json
from pathlib import Path

from asya_pulumi.local.broker import LocalBroker
from e2e.conftest import REPO, read_jsonl, run_asya

PIPELINE = REPO / "tests" / "conformance" / "manifests" / "pipeline"


def test_an_upstream_format_pipeline_runs_end_to_end(broker: LocalBroker, namespace: str, tmp_path: Path) -> None:
    inputs = tmp_path / "in.jsonl"
    inputs.write_text("".join(json.dumps({"route": "echo", "payload": {"n": n}}) + "\n" for n in range(4)))
    results = tmp_path / "results.jsonl"

    run = run_asya(
        "dev", str(PIPELINE), "--input", str(inputs), "--results", str(results),
        "--sqs-endpoint", broker.endpoint, "--namespace", namespace,
    )

    assert run.returncode == 0, run.stdout + run.stderr
    records = read_jsonl(results)
    assert sorted(r["payload"]["n"] for r in records) == [0, 1, 2, 3]
    for record in records:
        assert record["payload"]["echoed"] is True and record["status"]["error"] is None
        assert record["route"]["prev"] == ["echo-actor", "fixed-replicas"]
        assert (record["status"]["phase"], record["status"]["actor"]) == ("succeeded", "fixed-replicas")
