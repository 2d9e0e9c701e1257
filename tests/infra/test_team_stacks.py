"""Per-team stacks: stacks/platform and stacks/team under mocks, the team's StackReference fed the platform's exports.

The platform program runs first and its exports (what ``pulumi stack output`` would show) are captured; the team
program then runs with ``pulumi:pulumi:StackReference`` resolving to exactly those outputs, as the engine would.
"""

from __future__ import annotations

import gc
import json
import re
import runpy
from dataclasses import fields
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from infra_mocks import REGION, Deployment
from pulumi.runtime import settings

from asya_pulumi.checks.mocked import RecordingMocks, RecordingMonitor
from asya_pulumi.checks.validate import validate_objects
from asya_pulumi.components.cluster import AsyaCluster
from asya_pulumi.components.mesh_ref import EXPORTS, MeshRef
from asya_pulumi.objects import iam
from asya_pulumi.spec.team import TeamSpec, check_team_against_mesh
from asya_runtime.naming import queue_name, role_name

ROOT = Path(__file__).resolve().parents[2]
STACK_REFERENCE = "pulumi:pulumi:StackReference"


class StackReferenceMocks(RecordingMocks):
    """``RecordingMocks`` whose StackReferences resolve to ``stack_outputs`` (by the referenced stack's name)."""

    def __init__(self, stack_outputs: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self.stack_outputs = stack_outputs

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if args.typ != STACK_REFERENCE:
            return super().new_resource(args)
        name = args.inputs["name"]
        return name, {"name": name, "outputs": self.stack_outputs[name], "secretOutputNames": ["kubeconfig"]}


def start(stack_outputs: dict[str, dict[str, Any]], *, stack: str) -> Deployment:
    mocks = StackReferenceMocks(stack_outputs)
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="asya", stack=stack, preview=False, monitor=RecordingMonitor(mocks))
    return Deployment(mocks)


def stack_config(program: str, *, changes: dict[str, Any] | None = None) -> dict[str, Any]:
    config = yaml.safe_load((ROOT / "stacks" / program / "Pulumi.dev.yaml").read_text())["config"]
    config.update(changes or {})
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    return config


def run_program(deployment: Deployment, program: str) -> dict[str, Any]:
    """Run stacks/<program> and return its stack outputs, resolved (what a StackReference to it would read)."""
    exported: dict[str, Any] = {}

    def body() -> Any:
        runpy.run_path(str(ROOT / "stacks" / program / "__main__.py"), run_name="__main__")
        root = settings.get_root_resource()
        assert root is not None
        return pulumi.Output.from_input(dict(root.outputs)).apply(exported.update)

    deployment.run(body)
    return exported


@pytest.fixture(scope="module")
def platform() -> tuple[Deployment, dict[str, Any]]:
    deployment = start({}, stack="platform-dev")
    stack_config("platform")
    outputs = run_program(deployment, "platform")
    settings.ROOT.set(None)
    return deployment, outputs


def run_team(platform_outputs: dict[str, Any], *, changes: dict[str, Any] | None = None) -> Deployment:
    config = stack_config("team", changes=changes)
    deployment = start({config["asya:platformStack"]: platform_outputs}, stack="team-dev")
    try:
        run_program(deployment, "team")
    finally:
        settings.ROOT.set(None)
        collect_failed_registrations()
    return deployment


def collect_failed_registrations() -> None:
    """A refused team spec fails every registration waiting on the check; one error propagates, the others stay in
    futures nobody reads. Collect them now: left to a random GC, their finalizers log tracebacks (Python 3.11's
    traceback module calls ``ast.parse``) in the middle of an unrelated ``ast.parse`` and corrupt its state."""
    gc.collect()


@pytest.fixture(scope="module")
def team(platform: tuple[Deployment, dict[str, Any]]) -> Deployment:
    return run_team(platform[1])


def test_platform_exports_what_a_team_stack_reads(platform: tuple[Deployment, dict[str, Any]]) -> None:
    _, outputs = platform
    assert set(EXPORTS) == {f.name for f in fields(MeshRef)}
    assert set(EXPORTS.values()) | {output.name for output in AsyaCluster.OUTPUTS} <= set(outputs)
    assert outputs["oidcIssuerUrl"].startswith("https://oidc.eks.") and outputs["vpcId"]
    assert outputs["namespace"] == "scoring-dev"
    assert outputs["region"] == REGION
    assert outputs["actorNames"] == ["human-review", "judge", "preprocess", "score-image", "store"]
    assert outputs["gpuPools"] == ["gpu"]
    assert outputs["clusterName"] == "asya-platform-dev"


def test_team_actors_get_their_own_queue_role_and_deployment(team: Deployment) -> None:
    queues = sorted(q.inputs["name"] for q in team.of_type("aws:sqs/queue:Queue"))
    expected = [queue_name(namespace="scoring-dev", actor=a) for a in ("explain", "rank")]
    assert [q for q in queues if not q.endswith("_dlq")] == sorted(expected)
    roles = sorted(r.inputs["name"] for r in team.of_type("aws:iam/role:Role"))
    assert roles == sorted(role_name(namespace="scoring-dev", actor=a, region=REGION) for a in ("explain", "rank"))
    objects = team.kubernetes_objects()
    deployments = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    assert sorted(deployments) == ["explain", "rank"]
    assert {o["metadata"]["namespace"] for o in objects} == {"scoring-dev"}
    pod = deployments["explain"]["spec"]["template"]["spec"]
    assert pod["nodeSelector"]["asya.sh/gpu-pool"] == "gpu"
    assert validate_objects(objects) == []
    # No namespace, sink, bucket or KEDA of its own: those belong to the platform stack.
    assert not team.of_type("aws:s3/bucket:Bucket")
    assert not [o for o in objects if o["kind"] in ("Namespace", "NetworkPolicy")]
    assert not team.of_type("kubernetes:helm.sh/v3:Release")


def test_team_actors_run_in_the_platform_cluster(team: Deployment) -> None:
    (provider,) = team.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"]  # the platform's (secret) kubeconfig export
    in_cluster = [r for r in team.registered if r.type.startswith("kubernetes:")]
    assert in_cluster and all(r.provider.startswith(provider.urn + "::") for r in in_cluster)
    for association in team.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation"):
        assert association.inputs["clusterName"] == "asya-platform-dev"
        assert association.inputs["namespace"] == "scoring-dev"


def test_team_roles_follow_the_mesh_iam_and_keda_reads_their_queues(
    platform: tuple[Deployment, dict[str, Any]], team: Deployment
) -> None:
    queues = {q.inputs["name"]: q for q in team.of_type("aws:sqs/queue:Queue")}
    for policy in team.of_type("aws:iam/rolePolicy:RolePolicy"):
        actor = policy.name.removeprefix("team-").removesuffix("-policy")
        queue_arn = queues[queue_name(namespace="scoring-dev", actor=actor)].outputs["arn"]
        assert json.loads(policy.inputs["policy"]) == iam.actor_policy(queue_arn=queue_arn, namespace="scoring-dev")
    platform_deployment, _ = platform
    keda_policy = json.loads(platform_deployment.one("aws:iam/rolePolicy:RolePolicy", "keda-operator-policy")
                             .inputs["policy"])
    (statement,) = keda_policy["Statement"]
    patterns = [re.compile(re.escape(p).replace(r"\*", ".*") + r"\Z") for p in statement["Resource"]]
    for name, queue in queues.items():
        if not name.endswith("_dlq"):
            assert any(p.match(queue.outputs["arn"]) for p in patterns), (name, statement["Resource"])


def test_team_routes_may_name_actors_of_both_stacks(team: Deployment) -> None:
    (component,) = team.of_type("asya:index:TeamActors")
    assert component.name == "team"
    assert stack_config("team")["asya:routes"]["score-and-rank"] == ["preprocess", "score-image", "rank"]


def test_a_route_to_an_actor_neither_stack_knows_fails_with_the_known_names(
    platform: tuple[Deployment, dict[str, Any]],
) -> None:
    routes = {"score-and-rank": ["preprocess", "score-imgae", "rank"]}
    message = (
        "route 'score-and-rank' names actor 'score-imgae', which is not in the mesh base (platform stack) nor this "
        "team stack; known actors: explain, human-review, judge, preprocess, rank, score-image, store"
    )
    with pytest.raises(Exception, match=re.escape(message)):
        run_team(platform[1], changes={"asya:routes": routes})


def test_a_team_actor_the_mesh_base_already_declares_is_refused(platform: tuple[Deployment, dict[str, Any]]) -> None:
    outputs = {**platform[1], "actorNames": [*platform[1]["actorNames"], "rank"]}
    with pytest.raises(Exception, match=r"actor\(s\) \['rank'\] already belong to mesh 'scoring-dev'"):
        run_team(outputs)


def test_a_team_stack_for_another_mesh_is_refused(platform: tuple[Deployment, dict[str, Any]]) -> None:
    with pytest.raises(Exception, match="namespace 'other-mesh' is not the platform stack's mesh 'scoring-dev'"):
        run_team(platform[1], changes={"asya:namespace": "other-mesh"})


def test_a_team_gpu_actor_must_name_its_pool_and_the_platform_must_have_it() -> None:
    actor = {"name": "embed", "image": "img:1", "handler": "h.embed", "gpu": 1}
    with pytest.raises(ValueError, match=r"actor 'embed' asks for a GPU: in a team stack name the pool with gpu\.pool"):
        TeamSpec(namespace="scoring-dev", actors=[actor])
    team = TeamSpec(namespace="scoring-dev", actors=[{**actor, "gpu": {"pool": "a100"}}])
    message = "gpu.pool 'a100' is not a GPU pool of mesh 'scoring-dev'; the platform stack exports: gpu"
    with pytest.raises(ValueError, match=re.escape(message)):
        check_team_against_mesh(team, namespace="scoring-dev", region=REGION, mesh_actors=["judge"], gpu_pools=["gpu"])


@pytest.mark.parametrize("namespace", ["default", "kube-extra", "keda", "Bad_Name", "a" * 41])
def test_a_team_and_a_mesh_refuse_the_same_namespaces(namespace: str) -> None:
    """One rule (spec.mesh.check_namespace) for both; the team's copy had lost the result bucket's check."""
    from asya_pulumi.spec import AsyncActorSpec, MeshSpec

    actor = AsyncActorSpec.model_validate({"name": "a", "image": "x", "handler": "m.f"})
    with pytest.raises(ValueError) as mesh_refusal:
        MeshSpec(namespace=namespace, actors=[actor])
    with pytest.raises(ValueError) as team_refusal:
        TeamSpec(namespace=namespace, actors=[actor])
    assert mesh_refusal.value.errors()[0]["msg"] == team_refusal.value.errors()[0]["msg"]  # type: ignore[attr-defined]
