"""``Gateway``: a mesh's front door on EKS — the ``asya-gateway`` Deployment (Mesh API, MCP, A2A), its ClusterIP
Service, ServiceAccount, Pod Identity role, PodDisruptionBudget and the NetworkPolicy that lets its port in.

``ActorMesh`` creates one when ``MeshSpec.gateway`` is set (with the mesh's status table); a stack may create it
alone for a mesh deployed elsewhere, given that mesh's bucket and table. The objects are built in
:mod:`asya_pulumi.objects.gateway`, the role's policy in :func:`asya_pulumi.objects.iam.gateway_policy`: send to
the mesh's actor queues only, read and write its status table only, read its success records. A gateway without
authentication is refused here, before anything is registered (``asya dev --gateway`` is the only place it runs
without, on loopback). The image is the gateway image (``GatewaySpec.image``: by default the one built beside the
runtime image and pinned by digest, docs/runtime.md).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child, tags
from asya_pulumi.components.identity import pod_identity
from asya_pulumi.objects import gateway as objects
from asya_pulumi.objects import iam
from asya_pulumi.spec import MeshSpec
from asya_pulumi.spec.gateway import GATEWAY_NAME, GatewaySpec, check_deployable

#: A voluntary disruption takes at most one gateway replica at a time (as for actors).
MAX_UNAVAILABLE = 1


@dataclass(frozen=True)
class GatewayArgs:
    """``mesh``: the mesh served (its ``gateway`` set). ``cluster_name``: the EKS cluster (Pod Identity).
    ``bucket_name`` / ``bucket_arn``: the mesh's result bucket. ``status_table_arn``: the mesh's status table.
    ``same_account_queue_arn``: any queue ARN of the mesh (the role's queue pattern is built from its account and
    region). ``k8s_namespace``: the Kubernetes namespace (default: the mesh's). ``issuer``: the OIDC issuer when
    ``gateway.auth.issuer`` is null (a stack passes its cluster's ``oidc_issuer_url``). ``ingress_from``: labels of
    the namespaces that may reach port 8080; None: any (every request still needs a token). ``network_policy``:
    create the gateway's NetworkPolicy (``ActorMesh(network_policy=None)`` leaves the namespace open: none)."""

    mesh: MeshSpec
    cluster_name: pulumi.Input[str]
    bucket_name: pulumi.Input[str]
    bucket_arn: pulumi.Input[str]
    status_table_arn: pulumi.Input[str]
    same_account_queue_arn: pulumi.Input[str]
    k8s_namespace: pulumi.Input[str] | None = None
    issuer: pulumi.Input[str] | None = None
    ingress_from: Mapping[str, str] | None = None
    network_policy: bool = True

    @property
    def gateway(self) -> GatewaySpec:
        if self.mesh.gateway is None:
            raise ValueError(f"mesh {self.mesh.namespace!r} has no gateway; set spec.gateway (e.g. gateway: "
                             "{auth: {audience: asya-gateway}}) to create one")
        return self.mesh.gateway


class Gateway(AsyaComponent):
    """Outputs: ``service_name``, ``url`` (in-cluster), ``role_arn``."""

    OUTPUTS = (
        ComponentOutput("serviceName", "service_name", str, "The gateway's ClusterIP Service."),
        ComponentOutput("url", "url", str, "The gateway's in-cluster URL, http://asya-gateway.{namespace}.svc."),
        ComponentOutput("roleArn", "role_arn", str, "The gateway's IAM role (Pod Identity)."),
    )
    service_name: pulumi.Output[str]
    url: pulumi.Output[str]
    role_arn: pulumi.Output[str]

    def __init__(self, resource_name: str, args: GatewayArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        gateway, mesh = args.gateway, args.mesh
        check_deployable(gateway, issuer_given=args.issuer is not None)
        assert gateway.auth is not None  # check_deployable refused a gateway without auth
        super().__init__(f"{TYPE_PREFIX}Gateway", resource_name, None, opts)
        namespace = mesh.namespace
        kube_ns = args.k8s_namespace if args.k8s_namespace is not None else namespace
        labels = objects.gateway_labels(namespace=namespace)
        meta = {"name": GATEWAY_NAME, "namespace": kube_ns, "labels": labels}
        policy = pulumi.Output.all(args.same_account_queue_arn, args.status_table_arn, args.bucket_arn).apply(
            lambda arns: json.dumps(iam.gateway_policy(
                same_account_queue_arn=arns[0], namespace=namespace, table_arn=arns[1], bucket_arn=arns[2]))
        )
        service_account = k8s.core.v1.ServiceAccount(
            f"{resource_name}-sa", metadata=meta, automount_service_account_token=False, opts=child(self)
        )
        identity = pod_identity(
            self,
            prefix=resource_name,
            cluster_arn=pulumi.Output.all(args.same_account_queue_arn, args.cluster_name).apply(
                lambda a: iam.eks_cluster_arn(same_account_arn=a[0], region=mesh.region, cluster_name=a[1])
            ),
            cluster_name=args.cluster_name,
            namespace=kube_ns,
            service_account=GATEWAY_NAME,
            association_service_account=service_account.metadata.name,
            policy=policy,
            role_name=objects.gateway_role_name(namespace=namespace, region=mesh.region),
            tags=tags(namespace=namespace, actor=GATEWAY_NAME),
        )
        issuer = gateway.auth.issuer if gateway.auth.issuer is not None else args.issuer
        audience = gateway.auth.audience
        container = pulumi.Output.all(issuer, args.bucket_name).apply(
            lambda values: objects.gateway_container(
                image=gateway.image,
                env=objects.gateway_config(
                    mesh, gateway, issuer=values[0], audience=audience, result_bucket=values[1]
                ).to_env(),
                gateway=gateway,
            )
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{resource_name}-deployment",
            metadata=meta,
            spec=objects.gateway_deployment_spec(namespace=namespace, gateway=gateway, container=container),
            # Pod Identity credentials are injected at pod creation: the association must exist first.
            opts=child(self, depends_on=[identity.association, service_account]),
        )
        self.service = k8s.core.v1.Service(
            f"{resource_name}-service", metadata=meta, spec=objects.gateway_service_spec(namespace=namespace),
            opts=child(self),
        )
        self.disruption_budget = k8s.policy.v1.PodDisruptionBudget(
            f"{resource_name}-pdb",
            metadata=meta,
            spec={"maxUnavailable": MAX_UNAVAILABLE,
                  "selector": {"matchLabels": objects.gateway_selector(namespace=namespace)}},
            opts=child(self),
        )
        self.network_policy = None if not args.network_policy else k8s.networking.v1.NetworkPolicy(
            f"{resource_name}-network-policy",
            metadata=meta,
            spec=objects.gateway_network_policy_spec(namespace=namespace, ingress_from=args.ingress_from),
            opts=child(self),
        )
        self.service_name = self.service.metadata.name
        self.url = pulumi.Output.all(self.service_name, kube_ns).apply(
            lambda values: f"http://{values[0]}.{values[1]}.svc"
        )
        self.role_arn = identity.role.arn
        self.register()
