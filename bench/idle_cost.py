"""Idle cost: SQS requests per minute that a mesh makes when there is nothing to do.

Several one-actor meshes share one fresh broker, each behind its own counting proxy, observed over the same window,
each started from ``asya dev``'s process plan with the given replica counts (see :func:`idle_setups`):

* **zero replicas** — the queues exist, no process runs (what KEDA leaves at ``minReplicaCount: 0`` on an empty
  queue). Target: 0 requests from actors. Also with the two sinks that ``asya dev`` keeps at one replica each.
* **one idle replica** — one actor's sidecar and handler server, with ``ASYA_CONCURRENCY=1`` and with the
  benchmark's concurrency. Target: about 3 requests a minute (one 20 s long poll after another).

A request is counted when its answer comes back, so long polls still open when the window closes are not counted;
``requests_per_minute`` scales the count in the window to 60 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from asya_pulumi.local.broker import LocalBroker
from asya_runtime.naming import ERROR_SINK, SUCCESS_SINK
from bench.contenders import MeshContender
from bench.counting_proxy import CountingProxyProcess
from bench.driver import create_pipeline_queues, identity_mesh, sqs_client


@dataclass(frozen=True)
class IdleObservation:
    label: str
    window_s: float
    by_action: dict[str, int]

    @property
    def requests(self) -> int:
        return sum(n for action, n in self.by_action.items() if action != "other")

    @property
    def requests_per_minute(self) -> float:
        return 60 * self.requests / self.window_s


@dataclass(frozen=True)
class IdleSetup:
    label: str
    replicas: dict[str, int]  # actor "a" and the sinks; the mesh has the one actor "a"
    concurrency: int = 1


def idle_setups(*, concurrency: int) -> list[IdleSetup]:
    """Zero replicas of everything; zero actors with the sinks ``asya dev`` runs; one idle actor replica."""
    setups = [
        IdleSetup("zero replicas (actor and sinks)", {"a": 0, SUCCESS_SINK: 0, ERROR_SINK: 0}),
        IdleSetup("zero actor replicas, both sinks at 1", {"a": 0, SUCCESS_SINK: 1, ERROR_SINK: 1}),
        IdleSetup("one idle actor replica, concurrency 1", {"a": 1}),
    ]
    if concurrency != 1:
        setups.append(IdleSetup(f"one idle actor replica, concurrency {concurrency}", {"a": 1}, concurrency))
    return setups


@dataclass(frozen=True)
class IdleCost:
    observations: list[IdleObservation] = field(default_factory=list)


def measure_idle_cost(*, window_s: float, workdir: str, concurrency: int = 10) -> IdleCost:
    """Observe each setup of :func:`idle_setups` side by side for ``window_s`` on one fresh broker."""
    setups = idle_setups(concurrency=concurrency)
    with LocalBroker() as broker:
        sqs = sqs_client(broker.endpoint)
        proxies: list[CountingProxyProcess] = []
        meshes: list[MeshContender] = []
        try:
            for i, setup in enumerate(setups):
                namespace = f"idle-{i}"
                create_pipeline_queues(sqs=sqs, mesh=identity_mesh(namespace=namespace, actors=["a"]))
                proxy = CountingProxyProcess(upstream=broker.endpoint, workdir=workdir)
                proxies.append(proxy)
                mesh = MeshContender(log_dir=workdir, concurrency=setup.concurrency, replicas=setup.replicas)
                meshes.append(mesh)
                mesh.start(endpoint=proxy.url, namespace=namespace, actors=["a"])
                if any(setup.replicas.values()):
                    _wait_for_first_poll(proxy)
            for proxy in proxies:
                proxy.reset()
            time.sleep(window_s)
            return IdleCost(
                observations=[
                    IdleObservation(label=setup.label, window_s=window_s, by_action=dict(proxy.counts()["by_action"]))
                    for setup, proxy in zip(setups, proxies, strict=True)
                ]
            )
        finally:
            for mesh in meshes:
                mesh.stop()
            for proxy in proxies:
                proxy.stop()


def _wait_for_first_poll(proxy: CountingProxyProcess, timeout_s: float = 60.0) -> None:
    """The replica is up once its first (empty) long poll has come back or is under way."""
    deadline = time.monotonic() + timeout_s
    while not proxy.counts()["by_action"].get("GetQueueUrl"):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the idle replica made no request within {timeout_s:.0f} s")
        time.sleep(0.1)
    time.sleep(1.0)  # let it settle into its steady long-poll loop before the window opens
