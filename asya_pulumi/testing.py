"""Test an actor as it runs in a pod: its handler server and its sidecar as local processes (public, for users'
tests of their handlers as much as for the runtime's own)::

    actor = ActorProcess(config=sidecar_config, handler=HandlerSettings(handler="mod.func"), aws_env=env,
                         workdir=tmp)
    with actor:
        ...                         # both processes run; the handler server is restarted whenever it exits
        actor.kill_handler()        # SIGKILL, e.g. to test a crash mid-message; the supervisor restarts it

A thin view of one :class:`~asya_pulumi.local.processes.Supervisor` with two processes built by
:mod:`asya_pulumi.local.plan` (the same functions ``asya dev`` uses): the handler server restarts whenever it exits
(a crash, or status 70 after a hung call), like a container restart; the sidecar does not, so that a test can stop
it (SIGTERM: it drains), check how it exited, and start a new one as the next replica. Sinks have no handler
(``handler=None``). Output goes to ``workdir/{handler,sidecar}.log`` (appended across restarts).
"""

from __future__ import annotations

import signal
import sys
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Literal

from asya_pulumi.local.plan import HandlerLanguage, handler_argv, handler_process, sidecar_process
from asya_pulumi.local.processes import Supervisor
from asya_runtime.config import SidecarConfig
from asya_runtime.handler_server import HandlerServerConfig

__all__ = ["ActorProcess", "HandlerSettings", "socket_dir"]

_HANDLER, _SIDECAR = "handler", "sidecar"


def socket_dir() -> Path:
    """A fresh short directory for Unix sockets (their paths are limited to ~100 characters)."""
    return Path(tempfile.mkdtemp(prefix="asya-", dir="/tmp"))


@dataclass(frozen=True)
class HandlerSettings:
    """How to start the handler server of one actor (its socket path is the sidecar config's)."""

    handler: str
    language: HandlerLanguage = "python"
    #: Interpreter of the user's code (Python handlers); defaults to the current one.
    python: str = sys.executable
    search_path: tuple[str, ...] = ()
    concurrency: int = 1
    env: dict[str, str] = field(default_factory=dict)


class ActorProcess:
    """A handler server process (restarted when it exits) plus a sidecar process for one actor or sink."""

    def __init__(
        self,
        *,
        config: SidecarConfig,
        handler: HandlerSettings | None,
        workdir: Path,
        aws_env: dict[str, str] | None = None,
    ) -> None:
        if config.mode == "actor" and handler is None:
            raise ValueError(f"actor {config.actor!r} runs in actor mode and needs HandlerSettings")
        self.config = config
        self.workdir = Path(workdir)
        specs = [
            sidecar_process(
                name=_SIDECAR, group=config.actor, config=config, cwd=self.workdir, aws_env=aws_env, restart=False
            )
        ]
        if handler is not None:
            server = HandlerServerConfig(
                handler=handler.handler,
                socket_path=config.socket_path,
                concurrency=handler.concurrency,
                search_path=handler.search_path,
            )
            argv = handler_argv(handler.language, python=handler.python)
            specs.insert(
                0,
                handler_process(
                    name=_HANDLER, group=config.actor, config=server, argv=argv, cwd=self.workdir, env=handler.env
                ),
            )
        self.has_handler = handler is not None
        self.supervisor = Supervisor(specs=specs, log_dir=self.workdir)

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def start(self, *, wait_s: float = 30.0) -> ActorProcess:
        """Start both processes and wait until the handler server answers ``health``."""
        self.supervisor.start()
        if self.has_handler:
            self.wait_handler_ready(timeout_s=wait_s)
        return self

    def stop(self, *, timeout_s: float = 30.0) -> int | None:
        """SIGTERM the sidecar (it drains), then the handler server; return the sidecar's exit status."""
        code = self.supervisor.stop_process(_SIDECAR, timeout_s=timeout_s)
        if self.has_handler:
            self.supervisor.stop_process(_HANDLER, timeout_s=10)
        self.supervisor.stop()
        return code

    def __enter__(self) -> ActorProcess:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- handler server -----------------------------------------------------------------------------------------

    @property
    def handler_starts(self) -> int:
        return self.supervisor.starts(_HANDLER)

    @property
    def handler_exit_codes(self) -> list[int]:
        """Exit statuses of the handler server's exits that nobody asked for (kills, crashes, 70 after a hang)."""
        return self.supervisor.exit_statuses(_HANDLER)

    def wait_handler_ready(self, *, timeout_s: float = 30.0) -> None:
        """Wait until the handler server answers ``health``; a server that cannot start raises RuntimeError."""
        if self.supervisor.wait_ready(timeout_s=timeout_s, names=[_HANDLER]):
            problems = self.supervisor.crash_loops()
            if problems:
                raise RuntimeError(f"handler server of {self.config.actor!r}: {problems[0]}")
            raise TimeoutError(f"handler server of {self.config.actor!r} not ready after {timeout_s:.0f}s")

    def kill_handler(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the handler server; the supervisor restarts it."""
        self.supervisor.signal_process(_HANDLER, sig)

    def restart_handler(self) -> None:
        """Stop the handler server (SIGTERM, it drains) and start a new one; not counted as an exit."""
        self.supervisor.stop_process(_HANDLER, timeout_s=10)
        self.supervisor.start_process(_HANDLER)

    # -- sidecar ------------------------------------------------------------------------------------------------

    def start_sidecar(self) -> None:
        """Start the sidecar again after it exited or was stopped (the next replica)."""
        self.supervisor.start_process(_SIDECAR)

    @property
    def sidecar_pid(self) -> int | None:
        return self.supervisor.pid(_SIDECAR)

    def sidecar_returncode(self) -> int | None:
        return self.supervisor.returncode(_SIDECAR)

    def signal_sidecar(self, sig: int) -> None:
        self.supervisor.signal_process(_SIDECAR, sig)

    def wait_sidecar(self, *, timeout_s: float) -> int:
        return self.supervisor.wait_exit(_SIDECAR, timeout_s=timeout_s)

    def stop_sidecar(self, *, timeout_s: float = 30.0) -> int | None:
        return self.supervisor.stop_process(_SIDECAR, timeout_s=timeout_s)

    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.config.metrics_port}/metrics"

    def read_metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url(), timeout=5) as response:
            return str(response.read().decode())

    def logs(self, which: Literal["handler", "sidecar"] = "sidecar") -> str:
        path = self.supervisor.log_path(which)
        return path.read_text(errors="replace") if path.exists() else ""
