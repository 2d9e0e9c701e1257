"""Bring-your-own pieces of AsyaCluster, and the example's handlers as plain functions."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from infra_mocks import REGION, Deployment

from asya_pulumi.components import AsyaCluster
from asya_pulumi.spec import ClusterSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"


def test_own_subnets_skip_the_vpc_and_admin_roles_get_access_entries(deployment: Deployment) -> None:
    spec = ClusterSpec.model_validate(
        {"name": "byo", "subnetIds": ["subnet-a", "subnet-b"], "adminRoleArns": ["arn:aws:iam::123456789012:role/ops"]}
    )
    deployment.run(lambda: AsyaCluster("byo", spec=spec, region=REGION).kubeconfig)
    assert deployment.of_type("aws:ec2/vpc:Vpc") == []
    cluster = deployment.one("aws:eks/cluster:Cluster", "byo")
    assert cluster.inputs["vpcConfig"]["subnetIds"] == ["subnet-a", "subnet-b"]
    entry = deployment.one("aws:eks/accessEntry:AccessEntry", "byo-admin-0")
    assert entry.inputs["principalArn"] == "arn:aws:iam::123456789012:role/ops"
    association = deployment.one("aws:eks/accessPolicyAssociation:AccessPolicyAssociation", "byo-admin-0")
    assert association.inputs["policyArn"].endswith("AmazonEKSClusterAdminPolicy")
    # No GPU pool: neither the device plugin nor the autoscaler is installed.
    assert [r.name for r in deployment.of_type("kubernetes:helm.sh/v3:Release")] == []


def test_cluster_spec_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="minSize \\(3\\) is greater than maxSize \\(1\\); raise maxSize"):
        ClusterSpec.model_validate({"name": "c", "gpuPools": [{"name": "gpu", "minSize": 3, "maxSize": 1}]})
    with pytest.raises(ValueError, match="duplicate pool name"):
        ClusterSpec.model_validate({"name": "c", "gpuPools": [{"name": "gpu"}, {"name": "gpu"}]})


def handlers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("image_scoring_handlers", EXAMPLE / "handlers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_pipeline(payload: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    h = handlers()
    scored = h.score_image(h.preprocess(payload))
    yielded = list(h.judge(scored))
    return yielded, scored


def test_judge_routes_confident_scores_to_store_and_the_rest_to_review() -> None:
    sure, scored_sure = run_pipeline({"image_id": "img-9", "pixels": [255] * 16})
    unsure, scored_unsure = run_pipeline({"image_id": "img-9", "pixels": [0] * 16})
    assert scored_sure["confidence"] > 0.9 >= scored_unsure["confidence"]
    assert sure == [("SET", ".route.next", ["store"]), scored_sure]
    assert unsure == [("SET", ".route.next", ["human-review"]), scored_unsure]


def test_scores_are_deterministic_and_bad_input_is_refused() -> None:
    h = handlers()
    image = {"image_id": "a", "pixels": [10, 200, 30]}
    assert h.score_image(h.preprocess(image)) == h.score_image(h.preprocess(image))
    with pytest.raises(ValueError, match="'pixels'"):
        h.preprocess({"image_id": "a"})
