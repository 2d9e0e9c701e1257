"""The default ``concurrency``: 10 for an actor without GPUs (batched SQS requests), 1 for a GPU actor (one call at
a time on its model) — as rendered into the pod's sidecar and handler server, not only as the spec's field."""

from __future__ import annotations

from typing import Any

import pytest
from infra_mocks import REGION, Deployment
from support.pods import plain_env

from asya_pulumi.components import AsyncActor
from asya_pulumi.spec import AsyncActorSpec
from asya_pulumi.spec.actor import DEFAULT_CPU_CONCURRENCY, DEFAULT_GPU_CONCURRENCY
from asya_runtime.config import SidecarConfig
from asya_runtime.handler_server import ENV_HANDLER_CONCURRENCY

CPU = {"name": "tokenize", "image": "t:1", "handler": "handlers.tokenize"}
GPU = {"name": "embed", "image": "e:1", "handler": "handlers.embed", "gpu": 1}


def _rendered(deployment: Deployment, spec: dict[str, Any]) -> tuple[int, int]:
    """(sidecar concurrency, handler server concurrency) of the Deployment the actor registers."""
    actor_spec = AsyncActorSpec.model_validate(spec)
    deployment.run(
        lambda: AsyncActor(
            f"dev-{actor_spec.name}",
            spec=actor_spec,
            namespace="dev",
            region=REGION,
            cluster_name="c1",
            gpu_pool="gpu" if actor_spec.gpu else None,
        )
    )
    pod = deployment.one("kubernetes:apps/v1:Deployment", f"dev-{actor_spec.name}-deployment").inputs["spec"]
    handler, sidecar = pod["template"]["spec"]["containers"][:2]
    env = {e["name"]: e.get("value") for e in handler["env"]}
    sidecar_env = plain_env(sidecar)
    return SidecarConfig.from_env(sidecar_env).concurrency, int(env[ENV_HANDLER_CONCURRENCY])


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        (CPU, DEFAULT_CPU_CONCURRENCY),
        (GPU, DEFAULT_GPU_CONCURRENCY),
        ({**GPU, "gpu": {"count": 2}}, DEFAULT_GPU_CONCURRENCY),
        ({**CPU, "concurrency": 1}, 1),  # a handler that is not thread-safe says so
        ({**GPU, "concurrency": 4}, 4),
    ],
)
def test_default_concurrency_follows_gpu_and_reaches_both_containers(
    deployment: Deployment, spec: dict[str, Any], expected: int
) -> None:
    assert AsyncActorSpec.model_validate(spec).concurrency == expected
    assert _rendered(deployment, spec) == (expected, expected)

