"""The mesh namespace's default-deny NetworkPolicy: what an actor pod may reach, and who may reach it.

Ingress: nothing, except the sidecar's metrics port from the namespaces ``metrics_from`` selects (your Prometheus).
Egress: DNS to kube-dns, TCP 443 to ``egress_cidrs`` (AWS APIs: SQS, S3, STS; IAM for the sinks) minus the
node's IMDS, and the EKS Pod Identity agent (169.254.170.23:80), which hands the sidecar its credentials; with
``otlp_to`` set, also the OpenTelemetry collector's OTLP/gRPC port in the namespaces it selects (docs/observability.md).

A NetworkPolicy selects pods, not containers: the handler shares the sidecar's network namespace and therefore its
egress. It holds no credentials (see ``asya_pulumi.objects.pod``), but it can open TLS connections wherever the sidecar
can. To cut the handlers off the internet, give the VPC endpoints for SQS, S3 (gateway) and STS and set ``egress_cidrs``
to the VPC's CIDR: the sidecar keeps working, nothing else leaves the VPC.

On EKS the VPC CNI's network policy agent enforces this (``AsyaCluster`` turns it on); a cluster without an enforcing
CNI stores the policy and ignores it.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import child
from asya_pulumi.objects import pod

#: The node's instance metadata service: node-role credentials. Nodes also set IMDSv2 with hop limit 1.
IMDS_CIDR = "169.254.169.254/32"
#: The EKS Pod Identity agent on every node (IPv4); the sidecar's SDK fetches credentials from it over HTTP.
POD_IDENTITY_AGENT_CIDR = "169.254.170.23/32"
POD_IDENTITY_AGENT_PORT = 80
HTTPS_PORT = 443
#: OTLP over gRPC, the port the sidecar's span exporter sends to (``OTEL_EXPORTER_OTLP_ENDPOINT``).
OTLP_GRPC_PORT = 4317
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}
POLICY_NAME = "asya-default-deny"


@dataclass(frozen=True)
class MeshNetworkPolicy:
    """Switches for the mesh's NetworkPolicy (``ActorMesh(network_policy=None)`` leaves the namespace open).

    ``metrics_from``: labels of the namespaces allowed to scrape the sidecars' metrics port (e.g.
    ``{"kubernetes.io/metadata.name": "monitoring"}``); None (the default) lets nothing in.
    ``egress_cidrs``: where TCP 443 may go. Defaults to ``0.0.0.0/0`` (public AWS endpoints); narrow it to your VPC's
    CIDR when SQS, S3 and STS have VPC endpoints (the sinks also call IAM's ``GetRole``, whose endpoint is public:
    keep it reachable, e.g. through an egress proxy). IMDS is excepted from any range that contains it.
    ``otlp_to``: labels of the namespaces where your OpenTelemetry collector runs; the pods may then open TCP
    ``otlp_port`` (default 4317, OTLP/gRPC) to any pod there. None (the default) adds no such rule, so a sidecar with
    tracing on can reach only a collector served on 443 inside ``egress_cidrs``.
    """

    metrics_from: Mapping[str, str] | None = None
    egress_cidrs: Sequence[str] = field(default_factory=lambda: ("0.0.0.0/0",))
    otlp_to: Mapping[str, str] | None = None
    otlp_port: int = OTLP_GRPC_PORT

    def __post_init__(self) -> None:
        if not self.egress_cidrs:
            raise ValueError("network_policy.egress_cidrs is empty: the sidecar could not reach SQS; "
                             "give at least your VPC's CIDR (with VPC endpoints) or 0.0.0.0/0")
        for cidr in self.egress_cidrs:
            try:
                ipaddress.ip_network(cidr)
            except ValueError:
                raise ValueError(
                    f"network_policy.egress_cidrs: {cidr!r} is not a CIDR block (with host bits zero); "
                    f"write e.g. '10.40.0.0/16'"
                ) from None
        if self.metrics_from is not None and not self.metrics_from:
            raise ValueError("network_policy.metrics_from is empty, which would select every namespace; "
                             "name your monitoring namespace's labels, or pass None to let nothing in")
        if self.otlp_to is not None and not self.otlp_to:
            raise ValueError("network_policy.otlp_to is empty, which would select every namespace; "
                             "name your collector namespace's labels, or pass None for no collector rule")
        if not 1 <= self.otlp_port <= 65535:
            raise ValueError(f"network_policy.otlp_port is {self.otlp_port}, outside 1-65535; "
                             f"the collector's OTLP/gRPC port is usually {OTLP_GRPC_PORT}")


def _https_block(cidr: str) -> dict[str, Any]:
    network, imds = ipaddress.ip_network(cidr), ipaddress.ip_network(IMDS_CIDR)
    block: dict[str, Any] = {"cidr": cidr}
    if network.version == imds.version and imds.subnet_of(network):  # type: ignore[arg-type]
        block["except"] = [IMDS_CIDR]
    return {"ipBlock": block}


def network_policy_spec(settings: MeshNetworkPolicy) -> dict[str, Any]:
    """The policy's spec: every pod of the namespace, ingress and egress both default-deny."""
    ingress: list[dict[str, Any]] = []
    if settings.metrics_from is not None:
        ingress.append({
            "from": [{"namespaceSelector": {"matchLabels": dict(settings.metrics_from)}}],
            "ports": [{"protocol": "TCP", "port": pod.METRICS_PORT}],
        })
    egress = [
        {"to": [KUBE_DNS], "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]},
        {"to": [_https_block(c) for c in settings.egress_cidrs], "ports": [{"protocol": "TCP", "port": HTTPS_PORT}]},
        {
            "to": [{"ipBlock": {"cidr": POD_IDENTITY_AGENT_CIDR}}],
            "ports": [{"protocol": "TCP", "port": POD_IDENTITY_AGENT_PORT}],
        },
    ]
    if settings.otlp_to is not None:
        egress.append({
            "to": [{"namespaceSelector": {"matchLabels": dict(settings.otlp_to)}}],
            "ports": [{"protocol": "TCP", "port": settings.otlp_port}],
        })
    return {"podSelector": {}, "policyTypes": ["Ingress", "Egress"], "ingress": ingress, "egress": egress}


def mesh_network_policy(
    parent: pulumi.Resource,
    *,
    resource_name: str,
    k8s_namespace: pulumi.Input[str],
    labels: dict[str, str],
    settings: MeshNetworkPolicy,
) -> k8s.networking.v1.NetworkPolicy:
    """``asya-default-deny`` in the mesh's namespace (see the module docstring for what it lets through)."""
    return k8s.networking.v1.NetworkPolicy(
        f"{resource_name}-network-policy",
        metadata={"name": POLICY_NAME, "namespace": k8s_namespace, "labels": labels},
        spec=network_policy_spec(settings),
        opts=child(parent),
    )
