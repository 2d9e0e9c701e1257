"""Karpenter as the GPU provisioner: what AsyaCluster registers, the objects valid against Karpenter's CRD schemas,
and the controller's least-privilege IAM."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Deployment, Registered

from asya_pulumi.checks.mocked import integers_restored
from asya_pulumi.checks.validate import InvalidObject, validate_object, validate_objects
from asya_pulumi.components import AsyaCluster
from asya_pulumi.components.karpenter import CONSOLIDATE_AFTER, KARPENTER_CHART, ec2_node_class, node_pool
from asya_pulumi.objects import iam
from asya_pulumi.spec import ClusterSpec, GpuNodePoolSpec, NodeSecuritySpec

NODEPOOL = "kubernetes:karpenter.sh/v1:NodePool"
NODECLASS = "kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"
POOLS = [
    {"name": "gpu", "instanceTypes": ["g5.xlarge", "g6.xlarge"], "capacityType": "SPOT", "maxSize": 3},
    {"name": "big", "instanceTypes": ["g5.12xlarge"], "amiType": "BOTTLEROCKET_x86_64_NVIDIA", "maxSize": 2,
     "gpusPerNode": 4, "diskSize": 200},
]


def karpenter_cluster(deployment: Deployment, pools: list[dict[str, Any]] | None = None) -> ClusterSpec:
    spec = ClusterSpec.model_validate(
        {"name": "kc", "gpuProvisioning": "karpenter", "gpuPools": POOLS if pools is None else pools}
    )
    deployment.run(lambda: AsyaCluster("kc", spec=spec, region=REGION).kubeconfig)
    return spec


def by_name(records: list[Registered]) -> dict[str, dict[str, Any]]:
    return {r.inputs["metadata"]["name"]: integers_restored(r.inputs) for r in records}


def test_each_gpu_pool_becomes_a_valid_nodepool_and_ec2nodeclass(deployment: Deployment) -> None:
    karpenter_cluster(deployment)
    pools, classes = by_name(deployment.of_type(NODEPOOL)), by_name(deployment.of_type(NODECLASS))
    assert sorted(pools) == sorted(classes) == ["big", "gpu"]
    assert validate_objects([*pools.values(), *classes.values()]) == []

    gpu = pools["gpu"]["spec"]
    assert gpu["template"]["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
    assert gpu["template"]["metadata"]["labels"] == {"asya.sh/gpu-pool": "gpu", "nvidia.com/gpu.present": "true"}
    requirements = {r["key"]: r["values"] for r in gpu["template"]["spec"]["requirements"]}
    assert requirements["node.kubernetes.io/instance-type"] == ["g5.xlarge", "g6.xlarge"]
    assert requirements["karpenter.sh/capacity-type"] == ["spot"]
    assert pools["big"]["spec"]["template"]["spec"]["requirements"][1]["values"] == ["on-demand"]
    # maxSize nodes' worth of GPUs; with no pending GPU pod there is no node at all.
    assert (gpu["limits"], pools["big"]["spec"]["limits"]) == ({"nvidia.com/gpu": "3"}, {"nvidia.com/gpu": "8"})
    assert gpu["disruption"] == {"consolidationPolicy": "WhenEmpty", "consolidateAfter": "5m"}
    assert gpu["template"]["spec"]["nodeClassRef"] == {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                       "name": "gpu"}


def test_node_classes_are_hardened_like_the_managed_node_groups(deployment: Deployment) -> None:
    karpenter_cluster(deployment)
    classes = by_name(deployment.of_type(NODECLASS))
    (profile,) = deployment.of_type("aws:iam/instanceProfile:InstanceProfile")
    for node_class in classes.values():
        spec = node_class["spec"]
        assert spec["metadataOptions"]["httpTokens"] == "required"
        assert spec["metadataOptions"]["httpPutResponseHopLimit"] == 1
        volumes = spec["blockDeviceMappings"]
        assert all(v["ebs"]["encrypted"] is True and v["ebs"]["volumeType"] == "gp3" for v in volumes)
        assert spec["subnetSelectorTerms"] == spec["securityGroupSelectorTerms"] == [
            {"tags": {"karpenter.sh/discovery": "kc"}}
        ]
        assert spec["instanceProfile"] == profile.outputs["name"]
    assert classes["gpu"]["spec"]["amiSelectorTerms"] == [{"alias": "al2023@latest"}]
    assert [(v["deviceName"], v["ebs"]["volumeSize"]) for v in classes["gpu"]["spec"]["blockDeviceMappings"]] == [
        ("/dev/xvda", "100Gi")
    ]
    big = classes["big"]["spec"]
    assert big["amiSelectorTerms"] == [{"alias": "bottlerocket@latest"}]
    assert [(v["deviceName"], v["ebs"]["volumeSize"], v["rootVolume"]) for v in big["blockDeviceMappings"]] == [
        ("/dev/xvda", "4Gi", False), ("/dev/xvdb", "200Gi", True)
    ]


def test_karpenter_replaces_the_gpu_node_groups_and_the_autoscaler(deployment: Deployment) -> None:
    karpenter_cluster(deployment)
    assert [g.name for g in deployment.of_type("aws:eks/nodeGroup:NodeGroup")] == ["kc-system"]
    releases = {r.name: r for r in deployment.of_type("kubernetes:helm.sh/v3:Release")}
    # Bottlerocket has the device plugin built in; the AL2023 pool needs ours.
    assert sorted(releases) == ["kc-karpenter", "kc-nvidia-device-plugin"]
    release = releases["kc-karpenter"]
    chart = ("oci://public.ecr.aws/karpenter/karpenter", "1.14.1")
    assert (release.inputs["chart"], release.inputs["version"]) == chart
    (queue,) = deployment.of_type("aws:sqs/queue:Queue")
    settings = release.inputs["values"]["settings"]
    assert (settings["clusterName"], settings["interruptionQueue"]) == ("kc", queue.outputs["name"])
    assert release.inputs["values"]["nodeSelector"]["asya.sh/node-role"] == "system"
    for typ, name in (
        ("aws:iam/rolePolicy:RolePolicy", "kc-karpenter-controller-policy"),
        ("aws:eks/podIdentityAssociation:PodIdentityAssociation", "kc-karpenter-pod-identity"),
        ("aws:eks/accessEntry:AccessEntry", "kc-karpenter-node-access"),
        ("aws:eks/nodeGroup:NodeGroup", "kc-system"),
        ("aws:eks/addon:Addon", "kc-pod-identity-agent"),
    ):
        assert deployment.depends_on(release, deployment.one(typ, name)), name
    for custom in [*deployment.of_type(NODEPOOL), *deployment.of_type(NODECLASS)]:
        assert deployment.depends_on(custom, release), custom.name  # the chart installs the CRDs


def test_nodes_join_with_their_own_role_and_the_subnets_and_security_group_are_discoverable(
    deployment: Deployment,
) -> None:
    karpenter_cluster(deployment)
    role = deployment.one("aws:iam/role:Role", "kc-karpenter-node-role")
    entry = deployment.one("aws:eks/accessEntry:AccessEntry", "kc-karpenter-node-access")
    assert (entry.inputs["type"], entry.inputs["principalArn"]) == ("EC2_LINUX", role.outputs["arn"])
    (profile,) = deployment.of_type("aws:iam/instanceProfile:InstanceProfile")
    assert profile.inputs["role"] == role.outputs["name"]
    cluster = deployment.one("aws:eks/cluster:Cluster", "kc")
    tagged = {t.inputs["resourceId"] for t in deployment.of_type("aws:ec2/tag:Tag")
              if t.inputs["key"] == "karpenter.sh/discovery" and t.inputs["value"] == "kc"}
    # The stack's own private subnets are born with the tag (a separate Tag would fight the Subnet's own tags).
    assert tagged == {cluster.outputs["vpcConfig"]["clusterSecurityGroupId"]}
    private = [s for s in deployment.of_type("aws:ec2/subnet:Subnet") if "private" in s.name]
    assert len(private) == 2 and all(s.inputs["tags"]["karpenter.sh/discovery"] == "kc" for s in private)


def test_bring_your_own_subnets_are_tagged_for_discovery(deployment: Deployment) -> None:
    spec = ClusterSpec.model_validate(
        {"name": "byo", "gpuProvisioning": "karpenter", "subnetIds": ["subnet-a", "subnet-b"],
         "gpuPools": [{"name": "gpu"}]}
    )
    deployment.run(lambda: AsyaCluster("byo", spec=spec, region=REGION).kubeconfig)
    tagged = {t.inputs["resourceId"] for t in deployment.of_type("aws:ec2/tag:Tag")
              if (t.inputs["key"], t.inputs["value"]) == ("karpenter.sh/discovery", "byo")}
    cluster = deployment.one("aws:eks/cluster:Cluster", "byo")
    assert tagged == {"subnet-a", "subnet-b", cluster.outputs["vpcConfig"]["clusterSecurityGroupId"]}
    assert validate_objects(by_name(deployment.of_type(NODECLASS)).values()) == []


def test_the_controller_policy_is_scoped_to_this_cluster(deployment: Deployment) -> None:
    karpenter_cluster(deployment)
    record = deployment.one("aws:iam/rolePolicy:RolePolicy", "kc-karpenter-controller-policy")
    policy = json.loads(record.inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert all(s["Effect"] == "Allow" and "*" not in "".join(s["Action"]) for s in statements.values())
    owned = {"aws:ResourceTag/kubernetes.io/cluster/kc": "owned"}
    assert statements["DeleteOwnInstancesAndTemplates"]["Condition"]["StringEquals"] == owned
    create = statements["CreateOnlyOwnedResources"]["Condition"]["StringEquals"]
    assert create["aws:RequestTag/eks:eks-cluster-name"] == "kc"
    node_role = deployment.one("aws:iam/role:Role", "kc-karpenter-node-role")
    assert statements["PassNodeRoleToEc2"]["Resource"] == node_role.outputs["arn"]
    (profile,) = deployment.of_type("aws:iam/instanceProfile:InstanceProfile")
    assert statements["ReadNodeInstanceProfile"]["Resource"] == profile.outputs["arn"]
    (queue,) = deployment.of_type("aws:sqs/queue:Queue")
    assert statements["ConsumeInterruptionQueue"]["Resource"] == queue.outputs["arn"]
    # Only read-only calls without resource-level permissions take "*", and none may create instance profiles.
    star = sorted(sid for sid, s in statements.items() if s["Resource"] == "*")
    assert star == ["DescribeRegionalCapacity", "ListInstanceProfiles", "ReadPrices"]
    assert not any(a.startswith("iam:") and a != "iam:GetInstanceProfile" and a != "iam:PassRole"
                   and a != "iam:ListInstanceProfiles" for s in statements.values() for a in s["Action"])
    trust = json.loads(deployment.one("aws:iam/role:Role", "kc-karpenter-controller-role").inputs["assumeRolePolicy"])
    tags = trust["Statement"][0]["Condition"]["StringEquals"]
    assert (tags["aws:RequestTag/kubernetes-namespace"], tags["aws:RequestTag/kubernetes-service-account"]) == (
        "kube-system", "karpenter"
    )


def test_the_interruption_queue_is_encrypted_tls_only_and_fed_only_by_its_rules(deployment: Deployment) -> None:
    karpenter_cluster(deployment)
    (queue,) = deployment.of_type("aws:sqs/queue:Queue")
    assert (queue.inputs["sqsManagedSseEnabled"], queue.inputs["messageRetentionSeconds"]) == (True, 300)
    rules = deployment.of_type("aws:cloudwatch/eventRule:EventRule")
    targets = deployment.of_type("aws:cloudwatch/eventTarget:EventTarget")
    patterns = sorted(json.loads(r.inputs["eventPattern"])["detail-type"][0] for r in rules)
    assert patterns == ["AWS Health Event", "EC2 Instance Rebalance Recommendation",
                        "EC2 Instance State-change Notification", "EC2 Spot Instance Interruption Warning"]
    assert {t.inputs["arn"] for t in targets} == {queue.outputs["arn"]} and len(targets) == 4
    (policy_record,) = deployment.of_type("aws:sqs/queuePolicy:QueuePolicy")
    allow, deny = json.loads(policy_record.inputs["policy"])["Statement"]
    assert allow["Principal"] == {"Service": "events.amazonaws.com"}
    assert sorted(allow["Condition"]["ArnEquals"]["aws:SourceArn"]) == sorted(r.outputs["arn"] for r in rules)
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_managed_node_groups_stay_the_default(deployment: Deployment) -> None:
    spec = ClusterSpec.model_validate({"name": "mc", "gpuPools": [{"name": "gpu"}]})
    assert spec.gpu_provisioning == "managedNodeGroups"
    deployment.run(lambda: AsyaCluster("mc", spec=spec, region=REGION).kubeconfig)
    assert deployment.of_type(NODEPOOL) == deployment.of_type("aws:sqs/queue:Queue") == []
    assert {r.name for r in deployment.of_type("kubernetes:helm.sh/v3:Release")} == {
        "mc-nvidia-device-plugin", "mc-cluster-autoscaler"
    }


def test_a_karpenter_pool_with_a_minimum_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"gpuPools \['gpu'\]: minSize > 0.*set minSize 0, or gpuProvisioning"):
        ClusterSpec.model_validate(
            {"name": "c", "gpuProvisioning": "karpenter", "gpuPools": [{"name": "gpu", "minSize": 1}]}
        )
    with pytest.raises(ValueError, match="gpuProvisioning"):
        ClusterSpec.model_validate({"name": "c", "gpuProvisioning": "autoMode"})


def objects() -> tuple[dict[str, Any], dict[str, Any]]:
    pool = GpuNodePoolSpec.model_validate({"name": "gpu"})
    node_class = ec2_node_class(pool=pool, cluster_name="kc", instance_profile="kc-profile",
                                security=NodeSecuritySpec())
    return node_pool(pool), node_class


def broken(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    *parents, last = path.split(".")
    node: Any = obj
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node[key]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return obj


@pytest.mark.parametrize(
    ("which", "path", "value", "message"),
    [
        (0, "spec.template.metadata.labels", {"karpenter.sh/foo": "x"}, "spec.template.metadata.labels"),
        # The CRD's CEL rules sit on the list: an In without values fails there (``x.values`` has no value: the
        # rule cannot be evaluated, which the API server refuses too), and so does an empty one.
        (0, "spec.template.spec.requirements.0", {"key": "node.kubernetes.io/instance-type", "operator": "In"},
         "spec.template.spec.requirements"),
        (0, "spec.template.spec.requirements.0",
         {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": []},
         "spec.template.spec.requirements"),
        (0, "spec.template.spec.requirements.0", {"key": "kubernetes.io/hostname", "operator": "Exists"},
         "spec.template.spec.requirements.0.key"),
        (0, "spec.template.spec.requirements.0",
         {"key": "karpenter.k8s.aws/instance-gpu-count", "operator": "Gt", "values": ["-1"]},
         "spec.template.spec.requirements"),
        (0, "spec", {"template": {"spec": {"nodeClassRef": {"group": "karpenter.k8s.aws", "kind": "EC2NodeClass",
                                                            "name": "gpu"}, "requirements": []}},
                     "replicas": 1, "weight": 10}, "spec"),
        (0, "spec.template.spec.taints.0.effect", "NO_SCHEDULE", "spec.template.spec.taints.0.effect"),
        (0, "spec.disruption.consolidationPolicy", "WhenIdle", "spec.disruption.consolidationPolicy"),
        (0, "spec.disruption.consolidateAfter", "5 minutes", "spec.disruption.consolidateAfter"),
        (0, "spec.limits", {"nvidia.com/gpu": "two"}, "spec.limits.nvidia.com/gpu"),
        (1, "spec.role", "KarpenterNodeRole", "spec"),
        (1, "spec.amiSelectorTerms.0.alias", "ubuntu@latest", "spec.amiSelectorTerms.0.alias"),
        (1, "spec.metadataOptions.httpPutResponseHopLimit", 0, "spec.metadataOptions.httpPutResponseHopLimit"),
        (1, "spec.blockDeviceMappings.0.ebs.volumeSize", "100", "spec.blockDeviceMappings.0.ebs.volumeSize"),
        (1, "spec.subnetSelectorTerms", [], "spec.subnetSelectorTerms"),
        (1, "spec.tags", {"kubernetes.io/cluster/kc": "owned"}, "spec.tags"),
        (1, "spec.amiSelectorTerms", [{"alias": "al2023@latest"}, {"id": "ami-0123"}], "spec.amiSelectorTerms"),
    ],
)
def test_the_crd_schemas_refuse_what_the_api_server_would(which: int, path: str, value: Any, message: str) -> None:
    good = objects()[which]
    validate_object(good)
    with pytest.raises(InvalidObject, match=rf"^{good['kind']} gpu: {message}: "):
        validate_object(broken(good, path, value))


def test_the_controller_policy_refuses_a_non_cluster_arn() -> None:
    with pytest.raises(ValueError, match="is not an EKS cluster ARN"):
        iam.karpenter_controller_policy(
            cluster_arn=f"arn:aws:iam::{ACCOUNT}:role/x", node_role_arn="r", instance_profile_arn="p",
            interruption_queue_arn="q",
        )


def test_the_docs_state_the_pinned_chart_and_the_consolidation_delay() -> None:
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md").read_text().split())
    assert f"Karpenter (chart {KARPENTER_CHART[1]}, `{KARPENTER_CHART[0]}`" in doc
    assert f"`consolidateAfter: {CONSOLIDATE_AFTER}`" in doc
