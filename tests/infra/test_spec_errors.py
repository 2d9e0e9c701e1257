"""Every bad spec the issue lists fails at construction with a message naming the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest

from asya_pulumi.spec import AsyncActorSpec, MeshSpec, SpecError

MANIFEST = """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: score-image}
spec:
  image: scoring:latest
  handler: handler.score_image
  scaling: {minReplicaCount: 0, maxReplicaCount: 10}
  resiliency:
    actorTimeout: 120s
    policies:
      default: {maxAttempts: 3, backoff: exponential, initialInterval: 2s, maxInterval: 30s}
"""


def manifest(**spec_changes: Any) -> dict[str, Any]:
    import yaml

    document = yaml.safe_load(MANIFEST)
    document["spec"].update(spec_changes)
    return document


def error_of(source: Any) -> str:
    with pytest.raises(SpecError) as info:
        AsyncActorSpec.from_manifest(source)
    return str(info.value)


def test_the_issue_manifest_loads_with_its_values() -> None:
    spec = AsyncActorSpec.from_manifest(MANIFEST)
    assert spec.name == "score-image"
    assert spec.scaling.max_replica_count == 10
    assert spec.resiliency.actor_timeout == 120.0
    assert spec.resiliency.policies["default"].initial_interval == 2.0


def test_name_that_is_not_dns_1123_names_the_field_and_suggests_a_valid_one() -> None:
    document = manifest()
    document["metadata"]["name"] = "Score_Image"
    message = error_of(document)
    assert "spec.name" in message and "not a DNS-1123 label" in message and "'score-image'" in message


def test_name_too_long_for_sqs_once_prefixed_says_how_many_characters_are_left() -> None:
    actor = AsyncActorSpec.from_manifest(MANIFEST).model_copy(update={"name": "a" * 60})
    with pytest.raises(ValueError) as info:
        MeshSpec(namespace="production-image-scoring", actors=[actor])
    message = str(info.value)
    assert "over SQS's 80-character limit" in message
    assert "shorten the actor name to at most 46 characters" in message


def test_min_replicas_above_max_replicas() -> None:
    message = error_of(manifest(scaling={"minReplicaCount": 5, "maxReplicaCount": 2}))
    assert "spec.scaling" in message
    assert "minReplicaCount (5) is greater than maxReplicaCount (2); raise maxReplicaCount" in message


def test_max_attempts_below_one() -> None:
    message = error_of(manifest(resiliency={"policies": {"default": {"maxAttempts": 0}}}))
    assert "spec.resiliency.policies.default.maxAttempts" in message
    assert "greater than or equal to 1" in message


def test_initial_interval_above_max_interval() -> None:
    policy = {"initialInterval": "1m", "maxInterval": "10s"}
    message = error_of(manifest(resiliency={"policies": {"default": policy}}))
    assert "spec.resiliency.policies.default" in message
    assert "initialInterval (60s) is greater than maxInterval (10s); raise maxInterval" in message


def test_actor_timeout_over_the_sqs_visibility_ceiling() -> None:
    message = error_of(manifest(resiliency={"actorTimeout": "13h"}))
    assert "spec.resiliency" in message
    assert "exceeds SQS's 12h visibility ceiling" in message and "use at most 11h58m30s" in message


def test_gpu_actor_in_a_mesh_without_gpu_pool() -> None:
    actor = AsyncActorSpec.from_manifest(manifest(gpu=1))
    with pytest.raises(ValueError) as info:
        MeshSpec(namespace="dev", actors=[actor])
    assert "actor 'score-image' asks for a GPU but the mesh has no GPU node pool; add a pool" in str(info.value)


def test_gpu_actor_naming_an_unknown_pool() -> None:
    actor = AsyncActorSpec.from_manifest(manifest(gpu={"count": 1, "pool": "a100"}))
    with pytest.raises(ValueError, match=r"gpu.pool 'a100' is not a GPU pool of the mesh; known pools: gpu"):
        MeshSpec(namespace="dev", actors=[actor], gpu_pools=["gpu"])


def test_unknown_field_is_refused_with_a_suggestion() -> None:
    message = error_of(manifest(scalng={"maxReplicaCount": 3}))
    assert "spec.scalng: unknown field 'scalng'; did you mean 'scaling'?" in message


def test_unknown_nested_field_is_refused_with_a_suggestion() -> None:
    message = error_of(manifest(scaling={"maxReplicas": 3}))
    assert "spec.scaling.maxReplicas: unknown field 'maxReplicas'; did you mean 'maxReplicaCount'?" in message


def test_unknown_field_in_a_runtime_model_is_refused_too() -> None:
    message = error_of(manifest(resiliency={"actorTimout": "10s"}))
    assert "spec.resiliency.actorTimout: unknown field 'actorTimout'; did you mean 'actorTimeout'?" in message


def test_duration_that_does_not_parse() -> None:
    message = error_of(manifest(resiliency={"actorTimeout": "2 minutes"}))
    assert "spec.resiliency.actorTimeout" in message
    assert "is not a duration; write e.g. '500ms', '30s'" in message


def test_route_naming_an_unknown_actor_lists_the_known_ones() -> None:
    actor = AsyncActorSpec.from_manifest(MANIFEST)
    with pytest.raises(ValueError) as info:
        MeshSpec(namespace="dev", actors=[actor], routes={"score": ["score-image", "judge"]})
    assert "route 'score' names actor 'judge', which is not in the mesh; known actors: score-image" in str(info.value)


def test_wrong_kind_and_api_version_are_named() -> None:
    document = manifest()
    document["apiVersion"] = "asya.io/v1"
    document["kind"] = "Actor"
    message = error_of(document)
    assert "apiVersion: 'asya.io/v1' is not supported; write 'asya.sh/v1alpha1'" in message
    assert "kind: 'Actor' is not 'AsyncActor'" in message


def test_reserved_env_names_point_at_the_spec_field() -> None:
    message = error_of(manifest(env={"ASYA_CONCURRENCY": "4"}))
    assert "spec.env" in message and "set the matching spec field" in message


def test_sink_names_are_reserved() -> None:
    document = manifest()
    document["metadata"]["name"] = "error-sink"
    assert "reserved for the mesh's built-in sink" in error_of(document)


def test_concurrency_over_the_sidecar_limit() -> None:
    assert "over the sidecar's limit of 100" in error_of(manifest(concurrency=500))


def test_gpu_in_resources_is_upstreams_spelling_of_the_gpu_field() -> None:
    spec = AsyncActorSpec.from_manifest(manifest(resources={"limits": {"nvidia.com/gpu": 2, "memory": "2Gi"}}))
    assert spec.gpu is not None and spec.gpu.count == 2 and spec.resources.limits == {"memory": "2Gi"}
    message = error_of(manifest(gpu=1, resources={"limits": {"nvidia.com/gpu": 1}}))
    assert "resources nvidia.com/gpu and gpu both set the GPUs; keep gpu" in message


def test_several_problems_are_reported_together() -> None:
    message = error_of(manifest(scalng={}, concurrency=0))
    assert message.count("\n  - ") == 2
