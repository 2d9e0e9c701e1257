"""The mesh namespace's ResourceQuota: every actor at full scale fits it, mid-rollout included, and nothing much
more does."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from infra_mocks import REGION, Deployment
from test_mesh import EXAMPLE

from asya_pulumi import QuotaSettings
from asya_pulumi.components import ActorMesh, Keda
from asya_pulumi.objects.quota import PodShape, mesh_quota_hard
from asya_pulumi.spec import load_pipeline_dir
from asya_pulumi.spec.limits import parse_quantity

SINK_MAX_REPLICAS = 3


def render(deployment: Deployment, **mesh_args: Any) -> dict[str, Any]:
    spec = load_pipeline_dir(EXAMPLE)

    def program() -> None:
        keda = Keda("keda", cluster_name="c1", region=REGION, mesh_namespaces=[spec.namespace])
        ActorMesh("scoring", spec=spec, cluster_name="c1", keda=keda, **mesh_args)

    deployment.run(program)
    return {"spec": spec, "objects": deployment.kubernetes_objects()}


def demand_at_full_scale(rendered: dict[str, Any]) -> dict[str, Decimal]:
    """What the rendered Deployments ask for with every actor at its maxReplicaCount (read from the objects, not
    from the quota code)."""
    spec = rendered["spec"]
    max_replicas = {a.name: a.scaling.max_replica_count for a in spec.actors}
    totals: dict[str, Decimal] = {}
    for obj in rendered["objects"]:
        if obj["kind"] != "Deployment":
            continue
        replicas = max_replicas.get(obj["metadata"]["name"], SINK_MAX_REPLICAS) + 1  # + the rolling update's surge
        totals["pods"] = totals.get("pods", Decimal(0)) + replicas
        for container in obj["spec"]["template"]["spec"]["containers"]:
            for kind, values in container["resources"].items():
                for name, quantity in values.items():
                    key = f"requests.{name}" if name == "nvidia.com/gpu" else f"{kind}.{name}"
                    totals[key] = totals.get(key, Decimal(0)) + parse_quantity(str(quantity), what=key) * replicas
    return totals


def quota_of(rendered: dict[str, Any]) -> dict[str, str]:
    [found] = [o for o in rendered["objects"] if o["kind"] == "ResourceQuota"]
    assert found["metadata"]["namespace"] == rendered["spec"].namespace
    hard: dict[str, str] = found["spec"]["hard"]
    return hard


def test_every_actor_at_full_scale_and_mid_rollout_fits_the_quota(deployment: Deployment) -> None:
    rendered = render(deployment)
    hard, demand = quota_of(rendered), demand_at_full_scale(rendered)
    assert set(hard) == {"pods", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory",
                         "requests.nvidia.com/gpu"}
    assert int(hard["pods"]) == demand["pods"]
    for key, value in hard.items():
        if key != "pods":
            assert parse_quantity(value, what=key) >= demand[key], key
    assert int(hard["requests.nvidia.com/gpu"]) == 11  # score-image: gpu 1 × (maxReplicaCount 10 + a surge pod)


def test_the_headroom_scales_the_quota_and_explicit_limits_replace_it(deployment: Deployment) -> None:
    base = quota_of(render(deployment))
    deployment.registered.clear()
    wide = quota_of(render(deployment, resource_quota=QuotaSettings(headroom=4)))
    assert int(wide["pods"]) == 4 * int(base["pods"])
    assert parse_quantity(wide["requests.memory"], what="m") == 4 * parse_quantity(base["requests.memory"], what="m")


def test_no_quota_when_switched_off(deployment: Deployment) -> None:
    assert not [o for o in render(deployment, resource_quota=None)["objects"] if o["kind"] == "ResourceQuota"]


def test_a_resource_some_container_does_not_set_is_not_quota_d() -> None:
    # Kubernetes refuses any pod that lacks a resource a quota tracks: without a memory limit on one container,
    # a limits.memory quota would lock that actor out.
    with_limit = {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}}}
    without = {"resources": {"requests": {"cpu": "100m", "memory": "64Mi"}}}
    hard = mesh_quota_hard(pods=[PodShape(containers=[with_limit, without], max_replicas=2)])
    assert "limits.memory" not in hard and hard["requests.memory"] == str(6 * 64 * 2**20)  # 2 containers × 3 pods
    assert hard["requests.cpu"] == "600m" and hard["pods"] == "3"


def test_a_headroom_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="below 1"):
        QuotaSettings(headroom=0.5)

