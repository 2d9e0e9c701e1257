"""``asya dev DIR --kube``: the local mesh with KEDA deciding every actor's replicas on the local control plane.

Once ``asya dev`` has created the mesh's queues, :meth:`KubeMesh.start` applies the mesh's objects as ``pulumi up``
renders them (but for KEDA's authentication and endpoint: :mod:`asya_pulumi.kube.local_target`) to the control
plane ``asya kube up`` started — or starts one, and stops it at exit. From then on the control plane decides: KEDA
scales each Deployment on its queue's depth, the scheduler binds the pods to KWOK's nodes, and
:class:`~asya_pulumi.kube.pod_mirror.PodMirror` runs one actor process pair (handler server + sidecar; a sink's
sidecar alone) per Running pod, under ``asya dev``'s supervisor. A pod that goes away is drained as the kubelet
would: SIGTERM to its sidecar, SIGKILL only after the pod's ``terminationGracePeriodSeconds``.

At exit the mesh's namespace is deleted (KEDA would otherwise keep polling a broker that is gone).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TextIO

from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.kube.errors import KubeError
from asya_pulumi.kube.local_target import for_local_broker, mesh_objects
from asya_pulumi.kube.pod_mirror import PodMirror
from asya_pulumi.local.plan import LOCAL_AWS_ENV, MeshPlan, pod_process_specs
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.local.queues import MeshQueue

__all__ = ["KubeMesh"]

#: The kubelet's default when a pod names no grace period.
DEFAULT_GRACE_S = 30


class LiveReplicas(Mapping[str, int]):
    """Each actor's replicas as KEDA last set them, read at each lookup (the progress view's ``replicas``)."""

    def __init__(self, mirror: PodMirror | None) -> None:
        self.mirror = mirror

    def _now(self) -> dict[str, int]:
        return self.mirror.replicas() if self.mirror is not None else {}

    def __getitem__(self, actor: str) -> int:
        return self._now()[actor]

    def __iter__(self) -> Iterator[str]:
        return iter(self._now())

    def __len__(self) -> int:
        return len(self._now())


@dataclass
class KubeMesh:
    """The control-plane side of one ``asya dev --kube`` run."""

    plan: MeshPlan
    supervisor: Supervisor
    notice: TextIO
    plane: ControlPlane = field(default_factory=ControlPlane)
    started_plane: bool = False
    mirror: PodMirror | None = None
    _grace: dict[str, float] = field(default_factory=dict)

    @property
    def replicas(self) -> LiveReplicas:
        return LiveReplicas(self.mirror)

    def start(self, *, urls: Mapping[str, str], settings: list[MeshQueue]) -> None:
        """Use (or start) the control plane, apply the mesh's objects, and mirror its pods from now on."""
        if not self.plane.status().get("readyz", "").startswith("200"):
            print(f"starting the local control plane ({self.plane.directory}) ...", file=self.notice, flush=True)
            self.plane.up(notice=self.notice)
            self.started_plane = True
        client = self.plane.client()
        namespace = self.plan.mesh.namespace

        def not_terminating() -> bool:
            existing = client.get("v1", "Namespace", namespace)
            return existing is None or not existing["metadata"].get("deletionTimestamp")

        client.wait_for(not_terminating, what=f"namespace {namespace!r} of an earlier run to finish terminating",
                        timeout_s=120)
        assert self.plan.sqs_endpoint is not None, "--kube runs against a local broker"
        objects = for_local_broker(
            mesh_objects(self.plan.mesh), endpoint=self.plan.sqs_endpoint,
            queue_urls={queue.name: urls[queue.actor] for queue in settings},
            access_key_id=LOCAL_AWS_ENV["AWS_ACCESS_KEY_ID"], secret_access_key=LOCAL_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        )
        for obj in sorted(objects, key=lambda o: o["kind"] != "Namespace"):
            client.apply(obj)
        print(f"applied {len(objects)} objects to namespace {self.plan.mesh.namespace!r}; KEDA decides the "
              f"replicas now (KUBECONFIG={self.plane.kubeconfig})", file=self.notice, flush=True)
        self.mirror = PodMirror(client=client, namespace=self.plan.mesh.namespace, start=self._start_pod,
                                stop=self._stop_pod).begin()

    def _start_pod(self, pod: str, actor: str, grace_s: float | None) -> None:
        self._grace[pod] = DEFAULT_GRACE_S if grace_s is None else grace_s
        for spec in pod_process_specs(self.plan, member=actor, pod=pod):
            self.supervisor.add(spec)

    def _stop_pod(self, pod: str) -> None:
        grace = self._grace.pop(pod, DEFAULT_GRACE_S)
        for name in (f"{pod}-sidecar", f"{pod}-handler"):  # the sidecar drains first, through its handler
            if name in self.supervisor.names():
                self.supervisor.remove(name, timeout_s=grace)

    def close(self) -> None:
        """Drain every mirrored pod, delete the mesh's namespace, stop the control plane if this run started it."""
        if self.mirror is not None:
            self.mirror.end()
            client = self.plane.client()
            client.delete("v1", "Namespace", self.plan.mesh.namespace)
            with contextlib.suppress(KubeError):  # the next run waits for whatever is left
                client.wait_for(lambda: client.get("v1", "Namespace", self.plan.mesh.namespace) is None,
                                what="the namespace to go", timeout_s=30)
        if self.started_plane:
            self.plane.down()
