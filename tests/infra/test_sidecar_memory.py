"""The fan-out cap reaches the sidecar from the spec, and the sidecar's memory limit is derived from what its calls
may hold at once (asya_pulumi/objects/pod.py, ``sidecar_memory_limit_mib``)."""

from __future__ import annotations

from typing import Any

import pytest
from infra_mocks import REGION, Deployment
from support.pods import plain_env

from asya_pulumi.components import AsyncActor
from asya_pulumi.objects.pod import SIDECAR_MEMORY_FLOOR_MIB, sidecar_memory_limit_mib
from asya_pulumi.spec import AsyncActorSpec
from asya_runtime.config import DEFAULT_MAX_FANOUT, DEFAULT_MAX_MESSAGE_BYTES, MAX_FANOUT, SidecarConfig

SPLIT = {"name": "split", "image": "split:1", "handler": "handlers.split"}


def _sidecar(deployment: Deployment, spec: dict[str, Any]) -> dict[str, Any]:
    actor_spec = AsyncActorSpec.model_validate(spec)
    deployment.run(lambda: AsyncActor("dev-split", spec=actor_spec, namespace="dev", region=REGION, cluster_name="c1"))
    pod = deployment.one("kubernetes:apps/v1:Deployment", "dev-split-deployment").inputs["spec"]["template"]["spec"]
    [sidecar] = [c for c in pod["containers"] if c["name"] == "sidecar"]
    return sidecar


def _limit(*, concurrency: int, max_fanout: int = DEFAULT_MAX_FANOUT) -> int:
    return sidecar_memory_limit_mib(
        concurrency=concurrency, max_fanout=max_fanout, max_message_bytes=DEFAULT_MAX_MESSAGE_BYTES
    )


def test_the_rendered_sidecar_env_carries_the_specs_max_fan_out(deployment: Deployment) -> None:
    sidecar = _sidecar(deployment, {**SPLIT, "maxFanOut": 500})
    assert plain_env(sidecar)["ASYA_MAX_FANOUT"] == "500"
    assert SidecarConfig.from_env(plain_env(sidecar)).max_fanout == 500


def test_the_default_cap_is_the_sidecars_default() -> None:
    assert AsyncActorSpec.model_validate(SPLIT).max_fan_out == DEFAULT_MAX_FANOUT == SidecarConfig.model_fields[
        "max_fanout"
    ].default


@pytest.mark.parametrize("value", [0, MAX_FANOUT + 1])
def test_a_cap_out_of_bounds_is_refused_naming_the_field(value: int) -> None:
    with pytest.raises(ValueError, match="maxFanOut"):
        AsyncActorSpec.model_validate({**SPLIT, "maxFanOut": value})


def test_the_memory_limit_keeps_the_old_fixed_value_as_its_floor() -> None:
    assert _limit(concurrency=1) == SIDECAR_MEMORY_FLOOR_MIB == 256
    assert _limit(concurrency=1, max_fanout=1) == SIDECAR_MEMORY_FLOOR_MIB


def test_the_memory_limit_grows_with_concurrency_and_the_fan_out_cap() -> None:
    # 96 + concurrency x (2 x (4 x 1 MiB + 1 MiB) + max_fanout x 2.5 KiB)
    assert _limit(concurrency=10) == 96 + 10 * 10 + 245  # 441: ten calls, each may answer 10,000 children
    assert _limit(concurrency=10, max_fanout=MAX_FANOUT) > _limit(concurrency=10)
    assert _limit(concurrency=20) > _limit(concurrency=10)


def test_the_rendered_limit_is_the_formulas(deployment: Deployment) -> None:
    derived = _sidecar(deployment, {**SPLIT, "concurrency": 10})
    assert derived["resources"]["limits"]["memory"] == f"{_limit(concurrency=10)}Mi"


def test_the_sidecar_block_still_wins(deployment: Deployment) -> None:
    overridden = {**SPLIT, "concurrency": 10, "sidecar": {"resources": {"limits": {"memory": "2Gi"}}}}
    assert _sidecar(deployment, overridden)["resources"]["limits"]["memory"] == "2Gi"
