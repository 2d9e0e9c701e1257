"""EKS managed node groups: the always-on system group and scale-to-zero GPU pools.

A GPU pool starts at ``minSize`` (0) and is resized by the Cluster Autoscaler only; Pulumi ignores ``desiredSize``
after creation. Scaling *from zero* needs the autoscaler to know what a node would look like before one exists:
labels, taints and the GPU count are written as ``k8s.io/cluster-autoscaler/node-template/...`` tags on the node
group's Auto Scaling group (EKS does not copy node-group labels to the ASG, hence ``aws.autoscaling.Tag``).

Every group launches from its own ``aws.ec2.LaunchTemplate`` (:func:`hardened_launch_template`): IMDSv2 only with a
response hop limit of 1, so a pod (one network hop behind the node) gets no answer from the instance metadata
service and cannot take the node role's credentials; and an encrypted gp3 volume where images live. With a launch
template EKS refuses ``diskSize`` on the node group, so the size lives in the template's block device mapping. The
template sets no AMI: EKS still picks the ``amiType``'s image and writes the bootstrap user data itself.

Every group names the cluster's Kubernetes version: EKS otherwise fixes a group's version at creation, so a cluster
upgrade would leave its nodes a minor behind. With it, ``pulumi up`` upgrades the cluster, then rolls each group.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import child
from asya_pulumi.objects.labels import SYSTEM_LABEL, gpu_pool_labels
from asya_pulumi.spec import GPU_RESOURCE, GpuNodePoolSpec, NodeSecuritySpec, SystemNodeGroupSpec

NODE_TEMPLATE = "k8s.io/cluster-autoscaler/node-template"
IGNORE_DESIRED_SIZE = ["scalingConfig.desiredSize"]
#: Bottlerocket boots from a small OS volume (/dev/xvda) and keeps images and containers on a data volume
#: (/dev/xvdb); AL2023 has one root volume. The size goes to the volume images live on.
DATA_DEVICE = {"AL2023_x86_64_STANDARD": "/dev/xvda", "AL2023_x86_64_NVIDIA": "/dev/xvda",
               "BOTTLEROCKET_x86_64_NVIDIA": "/dev/xvdb"}
ROOT_DEVICE = "/dev/xvda"


def _volume(device: str, size: int | None) -> dict[str, object]:
    ebs: dict[str, object] = {"volume_type": "gp3", "encrypted": "true", "delete_on_termination": "true"}
    if size is not None:
        ebs["volume_size"] = size
    return {"device_name": device, "ebs": ebs}


def hardened_launch_template(
    parent: pulumi.Resource, *, resource_name: str, ami_type: str, disk_size: int, security: NodeSecuritySpec
) -> aws.ec2.LaunchTemplate:
    """IMDSv2 required with ``security.imds_hop_limit`` (1: pods cannot reach IMDS); gp3 volumes, encrypted.

    Encryption uses the account's default EBS key (``aws/ebs``): no key policy to manage, no cost. A Bottlerocket
    OS volume keeps its AMI size (no ``volume_size``) but is encrypted too.
    """
    data_device = DATA_DEVICE[ami_type]
    volumes = [_volume(data_device, disk_size)]
    if data_device != ROOT_DEVICE:
        volumes.insert(0, _volume(ROOT_DEVICE, None))
    return aws.ec2.LaunchTemplate(
        f"{resource_name}-launch-template",
        description=f"{resource_name}: IMDSv2 hop limit {security.imds_hop_limit}, encrypted gp3 volumes",
        metadata_options={
            "http_endpoint": "enabled",
            "http_tokens": "required",
            "http_put_response_hop_limit": security.imds_hop_limit,
            "instance_metadata_tags": "disabled",
        },
        block_device_mappings=volumes,
        update_default_version=True,
        opts=child(parent),
    )


def _launch_template_ref(template: aws.ec2.LaunchTemplate) -> dict[str, pulumi.Input[str]]:
    """Pin the node group to the template's latest version: a template change rolls the group's nodes."""
    return {"id": template.id, "version": template.latest_version.apply(str)}


def autoscaler_node_template_tags(pool: GpuNodePoolSpec) -> dict[str, str]:
    """What the Cluster Autoscaler reads from the ASG to scale a GPU pool up from zero nodes."""
    tags = {f"{NODE_TEMPLATE}/label/{k}": v for k, v in gpu_pool_labels(pool).items()}
    tags[f"{NODE_TEMPLATE}/taint/{GPU_RESOURCE}"] = "true:NoSchedule"
    tags[f"{NODE_TEMPLATE}/resources/{GPU_RESOURCE}"] = str(pool.node_gpus)
    return tags


def system_node_group(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    cluster_name: pulumi.Input[str],
    kubernetes_version: str,
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    spec: SystemNodeGroupSpec,
    security: NodeSecuritySpec,
    depends_on: list[pulumi.Resource],
) -> aws.eks.NodeGroup:
    ami_type = "AL2023_x86_64_STANDARD"
    template = hardened_launch_template(
        parent, resource_name=resource_name, ami_type=ami_type, disk_size=spec.disk_size, security=security
    )
    return aws.eks.NodeGroup(
        resource_name,
        cluster_name=cluster_name,
        version=kubernetes_version,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        ami_type=ami_type,
        instance_types=spec.instance_types,
        launch_template=_launch_template_ref(template),
        scaling_config={"min_size": spec.min_size, "max_size": spec.max_size, "desired_size": spec.min_size},
        labels=SYSTEM_LABEL,
        opts=child(parent, depends_on=depends_on, ignore_changes=IGNORE_DESIRED_SIZE),
    )


def gpu_node_group(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    cluster_name: pulumi.Input[str],
    kubernetes_version: str,
    node_role_arn: pulumi.Input[str],
    subnet_ids: list[pulumi.Input[str]],
    pool: GpuNodePoolSpec,
    security: NodeSecuritySpec,
    depends_on: list[pulumi.Resource],
) -> aws.eks.NodeGroup:
    """A GPU pool: tainted ``nvidia.com/gpu=true:NoSchedule`` so only pods that tolerate it (GPU actors) land."""
    template = hardened_launch_template(
        parent, resource_name=resource_name, ami_type=pool.ami_type, disk_size=pool.disk_size, security=security
    )
    group = aws.eks.NodeGroup(
        resource_name,
        cluster_name=cluster_name,
        version=kubernetes_version,
        node_role_arn=node_role_arn,
        subnet_ids=subnet_ids,
        ami_type=pool.ami_type,
        capacity_type=pool.capacity_type,
        instance_types=pool.instance_types,
        launch_template=_launch_template_ref(template),
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
