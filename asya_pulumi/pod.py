"""The actor pod, as plain Kubernetes dicts: paths, containers, probes, security context, GPU scheduling.

One place for every path and port the two containers share. The handler container runs the runtime's single-file
handler server, mounted from a ConfigMap, with the user's image: the image needs python3 and the handler's module,
nothing from us. The sidecar container runs ``asya-sidecar`` from the runtime image.

Credentials live only in the sidecar. EKS Pod Identity's mutating webhook adds ``AWS_CONTAINER_CREDENTIALS_FULL_URI``,
``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` and the ``eks-pod-identity-token`` mount to every container of a pod whose
ServiceAccount has an association, except the containers named in the pod annotation
``eks.amazonaws.com/skip-containers`` (aws/amazon-eks-pod-identity-webhook, ``getContainersToSkip``): the pod names
the handler there. Defence in depth, should a webhook ignore the annotation: the handler's spec already defines both
variables (empty), and the webhook adds them only to a container that defines neither (it checks names, not values),
so the SDKs find no container credentials; ``AWS_EC2_METADATA_DISABLED`` keeps them off the node's IMDS too (the
mesh's NetworkPolicy also blocks 169.254.169.254). What the env cannot stop is a hostile process reading a token file
the webhook mounted anyway; the annotation is what keeps that file out.

Every pod meets Pod Security ``restricted``: non-root, RuntimeDefault seccomp, no privilege escalation, every
capability dropped, only emptyDir / configMap volumes (plus the webhook's projected token).
"""

from __future__ import annotations

import hashlib
import math
import posixpath
from importlib import resources
from typing import Any

from asya_pulumi.spec import GPU_POOL_LABEL, GPU_RESOURCE, AsyncActorSpec
from asya_runtime.config import DEFAULT_SOCKET_PATH, SidecarConfig
from asya_runtime.handler_server import HandlerServerConfig
from asya_runtime.resiliency import Resiliency

HANDLER_SERVER_FILE = "handler_server.py"
#: Where the ConfigMap with the handler server is mounted in the handler container.
HANDLER_SERVER_DIR = "/opt/asya"
HANDLER_SERVER_PATH = posixpath.join(HANDLER_SERVER_DIR, HANDLER_SERVER_FILE)
SOCKET_DIR = posixpath.dirname(DEFAULT_SOCKET_PATH)
SIDECAR_COMMAND = ["asya-sidecar"]
HANDLER_CONTAINER = "handler"
SIDECAR_CONTAINER = "sidecar"
#: Pod annotation the Pod Identity webhook reads: a comma-separated list of containers it must not give credentials.
POD_IDENTITY_SKIP_CONTAINERS = "eks.amazonaws.com/skip-containers"
#: In the handler's env: defining the two container-credential variables stops the webhook from adding its own
#: (empty values: no SDK finds a credentials endpoint), and the SDKs never ask the node's IMDS.
HANDLER_CREDENTIAL_BLOCKERS = {
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "",
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: The Cluster Autoscaler's ``--max-graceful-termination-sec`` (its default): a scale-down gives a pod this long.
CLUSTER_AUTOSCALER_MAX_GRACE_S = 600
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
METRICS_PORT: int = SidecarConfig.model_fields["metrics_port"].default
#: Slack between the sidecar's own shutdown budget and the kubelet's SIGKILL.
SHUTDOWN_MARGIN_S = 5
#: After SIGTERM the handler server waits for in-flight calls this long past the actor timeout (clients hang up).
HANDLER_DRAIN_MARGIN_S = 10
#: Any non-root uid works: the images need no file of their own writable (root FS is read-only; /tmp is an emptyDir).
RUN_AS_UID = 10001
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
#: Tags may move, so the kubelet asks the registry for the current digest at each start (cached layers stay cached).
IMAGE_PULL_POLICY = "Always"
SIDECAR_RESOURCES = {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
#: A handler without a CPU limit gets this many times its CPU request (at least one CPU): it may burst, but a
#: runaway (or hostile) handler cannot take a whole node from its neighbours.
HANDLER_CPU_BURST = 4
HANDLER_MIN_CPU_LIMIT_M = 1000


def handler_server_source() -> str:
    """The text of the runtime's handler server, read from the installed ``asya_runtime`` package."""
    return resources.files("asya_runtime").joinpath(HANDLER_SERVER_FILE).read_text(encoding="utf-8")


def source_digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def termination_grace_seconds(sidecar: SidecarConfig) -> int:
    """The sidecar's shutdown budget + 5 s (``ceil(actorTimeout) + 30`` with the default 20 s long poll).

    A pod being stopped may finish its current call, forward the result and release what its last poll brought.
    """
    return math.ceil(sidecar.shutdown_grace_s) + SHUTDOWN_MARGIN_S


def handler_drain_seconds(resiliency: Resiliency) -> int:
    """``ceil(actorTimeout) + 10``: a call running at SIGTERM may finish; still inside the pod's grace period."""
    return math.ceil(resiliency.actor_timeout) + HANDLER_DRAIN_MARGIN_S


def evicts_safely(sidecar: SidecarConfig) -> bool:
    """Whether the Cluster Autoscaler's scale-down grace (600 s) covers the pod's own grace period.

    When it does not, a scale-down would SIGKILL a call the sidecar was promised time to finish: the pod carries
    ``cluster-autoscaler.kubernetes.io/safe-to-evict: "false"`` instead (the node stays until KEDA scales it away).
    """
    return termination_grace_seconds(sidecar) <= CLUSTER_AUTOSCALER_MAX_GRACE_S


def pod_annotations(*, sidecar: SidecarConfig, has_handler: bool) -> dict[str, str]:
    """Prometheus scrape hints, the Pod Identity skip list (the handler), safe-to-evict for long calls."""
    annotations = {"prometheus.io/scrape": "true", "prometheus.io/port": str(METRICS_PORT)}
    if has_handler:
        annotations[POD_IDENTITY_SKIP_CONTAINERS] = HANDLER_CONTAINER
    if not evicts_safely(sidecar):
        annotations[SAFE_TO_EVICT] = "false"
    return annotations


def _millicores(quantity: str) -> int:
    """``"250m"`` → 250, ``"2"`` → 2000, ``"1.5"`` → 1500 (the spec already checked the quantity's form)."""
    return int(quantity[:-1]) if quantity.endswith("m") else math.ceil(float(quantity) * 1000)


def handler_cpu_limit(*, request: str | None) -> str:
    """``HANDLER_CPU_BURST`` × the CPU request, at least one CPU (the limit when the spec sets none)."""
    burst = HANDLER_CPU_BURST * _millicores(request) if request is not None else 0
    return f"{max(burst, HANDLER_MIN_CPU_LIMIT_M)}m"


def handler_server_config(
    *,
    spec: AsyncActorSpec,
    socket_path: str = DEFAULT_SOCKET_PATH,
    handler: str | None = None,
    search_path: tuple[str, ...] = (),
) -> HandlerServerConfig:
    """The handler server's configuration for ``spec``: the pod's, and ``asya dev``'s with its local socket path.

    ``handler`` replaces ``spec.handler`` where the server needs another form of it (the local Node.js server's
    ``file.js:export``); ``search_path`` is where the handler's module is looked for (the working directory if empty).
    """
    return HandlerServerConfig(
        handler=handler or spec.handler,
        socket_path=socket_path,
        concurrency=spec.concurrency,
        drain_s=handler_drain_seconds(spec.resiliency),
        search_path=search_path,
    )


def _env_list(env: dict[str, str]) -> list[dict[str, str]]:
    return [{"name": k, "value": v} for k, v in env.items()]


def sidecar_container(*, image: str, sidecar_env: dict[str, str]) -> dict[str, Any]:
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "name": SIDECAR_CONTAINER,
        "image": image,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        "command": SIDECAR_COMMAND,
        "env": _env_list(sidecar_env),
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "failureThreshold": 3},
        "readinessProbe": {**probe, "failureThreshold": 1},
        "resources": SIDECAR_RESOURCES,
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "socket", "mountPath": SOCKET_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def handler_container(*, spec: AsyncActorSpec) -> dict[str, Any]:
    """The user's image running the mounted handler server; liveness asks the server whether a call hangs.

    Its env blocks the AWS SDKs' credential chain (see the module docstring); an ``env`` entry of the spec that
    names one of those variables is refused rather than silently replaced.
    """
    reserved = sorted(set(spec.env) & set(HANDLER_CREDENTIAL_BLOCKERS))
    if reserved:
        raise ValueError(
            f"actor {spec.name!r}: env {reserved} is set by the platform to keep the actor role's credentials out "
            f"of the handler container (only the sidecar holds them); remove it from env"
        )
    health = {"exec": {"command": ["python3", HANDLER_SERVER_PATH, "--health"]}, "timeoutSeconds": 5}
    limits: dict[str, str] = dict(spec.resources.limits)
    limits.setdefault("cpu", handler_cpu_limit(request=spec.resources.requests.get("cpu")))
    if spec.gpu is not None:
        limits[GPU_RESOURCE] = str(spec.gpu.count)
    env = {
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        **spec.env,
        **HANDLER_CREDENTIAL_BLOCKERS,
        **handler_server_config(spec=spec).to_env(),
    }
    return {
        "name": HANDLER_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": IMAGE_PULL_POLICY,
        "command": ["python3", HANDLER_SERVER_PATH],
        "env": _env_list(env),
        # Model loading may take minutes: the startup probe allows 10 minutes before liveness takes over.
        "startupProbe": {**health, "periodSeconds": 5, "failureThreshold": 120},
        "livenessProbe": {**health, "periodSeconds": 10, "failureThreshold": 3},
        # Ready (what rollouts and the PodDisruptionBudget count) while the server answers its health check.
        "readinessProbe": {**health, "periodSeconds": 10, "failureThreshold": 1},
        "resources": {"requests": dict(spec.resources.requests), "limits": limits},
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [
            {"name": "socket", "mountPath": SOCKET_DIR},
            {"name": "handler-server", "mountPath": HANDLER_SERVER_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def pod_spec(
    *,
    containers: list[Any],
    service_account: str,
    sidecar: SidecarConfig,
    handler_server_config_map: Any,
    gpu_pool: str | None,
    tolerations: list[dict[str, Any]],
    node_selector: dict[str, str],
) -> dict[str, Any]:
    """Pod spec: non-root, RuntimeDefault seccomp, no API token, emptyDirs for socket and /tmp, GPU scheduling.

    ``containers`` are dicts or Pulumi outputs of dicts; ``handler_server_config_map`` is the ConfigMap's name
    (a str or an output), None for a sink.
    """
    volumes: list[dict[str, Any]] = [
        {"name": "socket", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    if handler_server_config_map is not None:
        volumes.append({"name": "handler-server", "configMap": {"name": handler_server_config_map}})
    selector = dict(node_selector)
    all_tolerations = list(tolerations)
    if gpu_pool is not None:
        selector[GPU_POOL_LABEL] = gpu_pool
        all_tolerations.append(GPU_TOLERATION)
    pod: dict[str, Any] = {
        "serviceAccountName": service_account,
        # EKS Pod Identity mounts its own projected token; nothing in the pod talks to the Kubernetes API.
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": termination_grace_seconds(sidecar),
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": RUN_AS_UID,
            "runAsGroup": RUN_AS_UID,
            "fsGroup": RUN_AS_UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": containers,
        "volumes": volumes,
    }
    if selector:
        pod["nodeSelector"] = selector
    if all_tolerations:
        pod["tolerations"] = all_tolerations
    return pod
