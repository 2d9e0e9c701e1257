"""The local supervisor with real processes: restarts forever once ready, crash loops only before, no orphans."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import psutil

from asya_pulumi.local.processes import CRASH_LOOP_EXITS, ProcessSpec, Supervisor


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


def test_a_process_that_was_ready_is_restarted_however_often_it_is_killed(tmp_path: Path):
    """Never abandon work: kills in quick succession (more than a crash loop's count) are no crash loop."""
    spec = _python("worker", "print('up', flush=True); import time; time.sleep(60)", tmp_path, ready="up")
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        for kill in range(CRASH_LOOP_EXITS + 2):
            assert supervisor.wait_ready(timeout_s=30) == [], f"not ready again after kill {kill}"
            [pid] = supervisor.pids()
            psutil.Process(pid).kill()
            assert _until(lambda: supervisor.pids() != [pid] and not supervisor.is_ready("worker"))  # noqa: B023
        assert supervisor.wait_ready(timeout_s=30) == []
        assert supervisor.crash_loops() == []
        assert supervisor.restarts() == {"worker": CRASH_LOOP_EXITS + 2}
        assert supervisor.exit_statuses("worker") == [-9] * (CRASH_LOOP_EXITS + 2)


def test_readiness_is_judged_per_start_not_from_an_earlier_start_s_log_lines(tmp_path: Path):
    """The log is appended across restarts: a restart that never logs its marker is not ready."""
    code = (
        "import os, sys, time\n"
        "flag = sys.argv[1]\n"
        "if not os.path.exists(flag):\n"
        "    open(flag, 'w').close(); print('up', flush=True); time.sleep(60)\n"
        "time.sleep(60)\n"
    )
    flag = tmp_path / "started-once"
    spec = ProcessSpec(
        name="once", argv=[sys.executable, "-c", code, str(flag)], env=dict(os.environ), cwd=tmp_path, ready_marker="up"
    )
    with Supervisor(specs=[spec], log_dir=tmp_path / "logs") as supervisor:
        assert supervisor.wait_ready(timeout_s=30) == []
        [pid] = supervisor.pids()
        psutil.Process(pid).kill()
        assert _until(lambda: supervisor.pids() not in ([], [pid]))
        assert supervisor.wait_ready(timeout_s=1.5) == ["once"]


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
