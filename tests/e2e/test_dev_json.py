"""``asya dev --json``: stdout is exactly one JSON object describing the run (every envelope's id, input, status,
route, record key and error; the totals; the exit status), and everything printed for people goes to stderr.

One real run of the image-scoring example with one input that succeeds and one that the handler refuses (not
retried): the object must say which is which, with the keys docs/cli.md lists, and the exit status must be the run's.
"""

from __future__ import annotations

import json
from pathlib import Path

from e2e.conftest import EXAMPLES, run_asya

#: The object's keys, as docs/cli.md lists them (scripts rely on them: a change here is a change of contract).
RUN_KEYS = {"namespace", "endpoint", "ok", "exit", "inputs", "records", "succeeded", "failed", "lost", "mesh_s",
            "elapsed_s", "envelopes", "problems", "results", "logs"}
ENVELOPE_KEYS = {"id", "input", "status", "route", "key", "error"}


def test_json_is_the_only_thing_on_stdout_and_names_every_envelope(tmp_path: Path, namespace: str) -> None:
    inputs = tmp_path / "input.jsonl"
    inputs.write_text(
        '{"id": "good-1", "route": "score", "payload": {"image_id": "img-1", "pixels": [255, 250, 245]}}\n'
        '{"id": "bad-1", "route": "score", "payload": {"image_id": "img-7"}}\n'
    )
    done = run_asya("dev", str(EXAMPLES / "image-scoring"), "--input", str(inputs), "--namespace", namespace,
                    "--results", str(tmp_path / "results.jsonl"), "--json")

    assert done.returncode == 1, done.stdout + done.stderr  # one input ended in the error sink
    data = json.loads(done.stdout)  # the whole of stdout parses: nothing else was printed there
    assert set(data) == RUN_KEYS
    assert (data["ok"], data["exit"], data["namespace"]) == (False, 1, namespace)
    assert (data["inputs"], data["records"], data["succeeded"], data["failed"], data["lost"]) == (2, 2, 1, 1, 0)
    assert data["results"] == str(tmp_path / "results.jsonl") and data["problems"] == []
    by_id = {e["id"]: e for e in data["envelopes"]}
    assert set(by_id) == {"good-1", "bad-1"} and all(set(e) == ENVELOPE_KEYS for e in by_id.values())
    good, bad = by_id["good-1"], by_id["bad-1"]
    assert good["status"] == "succeeded" and good["input"] == "good-1" and good["error"] is None
    assert good["route"][:3] == ["preprocess", "score-image", "judge"] and good["key"] == "succeeded/good-1.json"
    assert bad["status"] == "failed" and bad["key"] == "failed/bad-1.json"
    assert bad["error"]["actor"] == "preprocess" and bad["error"]["type"] == "ValueError"
    assert "pixels" in bad["error"]["message"] and bad["error"]["reason"]
    # What people read went to stderr: the broker starting, the summary.
    assert "2 input(s) → 2 final record(s): 1 succeeded, 1 failed" in done.stderr
    assert "FAIL bad-1" in done.stderr


def test_json_with_an_option_that_keeps_the_mesh_up_is_a_usage_error() -> None:
    done = run_asya("dev", str(EXAMPLES / "image-scoring"), "--json", "--watch")

    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("asya: error: --json prints the summary of one run") and "--watch" in done.stderr


def test_json_with_a_misspelled_handler_prints_no_object_and_exits_2(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    for source in (EXAMPLES / "image-scoring").iterdir():
        (pipeline / source.name).write_bytes(source.read_bytes())
    manifest = pipeline / "judge.yaml"
    manifest.write_text(manifest.read_text().replace("handlers.judge", "handlers.jugde"))

    done = run_asya("dev", str(pipeline), "--json")

    assert done.returncode == 2 and done.stdout == "", done.stdout
    assert "did you mean 'judge'?" in done.stderr
