"""Idle cost: SQS requests per minute that a mesh makes when there is nothing to do.

Two meshes share one fresh broker, each behind its own counting proxy, observed over the same window:

* **zero replicas** — the mesh's queues exist, no actor process runs (what KEDA leaves at ``minReplicaCount: 0``
  on an empty queue). Target: 0 requests from actors.
* **one idle replica** — one actor's sidecar and handler server, once with ``ASYA_CONCURRENCY=1`` and once with the
  benchmark's concurrency. Target: about 3 requests a minute (one 20 s long poll after another).

A request is counted when its answer comes back, so long polls still open when the window closes are not counted;
``requests_per_minute`` scales the count in the window to 60 s.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from asya_pulumi.local.broker import LocalBroker
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
class IdleCost:
    observations: list[IdleObservation] = field(default_factory=list)


def measure_idle_cost(*, window_s: float, workdir: str, concurrency: int = 10) -> IdleCost:
    """Observe a zero-replica mesh and one idle replica (concurrency 1 and ``concurrency``) for ``window_s``."""
    setups = [("zero replicas", None), ("one idle replica, concurrency 1", 1)]
    if concurrency != 1:
        setups.append((f"one idle replica, concurrency {concurrency}", concurrency))
    with LocalBroker() as broker:
        sqs = sqs_client(broker.endpoint)
        proxies: list[CountingProxyProcess] = []
        replicas: list[MeshContender] = []
        try:
            for i, (_, replica_concurrency) in enumerate(setups):
                namespace = f"idle-{i}"
                create_pipeline_queues(sqs=sqs, mesh=identity_mesh(namespace=namespace, actors=["a"]))
                proxy = CountingProxyProcess(upstream=broker.endpoint, workdir=workdir)
                proxies.append(proxy)
                if replica_concurrency is not None:
                    replica = MeshContender(log_dir=workdir, concurrency=replica_concurrency)
                    replicas.append(replica)
                    replica.start(endpoint=proxy.url, namespace=namespace, actors=["a"])
                    _wait_for_first_poll(proxy)
            for proxy in proxies:
                proxy.reset()
            time.sleep(window_s)
            return IdleCost(
                observations=[
                    IdleObservation(label=label, window_s=window_s, by_action=dict(proxy.counts()["by_action"]))
                    for (label, _), proxy in zip(setups, proxies, strict=True)
                ]
            )
        finally:
            for replica in replicas:
                replica.stop()
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
