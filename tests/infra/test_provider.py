"""The cross-language component provider constructs the same components from camelCase inputs."""

from __future__ import annotations

import gc
import json
from typing import Any

import pytest
from infra_mocks import REGION, Deployment
from pulumi.provider import ConstructResult

from asya_pulumi.package.provider import COMPONENTS, AsyaProvider

MESH = {
    "namespace": "xlang",
    "actors": [{"name": "echo", "image": "echo:1", "handler": "handlers.echo", "scaling": {"maxReplicaCount": 2}}],
    "routes": {"go": ["echo"]},
}


def test_schema_lists_every_component_token() -> None:
    schema = json.loads(AsyaProvider().schema or "{}")
    assert schema["name"] == "asya"
    assert sorted(schema["resources"]) == sorted(COMPONENTS)
    assert schema["resources"]["asya:index:ActorMesh"]["requiredInputs"] == ["spec", "clusterName"]


def test_construct_builds_an_actor_mesh_from_manifest_shaped_inputs(deployment: Deployment) -> None:
    results: list[ConstructResult] = []

    def program() -> Any:
        results.append(AsyaProvider().construct("xlang", "asya:index:ActorMesh", {"spec": MESH, "clusterName": "c1"}))
        return results[0].state["queueUrls"]

    deployment.run(program)
    mesh = deployment.one("asya:index:ActorMesh", "xlang")
    assert mesh.urn.endswith("asya:index:ActorMesh::xlang")
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "xlang-echo-scaled-object")
    assert scaled.inputs["spec"]["maxReplicaCount"] == 2
    assert scaled.inputs["spec"]["triggers"][0]["metadata"]["awsRegion"] == REGION


def test_construct_rejects_a_bad_spec_with_the_spec_message(deployment: Deployment) -> None:
    bad = {**MESH, "routes": {"go": ["echo", "missing"]}}
    with pytest.raises(ValueError, match="route 'go' names actor 'missing', which is not in the mesh"):
        AsyaProvider().construct("bad", "asya:index:ActorMesh", {"spec": bad, "clusterName": "c1"})


TEAM = {
    "namespace": "xlang",
    "actors": [{"name": "rank", "image": "rank:1", "handler": "ranking.rank"}],
    "routes": {"go-and-rank": ["echo", "rank"]},
}
TEAM_INPUTS = {
    "spec": TEAM, "meshNamespace": "xlang", "meshRegion": REGION, "clusterName": "c1", "meshActors": ["echo"]
}


def test_construct_adds_team_actors_to_a_mesh_from_stack_outputs(deployment: Deployment) -> None:
    results: list[ConstructResult] = []

    def program() -> Any:
        results.append(AsyaProvider().construct("ranking", "asya:index:TeamActors", TEAM_INPUTS))
        return results[0].state["routes"]

    deployment.run(program)
    assert deployment.one("asya:index:TeamActors", "ranking").urn.endswith("asya:index:TeamActors::ranking")
    queue = deployment.one("aws:sqs/queue:Queue", "ranking-rank-queue")
    assert queue.inputs["name"] == "asya-xlang_rank"
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "ranking-rank-scaled-object")
    assert scaled.inputs["metadata"]["namespace"] == "xlang"


def test_construct_refuses_a_team_route_to_an_actor_neither_side_declares(deployment: Deployment) -> None:
    inputs = {**TEAM_INPUTS, "spec": {**TEAM, "routes": {"go": ["echo", "missing"]}}}
    expected = r"names actor 'missing', which is not in the mesh base .* known actors: echo, rank$"
    with pytest.raises(Exception, match=expected):
        deployment.run(lambda: AsyaProvider().construct("bad", "asya:index:TeamActors", inputs).state["routes"])
    gc.collect()  # the other registrations' failed futures (see test_team_stacks.collect_failed_registrations)
