"""``ClusterSpec`` and ``GpuNodePoolSpec``: the EKS cluster and its node groups, as stack config describes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.eks_versions import DEFAULT_KUBERNETES_VERSION, check_supported
from asya_pulumi.spec.hardening import ApiEndpointSpec, ControlPlaneLogsSpec, NodeSecuritySpec, SecretsEncryptionSpec
from asya_runtime.naming import check_dns_label

#: Node label that names a GPU pool; GPU actors select their pool by it.
GPU_POOL_LABEL = "asya.sh/gpu-pool"
#: The taint key every GPU node carries (and the extended resource GPU pods request).
GPU_RESOURCE = "nvidia.com/gpu"
#: GPU pool names name node groups and are the value of ``GPU_POOL_LABEL``: a DNS label this long at most.
GPU_POOL_NAME_MAX = 40
#: Who starts GPU nodes: EKS managed node groups resized by the Cluster Autoscaler, or Karpenter NodePools.
GpuProvisioning = Literal["managedNodeGroups", "karpenter"]


def check_gpu_pool_name(value: str) -> str:
    """A GPU pool name: a DNS-1123 label of at most 40 characters (so also a valid Kubernetes label value)."""
    return check_dns_label(value, what="GPU pool name", max_len=GPU_POOL_NAME_MAX)


class NodeGroupSize(SpecModel):
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)

    @model_validator(mode="after")
    def _check_bounds(self) -> NodeGroupSize:
        if self.min_size > self.max_size:
            raise ValueError(f"minSize ({self.min_size}) is greater than maxSize ({self.max_size}); raise maxSize")
        return self


class SystemNodeGroupSpec(NodeGroupSize):
    """Always-on nodes for KEDA, CoreDNS, the sinks and CPU actors (the cluster's idle cost)."""

    instance_types: list[str] = Field(default_factory=lambda: ["t3.large"], min_length=1)
    min_size: int = Field(2, ge=1, description="2: CoreDNS and KEDA survive one node going away.")
    max_size: int = Field(4, ge=1)
    disk_size: int = Field(40, ge=20, description="GiB of root volume (gp3, encrypted; see NodeSecuritySpec).")


class GpuNodePoolSpec(NodeGroupSize):
    """A scale-to-zero GPU pool (a managed node group, or a Karpenter NodePool: ``ClusterSpec.gpuProvisioning``): no
    node (and no cost) until a GPU actor has work."""

    name: str
    instance_types: list[str] = Field(default_factory=lambda: ["g5.xlarge"], min_length=1)
    ami_type: Literal["AL2023_x86_64_NVIDIA", "BOTTLEROCKET_x86_64_NVIDIA"] = Field(
        "AL2023_x86_64_NVIDIA", description="AL2023 ships the driver; we add the NVIDIA device plugin."
    )
    capacity_type: Literal["ON_DEMAND", "SPOT"] = "ON_DEMAND"
    min_size: int = Field(0, ge=0, description="0: GPU nodes exist only while GPU actors have replicas.")
    max_size: int = Field(2, ge=1)
    disk_size: int = Field(
        100, ge=20, description="GiB of the volume images live on (gp3, encrypted); model images are large."
    )
    gpus_per_node: int = Field(1, ge=1, description="For the autoscaler's node template (g5.xlarge has 1).")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_gpu_pool_name(value)


class ClusterSpec(SpecModel):
    """An EKS cluster: new VPC over ``availabilityZones`` (or your own subnets), system nodes, GPU pools."""

    name: str
    kubernetes_version: str = Field(
        DEFAULT_KUBERNETES_VERSION,
        pattern=r"^1\.\d+$",
        description="An EKS minor in standard support (asya_pulumi/spec/eks_versions.py); an older one warns at "
        "preview with its extended-support cost.",
    )
    gpu_provisioning: GpuProvisioning = Field(
        "managedNodeGroups",
        description="managedNodeGroups (default): one scale-to-zero managed node group per GPU pool, resized by the "
        "Cluster Autoscaler. karpenter: one Karpenter NodePool + EC2NodeClass per GPU pool (faster fallback across "
        "instance types and spot capacity); docs/infrastructure.md compares them.",
    )
    availability_zones: list[str] = Field(
        default_factory=lambda: ["us-east-1a", "us-east-1b"],
        min_length=2,
        description="EKS needs subnets in at least two AZs.",
    )
    vpc_cidr: str = "10.40.0.0/16"
    subnet_ids: list[str] | None = Field(None, description="Bring your own private subnets instead of a new VPC.")
    system_nodes: SystemNodeGroupSpec = Field(default_factory=SystemNodeGroupSpec)
    gpu_pools: list[GpuNodePoolSpec] = Field(default_factory=list)
    admin_role_arns: list[str] = Field(default_factory=list, description="IAM roles granted cluster admin.")
    api_endpoint: ApiEndpointSpec = Field(
        default_factory=ApiEndpointSpec,
        description="Default: private endpoint only; set publicAccessCidrs to reach the API from outside the VPC.",
    )
    control_plane_logs: ControlPlaneLogsSpec = Field(
        default_factory=ControlPlaneLogsSpec, description="Default: api, audit, authenticator, kept 90 days."
    )
    node_security: NodeSecuritySpec = Field(
        default_factory=NodeSecuritySpec, description="Default: IMDSv2 only, hop limit 1 on every node group."
    )
    secrets_encryption: SecretsEncryptionSpec = Field(
        default_factory=SecretsEncryptionSpec, description="Default: Secrets wrapped by a customer-managed KMS key."
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_dns_label(value, what="cluster name", max_len=40)

    @field_validator("kubernetes_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        check_supported(value, today=dt.date.today())
        return value

    @model_validator(mode="after")
    def _check_pools(self) -> ClusterSpec:
        names = [p.name for p in self.gpu_pools]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"gpuPools: duplicate pool name(s) {duplicates}; give each pool its own name")
        if self.gpu_provisioning == "karpenter":
            floored = [p.name for p in self.gpu_pools if p.min_size > 0]
            if floored:
                raise ValueError(
                    f"gpuPools {floored}: minSize > 0, but a Karpenter NodePool has no minimum (it starts nodes only "
                    "for pending pods); set minSize 0, or gpuProvisioning: managedNodeGroups for always-on GPU nodes"
                )
        return self
