"""``spec.batch`` renders for Kubernetes: the sidecar's env, the KEDA target, the package schema, clear errors."""

from __future__ import annotations

from typing import Any

import pytest
from infra_mocks import Deployment
from support.pods import plain_env
from test_actor import SCORE, build, deployment_spec
from test_spec_errors import error_of, manifest

from asya_pulumi.package.provider import schema
from asya_pulumi.package.schema import token
from asya_runtime.config import MAX_BATCH_SIZE, SidecarConfig

BATCHED = {**SCORE, "concurrency": 1, "batch": {"maxSize": 16, "maxWait": "20ms"}}


def test_the_sidecar_env_carries_the_batch_and_reads_back_as_its_config(deployment: Deployment) -> None:
    build(deployment, BATCHED)
    sidecar = deployment_spec(deployment)["spec"]["template"]["spec"]["containers"][1]
    env = plain_env(sidecar)
    assert (env["ASYA_BATCH_MAX_SIZE"], env["ASYA_BATCH_MAX_WAIT"]) == ("16", "20ms")
    config = SidecarConfig.from_env(env)
    assert (config.batch_max_size, config.batch_max_wait, config.concurrency) == (16, 0.02, 1)
    # two batches per handler slot plus one receive: the receive loop keeps the next batch filling
    assert config.slots == 2 * 16 + 10


def test_an_actor_without_batch_renders_no_batch_env(deployment: Deployment) -> None:
    build(deployment)
    env = plain_env(deployment_spec(deployment)["spec"]["template"]["spec"]["containers"][1])
    assert not [name for name in env if name.startswith("ASYA_BATCH")]
    assert SidecarConfig.from_env(env).slots == SCORE["concurrency"]


def test_the_keda_target_is_queue_length_times_the_batch_size(deployment: Deployment) -> None:
    build(deployment, BATCHED)
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "dev-score-image-scaled-object")
    (trigger,) = scaled.inputs["spec"]["triggers"]
    assert trigger["metadata"]["queueLength"] == str(SCORE["scaling"]["queueLength"] * 16)  # type: ignore[index]


def test_the_package_schema_has_the_batch_type() -> None:
    package = schema()
    batch = package["types"][token("BatchSpec")]
    assert set(batch["properties"]) == {"maxSize", "maxWait"} and batch["required"] == ["maxSize"]
    assert batch["properties"]["maxSize"]["type"] == "integer"
    assert batch["properties"]["maxWait"]["oneOf"] == [{"type": "number"}, {"type": "string"}]
    actor = package["types"][token("AsyncActorSpec")]
    assert actor["properties"]["batch"]["$ref"] == f"#/types/{token('BatchSpec')}"


@pytest.mark.parametrize(
    ("batch", "fragments"),
    [
        ({"maxSize": 0}, ["batch.maxSize 0", f"1..{MAX_BATCH_SIZE}"]),
        ({"maxSize": MAX_BATCH_SIZE + 1}, ["batch.maxSize", str(MAX_BATCH_SIZE)]),
        ({"maxSize": 8, "maxWait": "20s"}, ["batch.maxWait 20s", "10s"]),
        ({"maxSize": 8, "maxWait": "soon"}, ["maxWait", "not a duration"]),
        ({"maxWait": "50ms"}, ["maxSize"]),
        ({"maxSize": 8, "maxLatency": "1s"}, ["maxLatency"]),
    ],
)
def test_a_bad_batch_is_refused_naming_the_field(batch: dict[str, Any], fragments: list[str]) -> None:
    message = error_of(manifest(batch=batch))
    for fragment in fragments:
        assert fragment in message, message


def test_concurrency_times_batch_size_is_bounded() -> None:
    message = error_of(manifest(concurrency=100, batch={"maxSize": 256}))
    assert "concurrency 100 x batch.maxSize 256" in message and "1024" in message


def test_the_sidecar_memory_limit_budgets_every_item_of_a_batch_as_a_call(deployment: Deployment) -> None:
    from asya_pulumi.objects.pod import sidecar_memory_limit_mib

    build(deployment, BATCHED)
    sidecar = deployment_spec(deployment)["spec"]["template"]["spec"]["containers"][1]
    config = SidecarConfig.from_env(plain_env(sidecar))
    expected = sidecar_memory_limit_mib(
        concurrency=16, max_fanout=config.max_fanout, max_message_bytes=config.max_message_bytes
    )
    assert sidecar["resources"]["limits"]["memory"] == f"{expected}Mi"
