"""The stacks/ program under mocks, with the dev and prod stack config exactly as committed."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from infra_mocks import Deployment, Registered
from pulumi.runtime import settings

from asya_pulumi.checks.validate import validate_objects
from asya_pulumi.components.cluster import AsyaCluster
from asya_runtime.config import SidecarConfig
from asya_runtime.retention import DEFAULT_RETENTION_DAYS

ROOT = Path(__file__).resolve().parents[2]


def run_stack(deployment: Deployment, stack: str) -> dict[str, Any]:
    """Run stacks/ with ``stack``'s committed config; returns that config, plus the stack's export names under
    ``exports`` (what ``pulumi stack output`` would list)."""
    config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
    pulumi.runtime.set_all_config(
        {key: value if isinstance(value, str) else json.dumps(value) for key, value in config.items()}
    )

    def program() -> Any:
        runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__")
        root = settings.get_root_resource()
        assert root is not None
        config["exports"] = set(root.outputs)

    deployment.run(program)
    return config


@pytest.fixture(scope="module", params=["dev", "prod"])
def stack(request: pytest.FixtureRequest) -> tuple[Deployment, dict[str, Any]]:
    """Each stack runs once per module: the tests below only read what it registered."""
    deployment = Deployment.start(stack=request.param)
    return deployment, run_stack(deployment, request.param)


def test_every_kubernetes_object_of_the_stack_validates(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, _ = stack
    objects = deployment.kubernetes_objects()
    kinds = [o["kind"] for o in objects]
    # 5 actors + 2 sinks + the gateway; one shared handler-server ConfigMap and TriggerAuthentication; KEDA's and the
    # mesh's namespace; the mesh's default-deny NetworkPolicy and the gateway's
    assert [kinds.count(k) for k in ("Deployment", "ScaledObject", "ServiceAccount")] == [8, 7, 8]
    assert [kinds.count(k) for k in ("Service", "NetworkPolicy")] == [1, 2]
    assert [kinds.count(k) for k in ("ConfigMap", "TriggerAuthentication", "Namespace")] == [1, 1, 2]
    assert validate_objects(objects) == []


def test_the_stack_exports_every_cluster_output(stack: tuple[Deployment, dict[str, Any]]) -> None:
    _, config = stack
    assert {output.name for output in AsyaCluster.OUTPUTS} <= config["exports"]


def test_stack_config_reaches_the_cluster_and_the_mesh(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, config = stack
    cluster_config = config["asya:cluster"]
    cluster = deployment.one("aws:eks/cluster:Cluster", "asya")
    assert cluster.inputs["name"] == cluster_config["name"]
    assert cluster.inputs["accessConfig"]["authenticationMode"] == "API"
    subnets = deployment.of_type("aws:ec2/subnet:Subnet")
    assert sorted({s.inputs["availabilityZone"] for s in subnets}) == cluster_config["availabilityZones"]
    namespace = config["asya:namespace"]
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", f"{namespace}-score-image-scaled-object")
    assert scaled.inputs["spec"]["maxReplicaCount"] == config["asya:scaling"]["score-image"]["maxReplicaCount"]
    assert scaled.inputs["metadata"]["namespace"] == namespace


def gpu_group(deployment: Deployment) -> Registered:
    return deployment.one("aws:eks/nodeGroup:NodeGroup", "asya-gpu-gpu")


def provisioning(config: dict[str, Any]) -> str:
    return str(config["asya:cluster"].get("gpuProvisioning", "managedNodeGroups"))


def test_both_provisioning_options_are_exercised_by_the_stacks() -> None:
    chosen = {
        stack: provisioning(yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"])
        for stack in ("dev", "prod")
    }
    assert chosen == {"dev": "karpenter", "prod": "managedNodeGroups"}


def test_gpu_pool_scales_from_zero_and_is_tainted(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, config = stack
    pool = config["asya:cluster"]["gpuPools"][0]
    if provisioning(config) == "karpenter":
        assert [g.name for g in deployment.of_type("aws:eks/nodeGroup:NodeGroup")] == ["asya-system"]
        (nodes,) = deployment.of_type("kubernetes:karpenter.sh/v1:NodePool")
        template = nodes.inputs["spec"]["template"]
        assert template["spec"]["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NoSchedule"}]
        assert template["metadata"]["labels"]["asya.sh/gpu-pool"] == "gpu"
        assert nodes.inputs["spec"]["limits"] == {"nvidia.com/gpu": str(pool["maxSize"])}
        assert deployment.of_type("aws:autoscaling/tag:Tag") == []
        return
    group = gpu_group(deployment)
    assert group.inputs["amiType"] == "AL2023_x86_64_NVIDIA"
    assert group.inputs["scalingConfig"] == {"minSize": 0, "maxSize": pool["maxSize"], "desiredSize": 0}
    assert group.inputs["taints"] == [{"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"}]
    assert group.inputs["labels"]["asya.sh/gpu-pool"] == "gpu"
    assert group.ignore_changes == ["scalingConfig.desiredSize"]
    asg = group.outputs["resources"][0]["autoscalingGroups"][0]["name"]
    tags = {t.inputs["tag"]["key"]: t.inputs["tag"]["value"] for t in deployment.of_type("aws:autoscaling/tag:Tag")}
    assert all(t.inputs["autoscalingGroupName"] == asg for t in deployment.of_type("aws:autoscaling/tag:Tag"))
    assert tags == {
        "k8s.io/cluster-autoscaler/node-template/label/asya.sh/gpu-pool": "gpu",
        "k8s.io/cluster-autoscaler/node-template/label/nvidia.com/gpu.present": "true",
        "k8s.io/cluster-autoscaler/node-template/taint/nvidia.com/gpu": "true:NoSchedule",
        "k8s.io/cluster-autoscaler/node-template/resources/nvidia.com/gpu": "1",
    }
    assert deployment.of_type("kubernetes:karpenter.sh/v1:NodePool") == []


def test_cluster_addons_are_installed(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, config = stack
    addon = deployment.one("aws:eks/addon:Addon", "asya-pod-identity-agent")
    assert addon.inputs["addonName"] == "eks-pod-identity-agent"
    plugin = deployment.one("kubernetes:helm.sh/v3:Release", "asya-nvidia-device-plugin")
    toleration = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
    assert toleration in plugin.inputs["values"]["tolerations"]
    releases = {r.name for r in deployment.of_type("kubernetes:helm.sh/v3:Release")}
    if provisioning(config) == "karpenter":
        assert "asya-cluster-autoscaler" not in releases
        karpenter = deployment.one("kubernetes:helm.sh/v3:Release", "asya-karpenter")
        # The transient first replica of a new Deployment must not start a GPU node before KEDA scales it to 0.
        assert karpenter.inputs["values"]["settings"]["batchIdleDuration"] == "45s"
        return
    assert "asya-karpenter" not in releases
    autoscaler = deployment.one("kubernetes:helm.sh/v3:Release", "asya-cluster-autoscaler")
    assert deployment.depends_on(autoscaler, gpu_group(deployment))
    # The autoscaler's image is the one built for the cluster's Kubernetes minor.
    minor = config["asya:cluster"]["kubernetesVersion"]
    assert autoscaler.inputs["values"]["image"]["tag"].startswith(f"v{minor}.")
    # The transient first replica of a new Deployment must not start a GPU node before KEDA scales it to 0.
    assert autoscaler.inputs["values"]["extraArgs"]["new-pod-scale-up-delay"] == "45s"
    policy_record = deployment.one("aws:iam/rolePolicy:RolePolicy", "asya-cluster-autoscaler-policy")
    policy = json.loads(policy_record.inputs["policy"])
    assert all("*" not in action for s in policy["Statement"] for action in s["Action"])


def test_everything_in_the_cluster_uses_the_clusters_provider(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, _ = stack
    (provider,) = deployment.of_type("pulumi:providers:kubernetes")
    in_cluster = [r for r in deployment.registered if r.type.startswith("kubernetes:")]
    assert len(in_cluster) >= 25
    assert all(r.provider.startswith(provider.urn + "::") for r in in_cluster), {r.name: r.provider for r in in_cluster}
    keda = deployment.one("kubernetes:helm.sh/v3:Release", "keda-release")
    assert deployment.depends_on(keda, deployment.one("aws:eks/nodeGroup:NodeGroup", "asya-system"))


def test_an_unknown_actor_in_the_scaling_overrides_fails(deployment: Deployment) -> None:
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    config["asya:scaling"] = {"score-imgae": {"maxReplicaCount": 2}}
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    with pytest.raises(Exception, match=r"asya:scaling names unknown actor\(s\) \['score-imgae'\]"):
        deployment.run(lambda: runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__"))


def test_status_retention_days_reaches_the_gateway_and_every_sidecar(deployment: Deployment) -> None:
    config = yaml.safe_load((ROOT / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    config["asya:gateway"] = {**config["asya:gateway"], "statusRetentionDays": 30}
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    deployment.run(lambda: runpy.run_path(str(ROOT / "stacks" / "__main__.py"), run_name="__main__"))
    containers = [c for d in deployment.of_type("kubernetes:apps/v1:Deployment")
                  for c in d.inputs["spec"]["template"]["spec"]["containers"] if c["name"] in ("sidecar", "gateway")]
    assert len(containers) > 2
    for container in containers:
        assert {"name": "ASYA_STATUS_RETENTION_DAYS", "value": "30"} in container["env"], container["name"]


def test_cluster_and_nodes_wait_for_their_role_policies(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, _ = stack
    attachments = {r.name: r for r in deployment.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}
    cluster = deployment.one("aws:eks/cluster:Cluster", "asya")
    assert deployment.depends_on(cluster, attachments["asya-cluster-role-AmazonEKSClusterPolicy"])
    for group in deployment.of_type("aws:eks/nodeGroup:NodeGroup"):
        for policy in ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly"):
            assert deployment.depends_on(group, attachments[f"asya-node-role-{policy}"]), (group.name, policy)


def test_both_stacks_are_hardened_as_their_config_says(stack: tuple[Deployment, dict[str, Any]]) -> None:
    deployment, config = stack
    cluster_config = config["asya:cluster"]
    cluster = deployment.one("aws:eks/cluster:Cluster", "asya")
    vpc = cluster.inputs["vpcConfig"]
    cidrs = cluster_config["apiEndpoint"]["publicAccessCidrs"]
    assert (vpc["endpointPrivateAccess"], vpc["endpointPublicAccess"], vpc.get("publicAccessCidrs")) == (
        True, bool(cidrs), cidrs or None
    )
    logs = cluster_config["controlPlaneLogs"]
    assert cluster.inputs["enabledClusterLogTypes"] == logs["types"]
    group = deployment.one("aws:cloudwatch/logGroup:LogGroup", "asya-control-plane-logs")
    assert (group.inputs["name"], group.inputs["retentionInDays"]) == (
        f"/aws/eks/{cluster_config['name']}/cluster", logs["retentionDays"]
    )
    assert cluster.inputs["encryptionConfig"]["resources"] == ["secrets"]
    templates = {t.outputs["name"]: t for t in deployment.of_type("aws:ec2/launchTemplate:LaunchTemplate")}
    groups = deployment.of_type("aws:eks/nodeGroup:NodeGroup")
    assert len(groups) == (1 if provisioning(config) == "karpenter" else 2)
    for node_group in groups:
        template = templates[node_group.inputs["launchTemplate"]["id"]]
        assert template.inputs["metadataOptions"]["httpTokens"] == "required"
        assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 1
        assert all(m["ebs"]["encrypted"] == "true" for m in template.inputs["blockDeviceMappings"])
    for node_class in deployment.of_type("kubernetes:karpenter.k8s.aws/v1:EC2NodeClass"):
        metadata = node_class.inputs["spec"]["metadataOptions"]
        assert (metadata["httpTokens"], metadata["httpPutResponseHopLimit"]) == ("required", 1)
        volumes = node_class.inputs["spec"]["blockDeviceMappings"]
        assert volumes and all(v["ebs"]["encrypted"] is True and v["ebs"]["volumeType"] == "gp3" for v in volumes)
    (lifecycle,) = deployment.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    assert {"days": 90} in [rule.get("expiration") for rule in lifecycle.inputs["rules"]]


def test_the_front_door_is_on_in_both_stacks_with_the_clusters_issuer(stack: tuple[Deployment, dict[str, Any]]) -> None:
    """The status table as the stack says (deletion protection in prod only), every sidecar told its name, and the
    gateway authenticating tokens of the cluster's own OIDC issuer (the stack's config names no other)."""
    deployment, config = stack
    namespace = config["asya:namespace"]
    (table,) = deployment.of_type("aws:dynamodb/table:Table")
    assert table.inputs["name"] == f"asya-{namespace}_status"
    assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
    assert table.inputs["deletionProtectionEnabled"] is bool(config["asya:gateway"].get("deletionProtection"))
    assert table.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert table.inputs["serverSideEncryption"] == {"enabled": True}
    assert table.inputs["ttl"] == {"attributeName": "expires_at", "enabled": True}
    deployments = {d.inputs["metadata"]["name"]: d for d in deployment.of_type("kubernetes:apps/v1:Deployment")}
    gateway = deployments.pop("asya-gateway")
    retention = config["asya:gateway"].get("statusRetentionDays", DEFAULT_RETENTION_DAYS)
    for actor in deployments.values():
        sidecar = next(c for c in actor.inputs["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar")
        assert {"name": "ASYA_STATUS_TABLE", "value": table.inputs["name"]} in sidecar["env"]
        sidecar_env = {e["name"]: e["value"] for e in sidecar["env"] if "value" in e}
        assert SidecarConfig.from_env(sidecar_env).status_retention_days == retention
    (container,) = gateway.inputs["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert int(env.get("ASYA_STATUS_RETENTION_DAYS") or DEFAULT_RETENTION_DAYS) == retention
    cluster = deployment.one("aws:eks/cluster:Cluster", "asya")
    assert env["ASYA_GATEWAY_OIDC_ISSUER"] == cluster.outputs["identities"][0]["oidcs"][0]["issuer"]
    assert (env["ASYA_GATEWAY_AUTH"], env["ASYA_GATEWAY_OIDC_AUDIENCE"]) == ("oidc", "asya-gateway")
    assert container["command"] == ["asya-gateway"]
    assert {"statusTableName", "gatewayUrl"} <= config["exports"]
