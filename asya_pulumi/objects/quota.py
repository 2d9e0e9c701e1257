"""The ResourceQuota of a mesh namespace: the most its actors can ever claim, derived from their specs.

KEDA scales each actor up to its ``maxReplicaCount``; the quota is what every actor of the mesh (sinks included) at
its maximum asks for, plus the pod a rolling update adds (:data:`~asya_pulumi.objects.pod.MAX_SURGE`), times a
headroom, so a mesh is bounded where it runs (a forged or runaway Deployment, a pod created by hand, or a
``maxReplicaCount`` typo in another stack cannot take a shared cluster) while its own actors at full scale always
fit, mid-rollout included.

A resource appears in the quota only when every container of the mesh sets it: Kubernetes refuses any pod that
lacks a resource a quota tracks, so a quota on ``limits.memory`` would lock out an actor whose spec sets no memory
limit.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from asya_pulumi.objects import pod
from asya_pulumi.objects.sidecar import sidecar_config
from asya_pulumi.spec import AsyncActorSpec, SinkSpec
from asya_pulumi.spec.limits import parse_quantity

#: Headroom over the mesh's own maximum: 1.0 is exactly what its actors can reach (mid-rollout included).
DEFAULT_HEADROOM = 1.0
#: What the quota bounds per container: ``requests.cpu`` … ``limits.memory``; GPUs are counted apart.
_COMPUTE = tuple(f"{kind}.{name}" for kind in ("requests", "limits") for name in ("cpu", "memory"))
GPU = "nvidia.com/gpu"


@dataclass(frozen=True)
class QuotaSettings:
    """``headroom``: the quota is the mesh's own maximum times this (a platform mesh that team stacks add actors
    to needs room for theirs). ``hard``: an explicit ``spec.hard`` instead of the derived one."""

    headroom: float = DEFAULT_HEADROOM
    hard: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not math.isfinite(self.headroom) or self.headroom < 1:
            raise ValueError(f"quota headroom {self.headroom} is below 1: the mesh's own actors at their "
                             "maxReplicaCount would not fit; use 1 or more")


@dataclass(frozen=True)
class PodShape:
    """One actor's pod (its containers, with their ``resources``) and the most replicas KEDA may give it."""

    containers: Sequence[dict[str, Any]]
    max_replicas: int

    @property
    def pods(self) -> int:
        """The most pods of the actor at once: its maximum, and the one a rolling update adds."""
        return self.max_replicas + pod.MAX_SURGE


def mesh_quota_hard(*, pods: Iterable[PodShape], headroom: float = DEFAULT_HEADROOM) -> dict[str, str]:
    """``spec.hard`` of the mesh's ResourceQuota: ``pods``, each of ``requests``/``limits`` ``cpu``/``memory``
    that every container sets, and ``requests.nvidia.com/gpu`` (an extended resource: quota'd by request, which
    Kubernetes takes from the limit) when any actor has GPUs."""
    shapes = list(pods)
    totals = dict.fromkeys((*_COMPUTE, GPU), Decimal(0))
    everywhere = set(_COMPUTE)
    for shape in shapes:
        for container in shape.containers:
            resources = container.get("resources") or {}
            for key in _COMPUTE:
                kind, name = key.split(".")
                quantity = (resources.get(kind) or {}).get(name)
                if quantity is None:
                    everywhere.discard(key)
                else:
                    totals[key] += parse_quantity(str(quantity), what=key) * shape.pods
            gpus = (resources.get("limits") or {}).get(GPU)
            if gpus is not None:
                totals[GPU] += Decimal(str(gpus)) * shape.pods
    scale = Decimal(str(headroom))
    hard = {"pods": str(math.ceil(sum(shape.pods for shape in shapes) * scale))}
    for key in _COMPUTE:
        if key in everywhere:
            hard[key] = _quantity(totals[key] * scale)
    if totals[GPU]:
        hard[f"requests.{GPU}"] = str(math.ceil(totals[GPU] * scale))
    return hard


def actor_pod_shape(spec: AsyncActorSpec | SinkSpec) -> PodShape:
    """The pod an actor (or sink) renders, as far as the quota counts it: its containers' resources and its
    maximum replicas (``maxReplicaCount``; ``replicas`` when KEDA does not scale it)."""
    # The sidecar's sizing reads only its concurrency and limits: the namespace and region here are placeholders.
    config = sidecar_config(spec, namespace="quota", region="us-east-1")
    sidecar = {"resources": pod.sidecar_resources(sidecar=config, overrides=getattr(spec, "sidecar", None))}
    if isinstance(spec, SinkSpec):
        return PodShape(containers=[sidecar], max_replicas=spec.scaling.max_replica_count)
    replicas = spec.scaling.max_replica_count if spec.scaling.enabled else spec.replicas
    return PodShape(containers=[pod.handler_container(spec=spec), sidecar], max_replicas=replicas)


def _quantity(value: Decimal) -> str:
    """A whole number as is; a fraction (CPU) in millicores, rounded up: a quota is a ceiling."""
    if value == value.to_integral_value():
        return str(int(value))
    return f"{math.ceil(value * 1000)}m"


def resource_quota(*, namespace: Any, labels: dict[str, str], hard: dict[str, str]) -> dict[str, Any]:
    """The ResourceQuota object named ``asya-mesh`` in ``namespace`` (a name, or a Pulumi Output of one)."""
    return {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "asya-mesh", "namespace": namespace, "labels": labels},
        "spec": {"hard": hard},
    }
