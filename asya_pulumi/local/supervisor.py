"""Run a set of local processes, restart the ones that exit, and stop them all without leaving orphans.

``asya dev`` runs every replica of every actor as two processes (handler server + sidecar) plus the two sinks. The
supervisor keeps each one running, the way Kubernetes restarts a container: a handler server that exits because a
call hung (status 70, see docs/protocol.md) or crashed comes back after a short backoff.

No orphans: every child starts in its own session (its own process group), so stopping it signals the whole group,
grandchildren included; and on Linux each child asks the kernel for SIGTERM when its parent dies
(``PR_SET_PDEATHSIG``), so even a ``kill -9`` of ``asya dev`` does not leave actors polling queues.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

#: Restart backoff: first restart after this, doubling per quick exit, capped below.
_BACKOFF_START_S = 0.25
_BACKOFF_CAP_S = 5.0
#: A process that lived this long is considered healthy again; its backoff and quick-exit count reset.
_HEALTHY_AFTER_S = 10.0
#: This many exits in a row, each before it was healthy, is a crash loop (an import error, a bad handler name).
CRASH_LOOP_EXITS = 4
_POLL_S = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: a unique name (also its log file's name), argv, environment and working directory."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    group: str = ""  # what the process belongs to (an actor name), for reports
    ready_marker: str | None = None  # text the process logs once it is ready (None: ready when started)


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restarts: int = 0
    quick_exits: int = 0
    last_status: int | None = None
    restart_at: float | None = None
    exits: list[int] = field(default_factory=list)


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Supervisor:
    """Starts ``specs``, restarts exits with backoff, reports crash loops; a context manager that stops all."""

    def __init__(self, *, specs: Sequence[ProcessSpec], log_dir: Path) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique, got {names}")
        self.log_dir = log_dir
        self._children = [_Child(spec=s) for s in specs]
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            for child in self._children:
                self._spawn(child)
        self._thread = threading.Thread(target=self._watch, name="asya-supervisor", daemon=True)
        self._thread.start()
        return self

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def _spawn(self, child: _Child) -> None:
        with open(self.log_path(child.spec.name), "ab") as log:
            child.process = subprocess.Popen(
                list(child.spec.argv),
                env=dict(child.spec.env),
                cwd=child.spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        child.started_at = time.monotonic()
        child.restart_at = None

    def _watch(self) -> None:
        while not self._stopping.wait(_POLL_S):
            with self._lock:
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                for child in self._children:
                    self._tend(child, now)

    def _tend(self, child: _Child, now: float) -> None:
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
            return
        if child.process is None or child.process.poll() is None:
            return
        child.last_status = child.process.returncode
        child.exits.append(child.process.returncode)
        lived = now - child.started_at
        child.quick_exits = 0 if lived >= _HEALTHY_AFTER_S else child.quick_exits + 1
        delay = min(_BACKOFF_START_S * 2 ** max(child.quick_exits - 1, 0), _BACKOFF_CAP_S)
        child.restart_at = now + delay

    def restarts(self) -> dict[str, int]:
        """Restarts so far per group (actor)."""
        with self._lock:
            counts: dict[str, int] = {}
            for child in self._children:
                counts[child.spec.group] = counts.get(child.spec.group, 0) + child.restarts
            return counts

    def crash_loops(self) -> list[str]:
        """One line per process that exited :data:`CRASH_LOOP_EXITS` times in a row right after starting."""
        with self._lock:
            return [
                f"{c.spec.name} keeps exiting (status {c.last_status}); see {self.log_path(c.spec.name)}"
                + _last_line(self.log_path(c.spec.name))
                for c in self._children
                if c.quick_exits >= CRASH_LOOP_EXITS
            ]

    def wait_ready(self, *, timeout_s: float) -> list[str]:
        """Wait until every process logged its ready marker; the names still not ready (empty: all ready).

        Returns early when a process crash-loops: it will never be ready, and :meth:`crash_loops` says why.
        """
        deadline = time.monotonic() + timeout_s
        pending = [c.spec for c in self._children if c.spec.ready_marker]
        while pending and time.monotonic() < deadline and not self.crash_loops():
            pending = [s for s in pending if not _logged(self.log_path(s.name), s.ready_marker or "")]
            if pending:
                time.sleep(_POLL_S)
        return [s.name for s in pending]

    def pids(self) -> list[int]:
        """Process ids of the children running now (tests use them to prove nothing outlives ``stop``)."""
        with self._lock:
            return [c.process.pid for c in self._children if c.process is not None and c.process.poll() is None]

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """SIGTERM every process group, wait up to ``timeout_s`` in all, then SIGKILL whatever is left."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            running = [c.process for c in self._children if c.process is not None and c.process.poll() is None]
            for process in running:
                _signal_group(process, signal.SIGTERM)
            deadline = time.monotonic() + timeout_s
            for process in running:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
            for process in running:
                _signal_group(process, signal.SIGKILL)  # the group: also reaps grandchildren that ignored SIGTERM
                process.wait()

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _logged(path: Path, marker: str) -> bool:
    try:
        return marker in path.read_text(errors="replace")
    except OSError:
        return False


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:300]}" if lines else ""
