"""Start, find and stop the control plane's own processes, and nobody else's.

Each process is recorded (pid and the exact argv it was started with) in the state directory's ``state.json``. A
recorded pid counts as ours only while ``/proc/<pid>/cmdline`` is exactly that argv: a pid the kernel has since
handed to another program is never signalled. Processes start in their own session, so a Ctrl-C in the terminal
that ran ``asya kube up`` does not reach them; ``asya kube down`` stops them (SIGTERM, then SIGKILL after the grace).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Process", "is_ours", "port_open", "start", "stop"]


@dataclass(frozen=True)
class Process:
    """One control-plane process as it was started: its name, pid and argv; env holds only what we set."""

    name: str
    pid: int
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def start(*, name: str, argv: list[str], env: dict[str, str], log: Path) -> Process:
    """Start ``argv`` detached (own session), stdout and stderr appended to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 env={**os.environ, **env}, start_new_session=True)
    return Process(name=name, pid=child.pid, argv=tuple(argv), env=env)


def is_ours(process: Process) -> bool:
    """True while ``process.pid`` runs ``process.argv`` exactly (not a zombie, not a reused pid)."""
    try:
        cmdline = Path(f"/proc/{process.pid}/cmdline").read_bytes()
        state = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state != "Z" and tuple(cmdline.decode(errors="replace").split("\0")[:-1]) == process.argv


def stop(process: Process, *, grace_s: float = 10.0) -> bool:
    """SIGTERM, wait up to ``grace_s``, then SIGKILL; True if it was ours and running."""
    if not is_ours(process):
        return False
    os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        _reap(process.pid)
        if not is_ours(process):
            return True
        time.sleep(0.1)
    if is_ours(process):
        os.kill(process.pid, signal.SIGKILL)
        for _ in range(50):
            _reap(process.pid)
            if not is_ours(process):
                break
            time.sleep(0.1)
    return True


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child (it is when ``up`` and ``down`` run in one process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def port_open(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:``port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex(("127.0.0.1", port)) == 0
