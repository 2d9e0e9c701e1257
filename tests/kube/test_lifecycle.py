"""``asya kube up/status/down`` as a user runs them: the CLI, kubectl from PyPI, and the processes it leaves."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from support.kube import require_go

from asya_pulumi.kube import processes
from asya_pulumi.kube.control_plane import COMPONENTS

ASYA = [sys.executable, "-m", "asya_pulumi.cli.main"]


def _asya(*args: str, env: dict[str, str], timeout: float = 1200) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ASYA, *args], env=env, capture_output=True, text=True, timeout=timeout)


def _recorded(state_dir: Path) -> list[processes.Process]:
    state = json.loads((state_dir / "state.json").read_text())
    return [processes.Process(name=name, pid=entry["pid"], argv=tuple(entry["argv"]))
            for name, entry in state["processes"].items()]


def test_up_is_idempotent_kubectl_answers_and_down_leaves_no_process(tmp_path: Path) -> None:
    require_go()
    state_dir = tmp_path / "plane"
    env = {**os.environ, "ASYA_KUBE_DIR": str(state_dir)}
    try:
        first = _asya("kube", "up", env=env)
        assert first.returncode == 0, first.stderr
        last = first.stdout.strip().splitlines()[-1]
        assert last == f"KUBECONFIG={state_dir / 'kubeconfig'}"
        kubectl = shutil.which("kubectl") or str(Path(sys.executable).parent / "kubectl")
        ready = subprocess.run([kubectl, "--kubeconfig", last.split("=", 1)[1], "get", "--raw", "/readyz"],
                               capture_output=True, text=True, timeout=60)
        assert (ready.returncode, ready.stdout.strip()) == (0, "ok"), ready.stderr
        started = _recorded(state_dir)
        assert sorted(p.name for p in started) == sorted(COMPONENTS)
        assert all(processes.is_ours(p) for p in started)

        again = _asya("kube", "up", env=env)
        assert again.returncode == 0, again.stderr
        assert {(p.name, p.pid) for p in _recorded(state_dir)} == {(p.name, p.pid) for p in started}

        status = _asya("kube", "status", env=env, timeout=60)
        assert status.returncode == 0, status.stdout + status.stderr
        assert all(f"{name}" in status.stdout for name in COMPONENTS) and "stopped" not in status.stdout
    finally:
        down = _asya("kube", "down", env=env, timeout=120)
    assert down.returncode == 0, down.stderr
    assert [p.name for p in started if processes.is_ours(p)] == []
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_mentions(p, state_dir)]
    assert leftovers == []
    after = _asya("kube", "status", env=env, timeout=60)
    assert after.returncode == 1 and after.stdout.count("stopped") == len(COMPONENTS)


def _cmdline_mentions(proc: Path, state_dir: Path) -> bool:
    try:
        return str(state_dir) in (proc / "cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
