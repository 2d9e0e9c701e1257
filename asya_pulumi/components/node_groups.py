"""EKS managed node groups: the always-on system group and scale-to-zero GPU pools.

A GPU pool starts at ``minSize`` (0) and is resized by the Cluster Autoscaler only; Pulumi ignores ``desiredSize``
after creation. Scaling *from zero* needs the autoscaler to know what a node would look like before one exists:
labels, taints and the GPU count are written as ``k8s.io/cluster-autoscaler/node-template/...`` tags on the node
group's Auto Scaling group (EKS does not copy node-group labels to the ASG, hence ``aws.autoscaling.Tag``).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import child
from asya_pulumi.spec import GPU_POOL_LABEL, GPU_RESOURCE, GpuNodePoolSpec, SystemNodeGroupSpec

SYSTEM_LABEL = {"asya.sh/node-role": "system"}
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"
NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
IGNORE_DESIRED_SIZE = ["scalingConfig.desiredSize"]


def gpu_pool_labels(pool: GpuNodePoolSpec) -> dict[str, str]:
    return {GPU_POOL_LABEL: pool.name, GPU_PRESENT_LABEL: "true"}


def autoscaler_node_template_tags(pool: GpuNodePoolSpec) -> dict[str, str]:
    """What the Cluster Autoscaler reads from the ASG to scale a GPU pool up from zero nodes."""
    tags = {f"{NODE_TEMPLATE}/label/{k}": v for k, v in gpu_pool_labels(pool).items()}
    tags[f"{NODE_TEMPLATE}/taint/{GPU_RESOURCE}"] = "true:NoSchedule"
    tags[f"{NODE_TEMPLATE}/resources/{GPU_RESOURCE}"] = str(pool.gpus_per_node)
    return tags


def system_node_group(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    cluster_name: pulumi.Input[str],
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    spec: SystemNodeGroupSpec,
    depends_on: list[pulumi.Resource],
) -> aws.eks.NodeGroup:
    return aws.eks.NodeGroup(
        resource_name,
        cluster_name=cluster_name,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        ami_type="AL2023_x86_64_STANDARD",
        instance_types=spec.instance_types,
        disk_size=spec.disk_size,
        scaling_config={"min_size": spec.min_size, "max_size": spec.max_size, "desired_size": spec.min_size},
        labels=SYSTEM_LABEL,
        opts=child(parent, depends_on=depends_on, ignore_changes=IGNORE_DESIRED_SIZE),
    )


def gpu_node_group(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    cluster_name: pulumi.Input[str],
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    pool: GpuNodePoolSpec,
    depends_on: list[pulumi.Resource],
) -> aws.eks.NodeGroup:
    """A GPU pool: tainted ``nvidia.com/gpu=true:NoSchedule`` so only pods that tolerate it (GPU actors) land."""
    group = aws.eks.NodeGroup(
        resource_name,
        cluster_name=cluster_name,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        ami_type=pool.ami_type,
        capacity_type=pool.capacity_type,
        instance_types=pool.instance_types,
        disk_size=pool.disk_size,
        scaling_config={"min_size": pool.min_size, "max_size": pool.max_size, "desired_size": pool.min_size},
        labels=gpu_pool_labels(pool),
        taints=[{"key": GPU_RESOURCE, "value": "true", "effect": "NO_SCHEDULE"}],
        opts=child(parent, depends_on=depends_on, ignore_changes=IGNORE_DESIRED_SIZE),
    )
    asg_name = group.resources.apply(lambda found: found[0].autoscaling_groups[0].name)
    for index, (key, value) in enumerate(sorted(autoscaler_node_template_tags(pool).items())):
        aws.autoscaling.Tag(
            f"{resource_name}-asg-tag-{index}",
            autoscaling_group_name=asg_name,
            tag={"key": key, "value": value, "propagate_at_launch": False},
            opts=child(parent),
        )
    return group
