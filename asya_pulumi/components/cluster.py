"""``AsyaCluster``: an EKS cluster from plain pulumi_aws resources (every child visible to tests, no Node.js plugin).

Creates: VPC (or uses ``subnetIds``), cluster and node IAM roles, the EKS cluster (API authentication mode, access
entries for ``adminRoleArns``), the system node group, one scale-to-zero managed node group per GPU pool, the
``eks-pod-identity-agent`` addon, the NVIDIA device plugin, the Cluster Autoscaler, and a Kubernetes provider
(``k8s_provider``) built from the cluster's kubeconfig for everything deployed into it.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.cluster_addons import cluster_autoscaler, nvidia_device_plugin
from asya_pulumi.components.common import TYPE_PREFIX, child
from asya_pulumi.components.network import Network
from asya_pulumi.components.node_groups import gpu_node_group, system_node_group
from asya_pulumi.kubeconfig import eks_kubeconfig
from asya_pulumi.spec import ClusterSpec

MANAGED_POLICY = "arn:aws:iam::aws:policy/"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
ADMIN_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def _service_role(
    parent: pulumi.Resource, name: str, service: str, policies: tuple[str, ...]
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """A role ``service`` may assume, with AWS managed ``policies``; returns (role, [role + its attachments])."""
    role = aws.iam.Role(
        name,
        assume_role_policy=json.dumps(
            {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}]}
        ),
        opts=child(parent),
    )
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}", role=role.name, policy_arn=MANAGED_POLICY + policy, opts=child(parent)
        )
        for policy in policies
    ]
    return role, [role, *attachments]


class AsyaCluster(pulumi.ComponentResource):
    """Outputs: ``cluster_name``, ``kubeconfig`` (secret), ``gpu_pools`` (names); ``k8s_provider`` for children."""

    k8s_provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]

    def __init__(
        self, resource_name: str, *, spec: ClusterSpec, region: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}AsyaCluster", resource_name, None, opts)
        self.spec = spec
        if spec.subnet_ids:
            subnet_ids: list[pulumi.Input[str]] = list(spec.subnet_ids)
        else:
            network = Network(
                f"{resource_name}-network", cluster_name=spec.name, cidr=spec.vpc_cidr,
                availability_zones=spec.availability_zones, opts=child(self),
            )
            subnet_ids = list(network.private_subnet_ids)
        # EKS refuses to create a cluster, and nodes cannot join, before their roles' policies are attached.
        cluster_role, cluster_role_ready = _service_role(
            self, f"{resource_name}-cluster-role", "eks.amazonaws.com", CLUSTER_POLICIES
        )
        node_role, node_role_ready = _service_role(
            self, f"{resource_name}-node-role", "ec2.amazonaws.com", NODE_POLICIES
        )
        cluster = aws.eks.Cluster(
            resource_name,
            name=spec.name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={"subnet_ids": subnet_ids, "endpoint_private_access": True, "endpoint_public_access": True},
            access_config={"authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": True},
            opts=child(self, depends_on=cluster_role_ready),
        )
        for index, principal in enumerate(spec.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{resource_name}-admin-{index}", cluster_name=cluster.name, principal_arn=principal, opts=child(self)
            )
            aws.eks.AccessPolicyAssociation(
                f"{resource_name}-admin-{index}", cluster_name=cluster.name, principal_arn=entry.principal_arn,
                policy_arn=ADMIN_ACCESS_POLICY, access_scope={"type": "cluster"}, opts=child(self),
            )
        node_args = {"cluster_name": cluster.name, "node_role_arn": node_role.arn, "subnet_ids": subnet_ids}
        system = system_node_group(
            self, resource_name=f"{resource_name}-system", spec=spec.system_nodes, depends_on=node_role_ready,
            **node_args,
        )
        gpu_groups = [
            gpu_node_group(self, resource_name=f"{resource_name}-gpu-{pool.name}", pool=pool,
                           depends_on=node_role_ready, **node_args)
            for pool in spec.gpu_pools
        ]
        aws.eks.Addon(
            f"{resource_name}-pod-identity-agent", cluster_name=cluster.name, addon_name="eks-pod-identity-agent",
            opts=child(self, depends_on=[system]),
        )
        self.kubeconfig = pulumi.Output.secret(
            pulumi.Output.all(cluster.name, cluster.endpoint, cluster.certificate_authority.data).apply(
                lambda parts: eks_kubeconfig(
                    cluster_name=parts[0], endpoint=parts[1], certificate_authority=parts[2], region=region
                )
            )
        )
        self.k8s_provider = k8s.Provider(f"{resource_name}-k8s", kubeconfig=self.kubeconfig, opts=child(self))
        if any(pool.ami_type == "AL2023_x86_64_NVIDIA" for pool in spec.gpu_pools):
            nvidia_device_plugin(
                self, resource_name=f"{resource_name}-nvidia-device-plugin", provider=self.k8s_provider,
                depends_on=[system],
            )
        if spec.gpu_pools:
            cluster_autoscaler(
                self, resource_name=f"{resource_name}-cluster-autoscaler", cluster_name=spec.name,
                eks_cluster_name=cluster.name, eks_cluster_arn=cluster.arn, region=region, provider=self.k8s_provider,
                depends_on=[system, *gpu_groups],
            )
        self.cluster_name = cluster.name
        self.system_node_group = system
        self.register_outputs(
            {"clusterName": cluster.name, "kubeconfig": self.kubeconfig, "gpuPools": [p.name for p in spec.gpu_pools]}
        )

    @property
    def gpu_pool_names(self) -> list[str]:
        return [pool.name for pool in self.spec.gpu_pools]
