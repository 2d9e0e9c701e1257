"""``asya dev``'s embedded broker SIGKILLed mid-run loses nothing: it comes back on the same port from its state file,
and every envelope still ends with exactly the record it gets without the kill.

The run is the image-scoring example as a user runs it (``asya dev`` with its own broker, no ``--sqs-endpoint``)
on a few hundred inputs, some of them broken on purpose so that error records are counted too. The expected
records are computed by calling the example's handlers directly, as in test_dev_examples.py: "exactly as without
the kill" is checked against what the pipeline must produce, not against a second run.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import psutil

from asya_pulumi.local.broker import LOCAL_CREDENTIALS
from e2e.conftest import ASYA, EXAMPLES, REPO, read_jsonl
from e2e.test_dev_examples import _load_handlers

INPUTS = 500
BROKEN_EVERY = 25  # every 25th input has no pixels: preprocess refuses it, the error sink records it


def _inputs() -> list[dict[str, Any]]:
    lines = []
    for n in range(INPUTS):
        pixels = [] if n % BROKEN_EVERY == 0 else [(n * 7 + k * 31) % 256 for k in range(4)]
        lines.append({"route": "score", "payload": {"image_id": f"img-{n:04d}", "pixels": pixels}})
    return lines


def _broker_pid(asya_dev: psutil.Process) -> int:
    """The broker: the child of ``asya dev`` running ``server.mjs``, leader of its own process group."""
    for child in asya_dev.children(recursive=True):
        try:
            if any(part.endswith("server.mjs") for part in child.cmdline()):
                assert os.getpgid(child.pid) == child.pid  # process_group.spawn: its own group
                return child.pid
        except psutil.NoSuchProcess:
            continue
    raise AssertionError("no broker process under asya dev")


def _queued(endpoint: str, namespace: str) -> int:
    """Messages in the mesh's actor queues right now (visible, in flight, delayed), read from the broker."""
    sqs = boto3.client("sqs", endpoint_url=endpoint, **LOCAL_CREDENTIALS)
    total = 0
    for url in sqs.list_queues(QueueNamePrefix=f"asya-{namespace}_").get("QueueUrls", []):
        if url.endswith("_dlq"):
            continue
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        total += sum(int(attributes[name]) for name in names)
    return total


def test_sigkill_of_the_embedded_broker_mid_run_loses_no_envelope(tmp_path: Path) -> None:
    handlers = _load_handlers("image-scoring")
    inputs = _inputs()
    (tmp_path / "in.jsonl").write_text("".join(json.dumps(line) + "\n" for line in inputs))
    results = tmp_path / "results.jsonl"
    namespace = "broker-kill"
    env = {k: v for k, v in os.environ.items() if k != "ASYA_BROKER"}  # the default broker: fauxqs
    process = subprocess.Popen(
        [ASYA, "dev", str(EXAMPLES / "image-scoring"), "--input", str(tmp_path / "in.jsonl"),
         "--results", str(results), "--namespace", namespace, "--timeout", "240"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, env=env,
    )
    assert process.stdout is not None
    lines: list[str] = []
    sent = threading.Event()
    endpoint: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            found = re.search(r"^sent \d+ envelope\(s\) to mesh '[^']+' at (http://\S+)", line)
            if found:
                endpoint.append(found.group(1))
                sent.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        assert sent.wait(timeout=180), "".join(lines)
        asya_dev = psutil.Process(process.pid)
        before = _broker_pid(asya_dev)
        time.sleep(0.5)  # into the burst
        queued = _queued(endpoint[0], namespace)
        os.killpg(before, signal.SIGKILL)
        killed_at = time.monotonic()
        deadline = killed_at + 30
        after = None
        while after is None and time.monotonic() < deadline:
            time.sleep(0.05)
            try:
                pid = _broker_pid(asya_dev)
                after = pid if pid != before else None
            except AssertionError:
                pass
        assert after is not None, "the broker was not restarted"
        code = process.wait(timeout=280)
    finally:
        if process.poll() is None:
            process.kill()
        reader.join(timeout=10)
    output = "".join(lines)
    summary = next(line for line in lines if "final record(s)" in line).strip()
    idle = next((line for line in lines if line.startswith("mesh idle")), "").strip()
    print(f"broker kill: {queued} messages queued at the kill; pid {before} -> {after}; {summary}; {idle}")

    assert queued > 0, "the kill came after the burst: nothing was at risk"
    assert code == 1, output  # the broken inputs fail on purpose; nothing else does
    records = read_jsonl(results)
    broken = [line for n, line in enumerate(inputs) if n % BROKEN_EVERY == 0]
    assert len(records) == INPUTS  # one record per input, none lost, none twice
    assert sorted(r["payload"]["image_id"] for r in records) == sorted(i["payload"]["image_id"] for i in inputs)
    failed = [r for r in records if r["status"]["error"] is not None]
    assert sorted(r["payload"]["image_id"] for r in failed) == sorted(b["payload"]["image_id"] for b in broken)
    assert all(r["status"]["error"]["actor"] == "preprocess" for r in failed)
    by_image = {r["payload"]["image_id"]: r for r in records}
    for line in inputs:
        if not line["payload"]["pixels"]:
            continue
        expected = handlers.score_image(handlers.preprocess(line["payload"]))
        decided = "store" if expected["confidence"] > handlers.AUTO_ACCEPT_CONFIDENCE else "human-review"
        record = by_image[expected["image_id"]]
        assert record["route"]["prev"] == ["preprocess", "score-image", "judge", decided]
        assert record["payload"] == getattr(handlers, decided.replace("-", "_"))(expected)
    ok = INPUTS - len(broken)
    assert f"{INPUTS} input(s) → {INPUTS} final record(s): {ok} succeeded, {len(broken)} failed" in output, output
    assert "the embedded broker exited and was restarted 1 time(s) from its state file" in output
