"""``asya dev --watch``: saving a handler reloads only its handler server, with broker, queues and sidecars kept;
``--resend`` runs the inputs again and prints what changed; a save the handler pre-flight refuses (a syntax error, a
misspelled function, a wrong signature) is one line and keeps the running server, and the next good save reloads."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil

from e2e.conftest import ASYA, REPO

HEAD = "apiVersion: asya.sh/v1alpha1\n"
MESH = HEAD + "kind: ActorMesh\nmetadata: {name: watched}\nspec:\n  routes: {go: [shout, tag]}\n"
SHOUT = HEAD + "kind: AsyncActor\nmetadata: {name: shout}\nspec: {image: x, handler: shout.run}\n"
TAG = HEAD + "kind: AsyncActor\nmetadata: {name: tag}\nspec: {image: x, handler: tag.run}\n"
HANDLER = "def run(payload):\n    return {**payload, 'word': %r}\n"


class Output(threading.Thread):
    """Collects the command's output lines as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        super().__init__(daemon=True)
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []

    def run(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line)

    def wait_for(self, text: str, *, timeout_s: float = 120) -> str:
        """Every line up to and including the first (new) one containing ``text``."""
        deadline = time.monotonic() + timeout_s
        chunk: list[str] = []
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            chunk.append(line)
            self.seen.append(line)
            if text in line:
                return "".join(chunk)
        raise AssertionError(f"{text!r} not printed within {timeout_s} s; output so far:\n{''.join(self.seen)}")


@contextlib.contextmanager
def _watching(*args: str) -> Iterator[tuple[subprocess.Popen[str], Output]]:
    """``asya dev ARGS`` with stdin a pipe and its output collected; afterwards the output is printed (for a failing
    test's report) and a process still running is killed."""
    process = subprocess.Popen(
        [ASYA, "dev", *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        cwd=REPO,
    )
    output = Output(process)
    output.start()
    try:
        yield process, output
    finally:
        print("".join(output.seen))
        if process.poll() is None:
            process.kill()


def _save(path: Path, text: str) -> None:
    """Write ``text`` with a modification time that surely differs from the last one (coarse file systems)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


#: Saves the pre-flight refuses, and what its line says: a syntax error, a misspelled function, a wrong signature.
BROKEN_SAVES = [
    ("def run(payload:\n", "SyntaxError"),
    ("def rnu(payload):\n    return payload\n", "did you mean 'rnu'?"),
    ("def run(payload, context):\n    return payload\n", "cannot be called with one argument"),
]


def test_saving_a_handler_reloads_it_and_resends_without_restarting_the_broker(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "mesh.yaml").write_text(MESH)
    (pipeline / "shout.yaml").write_text(SHOUT)
    (pipeline / "tag.yaml").write_text(TAG)
    (pipeline / "shout.py").write_text(HANDLER % "one")
    (pipeline / "tag.py").write_text("def run(payload):\n    return {**payload, 'tagged': True}\n")
    with _watching(str(pipeline), "--send", "go", '{"n": 1}', "--watch", "--resend", "--logs",
                   str(tmp_path / "l")) as (process, output):
        first = output.wait_for("watching")
        assert '"word": "one"' in first, first
        brokers = [p for p in psutil.Process(process.pid).children(recursive=True) if "fauxqs" in " ".join(p.cmdline())]
        assert len(brokers) == 1
        tag_handler = _handler_pid(process.pid, "tag")

        _save(pipeline / "shout.py", HANDLER % "two")
        changed = output.wait_for("since the previous run")
        assert "reloading shout ..." in changed and "reloaded shout" in changed, changed
        assert '- ok   shout→tag  {"n": 1, "tagged": true, "word": "one"}' in changed, changed
        assert '+ ok   shout→tag  {"n": 1, "tagged": true, "word": "two"}' in changed, changed
        assert "1 input(s) changed, 0 unchanged" in changed

        # Broken saves: the pre-flight reports each in one line, and the running server (code "two") stays.
        shout_handler = _handler_pid(process.pid, "shout")
        for text, expected in BROKEN_SAVES:
            _save(pipeline / "shout.py", text)
            broken = output.wait_for("fix it and save again", timeout_s=90)
            assert "not reloaded: shout (the running code stays" in broken, broken
            [line] = [x for x in broken.splitlines() if x.startswith("asya dev: ")]
            assert "shout.yaml: handler 'shout.run'" in line and expected in line, line
            assert not any(x.startswith(("reload of", "reloaded")) for x in broken.splitlines()), broken
            assert _handler_pid(process.pid, "shout") == shout_handler
        assert process.stdin is not None
        process.stdin.write("\n")  # Enter: the old code still answers, nothing was lost
        process.stdin.flush()
        assert "0 input(s) changed, 1 unchanged" in output.wait_for("since the previous run")

        _save(pipeline / "shout.py", HANDLER % "three")
        recovered = output.wait_for("since the previous run")
        assert "reloaded shout" in recovered, recovered
        assert '+ ok   shout→tag  {"n": 1, "tagged": true, "word": "three"}' in recovered, recovered
        assert _handler_pid(process.pid, "shout") != shout_handler

        process.stdin.write("\n")  # Enter: the same inputs again, nothing changed
        process.stdin.flush()
        assert "0 input(s) changed, 1 unchanged" in output.wait_for("since the previous run")

        assert brokers[0].is_running()  # the same broker all along ...
        assert "".join(output.seen).count("starting the embedded broker") == 1
        assert _handler_pid(process.pid, "tag") == tag_handler  # ... and only the edited actor was restarted
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0


def _handler_pid(root: int, actor: str) -> int:
    [pid] = [
        p.pid for p in psutil.Process(root).children(recursive=True)
        if "handler_server" in " ".join(p.cmdline()) and p.environ().get("ASYA_HANDLER", "").startswith(f"{actor}.")
    ]
    return pid


SLOW = HEAD + "kind: AsyncActor\nmetadata: {name: slow}\nspec: {image: x, handler: slow.run}\n"
SLOW_MESH = HEAD + "kind: ActorMesh\nmetadata: {name: reloads}\nspec:\n  routes: {go: [slow]}\n"
#: Records each call's start (``calls``), then takes a second: long enough for a reload to land mid-call.
SLOW_HANDLER = (
    "import json, os, time\n"
    "def run(payload):\n"
    "    with open(os.path.join(os.path.dirname(__file__), 'calls'), 'a') as calls:\n"
    "        calls.write(json.dumps(payload) + '\\n')\n"
    "    time.sleep(1.0)\n"
    "    return {**payload, 'word': %r}\n"
)


def test_a_reload_during_a_call_takes_about_a_second_and_the_envelope_ends_once(tmp_path: Path) -> None:
    """The old server finishes the call in flight (its answer goes on), then exits at once; the new one answers
    the next. ``--watch`` without ``--input`` sends the pipeline's input.jsonl."""
    import boto3

    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "mesh.yaml").write_text(SLOW_MESH)
    (pipeline / "slow.yaml").write_text(SLOW)
    (pipeline / "slow.py").write_text(SLOW_HANDLER % "one")
    (pipeline / "input.jsonl").write_text('{"route": "go", "payload": {"n": 1}}\n')
    calls = pipeline / "calls"
    with _watching(str(pipeline), "--watch", "--logs", str(tmp_path / "l")) as (process, output):
        first = output.wait_for("watching")
        assert f"input: {pipeline}/input.jsonl" in first and '"word": "one"' in first, first
        endpoint = first.split(" at ")[-1].split()[0]
        sent = subprocess.run(
            [ASYA, "send", "slow", '{"n": 2}', "--sqs-endpoint", endpoint, "--namespace", "reloads"],
            capture_output=True, text=True, timeout=60, check=True,
        )
        envelope_id = sent.stdout.strip().splitlines()[-1]
        deadline = time.monotonic() + 30
        while '"n": 2' not in (calls.read_text() if calls.exists() else ""):  # the call is running
            assert time.monotonic() < deadline, "the sent envelope was never called"
            time.sleep(0.02)

        saved = time.monotonic()
        _save(pipeline / "slow.py", SLOW_HANDLER % "two")
        output.wait_for("reloaded slow")
        reload_s = time.monotonic() - saved
        print(f"reload during a call: {reload_s:.2f} s from the save")
        assert reload_s < 4.0, f"{reload_s:.2f} s from the save to the reload (the old server waited out its stop?)"

        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                          aws_secret_access_key="test")
        deadline = time.monotonic() + 30
        while True:
            keys = [item["Key"] for item in s3.list_objects_v2(Bucket="asya-reloads-results").get("Contents", [])]
            if any(envelope_id in key for key in keys) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert [key for key in keys if envelope_id in key] == [f"succeeded/{envelope_id}.json"], keys
        record = json.loads(s3.get_object(Bucket="asya-reloads-results", Key=f"succeeded/{envelope_id}.json")["Body"]
                            .read())
        assert record["payload"] == {"n": 2, "word": "one"}, "the call in flight was finished by the old code"
        assert [json.loads(line) for line in calls.read_text().splitlines()].count({"n": 2}) == 1, "called once"

        assert process.stdin is not None
        process.stdin.write("\n")  # Enter: input.jsonl again, through the new code
        process.stdin.flush()
        changed = output.wait_for("since the previous run")
        assert '+ ok   slow  {"n": 1, "word": "two"}' in changed, changed
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
