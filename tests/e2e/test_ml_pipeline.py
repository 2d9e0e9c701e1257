"""Today's features together in ``asya dev``, over real HTTP, SQS and S3: an ML job (tests/e2e/ml_pipeline) whose
``split`` fans a document out into chunks, ``embed`` is batched and fails one chunk by returning an Exception,
``join`` gathers the chunks (fan-in), ``call-api`` is rate limited, started through the front door
(``asya dev --gateway``), by an upload to the mesh bucket (S3 trigger) and by ``--fire`` (a schedule).

Each handler appends a JSON line per call to ``$ML_E2E_MARKS/{actor}.jsonl``, so batch sizes, call times and the
join's input are proven from what ran, not only from the records.
"""

from __future__ import annotations

import itertools
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from asya_runtime.client import GatewayClient, StatusEvent
from asya_runtime.triggers import TRIGGER_HEADER
from e2e.conftest import ASYA, REPO

PIPELINE = Path(__file__).parent / "ml_pipeline"
START_TIMEOUT_S = 180.0
RATE_PER_SECOND, BURST = 5.0, 2  # call-api.yaml's rateLimit


@dataclass(frozen=True)
class DevMesh:
    url: str
    endpoint: str
    namespace: str
    marks: Path
    output: list[str]

    def calls(self, actor: str, doc: str | None = None) -> list[dict[str, Any]]:
        """The handler calls ``actor`` recorded (for document ``doc``, or all), in the order they were made."""
        path = self.marks / f"{actor}.jsonl"
        lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        return [c for c in lines if doc is None or c.get("doc") == doc or doc in c.get("docs", [])]


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevMesh]:
    marks = tmp_path_factory.mktemp("ml-marks")
    namespace = f"ml-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen(
        [ASYA, "dev", str(PIPELINE), "--gateway", "--keep-running", "--namespace", namespace],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        env={**os.environ, "ML_E2E_MARKS": str(marks)},
    )
    lines: queue.Queue[str] = queue.Queue()
    seen: list[str] = []

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
            seen.append(line)

    threading.Thread(target=read, daemon=True).start()
    url = endpoint = ""
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while not (url and endpoint) and time.monotonic() < deadline and process.poll() is None:
            try:
                line = lines.get(timeout=0.5)
            except queue.Empty:
                continue
            if line.startswith("gateway: "):
                url = line.removeprefix("gateway: ").strip()
            if "keeps running" in line and (found := re.search(r"--sqs-endpoint (\S+)", line)):
                endpoint = found.group(1)
        assert url and endpoint, f"asya dev printed no gateway or keep-running line; output:\n{''.join(seen)}"
        yield DevMesh(url=url, endpoint=endpoint, namespace=namespace, marks=marks, output=seen)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        print("".join(seen))


def _doc() -> str:
    return f"doc-{uuid.uuid4().hex[:8]}"


def _s3(mesh: DevMesh) -> Any:
    return boto3.client("s3", endpoint_url=mesh.endpoint, region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")


def test_a_document_through_the_gateway_is_split_batched_joined_in_order_and_rate_limited(mesh: DevMesh) -> None:
    doc = _doc()
    texts = [f"{doc} chunk {i}" for i in range(12)]
    texts[5] = "poison"  # embed returns a ValueError for it: that chunk alone fails
    with GatewayClient(mesh.url) as gateway:
        envelope_id = gateway.submit(route="ingest", payload={"doc": doc, "texts": texts})
        running: list[str] = []
        final = None
        for event in gateway.events(envelope_id, deadline=time.monotonic() + 60):
            if not isinstance(event, StatusEvent):
                continue
            if event.status.status == "running" and event.status.actor and event.status.actor not in running:
                running.append(event.status.actor)
            if event.status.terminal:
                final = event.status
                break
        record = gateway.get(envelope_id)
        children = [gateway.get(child["id"]) for child in record.data.get("children", [])]
    # (1) the submission ends succeeded with the joined payload: chunks in emission order, the poison chunk an error
    # item in its place (docs/sidecar.md, Fan-in: "call with what is known"), so join saw 12 items, 1 failed.
    assert final is not None and final.status == "succeeded", (final, record)
    assert record.payload["doc"] == doc and record.payload["indexed"] is True, record.payload
    assert record.payload["chunks"] == list(range(12)), record.payload
    assert record.payload["failed"] == [5] and record.payload["vectors"][5] is None, record.payload
    assert record.payload["errors"] == ["ValueError"], record.payload  # the Exception's class, as if it had raised
    assert [c["items"] for c in mesh.calls("join", doc)] == [12]
    # (2) the status moved through running: the submission's record at split (its own hop), then each chunk's own
    # record (a fan-out child, listed in data.children) at embed. join gathers a child before a running report, so
    # a gathered child's record stays `running` at embed (it reaches no sink: its parent's record ends instead).
    assert running == ["split"], running
    assert record.data.get("children_total") == 12 and len(children) == 12, record.data
    ok_children = [c for i, c in enumerate(children) if i != 5]
    assert {(c.status, c.actor) for c in ok_children} == {("running", "embed")}, [(c.status, c.actor) for c in children]
    assert (children[5].status, children[5].actor) == ("failed", "embed"), children[5]
    # (4) embed was called with batches larger than 1, 12 chunks in all, each chunk once
    sizes = [c["size"] for c in mesh.calls("embed", doc)]
    assert sum(sizes) == 12 and max(sizes) > 1 and max(sizes) <= 8, sizes
    assert len(mesh.calls("call-api", doc)) == 1 and len(mesh.calls("split", doc)) == 1


def test_the_rate_limited_actor_spaces_its_calls_across_documents(mesh: DevMesh) -> None:
    docs = [_doc() for _ in range(8)]
    with GatewayClient(mesh.url) as gateway:
        ids = [gateway.submit(route="ingest", payload={"doc": doc, "chunks": 2}) for doc in docs]
        finals = [gateway.wait(envelope_id, timeout=90) for envelope_id in ids]
    assert [f.status for f in finals] == ["succeeded"] * len(docs), finals
    times = sorted(c["t"] for doc in docs for c in mesh.calls("call-api", doc))
    assert len(times) == len(docs)
    # (3) in any span at most BURST + RATE·t calls start: n calls take at least (n - BURST) / RATE seconds. The times
    # are the handler's, not the tokens': a call from a full bucket starts one store round trip after its token's
    # time (its take is on the wire), later ones on their token's time, so the span may be short by one round trip
    # (measured ~50 ms on the loaded 2-core machine; allowed 0.1 s, half a token's interval).
    span = times[-1] - times[0]
    assert span >= (len(times) - BURST) / RATE_PER_SECOND - 0.1, (span, times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert sum(gap < 0.5 / RATE_PER_SECOND for gap in gaps) <= BURST, gaps  # only a burst's calls come together


def test_an_upload_under_the_trigger_prefix_starts_a_run_that_ends_with_a_final_record(mesh: DevMesh) -> None:
    s3 = _s3(mesh)
    bucket = f"asya-{mesh.namespace}-results"
    key = f"incoming/{_doc()}.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"a document to embed")
    deadline = time.monotonic() + 60
    found: list[dict[str, Any]] = []
    while not found and time.monotonic() < deadline:
        listing = s3.list_objects_v2(Bucket=bucket, Prefix="succeeded/").get("Contents", [])
        records = [json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()) for item in listing]
        found = [r for r in records if r["headers"].get(TRIGGER_HEADER) == "uploads" and r["payload"]["doc"] == key]
        time.sleep(0.5)
    assert found, f"no final record for the upload {key}"
    [record] = found
    assert record["payload"]["chunks"] == [0, 1, 2] and record["payload"]["indexed"] is True, record
    assert record["route"]["prev"] == ["split", "embed", "join", "call-api"]
    assert len(mesh.calls("join", key)) == 1 and len(mesh.calls("call-api", key)) == 1


def test_fire_runs_the_schedule_once_and_json_reports_it(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()
    env_marks = {**os.environ, "ML_E2E_MARKS": str(marks)}
    done = subprocess.run([ASYA, "dev", str(PIPELINE), "--fire", "hourly", "--json",
                           "--namespace", f"mlf-{uuid.uuid4().hex[:8]}"],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env=env_marks)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = json.loads(done.stdout)
    assert summary["ok"] and summary["inputs"] == 1 and summary["succeeded"] == 1, summary
    [envelope] = summary["envelopes"]
    assert envelope["input"].startswith("hourly-") and envelope["route"] == ["split", "embed", "join", "call-api"]
    joined = [json.loads(line) for line in (marks / "join.jsonl").read_text().splitlines()]
    assert joined == [{"t": joined[0]["t"], "doc": "nightly", "items": 3, "failed": []}]
