"""``AsyaCluster``: an EKS cluster from plain pulumi_aws resources (every child visible to tests, no Node.js plugin).

Creates: VPC (or uses ``subnetIds``), cluster and node IAM roles, the EKS cluster (API authentication mode, access
entries for ``adminRoleArns``), the system node group, the GPU pools — one scale-to-zero managed node group each and
the Cluster Autoscaler (``gpuProvisioning: managedNodeGroups``, the default), or Karpenter with a NodePool and
EC2NodeClass each (``karpenter``: :mod:`asya_pulumi.components.karpenter`) — the ``eks-pod-identity-agent`` addon,
the NVIDIA device plugin, and a Kubernetes provider (``k8s_provider``) built from the cluster's kubeconfig for
everything deployed into it. A Kubernetes version past EKS standard support warns at preview with what extended
support costs (:mod:`asya_pulumi.spec.eks_versions`).

Hardened by default (``asya_pulumi.spec.hardening``, each switchable): the API endpoint is private unless
``apiEndpoint.publicAccessCidrs`` names who may reach it; control-plane logs (api, audit, authenticator) go to a log
group created here with a retention, before the cluster, so EKS never creates its own never-expiring one; Secrets
are wrapped by a customer-managed KMS key; every node group's launch template requires IMDSv2 with hop limit 1.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from asya_pulumi.components.cluster_addons import cluster_autoscaler, nvidia_device_plugin
from asya_pulumi.components.cluster_hardening import control_plane_log_group, secrets_key
from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.components.karpenter import karpenter
from asya_pulumi.components.network import Network
from asya_pulumi.components.node_groups import gpu_node_group, system_node_group
from asya_pulumi.components.vpc_cni import vpc_cni_addon
from asya_pulumi.objects import iam
from asya_pulumi.objects.kubeconfig import eks_kubeconfig
from asya_pulumi.spec import ClusterSpec
from asya_pulumi.spec.eks_versions import support_notice

MANAGED_POLICY = "arn:aws:iam::aws:policy/"
EKS_SERVICE = "eks.amazonaws.com"
CLUSTER_POLICIES = ("AmazonEKSClusterPolicy",)
NODE_POLICIES = ("AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly")
ADMIN_ACCESS_POLICY = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSClusterAdminPolicy"


def _service_role(
    parent: pulumi.Resource, name: str, service: str, policies: tuple[str, ...],
    trust: pulumi.Input[str] | None = None,
) -> tuple[aws.iam.Role, list[pulumi.Resource]]:
    """A role ``service`` may assume (``trust``: a narrower trust policy), with AWS managed ``policies``; returns
    (role, [role + its attachments])."""
    role = aws.iam.Role(
        name,
        assume_role_policy=trust or json.dumps(iam.service_trust_policy(service=service)),
        opts=child(parent),
    )
    attachments: list[pulumi.Resource] = [
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy}", role=role.name, policy_arn=MANAGED_POLICY + policy, opts=child(parent)
        )
        for policy in policies
    ]
    return role, [role, *attachments]


class AsyaCluster(AsyaComponent):
    """The cluster; its outputs are ``OUTPUTS`` (what another stack or tool needs to reach it and add to it), and
    ``k8s_provider`` is for the Kubernetes resources deployed into it."""

    OUTPUTS = (
        ComponentOutput("clusterName", "cluster_name", str, "The EKS cluster's name."),
        ComponentOutput("kubeconfig", "kubeconfig", str, "Kubeconfig for the cluster (a secret).", secret=True),
        ComponentOutput("gpuPools", "gpu_pool_names", list[str], "The GPU pools' names (`gpu.pool` of GPU actors)."),
        ComponentOutput("vpcId", "vpc_id", str, "The VPC the cluster runs in (the new one, or that of `subnetIds`)."),
        ComponentOutput("privateSubnetIds", "private_subnet_ids", list[str],
                        "The cluster's and nodes' subnets: the new VPC's private ones, or `subnetIds`."),
        ComponentOutput("publicSubnetIds", "public_subnet_ids", list[str],
                        "The new VPC's public subnets (NAT gateway, internet-facing load balancers); empty with "
                        "`subnetIds` (your VPC's are yours to know)."),
        ComponentOutput("nodeRoleArn", "node_role_arn", str,
                        "The IAM role of the managed node groups' nodes (system and GPU pools)."),
        ComponentOutput("clusterSecurityGroupId", "cluster_security_group_id", str,
                        "The security group EKS created for the control plane and the managed nodes."),
        ComponentOutput("oidcIssuerUrl", "oidc_issuer_url", str,
                        "The cluster's OIDC issuer URL (an IAM OIDC provider for IRSA trusts it)."),
    )
    k8s_provider: k8s.Provider
    cluster_name: pulumi.Output[str]
    kubeconfig: pulumi.Output[str]
    vpc_id: pulumi.Output[str]
    private_subnet_ids: pulumi.Output[list[str]]
    public_subnet_ids: pulumi.Output[list[str]]
    node_role_arn: pulumi.Output[str]
    cluster_security_group_id: pulumi.Output[str]
    oidc_issuer_url: pulumi.Output[str]

    def __init__(
        self, resource_name: str, *, spec: ClusterSpec, region: str, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        spec.check_in_region(region)  # before any resource: a wrong AZ would fail half-way through `pulumi up`
        super().__init__(f"{TYPE_PREFIX}AsyaCluster", resource_name, None, opts)
        self.spec = spec
        network = self._network(resource_name)
        subnet_ids: list[pulumi.Input[str]] = (
            list(network.private_subnet_ids) if network else list(spec.subnet_ids or [])
        )
        # EKS refuses to create a cluster, and nodes cannot join, before their roles' policies are attached.
        cluster_role, cluster_role_ready = _service_role(
            self, f"{resource_name}-cluster-role", EKS_SERVICE, CLUSTER_POLICIES,
            trust=self._cluster_trust(cluster_name=spec.name, region=region),
        )
        node_role, node_role_ready = _service_role(
            self, f"{resource_name}-node-role", "ec2.amazonaws.com", NODE_POLICIES
        )
        cluster = self._control_plane(
            resource_name, subnet_ids=subnet_ids, cluster_role=cluster_role, cluster_role_ready=cluster_role_ready
        )
        vpc_cni_addon(self, resource_name=f"{resource_name}-vpc-cni", cluster_name=cluster.name)
        node_args = {
            "cluster_name": cluster.name, "kubernetes_version": spec.kubernetes_version, "node_role_arn": node_role.arn,
            "subnet_ids": subnet_ids, "security": spec.node_security,
        }
        system = system_node_group(
            self, resource_name=f"{resource_name}-system", spec=spec.system_nodes, depends_on=node_role_ready,
            **node_args,
        )
        managed_pools = spec.gpu_pools if spec.gpu_provisioning == "managedNodeGroups" else []
        gpu_groups = [
            gpu_node_group(self, resource_name=f"{resource_name}-gpu-{pool.name}", pool=pool,
                           depends_on=node_role_ready, **node_args)
            for pool in managed_pools
        ]
        pod_identity_agent = aws.eks.Addon(
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
        self._gpu_addons(
            resource_name, cluster=cluster, region=region, system=system, gpu_groups=gpu_groups,
            pod_identity_agent=pod_identity_agent,
        )
        self.cluster_name = cluster.name
        self.system_node_group = system
        vpc_config = cluster.vpc_config
        self.vpc_id = network.vpc_id if network else vpc_config.vpc_id
        self.private_subnet_ids = pulumi.Output.all(*subnet_ids)
        self.public_subnet_ids = pulumi.Output.all(*(network.public_subnet_ids if network else []))
        self.node_role_arn = node_role.arn
        self.cluster_security_group_id = vpc_config.cluster_security_group_id
        self.oidc_issuer_url = cluster.identities.apply(lambda identities: identities[0].oidcs[0].issuer)
        self.register()

    def _cluster_trust(self, *, cluster_name: str, region: str) -> pulumi.Output[str]:
        """EKS may assume the cluster role for this cluster of this account only (``aws:SourceAccount`` and
        ``aws:SourceArn``, as EKS's confused-deputy guidance gives them)."""
        identity = aws.get_caller_identity_output(opts=pulumi.InvokeOutputOptions(parent=self))
        return identity.arn.apply(lambda arn: json.dumps(iam.service_trust_policy(
            service=EKS_SERVICE, source_account=arn.split(":")[4],
            source_arn=iam.eks_cluster_arn(same_account_arn=arn, region=region, cluster_name=cluster_name),
        )))

    def _network(self, resource_name: str) -> Network | None:
        """A new :class:`Network` over the spec's AZs, or None when the spec brings its own subnets."""
        spec = self.spec
        if spec.subnet_ids:
            return None
        return Network(
            f"{resource_name}-network", cluster_name=spec.name, cidr=spec.vpc_cidr,
            availability_zones=spec.availability_zones, opts=child(self),
        )

    def _control_plane(
        self,
        resource_name: str,
        *,
        subnet_ids: list[pulumi.Input[str]],
        cluster_role: aws.iam.Role,
        cluster_role_ready: Sequence[pulumi.Resource],
    ) -> aws.eks.Cluster:
        """The EKS cluster (after its role, log group and secrets key) and its admins' access entries; warns about
        an unsupported Kubernetes version and an API endpoint nobody outside the new VPC can reach."""
        spec = self.spec
        cluster_ready = list(cluster_role_ready)
        log_group = control_plane_log_group(
            self, resource_name=resource_name, cluster_name=spec.name, logs=spec.control_plane_logs
        )
        if log_group is not None:
            cluster_ready.append(log_group)
        encryption = secrets_key(
            self, resource_name=resource_name, cluster_role=cluster_role, encryption=spec.secrets_encryption
        )
        if encryption is not None:
            cluster_ready.append(encryption[1])
        notice = support_notice(spec.kubernetes_version, today=dt.date.today())
        if notice is not None:
            pulumi.log.warn(f"cluster {spec.name!r}: {notice}", resource=self)
        endpoint = spec.api_endpoint
        if not endpoint.public_access and not spec.subnet_ids:
            pulumi.log.warn(
                f"cluster {spec.name!r}: the API endpoint is private and its VPC is created by this stack, so only "
                "a machine inside that VPC can reach it; `pulumi up` from anywhere else stops at the first "
                "Kubernetes object. Set asya:cluster.apiEndpoint.publicAccessCidrs to your egress CIDR.",
                resource=self,
            )
        cluster = aws.eks.Cluster(
            resource_name,
            name=spec.name,
            version=spec.kubernetes_version,
            role_arn=cluster_role.arn,
            vpc_config={
                "subnet_ids": subnet_ids,
                "endpoint_private_access": True,
                "endpoint_public_access": endpoint.public_access,
                # Only with public access: EKS reads an absent list as 0.0.0.0/0, but then there is no public endpoint.
                "public_access_cidrs": endpoint.public_access_cidrs or None,
            },
            access_config={
                "authentication_mode": "API", "bootstrap_cluster_creator_admin_permissions": spec.creator_admin,
            },
            enabled_cluster_log_types=list(spec.control_plane_logs.types),
            encryption_config=(
                {"resources": ["secrets"], "provider": {"key_arn": encryption[0].arn}} if encryption else None
            ),
            opts=child(self, depends_on=cluster_ready),
        )
        for index, principal in enumerate(spec.admin_role_arns):
            entry = aws.eks.AccessEntry(
                f"{resource_name}-admin-{index}", cluster_name=cluster.name, principal_arn=principal, opts=child(self)
            )
            aws.eks.AccessPolicyAssociation(
                f"{resource_name}-admin-{index}", cluster_name=cluster.name, principal_arn=entry.principal_arn,
                policy_arn=ADMIN_ACCESS_POLICY, access_scope={"type": "cluster"}, opts=child(self),
            )
        return cluster

    def _gpu_addons(
        self,
        resource_name: str,
        *,
        cluster: aws.eks.Cluster,
        region: str,
        system: pulumi.Resource,
        gpu_groups: Sequence[pulumi.Resource],
        pod_identity_agent: pulumi.Resource,
    ) -> None:
        """What GPU pools need in the cluster: the NVIDIA device plugin (for AL2023 NVIDIA nodes), and the Cluster
        Autoscaler (managed node groups) or Karpenter (``gpuProvisioning: karpenter``)."""
        spec = self.spec
        if any(pool.ami_type == "AL2023_x86_64_NVIDIA" for pool in spec.gpu_pools):
            nvidia_device_plugin(
                self, resource_name=f"{resource_name}-nvidia-device-plugin", provider=self.k8s_provider,
                depends_on=[system],
            )
        if spec.gpu_pools and spec.gpu_provisioning == "managedNodeGroups":
            cluster_autoscaler(
                self, resource_name=f"{resource_name}-cluster-autoscaler", cluster_name=spec.name,
                kubernetes_version=spec.kubernetes_version, eks_cluster_name=cluster.name, eks_cluster_arn=cluster.arn,
                region=region, provider=self.k8s_provider, depends_on=[system, *gpu_groups],
            )
        if spec.gpu_pools and spec.gpu_provisioning == "karpenter":
            # Karpenter's nodes get their own role: the managed node groups' role already has the access entry EKS
            # created for it, and a second entry for the same principal is refused.
            karpenter_node_role, karpenter_node_role_ready = _service_role(
                self, f"{resource_name}-karpenter-node-role", "ec2.amazonaws.com", NODE_POLICIES
            )
            karpenter(
                self, resource_name=f"{resource_name}-karpenter", spec=spec, cluster=cluster,
                node_role=karpenter_node_role, node_role_ready=karpenter_node_role_ready, provider=self.k8s_provider,
                depends_on=[system, pod_identity_agent],  # its AWS credentials come through the agent
            )

    @property
    def gpu_pool_names(self) -> list[str]:
        return [pool.name for pool in self.spec.gpu_pools]
