"""``asya dev`` on both examples, end to end: every input's final record, checked field by field.

The expected payloads are computed by calling the example's handler functions directly, so the assertions check
that the mesh carried each envelope through the right actors, not a copy of the numbers.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asya_pulumi.local.broker import BROKER_KINDS, BrokerError, LocalBroker, broker_python
from e2e.conftest import EXAMPLES, read_jsonl, run_asya


def _load_handlers(example: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"{example}_handlers", EXAMPLES / example / "handlers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _write_inputs(path: Path, example: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    lines = read_jsonl(EXAMPLES / example / "input.jsonl") + extra
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def test_image_scoring_routes_each_image_and_records_failures(broker: LocalBroker, namespace: str, tmp_path: Path):
    handlers = _load_handlers("image-scoring")
    broken = {"route": "score", "payload": {"image_id": "broken", "pixels": []}}  # fails on purpose
    inputs = _write_inputs(tmp_path / "in.jsonl", "image-scoring", [broken])
    results = tmp_path / "out" / "results.jsonl"

    run = run_asya(
        "dev", str(EXAMPLES / "image-scoring"), "--input", str(tmp_path / "in.jsonl"), "--results", str(results),
        "--sqs-endpoint", broker.endpoint, "--namespace", namespace, "--replicas", "judge=2",
    )

    assert run.returncode == 1, run.stdout + run.stderr  # one input failed on purpose
    records = read_jsonl(results)
    assert len(records) == len(inputs)  # no fan-out in this pipeline: one final record per input
    by_image = {r["payload"]["image_id"]: r for r in records}
    for line in inputs[:-1]:
        expected = handlers.score_image(handlers.preprocess(line["payload"]))
        decided = "store" if expected["confidence"] > handlers.AUTO_ACCEPT_CONFIDENCE else "human-review"
        record = by_image[expected["image_id"]]
        assert record["status"]["error"] is None
        assert record["parent_id"] is None
        assert record["route"]["prev"] == ["preprocess", "score-image", "judge", decided]  # the judge's dynamic hop
        assert record["route"]["curr"] == "success-sink"
        assert record["payload"] == getattr(handlers, decided.replace("-", "_"))(expected)
    assert {r["route"]["prev"][-1] for r in records if r["status"]["error"] is None} == {"store", "human-review"}
    failed = by_image["broken"]
    error = failed["status"]["error"]
    assert error["actor"] == "preprocess" and error["type"] == "ValueError"
    assert "pixels" in error["message"] and error["reason"] and "Traceback" in error["traceback"]
    assert failed["route"]["curr"] == "preprocess" and failed["payload"] == broken["payload"]
    assert "succeeded, 1 failed" in run.stdout and "FAIL" in run.stdout and "pixels" in run.stdout


@pytest.mark.parametrize("kind", BROKER_KINDS)
def test_text_chunking_fans_out_through_node_on_each_embedded_broker(tmp_path: Path, kind: str):
    if kind == "localstack":
        try:
            broker_python()
        except BrokerError as exc:
            pytest.skip(str(exc))
    handlers = _load_handlers("text-chunking")
    empty = {"route": "count", "payload": {"doc_id": "empty", "text": "   "}}  # fails on purpose
    inputs = _write_inputs(tmp_path / "in.jsonl", "text-chunking", [empty])
    results = tmp_path / "results.jsonl"

    run = run_asya(  # no --sqs-endpoint: asya dev starts (and stops) its own broker
        "dev", str(EXAMPLES / "text-chunking"), "--input", str(tmp_path / "in.jsonl"), "--results", str(results),
        "--broker", kind,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    assert f"starting the embedded broker, {kind} (SQS + S3)" in run.stdout
    records = read_jsonl(results)
    ok = [r for r in records if r["status"]["error"] is None]
    for line in inputs[:-1]:
        payload = line["payload"]
        chunks = list(handlers.chunk(payload))
        mine = sorted((r for r in ok if r["payload"]["doc_id"] == payload["doc_id"]),
                      key=lambda r: r["payload"]["chunk_index"])
        assert len(mine) == len(chunks) == math.ceil(len(payload["text"].split()) / payload.get("chunk_words", 8))
        if len(chunks) > 1:  # fan-out: fresh, distinct ids, all pointing at the one input
            parents = {r["parent_id"] for r in mine}
            assert len(parents) == 1 and None not in parents
            assert len({r["id"] for r in mine}) == len(chunks) and parents.isdisjoint(r["id"] for r in mine)
        else:  # a single yield keeps the envelope's id
            assert mine[0]["parent_id"] is None
        for record, piece in zip(mine, chunks, strict=True):
            words = piece["text"].split()
            counted = {**piece, "words": len(words), "longest_word": max(words, key=len)}  # what words.js returns
            assert record["payload"] == handlers.summarize(counted)
            assert record["route"]["prev"] == ["chunk", "count-words", "summarize"]
    fox_children = [r for r in ok if r["payload"]["doc_id"] == "fox"]
    haiku_children = [r for r in ok if r["payload"]["doc_id"] == "haiku"]
    assert fox_children[0]["parent_id"] != haiku_children[0]["parent_id"]  # each input is its own parent
    [failed] = [r for r in records if r["status"]["error"] is not None]
    assert failed["status"]["error"]["actor"] == "chunk" and "text" in failed["status"]["error"]["message"]
    assert failed["payload"] == empty["payload"]
    assert len(records) == len(ok) + 1


def test_a_handler_that_cannot_start_fails_the_run_with_its_error(broker: LocalBroker, namespace: str, tmp_path: Path):
    """A handler that passes the pre-flight (its method is on its class, which ``--check`` does not create) yet
    cannot start: the constructor raises when the server creates the instance. The crash loop ends the run."""
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    for source in (EXAMPLES / "text-chunking").iterdir():
        text = source.read_text()
        (pipeline / source.name).write_text(text.replace("handlers.summarize", "handlers.Summarizer.summarize"))
    with (pipeline / "handlers.py").open("a") as handlers:
        handlers.write(
            "\n\nclass Summarizer:\n    def __init__(self):\n        raise RuntimeError('model weights missing')\n"
            "\n    def summarize(self, payload):\n        return payload\n"
        )

    run = run_asya(
        "dev", str(pipeline), "--send", "count", '{"text": "a b"}', "--timeout", "120",
        "--sqs-endpoint", broker.endpoint, "--namespace", namespace,
    )

    assert run.returncode == 1, run.stdout + run.stderr
    assert "summarize-0-handler keeps exiting" in run.stdout
    assert "model weights missing" in run.stdout  # the handler server's own last log line says what is wrong
