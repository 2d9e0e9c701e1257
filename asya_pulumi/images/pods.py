"""A rendered actor Deployment run as a podman pod (``podman kube play``), against a broker on the host.

The pod template goes to podman as rendered — images, commands, env, user and group, read-only root, dropped
capabilities, the handler-server ConfigMap volume, the socket and /tmp emptyDirs — except for what podman 4.3 on a
machine without a registry or systemd cannot honour, changed here and nowhere else (docs/runtime.md lists them):

1. ``ports``: podman refuses port mappings on the host network, which the pod needs to reach the broker on
   127.0.0.1; removed. On one host network every sidecar would bind 9100 (and a gateway 8080), so each pod gets
   its own port, ``ASYA_METRICS_PORT`` for a sidecar, ``ASYA_GATEWAY_PORT`` for the gateway (the probes ask it).
2. ``imagePullPolicy: Always`` would pull from the registry; ``IfNotPresent`` uses the loaded images.
3. emptyDir volumes become *named* podman volumes, shared by every pod that uses the name: each pod's are renamed
   ``<pod>-<volume>`` (the socket of one pod must not be another's).
4. The broker's endpoint and static credentials (``runtime_env``, with whatever else stands in for AWS: the status
   store's endpoint, an OIDC issuer) are added to the env of the sidecar and of the gateway — in the cluster, the
   Pod Identity webhook adds the credentials and the endpoints are AWS's. A variable from ``fieldRef:
   status.podIP`` becomes ``127.0.0.1`` (podman resolves no ``status`` field; on the host network the pod's IP is
   the host's). A sink's sender check is switched off (``ASYA_VERIFY_SENDERS=false``): a local broker names no real
   sender and there is no IAM to ask, so every record would be kept as forged (docs/sidecar.md, "Who sent it").
5. Probes: podman turns a liveness probe into a healthcheck that needs systemd timers (absent here), an ``httpGet``
   probe into ``curl`` (not in the image) with a named port resolved to 0, and ignores readiness and startup
   probes. :func:`probe` runs each container's probes by hand, as the kubelet would: ``exec`` through
   ``podman exec``, ``httpGet`` to the pod's port on 127.0.0.1.
"""

from __future__ import annotations

import copy
import tempfile
import time
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.podman import podman

#: Every pod this module plays carries this label, so a run's leftovers can be found and removed.
POD_LABEL = "asya.sh/podman-play"


def playable(*, deployment: Mapping[str, Any], pod_name: str, metrics_port: int,
             runtime_env: Mapping[str, str]) -> dict[str, Any]:
    """The Deployment with exactly the changes of the module docstring (the input is not modified).
    ``metrics_port`` is the pod's own port (its sidecar's metrics, or the gateway's HTTP); ``runtime_env`` is what
    the sidecar and the gateway are given in place of AWS (endpoints, credentials)."""
    played = copy.deepcopy(dict(deployment))
    played["metadata"]["name"] = pod_name
    template = played["spec"]["template"]
    template.setdefault("metadata", {}).setdefault("labels", {})[POD_LABEL] = pod_name
    spec = template["spec"]
    renamed = {v["name"]: f"{pod_name}-{v['name']}" for v in spec.get("volumes", []) if "emptyDir" in v}
    for volume in spec.get("volumes", []):
        volume["name"] = renamed.get(volume["name"], volume["name"])
    for container in spec["containers"]:
        container.pop("ports", None)
        if container.get("imagePullPolicy") == "Always":
            container["imagePullPolicy"] = "IfNotPresent"
        for mount in container.get("volumeMounts", []):
            mount["name"] = renamed.get(mount["name"], mount["name"])
        container["env"] = [_pod_ip_on_host(e) for e in container.get("env", [])]
        own = _OWN_PORT.get(tuple(container.get("command", [])))
        if own is not None:
            extra = {**runtime_env, **own(metrics_port)}
            container["env"] = [e for e in container.get("env", []) if e["name"] not in extra] + [
                {"name": k, "value": v} for k, v in extra.items()]
    return played


#: The runtime image's two programs → what each gets besides ``runtime_env``: its own port and, for a sidecar, the
#: sender check off (rule 4).
_OWN_PORT = {
    ("asya-sidecar",): lambda port: {"ASYA_METRICS_PORT": str(port), "ASYA_VERIFY_SENDERS": "false"},
    ("asya-gateway",): lambda port: {"ASYA_GATEWAY_PORT": str(port)},
}


def _pod_ip_on_host(variable: dict[str, Any]) -> dict[str, Any]:
    """``valueFrom: {fieldRef: status.podIP}`` as ``127.0.0.1``: on the host network the pod's IP is the host's, and
    podman 4.3 resolves no ``status`` field."""
    if variable.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "status.podIP":
        return {"name": variable["name"], "value": "127.0.0.1"}
    return variable


def play(*, documents: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
    """``podman kube play --network host`` of ``documents`` (Deployments and the ConfigMaps they mount)."""
    # A ConfigMap becomes a volume named after it, kept across runs: drop an unused one, so it is made afresh.
    stale = [d["metadata"]["name"] for d in documents if d.get("kind") == "ConfigMap"]
    if stale:
        podman("volume", "rm", *stale, check=False)
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="asya-pod-") as file:
        yaml.safe_dump_all(documents, file, sort_keys=False)
        file.flush()
        podman("kube", "play", "--network", "host", file.name, timeout=timeout_s)


def remove(*, pod_names: list[str], timeout_s: float = 90.0) -> None:
    """Stop the pods, sidecars first, then remove them and their volumes.

    ``podman pod stop`` stops a pod's containers one by one, and stopped the handler server first, which then waits
    for its sidecar's connections until it is killed (30 s). The sidecars of every pod are stopped together first
    (``podman stop``: a stopped container is not restarted by the pod's restart policy, a signalled one is); each
    drains and closes its connections, and the handler servers then stop at once.
    """
    pods = [f"{name}-pod-0" for name in pod_names]
    listed = podman("ps", "--format", "{{.Names}}", *(f"--filter=pod={pod}" for pod in pods), check=False)
    sidecars = [name for name in listed.stdout.split() if name.endswith("-sidecar")]
    if sidecars:
        podman("stop", "--time", "30", *sidecars, check=False, timeout=timeout_s)
    podman("pod", "rm", "--force", "--time", "10", *pods, timeout=timeout_s, check=False)
    volumes = podman("volume", "ls", "--quiet", check=False).stdout.split()
    owned = [v for v in volumes if any(v.startswith(f"{name}-") for name in pod_names)]
    if owned:
        podman("volume", "rm", "--force", *owned, check=False)


def container_name(*, pod_name: str, container: str) -> str:
    """podman's name for a played container: ``<pod>-pod-0-<container>`` (``<Deployment>-pod-0`` is the pod)."""
    return f"{pod_name}-pod-0-{container}"


def probe(*, pod_name: str, deployment: Mapping[str, Any], kind: str, metrics_port: int) -> list[str]:
    """Run every container's ``kind`` probe (``readinessProbe``, ``livenessProbe``, ``startupProbe``) once; the
    failures, as ``container: why`` (empty when all pass)."""
    failures = []
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        check = container.get(kind)
        if check is None:
            continue
        name = container_name(pod_name=pod_name, container=container["name"])
        if "exec" in check:
            done = podman("exec", name, *check["exec"]["command"], check=False,
                          timeout=float(check.get("timeoutSeconds", 5)) + 5)
            if done.returncode != 0:
                failures.append(f"{container['name']}: exec exited {done.returncode}: {done.stderr.strip()[-200:]}")
        elif "httpGet" in check:
            url = f"http://127.0.0.1:{metrics_port}{check['httpGet']['path']}"
            try:
                with urllib.request.urlopen(url, timeout=float(check.get("timeoutSeconds", 3))) as answer:
                    status = answer.status
            except OSError as exc:
                status, why = 0, str(exc)
            if not 200 <= status < 400:
                failures.append(f"{container['name']}: GET {url}: {status or why}")
    return failures


def wait_probes(*, pod_name: str, deployment: Mapping[str, Any], metrics_port: int, timeout_s: float) -> float:
    """Wait until the startup and readiness probes pass; the seconds it took. ImageError naming the failing probe
    and the containers' last log lines after ``timeout_s``."""
    started = time.monotonic()
    last: list[str] = []
    for kind in ("startupProbe", "readinessProbe"):
        while last := probe(pod_name=pod_name, deployment=deployment, kind=kind, metrics_port=metrics_port):
            if time.monotonic() - started > timeout_s:
                raise ImageError(f"pod {pod_name}: {kind} still failing after {timeout_s:.0f} s: {'; '.join(last)}"
                                 f"\n{logs(pod_name=pod_name, deployment=deployment)}")
            time.sleep(0.1)
    return time.monotonic() - started


def logs(*, pod_name: str, deployment: Mapping[str, Any], lines: int = 5) -> str:
    """The last ``lines`` of each container's log (for failures)."""
    parts = []
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        name = container_name(pod_name=pod_name, container=container["name"])
        done = podman("logs", "--tail", str(lines), name, check=False)
        parts.append(f"--- {name}\n{(done.stdout + done.stderr).strip()}")
    return "\n".join(parts)


def read_rendered(directory: Path) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """The Deployments (by name) and ConfigMaps that ``asya render --out`` wrote for one namespace."""
    deployments = {}
    config_maps = []
    for path in sorted(directory.glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        if document.get("kind") == "Deployment":
            deployments[document["metadata"]["name"]] = document
        elif document.get("kind") == "ConfigMap":
            config_maps.append(document)
    return deployments, config_maps
