"""The local supervisor with real processes: restarts, crash-loop reports, readiness, and no orphans on stop."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from asya_pulumi.local.supervisor import CRASH_LOOP_EXITS, ProcessSpec, Supervisor


def _python(name: str, code: str, tmp_path: Path, *, ready: str | None = None) -> ProcessSpec:
    return ProcessSpec(
        name=name, argv=[sys.executable, "-c", code], env=dict(os.environ), cwd=tmp_path, group=name, ready_marker=ready
    )


def _until(condition, timeout_s: float = 30.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_a_killed_process_is_restarted(tmp_path: Path):
    spec = _python("sleeper", "print('up', flush=True); import time; time.sleep(60)", tmp_path, ready="up")
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        assert supervisor.wait_ready(timeout_s=30) == []
        [first] = supervisor.pids()
        psutil.Process(first).kill()
        assert _until(lambda: supervisor.pids() not in ([], [first]))
        assert supervisor.restarts() == {"sleeper": 1}
        assert supervisor.crash_loops() == []


def test_a_process_that_keeps_exiting_is_reported_with_its_last_log_line(tmp_path: Path):
    spec = _python("broken", "import sys; print('ImportError: no module named handlerz'); sys.exit(2)", tmp_path)
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        assert _until(lambda: supervisor.crash_loops() != [])
        [problem] = supervisor.crash_loops()
        assert problem.startswith("broken keeps exiting (status 2)")
        assert problem.endswith("ImportError: no module named handlerz")
        assert supervisor.restarts()["broken"] >= CRASH_LOOP_EXITS - 1


def test_wait_ready_names_what_never_got_ready(tmp_path: Path):
    spec = _python("silent", "import time; time.sleep(60)", tmp_path, ready="never printed")
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        assert supervisor.wait_ready(timeout_s=0.5) == ["silent"]


def test_stop_leaves_no_process_behind_grandchildren_and_sigterm_ignorers_included(tmp_path: Path):
    grandparent = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "subprocess.Popen([sys.executable, '-c', 'import signal, time; "
        "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)'])\n"
        "print('up', flush=True); time.sleep(60)\n"
    )
    specs = [
        _python("stubborn", grandparent, tmp_path, ready="up"),
        _python("plain", "import time; time.sleep(60)", tmp_path),
    ]
    supervisor = Supervisor(specs=specs, log_dir=tmp_path / "logs").start()
    assert supervisor.wait_ready(timeout_s=30) == []
    processes = [psutil.Process(pid) for pid in supervisor.pids()]
    assert _until(lambda: len(processes[0].children()) == 1)
    everything = processes + processes[0].children()

    supervisor.stop(timeout_s=1.0)

    _gone, alive = psutil.wait_procs(everything, timeout=10)
    assert alive == []
