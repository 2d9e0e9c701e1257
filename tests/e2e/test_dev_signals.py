"""SIGTERM and Ctrl-C stop ``asya dev`` cleanly: every process it started (actors, sinks, the broker) is gone."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import psutil
import pytest

from e2e.conftest import ASYA, EXAMPLES, REPO


def _wait_for_line(process: subprocess.Popen[str], text: str, timeout_s: float) -> list[str]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        if text in line:
            return seen
    raise AssertionError(f"{text!r} not printed within {timeout_s} s; output: {''.join(seen)}")


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_every_process(tmp_path: Path, signum: int, status: int):
    process = subprocess.Popen(
        [ASYA, "dev", str(EXAMPLES / "text-chunking"), "--keep-running", "--logs", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
    )
    try:
        _wait_for_line(process, "keeps running", timeout_s=180)
        children = psutil.Process(process.pid).children(recursive=True)
        commands = [" ".join(c.cmdline()) for c in children]
        hosts = [c for c in commands if "asya_runtime.sidecar.host" in c]
        assert len(hosts) == 1 and hosts[0].count('"ASYA_ACTOR"') == 5  # one process: 3 actors' + 2 sinks' sidecars
        assert sum("handler_server" in c for c in commands) == 3
        assert any("fauxqs" in c or "localstack" in c for c in commands)  # the embedded broker

        process.send_signal(signum)
        assert process.wait(timeout=90) == status
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == [], [" ".join(p.cmdline()) for p in alive]
    finally:
        if process.poll() is None:
            process.kill()
