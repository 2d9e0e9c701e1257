"""The actor pod, as plain Kubernetes dicts: paths, containers, probes, security context, GPU scheduling.

One place for every path and port the two containers share. The handler container runs the runtime's single-file
handler server for the actor's ``runtime`` (``python3 handler_server.py`` or ``node handler_server.js``), mounted
from a ConfigMap, with the user's image: the image needs that interpreter and the handler's module, nothing from us.
The sidecar container runs ``asya-sidecar`` from the runtime image.

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
capability dropped, only emptyDir / configMap / secret / PVC volumes (plus the webhook's projected token).
"""

from __future__ import annotations

import hashlib
import math
import posixpath
from importlib import resources
from typing import Any

from asya_pulumi.spec import GPU_POOL_LABEL, GPU_RESOURCE, AsyncActorSpec
from asya_pulumi.spec.actor import HandlerRuntime
from asya_pulumi.spec.pod_options import (
    DEFAULT_IMAGE_PULL_POLICY,
    DEFAULT_PYTHON,
    HANDLER_SERVER_DIR,
    SidecarOverrides,
)
from asya_runtime.config import DEFAULT_SOCKET_PATH, SidecarConfig
from asya_runtime.handler_server import HandlerServerConfig
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar.handler_client import read_limit_bytes

#: The runtime's handler server for each handler language (files of ``asya_runtime``, all in the ConfigMap).
HANDLER_SERVER_FILES: dict[HandlerRuntime, str] = {"python": "handler_server.py", "node": "handler_server.js"}
#: Modules the Python server loads from beside itself (stdlib only): mounted with the servers.
HANDLER_SERVER_MODULES = ("envelope_paths.py",)
#: The interpreter that runs each server; the user's image must have it on PATH.
HANDLER_INTERPRETERS: dict[HandlerRuntime, str] = {"python": DEFAULT_PYTHON, "node": "node"}
#: The language of an actor that does not name one (in the cluster; ``asya dev`` may look at the files).
DEFAULT_RUNTIME: HandlerRuntime = "python"
#: The Node server looks for ``file.js`` only on ASYA_HANDLER_PATH: in the pod that is the image's working directory.
NODE_SEARCH_PATH = (".",)
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
#: Names of the actor's ``env`` entries that the sidecar gets too (:func:`sidecar_tracing_env`).
SIDECAR_TRACING_ENV_PREFIX = "OTEL_"
#: The Cluster Autoscaler's ``--max-graceful-termination-sec`` (its default): a scale-down gives a pod this long.
CLUSTER_AUTOSCALER_MAX_GRACE_S = 600
SAFE_TO_EVICT = "cluster-autoscaler.kubernetes.io/safe-to-evict"
METRICS_PORT: int = SidecarConfig.model_fields["metrics_port"].default
#: The sidecar's /metrics and /healthz listen on the pod's IP (the kubelet's probes and Prometheus come from outside
#: the pod), not on every address; outside a pod they default to loopback (SidecarConfig.metrics_host).
POD_IP_METRICS_HOST = {
    "name": SidecarConfig.model_fields["metrics_host"].alias,
    "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
}
#: A rolling update starts one new pod before it stops an old one (``maxSurge``; ``maxUnavailable`` is 0), so an
#: actor at its ``maxReplicaCount`` briefly runs one pod more (the namespace's ResourceQuota counts it).
MAX_SURGE = 1
#: Slack between the sidecar's own shutdown budget and the kubelet's SIGKILL.
SHUTDOWN_MARGIN_S = 5
#: After SIGTERM the handler server waits for in-flight calls this long past the actor timeout (clients hang up).
HANDLER_DRAIN_MARGIN_S = 10
#: Any non-root uid works: the images need no file of their own writable (root FS is read-only; /tmp is an emptyDir).
RUN_AS_UID = 10001
#: Every pod of a mesh (actors, sinks, the gateway): non-root with a fixed uid/gid, RuntimeDefault seccomp.
POD_SECURITY_CONTEXT = {
    "runAsNonRoot": True,
    "runAsUser": RUN_AS_UID,
    "runAsGroup": RUN_AS_UID,
    "fsGroup": RUN_AS_UID,
    "seccompProfile": {"type": "RuntimeDefault"},
}
GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}
CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
}
#: The sidecar's pull policy: the default an actor's handler gets too.
IMAGE_PULL_POLICY = DEFAULT_IMAGE_PULL_POLICY
#: The sidecar's requests and limits; the memory limit is only the floor of :func:`sidecar_memory_limit_mib`.
SIDECAR_RESOURCES = {"requests": {"cpu": "50m", "memory": "96Mi"}, "limits": {"cpu": "1", "memory": "256Mi"}}
#: The sidecar's memory limit never goes below this (MiB): the fixed limit it had before it was derived.
SIDECAR_MEMORY_FLOOR_MIB = 256
#: A sidecar's resident memory before any call's answer (MiB): the interpreter, the clients, the first message
#: (measured at 68-74 MiB peak after a one-output call; bench/fanout_memory.py).
SIDECAR_MEMORY_BASE_MIB = 96
#: Resident memory one output costs until it is sent (KiB): its parsed frame, its envelope and, one chunk at a time,
#: its body and batch entry. Measured at 2.1 KiB per child (bench/fanout_memory.py, 100,000 children: 279 MiB
#: peak against 74 for one); 2.5 leaves margin.
SIDECAR_MEMORY_PER_OUTPUT_KIB = 2.5
#: A handler without a CPU limit gets this many times its CPU request (at least one CPU): it may burst, but a
#: runaway (or hostile) handler cannot take a whole node from its neighbours.
HANDLER_CPU_BURST = 4
HANDLER_MIN_CPU_LIMIT_M = 1000


def handler_server_sources() -> dict[str, str]:
    """File name → text of every handler server and the modules it loads, read from the installed ``asya_runtime``."""
    package = resources.files("asya_runtime")
    names = (*HANDLER_SERVER_FILES.values(), *HANDLER_SERVER_MODULES)
    return {name: package.joinpath(name).read_text(encoding="utf-8") for name in names}


def sources_digest(sources: dict[str, str]) -> str:
    """sha256 prefix over every file (name and text): a pod-template annotation, so a new server rolls pods."""
    digest = hashlib.sha256()
    for name in sorted(sources):
        digest.update(f"{name}\0{sources[name]}\0".encode())
    return digest.hexdigest()[:16]


def handler_runtime(spec: AsyncActorSpec) -> HandlerRuntime:
    """The actor's handler language in the cluster: ``spec.runtime``, python when unset."""
    return spec.runtime or DEFAULT_RUNTIME


def handler_server_command(runtime: HandlerRuntime, *, python: str = DEFAULT_PYTHON) -> list[str]:
    """``python3 /opt/asya/handler_server.py`` (``python``: the spec's ``pythonExecutable``) or
    ``node /opt/asya/handler_server.js``."""
    interpreter = python if runtime == "python" else HANDLER_INTERPRETERS[runtime]
    return [interpreter, posixpath.join(HANDLER_SERVER_DIR, HANDLER_SERVER_FILES[runtime])]


def node_handler(handler: str) -> str:
    """The Node server's ``file.js:export`` form: ``words.countWords`` → ``words.js:countWords``."""
    module, _, attribute = handler.partition(".")
    return f"{module}.js:{attribute}"


def secret_env_key(name: str) -> str:
    """The key of env variable ``name`` in the actor's Secret (env names are valid Secret keys as they are)."""
    return name


def termination_grace_seconds(sidecar: SidecarConfig) -> int:
    """The sidecar's shutdown budget + 5 s (``ceil(actorTimeout) + 51`` with the default 20 s long poll): the sum of
    every wait of a stopping sidecar (:attr:`SidecarConfig.shutdown_waits_s`), so the kubelet never kills a drain.

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
    runtime: HandlerRuntime | None = None,
    socket_path: str = DEFAULT_SOCKET_PATH,
    search_path: tuple[str, ...] = (),
) -> HandlerServerConfig:
    """The handler server's configuration for ``spec``: the pod's, and ``asya dev``'s with its local socket path.

    ``runtime`` (default: :func:`handler_runtime`) picks the handler's form: the Node server takes
    ``file.js:export`` (:func:`node_handler`) and searches only ``search_path`` (the working directory if empty);
    the Python server imports ``module.function`` from ``search_path`` or its working directory.
    """
    runtime = runtime or handler_runtime(spec)
    if runtime == "node":
        handler, search_path = node_handler(spec.handler), search_path or NODE_SEARCH_PATH
    else:
        handler = spec.handler
    return HandlerServerConfig(
        handler=handler,
        socket_path=socket_path,
        concurrency=spec.concurrency,
        drain_s=handler_drain_seconds(spec.resiliency),
        search_path=search_path,
    )


def _env_list(env: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"name": k, "value": v} for k, v in env.items()]


def handler_env(*, spec: AsyncActorSpec, secret_name: Any) -> list[dict[str, Any]]:
    """The handler's ``env``: plain values, ``secretEnv`` as ``secretKeyRef`` s into ``secret_name`` (the
    actor's Secret: the value never enters the Deployment), ``valueFrom`` as written, then the platform's own.

    Platform variables come last and are checked not to collide, so a user's value can never replace one.
    """
    runtime = handler_runtime(spec)
    users = [*spec.env, *spec.secret_env, *spec.value_from]
    reserved = sorted(set(users) & set(HANDLER_CREDENTIAL_BLOCKERS))
    if reserved:
        raise ValueError(
            f"actor {spec.name!r}: env {reserved} is set by the platform to keep the actor role's credentials out "
            f"of the handler container (only the sidecar holds them); remove it from env"
        )
    base = {"HOME": "/tmp", **({"PYTHONDONTWRITEBYTECODE": "1"} if runtime == "python" else {})}
    entries = _env_list({k: v for k, v in base.items() if k not in users})
    entries += _env_list(dict(spec.env))
    entries += [
        {"name": k, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": secret_env_key(k)}}}
        for k in spec.secret_env
    ]
    entries += [
        {"name": k, "valueFrom": source.model_dump(by_alias=True, exclude_none=True)}
        for k, source in spec.value_from.items()
    ]
    entries += _env_list({**HANDLER_CREDENTIAL_BLOCKERS, **handler_server_config(spec=spec).to_env()})
    return entries


def sidecar_tracing_env(spec: object) -> dict[str, Any]:
    """The actor's plain ``env`` entries that its sidecar gets too: the standard ``OTEL_*`` variables, which switch
    on and configure the sidecar's spans (``OTEL_EXPORTER_OTLP_ENDPOINT``; runtime/asya_runtime/sidecar/tracing.py,
    docs/observability.md). The handler keeps them as well, for its own OpenTelemetry. Sinks have no ``env``."""
    if not isinstance(spec, AsyncActorSpec):
        return {}
    return {k: v for k, v in spec.env.items() if k.startswith(SIDECAR_TRACING_ENV_PREFIX)}


def sidecar_memory_limit_mib(*, concurrency: int, max_fanout: int, max_message_bytes: int) -> int:
    """The sidecar's memory limit (MiB), from what its calls may hold at once, so a fan-out at the cap is never
    OOM-killed (a limit too small kills the sidecar on every redelivery of the same message)::

        max(256, 96 + concurrency × (2 × answer_limit + max_fanout × 2.5 KiB))

    ``answer_limit`` is the longest answer line read (``4 × max_message_bytes + 1 MiB``), held as bytes and once
    parsed; ``max_fanout × 2.5 KiB`` what the outputs of one answer cost until sent. Every call in flight
    (``concurrency``) may answer at once. An offloading sidecar reads answers of up to 256 MiB
    (``claimcheck.OFFLOAD_ANSWER_LIMIT_BYTES``): that is not budgeted per call here (ten of them would ask for
    5 GiB per pod); an actor that returns answers that large sets ``sidecar.resources.limits.memory``.
    """
    answer_mib = read_limit_bytes(max_message_bytes=max_message_bytes) / (1024 * 1024)
    per_call_mib = 2 * answer_mib + max_fanout * SIDECAR_MEMORY_PER_OUTPUT_KIB / 1024
    return max(SIDECAR_MEMORY_FLOOR_MIB, math.ceil(SIDECAR_MEMORY_BASE_MIB + concurrency * per_call_mib))


def sidecar_resources(
    *, sidecar: SidecarConfig, overrides: SidecarOverrides | None = None
) -> dict[str, dict[str, str]]:
    """The sidecar's requests and limits: :data:`SIDECAR_RESOURCES` with the memory limit sized from ``sidecar``
    (:func:`sidecar_memory_limit_mib`), then what the actor's ``sidecar`` block names, which wins."""
    resources = {part: dict(values) for part, values in SIDECAR_RESOURCES.items()}
    # every item of a batch may answer as much as a call of its own (ASYA_BATCH_MAX_SIZE; 0: no batching)
    memory = sidecar_memory_limit_mib(
        concurrency=sidecar.concurrency * max(1, sidecar.batch_max_size), max_fanout=sidecar.max_fanout,
        max_message_bytes=sidecar.max_message_bytes,
    )
    resources["limits"]["memory"] = f"{memory}Mi"
    if overrides is not None and overrides.resources is not None:
        resources["requests"].update(overrides.resources.requests or {})
        resources["limits"].update(overrides.resources.limits or {})
    return resources


def sidecar_container(
    *,
    image: str,
    sidecar: SidecarConfig,
    sidecar_env: dict[str, Any],
    overrides: SidecarOverrides | None = None,
) -> dict[str, Any]:
    """The sidecar container running ``sidecar`` (its settings size the memory limit) with ``sidecar_env``;
    ``overrides`` (the actor's ``sidecar`` block) replaces the image, the pull policy and any resource it names,
    and adds env (the platform's own variables win: the spec refused ``ASYA_*`` there)."""
    overrides = overrides or SidecarOverrides()
    probe = {"httpGet": {"path": "/healthz", "port": "metrics"}, "periodSeconds": 10, "timeoutSeconds": 3}
    return {
        "name": SIDECAR_CONTAINER,
        "image": overrides.image or image,
        "imagePullPolicy": overrides.image_pull_policy or IMAGE_PULL_POLICY,
        "command": SIDECAR_COMMAND,
        "env": [*_env_list({**overrides.env, **sidecar_env}), POD_IP_METRICS_HOST],
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"}],
        "livenessProbe": {**probe, "failureThreshold": 3},
        "readinessProbe": {**probe, "failureThreshold": 1},
        "resources": sidecar_resources(sidecar=sidecar, overrides=overrides),
        "securityContext": CONTAINER_SECURITY,
        "volumeMounts": [{"name": "socket", "mountPath": SOCKET_DIR}, {"name": "tmp", "mountPath": "/tmp"}],
    }


def handler_container(*, spec: AsyncActorSpec, secret_name: Any = None) -> dict[str, Any]:
    """The user's image running the mounted handler server of its ``runtime``; liveness asks the server (the
    same file with ``--health``, which both servers answer) whether a call hangs.

    Its env blocks the AWS SDKs' credential chain (see the module docstring); an env entry of the spec that names
    one of those variables is refused rather than silently replaced. ``secret_name``: the actor's Secret holding
    ``secretEnv`` (a str or an output; unused when the spec has none).
    """
    command = handler_server_command(handler_runtime(spec), python=spec.python_executable)
    health = {"exec": {"command": [*command, "--health"]}, "timeoutSeconds": 5}
    limits: dict[str, str] = dict(spec.resources.limits)
    limits.setdefault("cpu", handler_cpu_limit(request=spec.resources.requests.get("cpu")))
    if spec.gpu is not None:
        limits[GPU_RESOURCE] = str(spec.gpu.count)
    container: dict[str, Any] = {
        "name": HANDLER_CONTAINER,
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": command,
        "env": handler_env(spec=spec, secret_name=secret_name),
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
            *(volume.mount() for volume in spec.volumes),
        ],
    }
    if spec.secret_refs:
        container["envFrom"] = [{"secretRef": {"name": name}} for name in spec.secret_refs]
    return container


def pod_spec(
    *,
    containers: list[Any],
    service_account: str,
    sidecar: SidecarConfig,
    handler_server_config_map: Any,
    gpu_pool: str | None,
    tolerations: list[dict[str, Any]],
    node_selector: dict[str, str],
    extra_volumes: list[dict[str, Any]] | None = None,
    image_pull_secrets: list[str] | None = None,
    priority_class_name: str | None = None,
) -> dict[str, Any]:
    """Pod spec: non-root, RuntimeDefault seccomp, no API token, emptyDirs for socket and /tmp, GPU scheduling.

    ``containers`` are dicts or Pulumi outputs of dicts; ``handler_server_config_map`` is the ConfigMap's name
    (a str or an output), None for a sink. ``extra_volumes``: the actor's own (``volumes[]`` entries of kinds
    Pod Security ``restricted`` allows; the spec refused the others).
    """
    volumes: list[dict[str, Any]] = [
        {"name": "socket", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    if handler_server_config_map is not None:
        volumes.append({"name": "handler-server", "configMap": {"name": handler_server_config_map}})
    volumes += extra_volumes or []
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
        "securityContext": POD_SECURITY_CONTEXT,
        "containers": containers,
        "volumes": volumes,
    }
    if image_pull_secrets:
        pod["imagePullSecrets"] = [{"name": name} for name in image_pull_secrets]
    if priority_class_name is not None:
        pod["priorityClassName"] = priority_class_name
    if selector:
        pod["nodeSelector"] = selector
    if all_tolerations:
        pod["tolerations"] = all_tolerations
    return pod
