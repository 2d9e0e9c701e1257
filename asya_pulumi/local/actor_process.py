"""One actor as local processes: its handler server and its sidecar, as a pod would run them.

Used by ``asya dev`` (one :class:`ActorProcess` per actor and sink) and by the runtime tests::

    actor = ActorProcess(config=sidecar_config, handler=HandlerSettings(handler="mod.func"), aws_env=env,
                         workdir=tmp)
    with actor:
        ...                         # both processes run; the handler server is restarted whenever it exits
        actor.kill_handler()        # SIGKILL, e.g. to test a crash mid-message; the supervisor restarts it

The supervisor thread plays the part of Kubernetes' container restart: a handler server that exits (a crash, or
status 70 after a hung call) is started again after a short pause. Sinks have no handler (``handler=None``).
Output of each process goes to ``workdir/{handler,sidecar}.log`` (appended across restarts).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

import asya_runtime
from asya_runtime.config import SidecarConfig

__all__ = ["ActorProcess", "HandlerSettings", "socket_dir"]

RUNTIME_DIR = Path(asya_runtime.__file__).resolve().parent
PYTHON_HANDLER_SERVER = RUNTIME_DIR / "handler_server.py"
NODE_HANDLER_SERVER = RUNTIME_DIR / "handler_server.js"
#: Pause before restarting a handler server that exited (Kubernetes backs off similarly, starting at 10 s).
RESTART_PAUSE_S = 0.2


def socket_dir() -> Path:
    """A fresh short directory for Unix sockets (their paths are limited to ~100 characters)."""
    return Path(tempfile.mkdtemp(prefix="asya-", dir="/tmp"))


@dataclass(frozen=True)
class HandlerSettings:
    """How to start the handler server of one actor."""

    handler: str
    language: Literal["python", "node"] = "python"
    #: Interpreter of the user's code (Python handlers); defaults to the current one.
    python: str = sys.executable
    search_path: tuple[str, ...] = ()
    concurrency: int = 1
    env: dict[str, str] = field(default_factory=dict)

    def argv(self) -> list[str]:
        if self.language == "node":
            node = shutil.which("node")
            if node is None:
                raise RuntimeError("a Node.js handler needs `node` (>= 18) on PATH")
            return [node, str(NODE_HANDLER_SERVER)]
        return [self.python, str(PYTHON_HANDLER_SERVER)]


class ActorProcess:
    """A handler server process (supervised) plus a sidecar process for one actor or sink."""

    def __init__(
        self,
        *,
        config: SidecarConfig,
        handler: HandlerSettings | None,
        workdir: Path,
        aws_env: dict[str, str] | None = None,
        auto_restart: bool = True,
    ) -> None:
        if config.mode == "actor" and handler is None:
            raise ValueError(f"actor {config.actor!r} runs in actor mode and needs HandlerSettings")
        self.config = config
        self.handler = handler
        self.workdir = Path(workdir)
        self.aws_env = dict(aws_env or {})
        self.auto_restart = auto_restart
        self.handler_starts = 0
        self.handler_exit_codes: list[int] = []
        self._handler_proc: subprocess.Popen[bytes] | None = None
        self._sidecar_proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._supervising = False
        self._restarting = False
        self._supervisor: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self, *, wait_s: float = 30.0) -> ActorProcess:
        """Start the handler server (if any), wait for its socket, then start the sidecar."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        if self.handler is not None:
            self.start_handler()
            self.wait_handler_ready(timeout_s=wait_s)
            self._supervising = True
            self._supervisor = threading.Thread(target=self._supervise, name=f"supervise-{self.config.actor}")
            self._supervisor.daemon = True
            self._supervisor.start()
        self.start_sidecar()
        return self

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the sidecar (it drains), then the handler server; return the sidecar's exit status."""
        code = self.stop_sidecar(timeout_s=timeout_s)
        self._supervising = False
        if self._supervisor is not None:
            self._supervisor.join(timeout=5)
        self.stop_handler(timeout_s=10)
        return code

    def __enter__(self) -> ActorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- handler server -----------------------------------------------------------------------------------------

    def start_handler(self) -> None:
        assert self.handler is not None
        env = {
            **os.environ,
            **self.handler.env,
            "ASYA_HANDLER": self.handler.handler,
            "ASYA_SOCKET_PATH": self.config.socket_path,
            "ASYA_HANDLER_CONCURRENCY": str(self.handler.concurrency),
        }
        if self.handler.search_path:
            env["ASYA_HANDLER_PATH"] = ":".join(self.handler.search_path)
        with self._lock:
            self._handler_proc = _spawn(self.handler.argv(), env=env, log=self.workdir / "handler.log")
            self.handler_starts += 1

    def wait_handler_ready(self, *, timeout_s: float = 30.0) -> None:
        """Wait until the handler server answers ``health`` on its socket."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            proc = self._handler_proc
            if proc is not None and proc.poll() is not None and not self._supervising:
                raise RuntimeError(
                    f"handler server of {self.config.actor!r} exited with {proc.returncode}; "
                    f"see {self.workdir / 'handler.log'}"
                )
            if _health_ok(self.config.socket_path):
                return
            time.sleep(0.05)
        raise TimeoutError(f"handler server of {self.config.actor!r} not ready after {timeout_s:.0f}s")

    def kill_handler(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the handler server (the supervisor restarts it unless restarts are off)."""
        proc = self._handler_proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)

    def stop_handler(self, *, timeout_s: float = 10.0) -> int | None:
        proc = self._handler_proc
        return _terminate(proc, timeout_s=timeout_s) if proc is not None else None

    def restart_handler(self) -> None:
        """Stop the handler server (SIGTERM, it drains) and start a new one; the supervisor stays on."""
        self._restarting = True
        try:
            self.stop_handler()
            self.start_handler()
        finally:
            self._restarting = False

    def _supervise(self) -> None:
        while self._supervising:
            proc = self._handler_proc
            exited = proc is not None and proc.poll() is not None and proc is self._handler_proc
            if exited and proc is not None and self._supervising and not self._restarting:
                self.handler_exit_codes.append(proc.returncode)
                if not self.auto_restart:
                    return
                time.sleep(RESTART_PAUSE_S)
                if self._supervising:
                    self.start_handler()
            time.sleep(0.05)

    # -- sidecar ------------------------------------------------------------------------------------------------

    def start_sidecar(self) -> None:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ASYA_")},
            **self.aws_env,
            **self.config.to_env(),
        }
        self._sidecar_proc = _spawn(
            [sys.executable, "-m", "asya_runtime.sidecar"], env=env, log=self.workdir / "sidecar.log"
        )

    @property
    def sidecar_pid(self) -> int | None:
        return self._sidecar_proc.pid if self._sidecar_proc else None

    def sidecar_returncode(self) -> int | None:
        return self._sidecar_proc.poll() if self._sidecar_proc else None

    def signal_sidecar(self, sig: int) -> None:
        if self._sidecar_proc is not None and self._sidecar_proc.poll() is None:
            self._sidecar_proc.send_signal(sig)

    def wait_sidecar(self, *, timeout_s: float) -> int:
        assert self._sidecar_proc is not None
        return self._sidecar_proc.wait(timeout=timeout_s)

    def stop_sidecar(self, *, timeout_s: float = 30.0) -> int | None:
        proc = self._sidecar_proc
        return _terminate(proc, timeout_s=timeout_s) if proc is not None else None

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.metrics_port}/metrics"

    def read_metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url(), timeout=5) as response:
            return str(response.read().decode())

    def logs(self, which: Literal["handler", "sidecar"] = "sidecar") -> str:
        path = self.workdir / f"{which}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _spawn(argv: list[str], *, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _terminate(proc: subprocess.Popen[bytes], *, timeout_s: float) -> int | None:
    """SIGTERM, wait up to ``timeout_s``, then SIGKILL; the exit status (negative = killed by a signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
    return proc.returncode


def _health_ok(socket_path: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(socket_path)
            sock.sendall(b'{"op":"health"}\n')
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    return False
                data += chunk
    except OSError:
        return False
    return b'"ok":true' in data.replace(b" ", b"")
