"""``asya dev --containers`` (the acceptance run) and ``asya build`` of the examples, as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from e2e.conftest import read_jsonl, run_asya

from images.conftest import EXAMPLES, skip_without_build_tools, skip_without_podman


def test_asya_build_builds_every_example(tmp_path: Path):
    skip_without_build_tools()
    for example in ("image-scoring", "text-chunking"):
        out = tmp_path / example
        run = run_asya("build", str(EXAMPLES / example), "--out", str(out), timeout=600)
        assert run.returncode == 0, run.stdout + run.stderr
        listed = json.loads((out / "images.json").read_text())
        names = {entry["name"] for entry in listed.values()}
        expected = {"image-scoring": {"ghcr.io/asya-sh/example-image-scoring:0.1.0"},
                    "text-chunking": {"ghcr.io/asya-sh/example-text-chunking:0.1.0",
                                      "ghcr.io/asya-sh/example-text-chunking-node:0.1.0"}}[example]
        assert names == expected
        assert all(f"oci:{out / 'oci'}:" in line for line in run.stdout.splitlines())
    again = run_asya("build", str(EXAMPLES / "text-chunking"), "--out", str(tmp_path / "text-chunking"), "--json",
                     timeout=600)  # the layers are cached: seconds
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["out"] == str(tmp_path / "text-chunking") and len(report["images"]) == 2
    assert all(i["digest"].startswith("sha256:") and i["compressed_bytes"] > 0 for i in report["images"])


def test_dev_containers_runs_the_image_scoring_example(tmp_path: Path):
    skip_without_build_tools()
    skip_without_podman()
    results = tmp_path / "results.jsonl"
    run = run_asya("dev", str(EXAMPLES / "image-scoring"), "--input", str(EXAMPLES / "image-scoring/input.jsonl"),
                   "--containers", "--results", str(results), "--namespace", "containers-e2e", timeout=600)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "7 pods ready" in run.stdout
    records = read_jsonl(results)
    assert len(records) == 5 and all(r["status"]["error"] is None for r in records)
    assert {r["route"]["prev"][-1] for r in records} == {"store", "human-review"}
