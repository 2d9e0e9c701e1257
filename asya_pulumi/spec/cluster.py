"""``ClusterSpec`` and ``GpuNodePoolSpec``: the EKS cluster and its node groups, as stack config describes them."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field, field_validator, model_validator

from asya_pulumi.links import docs
from asya_pulumi.spec.aws_facts import (
    EBS_GP3_MAX_GIB,
    EKS_MANAGED_NODE_GROUPS_PER_CLUSTER,
    EKS_NODES_PER_MANAGED_NODE_GROUP,
    architecture_of,
    check_instance_type,
    check_principal_arn,
    check_region,
    check_vpc_cidr,
    check_zones_in,
    gpus_of,
)
from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.eks_versions import DEFAULT_KUBERNETES_VERSION, check_supported
from asya_pulumi.spec.hardening import ApiEndpointSpec, ControlPlaneLogsSpec, NodeSecuritySpec, SecretsEncryptionSpec
from asya_pulumi.spec.limits import repeated
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


#: Each subnet the Network component makes is a /20 (4,096 addresses: the VPC CNI gives every pod a VPC IP).
SUBNET_PREFIX = 20


class NodeGroupSize(SpecModel):
    min_size: int = Field(ge=0)
    max_size: int = Field(ge=1)
    instance_types: list[str] = Field(min_length=1)
    disk_size: int = Field(ge=20, le=EBS_GP3_MAX_GIB)

    @field_validator("instance_types")
    @classmethod
    def _check_instance_types(cls, value: list[str]) -> list[str]:
        for instance_type in value:
            check_instance_type(instance_type)
        duplicates = repeated(value)
        if duplicates:
            raise ValueError(f"instance type(s) {duplicates} listed twice; list each once")
        return value

    @model_validator(mode="after")
    def _check_bounds(self) -> NodeGroupSize:
        if self.min_size > self.max_size:
            raise ValueError(f"minSize ({self.min_size}) is greater than maxSize ({self.max_size}); raise maxSize")
        arm = [t for t in self.instance_types if architecture_of(t) != "x86_64"]
        if arm:
            raise ValueError(
                f"instanceTypes {arm} are arm64 (Graviton), and this node group's AMI is x86_64; use x86_64 types "
                "such as 'm7i.large' or 'g5.xlarge'"
            )
        return self


class SystemNodeGroupSpec(NodeGroupSize):
    """Always-on nodes for KEDA, CoreDNS, the sinks and CPU actors (the cluster's idle cost)."""

    instance_types: list[str] = Field(default_factory=lambda: ["t3.large"], min_length=1)
    min_size: int = Field(2, ge=1, description="2: CoreDNS and KEDA survive one node going away.")
    max_size: int = Field(4, ge=1, le=EKS_NODES_PER_MANAGED_NODE_GROUP,
                          description="At most EKS's default quota of nodes per managed node group.")
    disk_size: int = Field(
        40, ge=20, le=EBS_GP3_MAX_GIB, description="GiB of root volume (gp3, encrypted; see NodeSecuritySpec)."
    )


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
        100, ge=20, le=EBS_GP3_MAX_GIB,
        description="GiB of the volume images live on (gp3, encrypted); model images are large.",
    )
    gpus_per_node: int | None = Field(
        None, ge=1, description="None: the fewest NVIDIA GPUs of any of instanceTypes (g5.xlarge has 1), which the "
        "autoscaler's node template and Karpenter's limits count; set it only to claim fewer.",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_gpu_pool_name(value)

    @model_validator(mode="after")
    def _check_gpus(self) -> GpuNodePoolSpec:
        without = [t for t in self.instance_types if gpus_of(t) == 0]
        if without:
            raise ValueError(
                f"GPU pool {self.name!r}: instanceTypes {without} have no NVIDIA GPU, so no GPU actor could run on "
                "them; use GPU types such as 'g5.xlarge', 'g6.xlarge' or 'g4dn.xlarge'"
            )
        fewest = min(gpus_of(t) for t in self.instance_types)
        if self.gpus_per_node is not None and self.gpus_per_node > fewest:
            raise ValueError(
                f"GPU pool {self.name!r}: gpusPerNode {self.gpus_per_node}, but {self.smallest_type} has {fewest}; "
                "leave gpusPerNode out (it is derived) or drop the smaller instance types"
            )
        return self

    @property
    def node_gpus(self) -> int:
        """GPUs every node of the pool has: ``gpusPerNode`` or the fewest of any instance type."""
        return self.gpus_per_node or min(gpus_of(t) for t in self.instance_types)

    @property
    def smallest_type(self) -> str:
        """The instance type with the fewest GPUs (a GPU actor's pod must fit it: any type may be started)."""
        return min(self.instance_types, key=gpus_of)


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
        f"instance types and spot capacity); {docs('infrastructure.md')} compares them.",
    )
    availability_zones: list[str] = Field(
        default_factory=lambda: ["us-east-1a", "us-east-1b"],
        min_length=2,
        description="EKS needs subnets in at least two AZs.",
    )
    vpc_cidr: str = Field("10.40.0.0/16", description="A /16 to /28 with room for a /20 public and a /20 private "
                          "subnet per AZ (a /16 fits 8 AZs).")
    subnet_ids: list[str] | None = Field(None, description="Bring your own private subnets instead of a new VPC.")
    system_nodes: SystemNodeGroupSpec = Field(default_factory=SystemNodeGroupSpec)
    gpu_pools: list[GpuNodePoolSpec] = Field(default_factory=list)
    admin_role_arns: list[str] = Field(
        default_factory=list, description="IAM role (or user) ARNs granted cluster admin by an access entry each."
    )
    creator_admin: bool = Field(
        True,
        description="True: the identity that runs the first `pulumi up` is cluster admin (EKS's "
        "bootstrapClusterCreatorAdminPermissions), which the program's own Kubernetes resources need unless that "
        "identity is in adminRoleArns. False: only adminRoleArns administer the cluster (list the deployer's role "
        "there). EKS fixes this at creation: changing it later replaces the cluster.",
    )
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

    @field_validator("admin_role_arns")
    @classmethod
    def _check_admins(cls, value: list[str]) -> list[str]:
        for arn in value:
            check_principal_arn(arn)
        return value

    @field_validator("vpc_cidr")
    @classmethod
    def _check_cidr(cls, value: str) -> str:
        check_vpc_cidr(value)
        return value

    @field_validator("availability_zones")
    @classmethod
    def _check_zones(cls, value: list[str]) -> list[str]:
        duplicates = repeated(value)
        if duplicates:
            raise ValueError(f"{duplicates} listed twice; EKS needs subnets in two different AZs")
        return value

    @model_validator(mode="after")
    def _check_vpc(self) -> ClusterSpec:
        network = check_vpc_cidr(self.vpc_cidr)
        needed = 2 * len(self.availability_zones)
        room = 2 ** (SUBNET_PREFIX - network.prefixlen) if network.prefixlen <= SUBNET_PREFIX else 0
        if self.subnet_ids is None and room < needed:
            raise ValueError(
                f"vpcCidr {self.vpc_cidr} holds {room} /{SUBNET_PREFIX} subnets, and {len(self.availability_zones)} "
                f"AZs need {needed} (a public and a private one each); use a /16, or fewer availabilityZones"
            )
        return self

    def check_in_region(self, region: str) -> None:
        """The region exists and the AZs are its own (the spec alone does not name the region: the stack does)."""
        check_region(region)
        check_zones_in(zones=self.availability_zones, region=region)

    @field_validator("kubernetes_version")
    @classmethod
    def _check_version(cls, value: str) -> str:
        check_supported(value, today=dt.date.today())
        return value

    @model_validator(mode="after")
    def _check_pools(self) -> ClusterSpec:
        node_groups = 1 + (len(self.gpu_pools) if self.gpu_provisioning == "managedNodeGroups" else 0)
        if node_groups > EKS_MANAGED_NODE_GROUPS_PER_CLUSTER:
            raise ValueError(
                f"gpuPools: {len(self.gpu_pools)} pools and the system node group are over EKS's default quota of "
                f"{EKS_MANAGED_NODE_GROUPS_PER_CLUSTER} managed node groups per cluster; merge pools, use "
                "gpuProvisioning: karpenter, or raise the quota in Service Quotas"
            )
        if self.gpu_provisioning == "managedNodeGroups":
            over = [p.name for p in self.gpu_pools if p.max_size > EKS_NODES_PER_MANAGED_NODE_GROUP]
            if over:
                raise ValueError(
                    f"gpuPools {over}: maxSize is over EKS's default quota of {EKS_NODES_PER_MANAGED_NODE_GROUP} nodes "
                    "per managed node group; lower it, raise the quota ('Nodes per managed node group' in Service "
                    "Quotas), or use gpuProvisioning: karpenter"
                )
        names = [p.name for p in self.gpu_pools]
        duplicates = repeated(names)
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
