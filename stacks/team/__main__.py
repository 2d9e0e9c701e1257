"""Team stack: one team's actors, added to the mesh of a platform stack (``stacks/platform``) it references.

Stack config (stacks/team/Pulumi.<stack>.yaml):
  aws:region          the mesh's region
  asya:platformStack  the platform stack, <org>/<project>/<stack> (a StackReference)
  asya:namespace      the mesh joined (names the team's queues and roles; checked against the platform's export)
  asya:actors         directory of the team's AsyncActor manifests, relative to the repo root
  asya:routes         the team's entry routes; they may name the mesh base's actors and the team's

The team owns its actors' queues, roles and Deployments: ``pulumi up`` / ``destroy`` here never touches the
platform's. A route naming an actor neither stack declares fails ``pulumi preview`` with the known names listed.
"""

from __future__ import annotations

from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.checks.handlers import require_handlers
from asya_pulumi.components.mesh_ref import MeshRef, TeamActors
from asya_pulumi.spec import load_actor_manifest
from asya_pulumi.spec.team import TeamSpec

REPO_ROOT = Path(__file__).resolve().parents[2]


def main() -> None:
    config = pulumi.Config("asya")
    actors_dir = REPO_ROOT / config.require("actors")
    manifests = sorted([*actors_dir.glob("*.yaml"), *actors_dir.glob("*.yml")])
    if not manifests:
        raise ValueError(f"asya:actors {str(actors_dir)!r} holds no AsyncActor manifest (*.yaml)")
    actors = {str(path): load_actor_manifest(path) for path in manifests}
    require_handlers(  # the handlers whose modules sit beside the manifests: a typo fails the preview
        actors=list(actors.values()), directory=actors_dir, manifests={a.name: f for f, a in actors.items()}
    )
    spec = TeamSpec(
        namespace=config.require("namespace"),
        region=pulumi.Config("aws").require("region"),
        actors=list(actors.values()),
        routes=config.get_object("routes") or {},
    )
    platform = pulumi.StackReference(config.require("platformStack"))
    cluster = k8s.Provider("mesh-cluster", kubeconfig=platform.require_output("kubeconfig"))
    team = TeamActors(
        "team", spec=spec, mesh=MeshRef.from_stack(platform),
        opts=pulumi.ResourceOptions(providers=[cluster]),
    )
    pulumi.export("queueUrls", team.queue_urls)
    pulumi.export("roleArns", team.role_arns)
    pulumi.export("routes", team.routes)


main()
