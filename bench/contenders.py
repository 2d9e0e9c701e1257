"""The three contenders of the throughput benchmark, started as real processes against a given SQS endpoint.

* :class:`MeshContender` — per actor, the handler server (running :mod:`bench.identity`) and the sidecar: the
  process plan of ``asya dev``, run by its supervisor.
* :class:`LoopContender` — per actor, one :mod:`bench.baseline_loop` process: on aiobotocore (``loop``), or on the
  sidecar's own lean SQS client (``lean-loop``, ``client="lean"``).

Both expose their processes so the benchmark can add up the CPU they spend (user + system).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Protocol

import psutil

from asya_pulumi.local import process_group
from asya_pulumi.local.plan import MeshPlan, process_specs
from asya_pulumi.local.processes import Supervisor
from asya_runtime.naming import SINKS
from bench.baseline_loop import Client
from bench.driver import identity_mesh

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


class LoopContender:
    """The hand-written loop, one process per actor, on aiobotocore (``loop``) or the lean client (``lean-loop``)."""

    def __init__(self, *, log_dir: str, client: Client = "aiobotocore") -> None:
        self.log_dir = log_dir
        self.client = client
        self.name = "loop" if client == "aiobotocore" else f"{client}-loop"
        self._popens: list[subprocess.Popen[bytes]] = []

    def start(self, *, endpoint: str, namespace: str, actors: list[str]) -> None:
        env = {**os.environ, **_CREDENTIALS_ENV, "PYTHONPATH": str(REPO_ROOT)}
        for actor in actors:
            command = [sys.executable, "-m", "bench.baseline_loop", "--endpoint", endpoint]
            command += ["--namespace", namespace, "--actor", actor, "--client", self.client]
            log = Path(self.log_dir) / f"loop-{namespace}-{actor}.log"
            self._popens.append(process_group.spawn(command, env=env, cwd=REPO_ROOT, log=log))

    def processes(self) -> list[psutil.Process]:
        return [psutil.Process(p.pid) for p in self._popens]

    def stop(self) -> None:
        process_group.stop_all(self._popens, timeout_s=10)


class MeshContender:
    """The real runtime, started exactly as ``asya dev`` starts it: its process plan under its supervisor.

    ``replicas`` maps actor (and sink) names to replica counts; anything not named runs one replica, except the
    sinks, which run none unless named (the driver itself watches the success sink's queue).
    """

    name = "sidecar"

    def __init__(self, *, log_dir: str, concurrency: int = 1, replicas: dict[str, int] | None = None) -> None:
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.replicas = dict(replicas or {})
        self._supervisor: Supervisor | None = None
        self._sockets = tempfile.TemporaryDirectory(prefix="asya-bench-sock-")

    def start(self, *, endpoint: str, namespace: str, actors: list[str]) -> None:
        plan = MeshPlan(
            mesh=identity_mesh(namespace=namespace, actors=actors, concurrency=self.concurrency),
            pipeline_dir=REPO_ROOT,
            region="us-east-1",
            sqs_endpoint=endpoint,
            s3_endpoint=endpoint,
            bucket=f"asya-{namespace}-results",
            replicas={**dict.fromkeys(SINKS, 0), **self.replicas},
            socket_dir=Path(self._sockets.name),
            shared_sidecars=False,  # one process per sidecar, as pods run them: the costs measured are a pod's
        )
        self._supervisor = Supervisor(specs=process_specs(plan), log_dir=Path(self.log_dir) / namespace).start()

    def processes(self) -> list[psutil.Process]:
        assert self._supervisor is not None, "start() first"
        return [psutil.Process(pid) for pid in self._supervisor.pids()]

    def stop(self) -> None:
        if self._supervisor is not None:
            self._supervisor.stop()
        self._sockets.cleanup()
