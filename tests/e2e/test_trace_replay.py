"""Issue 13's first acceptance point, end to end: a local mesh (``asya dev --watch``) with a failing actor;
``asya trace ID`` shows every hop of a failed envelope with its error; after the handler is fixed (saved, and
reloaded by ``--watch``), ``asya replay --actor check`` brings every failed envelope to success, none twice.

The mesh runs on the session's broker (``--sqs-endpoint``), so no second broker starts; every command is the
installed ``asya`` as a user runs it.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

from support.mesh import wait_for

from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.records import result_bucket_name
from e2e.conftest import ASYA, REPO, run_asya
from e2e.test_dev_watch import Output, _save

HEAD = "apiVersion: asya.sh/v1alpha1\n"
MESH = HEAD + "kind: ActorMesh\nmetadata: {name: ops}\nspec:\n  routes: {go: [prep, check]}\n"
PREP = HEAD + "kind: AsyncActor\nmetadata: {name: prep}\nspec: {image: x, handler: prep.run}\n"
CHECK = HEAD + (
    "kind: AsyncActor\nmetadata: {name: check}\nspec:\n  image: x\n  handler: check.run\n"
    "  resiliency: {policies: {default: {maxAttempts: 2, initialInterval: 100ms, jitter: false}}}\n"
)
BROKEN = (
    "def run(payload):\n"
    "    if payload['bad']:\n"
    "        raise ValueError(f\"bad input {payload['n']}\")\n"
    "    return {**payload, 'checked': True}\n"
)
FIXED = "def run(payload):\n    return {**payload, 'checked': True}\n"
INPUTS = 6  # the odd ones fail


def _records(s3: Any, bucket: str, status: str) -> dict[str, dict[str, Any]]:
    listing = s3.list_objects_v2(Bucket=bucket, Prefix=f"{status}/").get("Contents", [])
    return {
        item["Key"][len(status) + 1 : -5]: json.loads(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
        for item in listing
    }


def test_trace_shows_the_failed_hops_and_replay_after_a_fix_succeeds_once(
    broker: LocalBroker, s3: Any, namespace: str, tmp_path: Path
) -> None:
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    for name, text in {"mesh.yaml": MESH, "prep.yaml": PREP, "check.yaml": CHECK, "check.py": BROKEN,
                       "prep.py": "def run(payload):\n    return payload\n"}.items():
        (pipeline / name).write_text(text)
    inputs = tmp_path / "inputs.jsonl"
    inputs.write_text("".join(json.dumps({"route": "go", "payload": {"n": i, "bad": i % 2 == 1}}) + "\n"
                              for i in range(INPUTS)))
    where = ["--sqs-endpoint", broker.endpoint, "--namespace", namespace]
    process = subprocess.Popen(
        [ASYA, "dev", str(pipeline), "--input", str(inputs), "--watch", *where, "--logs", str(tmp_path / "logs")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    output = Output(process)
    output.start()
    bucket = result_bucket_name(namespace=namespace)
    try:
        output.wait_for("watching")
        failed = _records(s3, bucket, "failed")
        assert len(failed) == INPUTS // 2 and len(_records(s3, bucket, "succeeded")) == INPUTS // 2

        # -- trace: every hop of a failed envelope, with the error and its traceback
        failed_id = sorted(failed)[0]
        text = run_asya("trace", failed_id, *where, timeout=60)
        assert text.returncode == 1, text.stdout + text.stderr  # a failed envelope: exit status 1
        assert f"envelope {failed_id}: failed" in text.stdout
        for expected in ("prep", "check", "retry", "error", "ValueError: bad input", "Traceback (most recent call"):
            assert expected in text.stdout, text.stdout
        as_json = run_asya("trace", failed_id, "--json", *where, timeout=60)
        [branch] = json.loads(as_json.stdout)["branches"]
        steps = branch["steps"]
        assert [(s["actor"], s["attempt"], s["outcome"]) for s in steps] == [
            ("prep", 1, "ok"), ("check", 1, "retry"), ("check", 2, "error"),
        ]
        assert all(s["duration_s"] is not None and s["duration_s"] >= 0 for s in steps)
        assert steps[1]["error_type"] == "ValueError" and steps[2]["waited_s"] >= 0.1 - 0.002  # the backoff
        assert "raise ValueError" in steps[2]["error"]["traceback"]

        # -- fix the handler; --watch reloads it
        _save(pipeline / "check.py", FIXED)
        output.wait_for("reloaded check", timeout_s=90)

        plan = run_asya("replay", "--actor", "check", "--dry-run", "--json", *where, timeout=60)
        assert plan.returncode == 0, plan.stdout + plan.stderr
        planned = json.loads(plan.stdout)
        assert sorted(item["original_id"] for item in planned["send"]) == sorted(failed)
        assert {item["to"] for item in planned["send"]} == {"check"} and planned["skip"] == []

        sent = run_asya("replay", "--actor", "check", *where, timeout=60)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "sent 3 replay(s)" in sent.stdout

        def replays_done() -> dict[str, dict[str, Any]]:
            done = {r["replay_of"]: r for r in _records(s3, bucket, "succeeded").values() if r.get("replay_of")}
            return done if len(done) == len(failed) else {}

        done = wait_for(replays_done, timeout_s=30, what="a success record for every replay")
        assert set(done) == set(failed)
        for original, record in done.items():
            assert record["payload"]["checked"] is True and record["status"]["attempt"] == 1
            # the history goes on from the original's: its failed attempts, then the replay's hop
            assert [(h["actor"], h["outcome"]) for h in record["hops"]] == [
                ("prep", "ok"), ("check", "retry"), ("check", "error"), ("check", "ok"),
            ], original

        again = run_asya("replay", "--actor", "check", *where, timeout=60)
        assert again.returncode == 0 and "sent 0 replay(s)" in again.stdout, again.stdout + again.stderr
        assert again.stdout.count("already replayed as") == len(failed)
        replayed = run_asya("trace", failed_id, "--json", *where, timeout=60)
        assert replayed.returncode == 0 and json.loads(replayed.stdout)["state"] == "replayed"
        succeeded = _records(s3, bucket, "succeeded")
        assert len(succeeded) == INPUTS // 2 + len(failed)  # none twice: one success per replayed failure
        assert len(_records(s3, bucket, "failed")) == len(failed)  # the originals stay, as history

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) in (0, 1)
    finally:
        print("".join(output.seen))
        if process.poll() is None:
            process.kill()
