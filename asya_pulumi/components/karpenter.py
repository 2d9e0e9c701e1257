"""Karpenter as the GPU provisioner (``ClusterSpec.gpuProvisioning: karpenter``): the controller, its AWS side, and
one NodePool + EC2NodeClass per GPU pool.

AWS side: a node role for Karpenter's nodes (created by the caller) with an instance profile and an ``EC2_LINUX``
access entry (nodes join with it); the controller's Pod Identity role
(:func:`asya_pulumi.objects.iam.karpenter_controller_policy`); an interruption queue (SSE, TLS only, 5 minutes'
retention) fed by EventBridge rules for spot interruptions, rebalance recommendations, instance state changes and
scheduled health events, so Karpenter drains a spot GPU node before EC2 takes it; and the ``karpenter.sh/discovery``
tag, which the EC2NodeClass selects by, on the cluster security group and on bring-your-own subnets (subnets the stack
creates are born with it).

Per pool: an EC2NodeClass (the NVIDIA-capable AMI family by alias — AL2023 or Bottlerocket; Karpenter picks the
accelerated image for GPU instance types — IMDSv2 with the cluster's hop limit, encrypted gp3 volumes as the managed
node groups' launch templates have) and a NodePool (the pool's instance types and capacity type, the GPU taint and
labels the managed node groups carry, a GPU limit of ``maxSize × gpusPerNode``, ``WhenEmpty`` consolidation). With
no pending GPU pod there is no NodeClaim, so no node: scale to zero needs no setting.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.cluster_addons import NEW_POD_SCALE_UP_DELAY
from asya_pulumi.components.common import child
from asya_pulumi.components.identity import pod_identity
from asya_pulumi.components.network import DISCOVERY_TAG
from asya_pulumi.components.node_groups import DATA_DEVICE, ROOT_DEVICE
from asya_pulumi.objects import iam
from asya_pulumi.objects.labels import SYSTEM_LABEL, gpu_pool_labels
from asya_pulumi.spec import GPU_RESOURCE, ClusterSpec, GpuNodePoolSpec, NodeSecuritySpec
from asya_pulumi.spec.limits import ADDON_NAMESPACE

#: Karpenter 1.14 supports Kubernetes 1.30–1.36 (its compatibility matrix); the chart installs its CRDs.
KARPENTER_CHART = ("oci://public.ecr.aws/karpenter/karpenter", "1.14.1")
KARPENTER_SERVICE_ACCOUNT = "karpenter"
NODEPOOL_API = "karpenter.sh/v1"
NODECLASS_API = "karpenter.k8s.aws/v1"
#: An empty GPU node is returned this long after its last GPU pod left (the Cluster Autoscaler's default is 10 min).
CONSOLIDATE_AFTER = "5m"
#: Karpenter's AMI aliases for the EKS AMI types a pool may name; @latest follows EKS's newest image (a new image
#: drifts running nodes, which Karpenter replaces one at a time).
AMI_ALIAS = {"AL2023_x86_64_NVIDIA": "al2023@latest", "BOTTLEROCKET_x86_64_NVIDIA": "bottlerocket@latest"}
#: Bottlerocket's OS volume (/dev/xvda) at Karpenter's default size; images live on the data volume.
BOTTLEROCKET_OS_VOLUME = "4Gi"
CAPACITY_TYPE = {"ON_DEMAND": "on-demand", "SPOT": "spot"}
#: EventBridge events Karpenter acts on (its documented interruption rules).
INTERRUPTION_EVENTS = {
    "spot-interruption": ("aws.ec2", "EC2 Spot Instance Interruption Warning"),
    "rebalance": ("aws.ec2", "EC2 Instance Rebalance Recommendation"),
    "instance-state-change": ("aws.ec2", "EC2 Instance State-change Notification"),
    "scheduled-change": ("aws.health", "AWS Health Event"),
}


def karpenter_nodepool_limits(pool: GpuNodePoolSpec) -> dict[str, str]:
    """At most ``maxSize`` nodes' worth of GPUs: Karpenter stops launching once the pool's GPUs would exceed it."""
    return {GPU_RESOURCE: str(pool.max_size * pool.node_gpus)}


def ec2_node_class(*, pool: GpuNodePoolSpec, cluster_name: str, instance_profile: pulumi.Input[str],
                   security: NodeSecuritySpec) -> dict[str, Any]:
    """The EC2NodeClass object for ``pool`` (a plain dict: rendered, validated and scanned as is).

    ``rootVolume`` marks the volume images and ephemeral storage live on (what Karpenter counts as the node's
    ephemeral-storage): AL2023's only volume, Bottlerocket's data volume.
    """
    data_device = DATA_DEVICE[pool.ami_type]
    volumes: list[dict[str, Any]] = [_volume(data_device, f"{pool.disk_size}Gi", root=True)]
    if data_device != ROOT_DEVICE:
        volumes.insert(0, _volume(ROOT_DEVICE, BOTTLEROCKET_OS_VOLUME, root=False))
    selector = [{"tags": {DISCOVERY_TAG: cluster_name}}]
    return {
        "apiVersion": NODECLASS_API,
        "kind": "EC2NodeClass",
        "metadata": {"name": pool.name},
        "spec": {
            "amiSelectorTerms": [{"alias": AMI_ALIAS[pool.ami_type]}],
            "instanceProfile": instance_profile,
            "subnetSelectorTerms": selector,
            "securityGroupSelectorTerms": selector,
            "metadataOptions": {
                "httpEndpoint": "enabled",
                "httpProtocolIPv6": "disabled",
                "httpTokens": "required",
                "httpPutResponseHopLimit": security.imds_hop_limit,
            },
            "blockDeviceMappings": volumes,
        },
    }


def _volume(device: str, size: str, *, root: bool) -> dict[str, Any]:
    ebs = {"volumeSize": size, "volumeType": "gp3", "encrypted": True, "deleteOnTermination": True}
    return {"deviceName": device, "rootVolume": root, "ebs": ebs}


def node_pool(pool: GpuNodePoolSpec) -> dict[str, Any]:
    """The NodePool object for ``pool``: the managed node group's labels and taint, its instance and capacity types."""
    return {
        "apiVersion": NODEPOOL_API,
        "kind": "NodePool",
        "metadata": {"name": pool.name},
        "spec": {
            "template": {
                "metadata": {"labels": gpu_pool_labels(pool)},
                "spec": {
                    "nodeClassRef": {"group": NODECLASS_API.split("/")[0], "kind": "EC2NodeClass", "name": pool.name},
                    "requirements": [
                        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": pool.instance_types},
                        {"key": "karpenter.sh/capacity-type", "operator": "In",
                         "values": [CAPACITY_TYPE[pool.capacity_type]]},
                        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
                    ],
                    "taints": [{"key": GPU_RESOURCE, "value": "true", "effect": "NoSchedule"}],
                    "expireAfter": "720h",
                },
            },
            "limits": karpenter_nodepool_limits(pool),
            "disruption": {"consolidationPolicy": "WhenEmpty", "consolidateAfter": CONSOLIDATE_AFTER},
        },
    }


def _discovery_tags(
    parent: pulumi.Resource, *, resource_name: str, cluster: aws.eks.Cluster, cluster_name: str,
    own_subnet_ids: list[str],
) -> list[aws.ec2.Tag]:
    """``karpenter.sh/discovery=<cluster>`` on the cluster security group EKS created, and on bring-your-own subnets.

    Subnets this stack creates carry the tag already (:class:`~asya_pulumi.components.network.Network`): an
    ``aws.ec2.Tag`` on a resource whose ``tags`` Pulumi also manages would be removed again on every update.
    """
    targets: list[tuple[str, pulumi.Input[str]]] = [(f"subnet-{i}", s) for i, s in enumerate(own_subnet_ids)]
    targets.append(("cluster-sg", cluster.vpc_config.cluster_security_group_id))
    return [
        aws.ec2.Tag(f"{resource_name}-discovery-{suffix}", resource_id=target, key=DISCOVERY_TAG, value=cluster_name,
                    opts=child(parent))
        for suffix, target in targets
    ]


def _interruption_queue(parent: pulumi.Resource, *, resource_name: str, cluster_name: str) -> aws.sqs.Queue:
    """An SSE queue (5 min retention: a stale interruption is useless) fed only by this stack's rules, TLS only."""
    queue = aws.sqs.Queue(
        f"{resource_name}-interruption-queue",
        name=f"karpenter-{cluster_name}",
        message_retention_seconds=300,
        sqs_managed_sse_enabled=True,
        opts=child(parent),
    )
    rules = []
    for suffix, (source, detail_type) in INTERRUPTION_EVENTS.items():
        rule = aws.cloudwatch.EventRule(
            f"{resource_name}-{suffix}",
            description=f"{detail_type} → Karpenter ({cluster_name})",
            event_pattern=json.dumps({"source": [source], "detail-type": [detail_type]}),
            opts=child(parent),
        )
        aws.cloudwatch.EventTarget(f"{resource_name}-{suffix}", rule=rule.name, arn=queue.arn, opts=child(parent))
        rules.append(rule)
    aws.sqs.QueuePolicy(
        f"{resource_name}-interruption-queue-policy",
        queue_url=queue.url,
        policy=pulumi.Output.all(queue.arn, *[r.arn for r in rules]).apply(
            lambda arns: json.dumps(iam.interruption_queue_policy(queue_arn=arns[0], rule_arns=list(arns[1:])))
        ),
        opts=child(parent),
    )
    return queue


def karpenter(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    spec: ClusterSpec,
    cluster: aws.eks.Cluster,
    node_role: aws.iam.Role,
    node_role_ready: list[pulumi.Resource],
    provider: k8s.Provider,
    depends_on: list[pulumi.Resource],
) -> k8s.helm.v3.Release:
    """Install Karpenter and one NodePool + EC2NodeClass per GPU pool of ``spec``; returns the Helm release."""
    discovery = _discovery_tags(
        parent, resource_name=resource_name, cluster=cluster, cluster_name=spec.name,
        own_subnet_ids=spec.subnet_ids or [],
    )
    profile = aws.iam.InstanceProfile(f"{resource_name}-node-profile", role=node_role.name, opts=child(parent))
    access = aws.eks.AccessEntry(
        f"{resource_name}-node-access", cluster_name=cluster.name, principal_arn=node_role.arn, type="EC2_LINUX",
        opts=child(parent, depends_on=node_role_ready),
    )
    queue = _interruption_queue(parent, resource_name=resource_name, cluster_name=spec.name)
    controller = pod_identity(
        parent,
        prefix=f"{resource_name}-controller",
        association_name=f"{resource_name}-pod-identity",
        cluster_arn=cluster.arn,
        cluster_name=cluster.name,
        namespace=ADDON_NAMESPACE,
        service_account=KARPENTER_SERVICE_ACCOUNT,
        policy=pulumi.Output.all(cluster.arn, node_role.arn, profile.arn, queue.arn).apply(
            lambda arns: json.dumps(iam.karpenter_controller_policy(
                cluster_arn=arns[0], node_role_arn=arns[1], instance_profile_arn=arns[2],
                interruption_queue_arn=arns[3]))
        ),
    )
    policy, association = controller.policy, controller.association
    chart, version = KARPENTER_CHART
    release = k8s.helm.v3.Release(
        resource_name,
        name="karpenter",
        chart=chart,
        version=version,
        namespace=ADDON_NAMESPACE,
        values={
            "serviceAccount": {"name": KARPENTER_SERVICE_ACCOUNT},
            # Never on a node it manages: the system nodes only.
            "nodeSelector": {"kubernetes.io/os": "linux", **SYSTEM_LABEL},
            "controller": {"resources": {"requests": {"cpu": "250m", "memory": "512Mi"},
                                         "limits": {"cpu": "1", "memory": "1Gi"}}},
            "settings": {
                "clusterName": spec.name,
                "interruptionQueue": queue.name,
                # A new GPU Deployment starts at 1 replica until KEDA scales it to 0 seconds later: a 45 s batching
                # window (as the Cluster Autoscaler's new-pod-scale-up-delay) lets that pod go before any launch.
                "batchIdleDuration": NEW_POD_SCALE_UP_DELAY,
                "batchMaxDuration": "60s",
            },
        },
        opts=child(parent, provider=provider, depends_on=[*depends_on, association, policy, access, *discovery]),
    )
    for pool in spec.gpu_pools:
        node_class = ec2_node_class(
            pool=pool, cluster_name=spec.name, instance_profile=profile.name, security=spec.node_security
        )
        for suffix, obj in (("node-class", node_class), ("node-pool", node_pool(pool))):
            k8s.apiextensions.CustomResource(
                f"{resource_name}-{pool.name}-{suffix}",
                api_version=obj["apiVersion"],
                kind=obj["kind"],
                metadata=obj["metadata"],
                spec=obj["spec"],
                opts=child(parent, provider=provider, depends_on=[release]),
            )
    return release
