"""The gateway's Kubernetes objects and settings, as plain dicts (``components/gateway.py`` renders them).

One Deployment of ``asya-gateway`` (the gateway image, ``GatewaySpec.image``), a ClusterIP Service (port 80 → the
container's 8080), its ServiceAccount and a NetworkPolicy that lets TCP 8080 in and nothing else. The pod is
hardened as every actor pod is (:mod:`asya_pulumi.objects.pod`): non-root, read-only root filesystem, no privilege
escalation, every capability dropped, RuntimeDefault seccomp, no Kubernetes API token; liveness and readiness ask
``/health``.

Its settings are the runtime's ``GatewayConfig`` (:func:`gateway_config`), rendered with its ``to_env``, so the
Deployment and ``asya dev --gateway`` configure the same process the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from asya_pulumi.objects import pod
from asya_pulumi.objects.labels import MANAGED_BY_LABEL, MESH_LABEL, NAME_LABEL, PART_OF, PART_OF_LABEL
from asya_pulumi.spec.gateway import GATEWAY_NAME, GatewaySpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.gateway.config import GatewayConfig, GatewayMesh
from asya_runtime.naming import role_name, status_table_name

GATEWAY_COMMAND = ["asya-gateway"]
GATEWAY_CONTAINER = "gateway"
#: The gateway's listening port (``GatewayConfig.port``'s default) and the Service's port in front of it.
GATEWAY_PORT: int = GatewayConfig.model_fields["port"].default
SERVICE_PORT = 80
HEALTH_PATH = "/health"
#: A stopping gateway finishes its requests; open SSE streams are cut (clients reconnect and read the status again).
TERMINATION_GRACE_S = 30
#: The role's place in ``role_name``: ``asya-{namespace}_{region}_gateway``. No actor's role has that form (an
#: actor's ends in the region, and no region is called ``gateway``), and like them it starts with the mesh prefix.
GATEWAY_ROLE_SUFFIX = "gateway"


def gateway_role_name(*, namespace: str, region: str) -> str:
    """The gateway's IAM role: ``asya-{namespace}_{region}_gateway``, within IAM's 64 characters (``role_name``)."""
    return role_name(namespace=namespace, actor=region, region=GATEWAY_ROLE_SUFFIX)


def gateway_labels(*, namespace: str) -> dict[str, str]:
    return {NAME_LABEL: GATEWAY_NAME, PART_OF_LABEL: PART_OF, MANAGED_BY_LABEL: "pulumi", MESH_LABEL: namespace}


def gateway_selector(*, namespace: str) -> dict[str, str]:
    return {NAME_LABEL: GATEWAY_NAME, MESH_LABEL: namespace}


def gateway_mesh(mesh: MeshSpec, gateway: GatewaySpec | None = None) -> GatewayMesh:
    """``ASYA_GATEWAY_MESH``, the one place it is built (the Deployment's :func:`gateway_config` and ``asya dev
    --gateway``'s :func:`asya_pulumi.local.gateway.gateway_config`): the namespace, the actors a caller may name
    (``?actor=``, never a sink) and each named route with its tool's description and input schema
    (``gateway.tools``; ``gateway`` defaults to ``mesh.gateway``, and without one every route is a tool taking any
    object)."""
    chosen = gateway if gateway is not None else mesh.gateway
    tools = chosen.tools if chosen is not None else {}
    routes: dict[str, Any] = {}
    for name, actors in mesh.routes.items():
        tool = tools.get(name)
        route: dict[str, Any] = {"actors": list(actors), "description": tool.description if tool else ""}
        if tool is not None and tool.input_schema is not None:
            route["inputSchema"] = tool.input_schema
        routes[name] = route
    return GatewayMesh.model_validate(
        {"namespace": mesh.namespace, "actors": [actor.name for actor in mesh.actors], "routes": routes}
    )


def gateway_config(
    mesh: MeshSpec, gateway: GatewaySpec, *, issuer: str, audience: str, result_bucket: str
) -> GatewayConfig:
    """The gateway's settings: its mesh, the status table, the bucket, OIDC auth (the listening address is the
    pod's IP, :data:`POD_IP_HOST`, known only in the pod)."""
    return GatewayConfig(
        namespace=mesh.namespace,
        mesh=gateway_mesh(mesh, gateway),
        region=mesh.region,
        status_table=status_table_name(mesh.namespace),
        status_retention_days=gateway.status_retention_days,
        result_bucket=result_bucket,
        auth="oidc",
        oidc_issuer=issuer,
        oidc_audience=audience,
        public_url=service_url(namespace=mesh.namespace),
    )


def service_url(*, namespace: str) -> str:
    """``http://asya-gateway.{namespace}.svc``: the Service's in-cluster address (port 80), the URL the A2A agent
    card names. An Ingress in front of it is the operator's; its URL then goes in the card by hand."""
    return f"http://{GATEWAY_NAME}.{namespace}.svc"


#: The gateway listens on the pod's IP (Service traffic and the kubelet's probes arrive there), not every address.
POD_IP_HOST = {
    "name": GatewayConfig.model_fields["host"].alias,
    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
}


def gateway_container(*, image: str, env: Mapping[str, str], gateway: GatewaySpec) -> dict[str, Any]:
    """``asya-gateway`` from ``image`` with ``env``; its resources from the spec (a CPU limit of 4 × the request
    when the spec names none, as for handlers), probes on ``/health``."""
    limits = dict(gateway.resources.limits)
    limits.setdefault("cpu", pod.handler_cpu_limit(request=gateway.resources.requests.get("cpu")))
    probe = {"httpGet": {"path": HEALTH_PATH, "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "name": GATEWAY_CONTAINER,
        "image": image,
        "imagePullPolicy": pod.IMAGE_PULL_POLICY,
        "command": GATEWAY_COMMAND,
        "env": [*({"name": k, "value": v} for k, v in env.items()), POD_IP_HOST],
        "ports": [{"name": "http", "containerPort": GATEWAY_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "failureThreshold": 3},
        "readinessProbe": {**probe, "failureThreshold": 1},
        "resources": {"requests": dict(gateway.resources.requests), "limits": limits},
        "securityContext": pod.CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def gateway_pod_spec(*, container: Any) -> dict[str, Any]:
    """The pod: the actor pods' security context, its ServiceAccount without an API token, an emptyDir /tmp."""
    return {
        "serviceAccountName": GATEWAY_NAME,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": TERMINATION_GRACE_S,
        "securityContext": pod.POD_SECURITY_CONTEXT,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}],
    }


def gateway_deployment_spec(*, namespace: str, gateway: GatewaySpec, container: Any) -> dict[str, Any]:
    return {
        "replicas": gateway.replicas,
        "selector": {"matchLabels": gateway_selector(namespace=namespace)},
        "revisionHistoryLimit": 3,
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": pod.MAX_SURGE, "maxUnavailable": 0}},
        "template": {
            "metadata": {"labels": gateway_labels(namespace=namespace)},
            "spec": gateway_pod_spec(container=container),
        },
    }


def gateway_service_spec(*, namespace: str) -> dict[str, Any]:
    """ClusterIP, port 80 → the container's ``http`` port: reachable in the cluster only (an Ingress or a load
    balancer in front of it is the operator's choice)."""
    return {
        "type": "ClusterIP",
        "selector": gateway_selector(namespace=namespace),
        "ports": [{"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}],
    }


def gateway_network_policy_spec(*, namespace: str, ingress_from: Mapping[str, str] | None) -> dict[str, Any]:
    """Ingress to the gateway's pods on TCP 8080 only, from the namespaces ``ingress_from`` selects (None: from
    anywhere; every request still needs a token). Added to the mesh's default-deny policy, which keeps egress to
    DNS, HTTPS (SQS, DynamoDB, S3, STS, the OIDC issuer's keys) and the Pod Identity agent."""
    rule: dict[str, Any] = {"ports": [{"protocol": "TCP", "port": GATEWAY_PORT}]}
    if ingress_from is not None:
        rule["from"] = [{"namespaceSelector": {"matchLabels": dict(ingress_from)}}]
    return {
        "podSelector": {"matchLabels": gateway_selector(namespace=namespace)},
        "policyTypes": ["Ingress"],
        "ingress": [rule],
    }
