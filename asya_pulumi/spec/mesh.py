"""``MeshSpec``: the actors of one namespace, their entry routes, and the GPU pools they may use."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.aws_facts import check_region
from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.cluster import ClusterSpec, check_gpu_pool_name
from asya_pulumi.spec.gateway import GatewaySpec, check_gateway
from asya_pulumi.spec.hardening import ResultRetentionSpec
from asya_pulumi.spec.limits import (
    check_image,
    check_mesh_namespace,
    check_namespace_fits,
    check_result_bucket,
    repeated,
)
from asya_pulumi.spec.runtime_pin import DEFAULT_RUNTIME_IMAGE
from asya_pulumi.spec.triggers import SCHEDULE_PAYLOAD_MAX_BYTES, MeshTriggerSpec, check_triggers
from asya_runtime.config import DEFAULT_HOP_BUDGET, MAX_HOP_BUDGET
from asya_runtime.naming import check_dns_label, check_names_fit
from asya_runtime.resiliency import check_recovery_actors, check_recovery_cycles


def check_namespace(value: str) -> str:
    """The one rule for a mesh namespace, for a mesh and for a team joining one (``spec/team.py``): a DNS label of at
    most 40 characters, not reserved, and naming a valid result bucket."""
    check_dns_label(value, what="mesh namespace", max_len=40)
    check_mesh_namespace(value)
    check_result_bucket(namespace=value)
    return value


def check_actor_names(*, namespace: str, region: str, actors: Sequence[AsyncActorSpec]) -> list[str]:
    """The actors' names, after refusing duplicates and any name whose derived AWS names would pass a limit."""
    names = [a.name for a in actors]
    duplicates = repeated(names)
    if duplicates:
        raise ValueError(f"actors: duplicate actor name(s) {duplicates}; every actor needs its own name")
    check_namespace_fits(namespace=namespace, region=region)
    for name in names:
        check_names_fit(namespace=namespace, actor=name)
    return names


def check_routes(
    routes: Mapping[str, Sequence[str]], *, known: Collection[str], where: str = "the mesh"
) -> None:
    """Every route is non-empty and names only ``known`` actors; the error lists the known ones.

    ``where`` says which declarations ``known`` came from: a single mesh, or a mesh base (platform stack) plus the
    actors a team stack adds, so the message tells the reader which stack to look in.
    """
    names = ", ".join(sorted(known))
    for route, steps in routes.items():
        if not steps:
            example = next(iter(known), "an-actor")
            raise ValueError(f"route {route!r} is empty; list the actors it runs, e.g. [{example}]")
        for step in steps:
            if step not in known:
                raise ValueError(
                    f"route {route!r} names actor {step!r}, which is not in {where}; known actors: {names}"
                )


class MeshSpec(SpecModel):
    """A mesh: one namespace (Kubernetes namespace and queue prefix), its actors and named entry routes."""

    namespace: str = Field(description="DNS-1123 label; prefix of every queue: asya-{namespace}_{actor}.")
    actors: list[AsyncActorSpec] = Field(min_length=1)
    routes: dict[str, list[str]] = Field(default_factory=dict, description="Entry routes, e.g. score: [a, b, c].")
    gpu_pools: list[str] = Field(default_factory=list, description="Names of the GPU node pools actors may use.")
    region: str = "us-east-1"
    runtime_image: str = DEFAULT_RUNTIME_IMAGE
    hop_budget: int = Field(
        DEFAULT_HOP_BUDGET, ge=2, le=MAX_HOP_BUDGET,
        description=f"Hops an envelope may make, retries included ({DEFAULT_HOP_BUDGET}: far above any sane route); "
        "past it the envelope is error-ended (`hop budget exhausted`, naming the actors it went round), no loop.",
    )
    result_retention: ResultRetentionSpec = Field(
        default_factory=ResultRetentionSpec,
        description="Lifecycle of the result bucket: records expire after 90 days, old versions 7 days later.",
    )
    triggers: list[MeshTriggerSpec] = Field(
        default_factory=list,
        description="What starts a route without a client: `s3` (an object created under a bucket/prefix; the "
        "mesh's bucket by default) or `schedule` (EventBridge Scheduler cron/rate). None by default "
        "(docs/infrastructure.md, \"Triggers\").",
    )
    gateway: GatewaySpec | None = Field(
        None,
        description="The front door (docs/gateway.md). null (default): no gateway and the sidecars track no status "
        "(the status table exists only if an actor has `rateLimit`, for its token bucket); set (even to {}) to create "
        "the status table and the gateway.",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("gpu_pools")
    @classmethod
    def _check_gpu_pools(cls, value: list[str]) -> list[str]:
        return [check_gpu_pool_name(pool) for pool in value]

    @field_validator("runtime_image")
    @classmethod
    def _check_runtime_image(cls, value: str) -> str:
        return check_image(value, what="runtimeImage")

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        return check_region(value)

    @model_validator(mode="after")
    def _check_mesh(self) -> MeshSpec:
        names = check_actor_names(namespace=self.namespace, region=self.region, actors=self.actors)
        for actor in self.actors:
            self._check_gpu(actor)
            check_recovery_actors(actor=actor.name, resiliency=actor.resiliency, known=names)
        check_recovery_cycles({actor.name: actor.resiliency for actor in self.actors})
        check_routes(self.routes, known=names)
        check_triggers(self.triggers, namespace=self.namespace, routes=self.routes)
        self._check_schedule_envelopes()
        if self.gateway is not None:
            check_gateway(self.gateway, routes=self.routes, actors=names)
        return self

    def _check_schedule_envelopes(self) -> None:
        """A schedule sends its payload inside a whole envelope (route, headers, status) as one SQS message: the
        envelope, not the payload alone, must fit SQS's message size."""
        from asya_pulumi.objects.triggers import schedule_input  # the objects import this module

        for trigger in self.triggers:
            if trigger.schedule is None:
                continue
            size = len(schedule_input(mesh=self, trigger=trigger).encode())
            if size > SCHEDULE_PAYLOAD_MAX_BYTES:
                raise ValueError(
                    f"triggers[{trigger.name}].schedule.payload: its envelope is {size} bytes of JSON; a scheduled "
                    f"run travels as one SQS message ({SCHEDULE_PAYLOAD_MAX_BYTES} bytes with the route and "
                    "headers): put large data in S3 and pass its key"
                )

    def _check_gpu(self, actor: AsyncActorSpec) -> None:
        if actor.gpu is None:
            return
        if not self.gpu_pools:
            raise ValueError(
                f"actor {actor.name!r} asks for a GPU but the mesh has no GPU node pool; add a pool to the "
                f"cluster's gpuPools (and the mesh's gpuPools) or remove `gpu` from the actor"
            )
        if actor.gpu.pool is None and len(self.gpu_pools) > 1:
            raise ValueError(
                f"actor {actor.name!r}: the mesh has several GPU pools ({', '.join(self.gpu_pools)}); "
                f"name one with gpu.pool"
            )
        if actor.gpu.pool is not None and actor.gpu.pool not in self.gpu_pools:
            raise ValueError(
                f"actor {actor.name!r}: gpu.pool {actor.gpu.pool!r} is not a GPU pool of the mesh; "
                f"known pools: {', '.join(self.gpu_pools)}"
            )

    def gpu_pool_of(self, actor: AsyncActorSpec) -> str | None:
        """The GPU pool an actor runs on (its own choice, or the mesh's only pool), or None for a CPU actor."""
        if actor.gpu is None:
            return None
        return actor.gpu.pool or self.gpu_pools[0]

    def check_fits(self, cluster: ClusterSpec) -> None:
        """Every GPU actor fits a node of its pool: any of the pool's instance types may be started for it, so its
        ``gpu.count`` must fit the one with the fewest GPUs, or the pod stays Pending on that node forever."""
        pools = {pool.name: pool for pool in cluster.gpu_pools}
        for actor in self.actors:
            name = self.gpu_pool_of(actor)
            if actor.gpu is None or name is None:
                continue
            pool = pools.get(name)
            if pool is None:
                raise ValueError(f"actor {actor.name!r}: GPU pool {name!r} is not one of the cluster's gpuPools "
                                 f"({', '.join(pools) or 'none'}); add it to asya:cluster.gpuPools")
            if actor.gpu.count > pool.node_gpus:
                raise ValueError(
                    f"actor {actor.name!r}: gpu {actor.gpu.count}, but a node of pool {name!r} has {pool.node_gpus} "
                    f"({pool.smallest_type}), so the pod could never be scheduled; lower gpu, or give the pool only "
                    f"instance types with {actor.gpu.count} or more GPUs (e.g. g5.12xlarge has 4)"
                )

    def actor(self, name: str) -> AsyncActorSpec:
        for actor in self.actors:
            if actor.name == name:
                return actor
        raise KeyError(f"no actor {name!r} in mesh {self.namespace!r}")

    def with_overrides(self, **changes: object) -> MeshSpec:
        """A validated copy with fields replaced (e.g. the stack's namespace and the cluster's GPU pools)."""
        data = {name: getattr(self, name) for name in type(self).model_fields}
        data.update(changes)
        return MeshSpec.model_validate(data)
