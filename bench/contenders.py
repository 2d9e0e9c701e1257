"""The two contenders of the throughput benchmark, started as real processes against a given SQS endpoint.

* :class:`MeshContender` — per actor, the handler server (running :mod:`bench.identity`) and the sidecar, exactly
  as ``asya dev`` runs them.
* :class:`LoopContender` — per actor, one :mod:`bench.baseline_loop` process.

Both expose their processes so the benchmark can add up the CPU they spend (user + system).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, Protocol

import psutil

from bench.driver import IDENTITY_HANDLER

REPO_ROOT = Path(__file__).resolve().parent.parent
_CREDENTIALS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}


class Contender(Protocol):
    name: str

    def start(self, *, endpoint: str, namespace: str, actors: list[str]) -> None: ...

    def processes(self) -> list[psutil.Process]: ...

    def stop(self) -> None: ...


def cpu_seconds(processes: list[psutil.Process]) -> float:
    """User + system CPU seconds spent so far by ``processes`` (and any children they started)."""
    total = 0.0
    for process in processes:
        try:
            for p in [process, *process.children(recursive=True)]:
                times = p.cpu_times()
                total += times.user + times.system
        except psutil.NoSuchProcess:
            continue
    return total


def _log_file(log_dir: str, name: str) -> IO[bytes]:
    return open(os.path.join(log_dir, f"{name}.log"), "ab")


def _terminate(popens: list[subprocess.Popen[bytes]]) -> None:
    for popen in popens:
        if popen.poll() is None:
            popen.terminate()
    for popen in popens:
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()


class LoopContender:
    """The hand-written aiobotocore loop, one process per actor."""

    name = "loop"

    def __init__(self, *, log_dir: str) -> None:
        self.log_dir = log_dir
        self._popens: list[subprocess.Popen[bytes]] = []

    def start(self, *, endpoint: str, namespace: str, actors: list[str]) -> None:
        env = {**os.environ, **_CREDENTIALS_ENV, "PYTHONPATH": str(REPO_ROOT)}
        for actor in actors:
            command = [sys.executable, "-m", "bench.baseline_loop", "--endpoint", endpoint]
            command += ["--namespace", namespace, "--actor", actor]
            with _log_file(self.log_dir, f"loop-{namespace}-{actor}") as log:
                popen = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
            self._popens.append(popen)

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(p.pid) for p in self._popens]

    def stop(self) -> None:
        _terminate(self._popens)


class MeshContender:
    """The real runtime: per actor, a handler server and a sidecar joined by a Unix socket."""

    name = "sidecar"

    def __init__(self, *, log_dir: str, concurrency: int = 1) -> None:
        self.log_dir = log_dir
        self.concurrency = concurrency
        self._popens: list[subprocess.Popen[bytes]] = []
        self._sockets = tempfile.TemporaryDirectory(prefix="asya-bench-sock-")

    def start(self, *, endpoint: str, namespace: str, actors: list[str]) -> None:
        from asya_runtime.config import SidecarConfig

        base = {**os.environ, **_CREDENTIALS_ENV}
        for actor in actors:
            socket_path = os.path.join(self._sockets.name, f"{actor}.sock")
            handler_env = {
                **base,
                "ASYA_HANDLER": IDENTITY_HANDLER,
                "ASYA_SOCKET_PATH": socket_path,
                "ASYA_HANDLER_PATH": str(REPO_ROOT),
                "ASYA_HANDLER_CONCURRENCY": str(self.concurrency),
            }
            server = REPO_ROOT / "runtime" / "asya_runtime" / "handler_server.py"
            self._spawn([sys.executable, str(server)], env=handler_env, log=f"handler-{namespace}-{actor}")
            config = SidecarConfig(
                actor=actor,
                namespace=namespace,
                sqs_endpoint=endpoint,
                s3_endpoint=endpoint,
                socket_path=socket_path,
                concurrency=self.concurrency,
                metrics_port=0,
            )
            sidecar_env = {**base, **config.to_env()}
            command = [sys.executable, "-m", "asya_runtime.sidecar"]
            self._spawn(command, env=sidecar_env, log=f"sidecar-{namespace}-{actor}")

    def _spawn(self, command: list[str], *, env: dict[str, str], log: str) -> None:
        with _log_file(self.log_dir, log) as log_file:
            popen = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stdout=log_file, stderr=subprocess.STDOUT)
        self._popens.append(popen)

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(p.pid) for p in self._popens]

    def stop(self) -> None:
        _terminate(self._popens)
        self._sockets.cleanup()
