"""Mirror a namespace's Running pods as local processes: what ``asya dev --kube`` runs in place of a kubelet.

KWOK marks pods Running without running anything. :class:`PodMirror` polls the namespace's pods and, for each one
that is Running (bound, not being deleted), calls ``start(pod, actor, terminationGracePeriodSeconds)`` once; when
the pod is deleted or stops running it calls ``stop(pod)``, which is where the caller drains the actor's process as
the kubelet's SIGTERM would. The actor is the pod's ``app.kubernetes.io/name`` label, which the components put on
every actor's pods. Replicas per actor are what KEDA and the HPA decided: each Deployment's ``spec.replicas``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from asya_pulumi.kube.client import KubeClient
from asya_pulumi.kube.errors import KubeError

__all__ = ["ACTOR_LABEL", "PodMirror"]

ACTOR_LABEL = "app.kubernetes.io/name"


@dataclass
class PodMirror:
    """Calls ``start``/``stop`` as ``namespace``'s pods come and go; :meth:`replicas` is KEDA's decision per actor."""

    client: KubeClient
    namespace: str
    start: Callable[[str, str, float | None], None]
    stop: Callable[[str], None]
    interval_s: float = 0.5
    running: dict[str, str] = field(default_factory=dict)  # pod name -> actor
    _replicas: dict[str, int] = field(default_factory=dict)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    errors: list[str] = field(default_factory=list)

    def sync(self) -> None:
        """One pass: start what newly runs, stop what no longer does, refresh the replica counts."""
        pods = self.client.list("v1", "Pod", namespace=self.namespace)
        wanted = {
            pod["metadata"]["name"]: pod
            for pod in pods
            if (pod.get("status") or {}).get("phase") == "Running" and not pod["metadata"].get("deletionTimestamp")
            and pod["metadata"].get("labels", {}).get(ACTOR_LABEL)
        }
        for name in sorted(set(self.running) - set(wanted)):
            self.stop(name)
            del self.running[name]
        for name, pod in sorted(wanted.items()):
            if name not in self.running:
                actor = pod["metadata"]["labels"][ACTOR_LABEL]
                self.start(name, actor, pod["spec"].get("terminationGracePeriodSeconds"))
                self.running[name] = actor
        self._replicas = {
            d["metadata"]["name"]: int(d["spec"].get("replicas", 0))
            for d in self.client.list("apps/v1", "Deployment", namespace=self.namespace)
        }

    def replicas(self) -> dict[str, int]:
        """Each actor's Deployment's replicas as KEDA and the HPA last set them."""
        return dict(self._replicas)

    def pods_of(self, actor: str) -> int:
        return sum(1 for a in self.running.values() if a == actor)

    def begin(self) -> PodMirror:
        """Sync now, then every ``interval_s`` in a background thread until :meth:`end`."""
        self.sync()
        self._thread = threading.Thread(target=self._loop, name="asya-pod-mirror", daemon=True)
        self._thread.start()
        return self

    def end(self) -> None:
        """Stop syncing, then stop every mirrored pod's processes."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        for name in sorted(self.running):
            self.stop(name)
        self.running.clear()

    def _loop(self) -> None:
        while not self._stopping.wait(self.interval_s):
            try:
                self.sync()
            except KubeError as exc:  # the apiserver restarting: try again at the next tick, say so once
                if not self.errors or self.errors[-1] != str(exc):
                    self.errors.append(str(exc))
