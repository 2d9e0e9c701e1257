"""``TeamSpec``: actors a team adds, from its own stack, to a mesh that a platform stack deployed.

The team's stack knows the mesh only through the platform's exports (a ``StackReference``), so the spec is checked
in two steps: on its own when it is built (names, duplicates, name lengths), and against the platform's exports
once they resolve (:func:`check_team_against_mesh`: same namespace and region, no actor declared twice, routes and
recovery actors naming only actors of either stack, GPU pools the platform has). Both steps fail at preview.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.aws_facts import check_region
from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.mesh import check_actor_names, check_namespace, check_routes
from asya_runtime.resiliency import check_recovery_actors, check_recovery_cycles

#: Where a route's actors may come from in a team stack, as the error message says it.
ACROSS_STACKS = "the mesh base (platform stack) nor this team stack"


class TeamSpec(SpecModel):
    """Actors one team deploys into an existing mesh, and the entry routes the team owns."""

    namespace: str = Field(
        description="The mesh joined: its namespace, as the platform stack exports it (checked at preview). It names "
        "the team's queues asya-{namespace}_{actor} and roles, so it must be known before the platform's outputs are."
    )
    region: str = Field("us-east-1", description="The mesh's region (checked against the platform's export).")
    actors: list[AsyncActorSpec] = Field(min_length=1, description="The actors this team adds to the mesh.")
    routes: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Entry routes the team owns; they may name the mesh base's actors and this team's.",
    )

    @field_validator("namespace")
    @classmethod
    def _check_namespace(cls, value: str) -> str:
        return check_namespace(value)

    @field_validator("region")
    @classmethod
    def _check_region(cls, value: str) -> str:
        return check_region(value)

    @model_validator(mode="after")
    def _check_team(self) -> TeamSpec:
        check_actor_names(namespace=self.namespace, region=self.region, actors=self.actors)
        for actor in self.actors:
            if actor.gpu is not None and actor.gpu.pool is None:
                raise ValueError(
                    f"actor {actor.name!r} asks for a GPU: in a team stack name the pool with gpu.pool "
                    f"(one of the gpuPools the platform stack exports)"
                )
            if actor.rate_limit is not None:
                raise ValueError(
                    f"actor {actor.name!r} has rateLimit, whose token bucket lives in the mesh's status table, which a "
                    f"team stack does not reference yet: declare the actor in the platform stack's mesh, or remove "
                    f"rateLimit"
                )
        return self


def check_team_against_mesh(
    team: TeamSpec, *, namespace: str, region: str, mesh_actors: Sequence[str], gpu_pools: Sequence[str]
) -> None:
    """Refuse a team spec that does not fit the mesh the platform stack exported (runs when its outputs resolve)."""
    if team.namespace != namespace:
        raise ValueError(
            f"namespace {team.namespace!r} is not the platform stack's mesh {namespace!r}; set the team's namespace "
            f"to {namespace!r} or reference the platform stack of mesh {team.namespace!r}"
        )
    if team.region != region:
        raise ValueError(f"region {team.region!r}: mesh {namespace!r} is in {region!r}; deploy the team there")
    own = [a.name for a in team.actors]
    taken = sorted(set(own) & set(mesh_actors))
    if taken:
        raise ValueError(
            f"actor(s) {taken} already belong to mesh {namespace!r} (declared by the platform stack); "
            f"rename the team's actor(s): one queue per actor name"
        )
    known = [*mesh_actors, *own]
    check_routes(team.routes, known=known, where=ACROSS_STACKS)
    for actor in team.actors:
        check_recovery_actors(actor=actor.name, resiliency=actor.resiliency, known=known)
        if actor.gpu is not None and actor.gpu.pool not in gpu_pools:
            pools = ", ".join(gpu_pools) or "none"
            raise ValueError(
                f"actor {actor.name!r}: gpu.pool {actor.gpu.pool!r} is not a GPU pool of mesh {namespace!r}; "
                f"the platform stack exports: {pools}"
            )
    check_recovery_cycles({actor.name: actor.resiliency for actor in team.actors})
