"""``TeamActors``: actors a team adds, from its own stack, to a mesh that a platform stack deployed (``MeshRef``).

The platform stack owns the cluster, KEDA and the mesh base (namespace, sinks, result bucket, shared settings, and
any actors it runs itself). A team stack reads the exports through a ``StackReference`` into a :class:`MeshRef`
and deploys :class:`TeamActors`: each actor gets its own queue, IAM role, ServiceAccount, Deployment and
ScaledObject, exactly as an actor of the mesh base does (:class:`AsyncActor`), so

* IAM isolation holds: the role follows ``asya_pulumi.objects.iam`` (its own queue, the mesh's ``asya-{ns}_*`` wildcard
  to send, nothing else) and trusts only its own ServiceAccount in the mesh namespace;
* KEDA reads its queue: the platform's KEDA may read ``asya-{ns}_*``, which matches every queue a team adds;
* the mesh's default-deny NetworkPolicy and Pod Security labels cover its pods (same namespace, same labels).

The platform stack exports its mesh with :func:`mesh_exports`. The export keys are defined once here
(:data:`EXPORTS`) and used by both sides, so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi

from asya_pulumi.components.actor import AsyncActor
from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.components.mesh import ActorMesh
from asya_pulumi.spec.team import TeamSpec, check_team_against_mesh


@dataclass(frozen=True)
class MeshRef:
    """What a team stack needs of a mesh another stack deployed; every value may be an ``Output``.

    Build it with :meth:`from_stack` (a ``StackReference`` to the platform stack) or from your own values.
    """

    #: The mesh namespace (Kubernetes namespace and queue prefix).
    namespace: pulumi.Input[str]
    #: The mesh's AWS region.
    region: pulumi.Input[str]
    #: The EKS cluster the mesh runs in (the Pod Identity associations name it).
    cluster_name: pulumi.Input[str]
    #: The actors the mesh base declares (sinks excluded): team routes may name them.
    actor_names: pulumi.Input[Sequence[str]]
    #: The GPU node pools of the cluster, for team actors with ``gpu.pool``.
    gpu_pools: pulumi.Input[Sequence[str]] = ()

    @classmethod
    def from_stack(cls, stack: pulumi.StackReference) -> MeshRef:
        """Read every export :func:`mesh_exports` wrote; a missing one fails with the key's name."""
        return cls(**{field: stack.require_output(key) for field, key in EXPORTS.items()})


#: MeshRef field → the platform stack's output name (tests check every field has one).
EXPORTS: dict[str, str] = {
    "namespace": "namespace",
    "region": "region",
    "cluster_name": "clusterName",
    "actor_names": "actorNames",
    "gpu_pools": "gpuPools",
}


def mesh_exports(mesh: ActorMesh, *, cluster_name: pulumi.Input[str]) -> dict[str, pulumi.Input[Any]]:
    """The platform stack's outputs a team stack's :class:`MeshRef` reads (``pulumi.export`` each one)."""
    ref = MeshRef(
        namespace=mesh.namespace,
        region=mesh.spec.region,
        cluster_name=cluster_name,
        actor_names=[a.name for a in mesh.spec.actors],
        gpu_pools=list(mesh.spec.gpu_pools),
    )
    return {key: getattr(ref, field) for field, key in EXPORTS.items()}


class TeamActors(AsyaComponent):
    """A team's actors (``TeamSpec``) added to a mesh deployed by another stack (``MeshRef``).

    The spec is checked against the mesh once the references resolve (at preview): same namespace and region, no
    actor the mesh already has, routes and ``onExhausted`` naming only actors of either stack. Every Kubernetes
    object and IAM trust policy of the team's actors waits on that check, so a failing check registers nothing
    that could deploy. Pass ``opts=ResourceOptions(providers=[k8s_provider])`` for the mesh's cluster.

    Outputs: ``queue_urls`` and ``role_arns`` (actor → value) and ``routes`` (the team's routes, checked).
    """

    OUTPUTS = (
        ComponentOutput("queueUrls", "queue_urls", dict[str, str], "Team actor → SQS queue URL."),
        ComponentOutput("roleArns", "role_arns", dict[str, str], "Team actor → IAM role ARN."),
        ComponentOutput("routes", "routes", dict[str, list[str]], "The team's routes, checked."),
    )
    actors: dict[str, AsyncActor]
    queue_urls: pulumi.Output[dict[str, str]]
    role_arns: pulumi.Output[dict[str, str]]
    routes: pulumi.Output[dict[str, list[str]]]

    def __init__(
        self, resource_name: str, *, spec: TeamSpec, mesh: MeshRef, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}TeamActors", resource_name, None, opts)
        checked = pulumi.Output.all(
            namespace=mesh.namespace, region=mesh.region, actors=mesh.actor_names, pools=mesh.gpu_pools
        ).apply(lambda m: _checked(spec, m))
        # The namespace every team object is created in is the checked one: nothing deploys past a failed check.
        k8s_namespace = checked.apply(lambda _: spec.namespace)
        self.actors = {
            actor.name: AsyncActor(
                f"{resource_name}-{actor.name}",
                spec=actor,
                namespace=spec.namespace,
                region=spec.region,
                cluster_name=mesh.cluster_name,
                k8s_namespace=k8s_namespace,
                gpu_pool=actor.gpu.pool if actor.gpu is not None else None,
                opts=child(self),
            )
            for actor in spec.actors
        }
        names = list(self.actors)
        self.queue_urls = pulumi.Output.all(*(a.queue_url for a in self.actors.values())).apply(
            lambda urls: dict(zip(names, urls, strict=True))
        )
        self.role_arns = pulumi.Output.all(*(a.role_arn for a in self.actors.values())).apply(
            lambda arns: dict(zip(names, arns, strict=True))
        )
        self.routes = checked
        self.register()


def _checked(spec: TeamSpec, mesh: dict[str, Any]) -> dict[str, list[str]]:
    check_team_against_mesh(
        spec, namespace=mesh["namespace"], region=mesh["region"], mesh_actors=list(mesh["actors"]),
        gpu_pools=list(mesh["pools"] or ()),
    )
    return {route: list(steps) for route, steps in spec.routes.items()}
