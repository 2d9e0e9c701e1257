"""``asya dev --watch``: saving a handler reloads only its handler server, with broker, queues and sidecars kept;
``--resend`` runs the inputs again and prints what changed; a handler saved with a syntax error is reported and
the next save recovers."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import threading
import time
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


def _save(path: Path, text: str) -> None:
    """Write ``text`` with a modification time that surely differs from the last one (coarse file systems)."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    os.utime(path, ns=(before + 2_000_000_000, before + 2_000_000_000))


def test_saving_a_handler_reloads_it_and_resends_without_restarting_the_broker(tmp_path: Path) -> None:
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "mesh.yaml").write_text(MESH)
    (pipeline / "shout.yaml").write_text(SHOUT)
    (pipeline / "tag.yaml").write_text(TAG)
    (pipeline / "shout.py").write_text(HANDLER % "one")
    (pipeline / "tag.py").write_text("def run(payload):\n    return {**payload, 'tagged': True}\n")
    process = subprocess.Popen(
        [ASYA, "dev", str(pipeline), "--send", "go", '{"n": 1}', "--watch", "--resend", "--logs", str(tmp_path / "l")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    output = Output(process)
    output.start()
    try:
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

        _save(pipeline / "shout.py", "def run(payload:\n")
        broken = output.wait_for("fix it and save again", timeout_s=90)
        broken += output.wait_for("SyntaxError")
        assert "reload of 'shout' failed" in broken, broken

        _save(pipeline / "shout.py", HANDLER % "three")
        recovered = output.wait_for("since the previous run")
        assert "reloaded shout" in recovered, recovered
        assert '+ ok   shout→tag  {"n": 1, "tagged": true, "word": "three"}' in recovered, recovered

        assert process.stdin is not None
        process.stdin.write("\n")  # Enter: the same inputs again, nothing changed
        process.stdin.flush()
        assert "0 input(s) changed, 1 unchanged" in output.wait_for("since the previous run")

        assert brokers[0].is_running()  # the same broker all along ...
        assert "".join(output.seen).count("starting the embedded broker") == 1
        assert _handler_pid(process.pid, "tag") == tag_handler  # ... and only the edited actor was restarted
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        print("".join(output.seen))
        if process.poll() is None:
            process.kill()


def _handler_pid(root: int, actor: str) -> int:
    [pid] = [
        p.pid for p in psutil.Process(root).children(recursive=True)
        if "handler_server" in " ".join(p.cmdline()) and p.environ().get("ASYA_HANDLER", "").startswith(f"{actor}.")
    ]
    return pid
