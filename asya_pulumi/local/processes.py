"""The one local process supervisor: start processes, restart the ones that exit, stop them all without orphans.

``asya dev``, the benchmarks and the tests run every actor replica as two processes (handler server + sidecar)
plus the sinks; :class:`Supervisor` keeps each one running the way Kubernetes restarts a container.

**Never abandon work.** A process that has been *ready* once (its sidecar logged that it consumes its queue, its
handler server answered ``health``) has proven that its code and settings work, so whenever it exits — killed,
out of memory, a hung handler ending itself with status 70 — it is started again after a backoff, however often:
the messages it held come back to the queue and must find a consumer. Only a process that exits
:data:`CRASH_LOOP_EXITS` times in a row without ever having been ready (an import error, a bad handler path) is a
crash loop: :meth:`Supervisor.crash_loops` reports it with its log's last line, and ``asya dev`` ends the run at once
instead of waiting for a timeout.

Processes are started and stopped through :mod:`asya_pulumi.local.process_group` (own process group, SIGTERM then
SIGKILL to the group, SIGTERM when the supervising process dies).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from asya_pulumi.local import process_group
from asya_runtime.handler_server import probe_health

__all__ = ["CRASH_LOOP_EXITS", "ProcessSpec", "Supervisor"]

#: Restart backoff: the first restart after this, doubling per exit that came soon after the start, capped below.
BACKOFF_START_S = 0.25
BACKOFF_CAP_S = 2.0
#: A process that ran this long is healthy again: its backoff starts over.
HEALTHY_AFTER_S = 10.0
#: A process without a readiness check counts as ready once it has run this long.
READY_WITHOUT_CHECK_S = 3.0
#: This many exits in a row of a process that was never ready is a crash loop (an import error, a bad handler name).
CRASH_LOOP_EXITS = 4
_POLL_S = 0.1


@dataclass(frozen=True)
class ProcessSpec:
    """One supervised process: a unique name (also its log file's name), argv, environment and working directory.

    Readiness: ``ready_marker`` (text the process logs once ready; ``ready_count`` times for a process that hosts
    several sidecars, each logging it), or ``health_socket`` (a handler server's socket that answers ``health``), or
    neither (ready after :data:`READY_WITHOUT_CHECK_S` of running).
    ``restart=False`` records an exit instead of restarting (tests that stop and start a sidecar by hand).
    """

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    group: str = ""  # what the process belongs to (an actor name), for reports
    ready_marker: str | None = None
    ready_count: int = 1
    health_socket: str | None = None
    restart: bool = True


@dataclass
class _Child:
    spec: ProcessSpec
    process: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    restarts: int = 0
    quick_exits: int = 0  # exits in a row, each soon after its start
    ready: bool = False  # this incarnation is ready
    ever_ready: bool = False  # some incarnation was ready: the process can work, so it is never given up on
    log_offset: int = 0  # where this incarnation's output begins in the (appended) log
    last_status: int | None = None
    restart_at: float | None = None
    held: bool = False  # stopped on request (or restart=False and exited): not restarted until started again
    start_requested: bool = False  # start_process() asked the watcher thread to start it
    exits: list[int] = field(default_factory=list)  # exit statuses of exits nobody asked for


class Supervisor:
    """Starts ``specs``, restarts exits with backoff, reports crash loops; a context manager that stops all."""

    def __init__(self, *, specs: Sequence[ProcessSpec], log_dir: Path) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"process names must be unique, got {names}")
        self.log_dir = log_dir
        self._children = {s.name: _Child(spec=s) for s in specs}
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._wake = threading.Event()  # set to have the watcher look now rather than at its next tick
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self) -> Supervisor:
        """Start the thread that watches the processes, and through it every process; returns once all started.

        Every process is started by that one thread, which lives until :meth:`stop`: a child asks the kernel for
        SIGTERM when the *thread* that started it ends (``PR_SET_PDEATHSIG``), so a start from a short-lived thread
        (a test's fault injector) would stop the child as soon as that thread is done.
        """
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._watch, name="asya-supervisor", daemon=True)
        self._thread.start()
        self._start_all(list(self._children))
        return self

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop watching, then stop every process group in parallel (SIGTERM, ``timeout_s`` in all, SIGKILL)."""
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join()
        with self._lock:
            running = [c.process for c in self._children.values() if c.process is not None]
            process_group.stop_all(running, timeout_s=timeout_s)

    def __enter__(self) -> Supervisor:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- one process on request (tests, chaos) -------------------------------------------------------------------

    def start_process(self, name: str, *, timeout_s: float = 30.0) -> None:
        """Start ``name`` (again after :meth:`stop_process` or an exit with ``restart=False``); returns once started."""
        self._start_all([name], timeout_s=timeout_s)

    def _start_all(self, names: list[str], *, timeout_s: float = 30.0) -> None:
        """Have the watcher thread start ``names`` in one pass; returns once each has started."""
        starts: dict[str, int] = {}
        with self._lock:
            for name in names:
                child = self._children[name]
                if child.process is not None and child.process.poll() is None:
                    raise RuntimeError(f"{name} is running (pid {child.process.pid})")
                starts[name] = child.starts
                child.held, child.start_requested = False, True
        self._wake.set()
        deadline = time.monotonic() + timeout_s
        for name in names:
            while self._children[name].starts == starts[name]:
                if time.monotonic() > deadline or self._thread is None or not self._thread.is_alive():
                    raise RuntimeError(f"{name} was not started within {timeout_s:g} s (is the supervisor running?)")
                time.sleep(0.01)

    def add(self, spec: ProcessSpec, *, timeout_s: float = 30.0) -> None:
        """Supervise one more process and start it; returns once started (``asya dev --kube``: a pod came up)."""
        with self._lock:
            if spec.name in self._children:
                raise ValueError(f"a process named {spec.name!r} is already supervised")
            self._children[spec.name] = _Child(spec=spec)
        self._start_all([spec.name], timeout_s=timeout_s)

    def remove(self, name: str, *, timeout_s: float = 10.0) -> int | None:
        """Stop ``name`` as :meth:`stop_process` does (SIGTERM: a sidecar drains) and stop supervising it (a pod
        went away); its exit status."""
        status = self.stop_process(name, timeout_s=timeout_s)
        with self._lock:
            del self._children[name]
        return status

    def stop_process(self, name: str, *, timeout_s: float = 10.0) -> int | None:
        """Stop ``name`` (SIGTERM its group, then SIGKILL) and keep it stopped; its exit status (None: not started).

        A requested stop is not an exit: it is neither restarted nor listed in :meth:`exit_statuses`.
        """
        with self._lock:
            child = self._children[name]
            child.held, child.restart_at = True, None
            process = child.process
        return process_group.stop(process, timeout_s=timeout_s) if process is not None else None

    def replace_processes(self, names: Sequence[str], *, timeout_s: float = 10.0) -> None:
        """Stop ``names`` in parallel (SIGTERM, then SIGKILL after ``timeout_s``) and start each again; returns once
        they have started (``asya dev --watch``'s reload). Like :meth:`stop_process`, the stops are no exits."""
        with self._lock:
            running = []
            for name in names:
                child = self._children[name]
                child.held, child.restart_at = True, None
                if child.process is not None:
                    running.append(child.process)
        process_group.stop_all(running, timeout_s=timeout_s)
        self._start_all(list(names))

    def signal_process(self, name: str, signum: int) -> None:
        """Send ``signum`` to ``name``'s process (not its group), e.g. SIGKILL to test a crash."""
        process = self._children[name].process
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signum)

    def wait_exit(self, name: str, *, timeout_s: float) -> int:
        """Wait until ``name``'s current process exits; its exit status."""
        process = self._children[name].process
        assert process is not None, f"{name} was never started"
        return process.wait(timeout=timeout_s)

    def returncode(self, name: str) -> int | None:
        """Exit status of ``name``'s current process, None while it runs."""
        process = self._children[name].process
        return process.poll() if process is not None else None

    def pid(self, name: str) -> int | None:
        process = self._children[name].process
        return process.pid if process is not None and process.poll() is None else None

    def starts(self, name: str) -> int:
        return self._children[name].starts

    def exit_statuses(self, name: str) -> list[int]:
        """Exit statuses of ``name``'s exits that nobody requested (crashes, kills, status 70 after a hang)."""
        with self._lock:
            return list(self._children[name].exits)

    def is_ready(self, name: str) -> bool:
        with self._lock:
            return self._children[name].ready

    # -- reports -------------------------------------------------------------------------------------------------

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def names(self, *, group: str | None = None) -> list[str]:
        """Every process name, or those of one ``group`` (an actor's handler servers and, alone, sidecars)."""
        return [n for n, c in self._children.items() if group is None or c.spec.group == group]

    def log_since_start(self, name: str) -> str:
        """What ``name``'s current incarnation has logged so far (its log is appended across restarts)."""
        with self._lock:
            offset = self._children[name].log_offset
        try:
            with self.log_path(name).open("rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def restarts(self) -> dict[str, int]:
        """Restarts so far per group (actor)."""
        with self._lock:
            counts: dict[str, int] = {}
            for child in self._children.values():
                counts[child.spec.group] = counts.get(child.spec.group, 0) + child.restarts
            return counts

    def crash_loops(self) -> list[str]:
        """One line per process that exited :data:`CRASH_LOOP_EXITS` times in a row and was never ready."""
        with self._lock:
            return [
                f"{c.spec.name} keeps exiting (status {c.last_status}); see {self.log_path(c.spec.name)}"
                + _last_line(self.log_path(c.spec.name))
                for c in self._children.values()
                if not c.ever_ready and c.quick_exits >= CRASH_LOOP_EXITS
            ]

    def wait_ready(self, *, timeout_s: float, names: Collection[str] | None = None) -> list[str]:
        """Wait until every process (or those ``names``) is ready; the names still not ready (empty: all ready).

        Returns early when a process crash-loops: it will never be ready, and :meth:`crash_loops` says why.
        """
        deadline = time.monotonic() + timeout_s
        wanted = list(self._children) if names is None else list(names)
        while True:
            with self._lock:
                pending = [n for n in wanted if not self._children[n].ready]
            if not pending or time.monotonic() >= deadline or self.crash_loops():
                return pending
            time.sleep(_POLL_S / 2)

    def pids(self) -> list[int]:
        """Process ids of the children running now (tests use them to prove nothing outlives ``stop``)."""
        with self._lock:
            return [
                c.process.pid for c in self._children.values() if c.process is not None and c.process.poll() is None
            ]

    # -- the watcher -------------------------------------------------------------------------------------------

    def _spawn(self, child: _Child) -> None:
        log = self.log_path(child.spec.name)
        child.log_offset = log.stat().st_size if log.exists() else 0
        child.process = process_group.spawn(child.spec.argv, env=child.spec.env, cwd=child.spec.cwd, log=log)
        child.started_at = time.monotonic()
        child.starts += 1
        child.ready = False
        child.held = False
        child.restart_at = None

    def _watch(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(_POLL_S)
            self._wake.clear()
            with self._lock:
                if self._stopping.is_set():
                    return
                now = time.monotonic()
                for child in self._children.values():
                    self._tend(child, now)

    def _tend(self, child: _Child, now: float) -> None:
        if child.start_requested:
            child.start_requested = False
            self._spawn(child)
            return
        if child.held:
            return
        if child.restart_at is not None:
            if now >= child.restart_at:
                child.restarts += 1
                self._spawn(child)
            return
        if child.process is None:
            return
        if child.process.poll() is None:
            if not child.ready and self._check_ready(child, now):
                child.ready = child.ever_ready = True
            return
        self._exited(child, now)

    def _exited(self, child: _Child, now: float) -> None:
        assert child.process is not None
        child.ready = False
        child.last_status = child.process.returncode
        child.exits.append(child.process.returncode)
        if not child.spec.restart:
            child.held = True
            return
        lived = now - child.started_at
        child.quick_exits = 0 if lived >= HEALTHY_AFTER_S else child.quick_exits + 1
        child.restart_at = now + min(BACKOFF_START_S * 2 ** max(child.quick_exits - 1, 0), BACKOFF_CAP_S)

    def _check_ready(self, child: _Child, now: float) -> bool:
        spec = child.spec
        if spec.ready_marker is not None:
            logged = _logged_since(self.log_path(spec.name), spec.ready_marker, offset=child.log_offset)
            return logged >= spec.ready_count
        if spec.health_socket is not None:
            try:
                return probe_health(spec.health_socket, timeout_s=0.5)[0]
            except ValueError:  # an answer that is not JSON: not a handler server (yet)
                return False
        return now - child.started_at >= READY_WITHOUT_CHECK_S


def _logged_since(path: Path, marker: str, *, offset: int) -> int:
    """How often ``marker`` appears in ``path`` after byte ``offset`` (what the current incarnation wrote)."""
    try:
        with path.open("rb") as log:
            log.seek(offset)
            return log.read().count(marker.encode())
    except OSError:
        return 0


def _last_line(path: Path) -> str:
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return f": {lines[-1].strip()[:300]}" if lines else ""

