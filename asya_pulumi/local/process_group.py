"""Start a child process in its own process group, and stop it with everything it started: the one place for both.

Every local process (the broker, actor sidecars and handler servers, the benchmarks' helpers) is started by
:func:`spawn` and stopped by :func:`stop` or :func:`stop_all`:

- **Its own group.** Each child starts a new session, so its process id is also its group id; stopping signals the
  whole group, grandchildren included (a handler that started a worker process does not outlive it).
- **Dies with its parent.** On Linux each child asks the kernel for SIGTERM when its parent dies
  (``PR_SET_PDEATHSIG``), so even a ``kill -9`` of ``asya dev`` does not leave actors polling queues.
- **Stopping:** SIGTERM to the group, wait up to a deadline (a sidecar drains; a handler server finishes its calls),
  then SIGKILL to the group — also when the leader exited in time, to reap grandchildren that ignored SIGTERM.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["signal_group", "spawn", "stop", "stop_all"]

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def spawn(
    argv: Sequence[str], *, env: Mapping[str, str], cwd: Path | str, log: Path | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session (its own process group) that gets SIGTERM when this process dies.

    Linux sends that SIGTERM when the *thread* that called :func:`spawn` ends, so call it from a thread that lives
    as long as the child should (the main thread, or a supervisor's own thread).

    Output (stdout and stderr together) is appended to ``log``, or inherited when ``log`` is None.
    """
    out = open(log, "ab") if log is not None else None  # noqa: SIM115 - handed to the child, closed below
    try:
        return subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT if out is not None else None,
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
    finally:
        if out is not None:
            out.close()


def signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    """Send ``signum`` to ``process``'s group; a group that is already gone is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def stop(process: subprocess.Popen[bytes], *, timeout_s: float) -> int | None:
    """SIGTERM the group, wait up to ``timeout_s``, SIGKILL the group; the exit status (negative: a signal)."""
    stop_all([process], timeout_s=timeout_s)
    return process.returncode


def stop_all(processes: Sequence[subprocess.Popen[bytes]], *, timeout_s: float) -> None:
    """:func:`stop` for several processes at once: they all drain in parallel within one ``timeout_s``."""
    for process in processes:
        if process.poll() is None:
            signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    for process in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        signal_group(process, signal.SIGKILL)
        process.wait()
