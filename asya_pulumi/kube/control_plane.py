"""``asya kube up/down/status``: a real Kubernetes control plane and KEDA, as processes on loopback.

``up`` builds the binaries once (:mod:`asya_pulumi.kube.build`), writes certificates (:mod:`asya_pulumi.kube.pki`)
and kubeconfigs, starts etcd, kube-apiserver, kube-controller-manager, kube-scheduler, KWOK and KEDA's operator,
metrics adapter and webhooks, installs upstream's CRDs and KEDA's RBAC/APIService/webhooks
(:mod:`asya_pulumi.kube.upstream`) and the Nodes of a ``ClusterSpec`` (:mod:`asya_pulumi.kube.nodes`), and waits
until KEDA's external-metrics API is available. It is idempotent: what already runs (checked by pid *and* argv) is
kept, what is missing is started, every object is re-applied. ``down`` stops only the processes recorded in the
state directory's ``state.json``; etcd's data stays until ``down(purge=True)``.

Everything listens on 127.0.0.1 with TLS and client certificates, except two ports KEDA gives no host flag for (its
adapter's plain-HTTP ``/metrics``, the webhooks' HTTPS server), which bind all interfaces; docs/kube.md lists them.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import yaml

from asya_pulumi.kube import processes
from asya_pulumi.kube.build import ensure_all
from asya_pulumi.kube.client import ApplyError, KubeClient, conditions
from asya_pulumi.kube.errors import KubeError
from asya_pulumi.kube.nodes import KWOK_ANNOTATION, node_objects
from asya_pulumi.kube.pki import IDENTITIES, Pki, ensure_pki
from asya_pulumi.kube.upstream import KEDA_NAMESPACE, crd_objects, keda_objects, kwok_stages
from asya_pulumi.local.broker import free_port
from asya_pulumi.local.broker_install import cache_root
from asya_pulumi.spec import ClusterSpec

__all__ = ["COMPONENTS", "ControlPlane", "Ports", "default_directory"]

#: Start order; ``down`` stops them in reverse.
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "keda-operator",
              "keda-adapter", "keda-webhooks")
SERVICE_CIDR = "10.96.0.0/16"
#: How often the HPA controller syncs; upstream's default (15 s), as EKS runs it.
HPA_SYNC_PERIOD = "15s"


def default_directory() -> Path:
    """``$ASYA_KUBE_DIR``, else ``<cache>/asya/kube/local``: certificates, kubeconfigs, etcd data, logs, state."""
    configured = os.environ.get("ASYA_KUBE_DIR")
    return Path(configured) if configured else cache_root() / "kube" / "local"


@dataclass(frozen=True)
class Ports:
    """The loopback ports of one control plane, chosen free at its first ``up`` and kept in ``state.json``."""

    etcd: int
    etcd_peer: int
    apiserver: int
    controller_manager: int
    scheduler: int
    kwok: int
    keda_metrics: int
    keda_probe: int
    keda_grpc: int
    adapter: int
    adapter_metrics: int
    webhooks: int
    webhooks_metrics: int
    webhooks_probe: int

    @classmethod
    def choose(cls) -> Ports:
        chosen: set[int] = set()
        values = []
        for _ in cls.__dataclass_fields__:
            port = free_port()
            while port in chosen:
                port = free_port()
            chosen.add(port)
            values.append(port)
        return cls(*values)


class ControlPlane:
    """One local control plane, whose every file lives under ``directory``."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = (directory or default_directory()).resolve()
        self.pki = Pki(self.directory / "pki")

    # -- files ---------------------------------------------------------------------------------------------------

    @property
    def kubeconfig(self) -> Path:
        """The admin's kubeconfig (``system:masters``): what ``up`` prints and kubectl uses."""
        return self.directory / "kubeconfig"

    @property
    def _state_file(self) -> Path:
        return self.directory / "state.json"

    def _log(self, name: str) -> Path:
        return self.directory / "logs" / f"{name}.log"

    def _read_state(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self._state_file.read_text()))
        except (FileNotFoundError, ValueError):
            return {}

    def _write_state(self, state: dict[str, Any]) -> None:
        temporary = self._state_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(state, indent=2))
        temporary.replace(self._state_file)

    def ports(self) -> Ports | None:
        recorded = self._read_state().get("ports")
        return Ports(**recorded) if recorded else None

    def _recorded(self) -> dict[str, processes.Process]:
        return {name: processes.Process(name=name, pid=entry["pid"], argv=tuple(entry["argv"]), env=entry["env"])
                for name, entry in self._read_state().get("processes", {}).items()}

    def client(self, identity: str = "admin") -> KubeClient:
        ports = self.ports()
        if ports is None:
            raise KubeError(f"no control plane in {self.directory}: run `asya kube up` first")
        return KubeClient(server=f"https://127.0.0.1:{ports.apiserver}", ca=str(self.pki.ca),
                          cert=str(self.pki.cert(identity)), key=str(self.pki.key(identity)))

    # -- up ------------------------------------------------------------------------------------------------------

    def up(self, *, cluster: ClusterSpec | None = None, notice: TextIO | None = None) -> Path:
        """Start whatever is not running, apply the upstream objects and ``cluster``'s Nodes; the kubeconfig."""
        out = notice or sys.stderr
        started = time.monotonic()
        binaries = ensure_all(notice=out)
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        ensure_pki(self.pki.directory)
        state = self._read_state()
        ports = self.ports() or Ports.choose()
        state["ports"] = asdict(ports)
        self._write_kubeconfigs(ports)
        running = self._recorded()
        state["processes"] = {name: asdict(process) for name, process in running.items()
                              if processes.is_ours(process)}
        self._write_state(state)

        def launch(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
            if name in state["processes"]:
                return
            for port in _ports_of(argv):
                if processes.port_open(port):
                    raise KubeError(f"{name}: port {port} (recorded in {self._state_file}) is taken by another "
                                    f"program; stop it, or `asya kube down --purge` to choose new ports")
            process = processes.start(name=name, argv=argv, env=env or {}, log=self._log(name))
            state["processes"][name] = asdict(process)
            self._write_state(state)

        argv = self._argv(ports, binaries={name: directory / name for directory in binaries.values()
                                           for name in os.listdir(directory) if not name.startswith("SHA")})
        launch("etcd", argv["etcd"])
        launch("kube-apiserver", argv["kube-apiserver"])
        client = self.client()
        self._wait_ready(client, "kube-apiserver", lambda: client.get_raw("/readyz")[0] == 200, timeout_s=120)
        self._apply(client, crd_objects())
        self._wait_crds(client)
        for name in ("kube-controller-manager", "kube-scheduler"):
            launch(name, argv[name])
        stages = self.directory / "kwok-stages.yaml"
        stages.write_text(kwok_stages())
        launch("kwok", argv["kwok"])
        self._apply(client, keda_objects(ca=self.pki.ca, adapter_port=ports.adapter, webhook_port=ports.webhooks))
        keda_env = {"KUBECONFIG": str(self._kubeconfig_of("keda")), "KEDA_CLUSTER_OBJECT_NAMESPACE": KEDA_NAMESPACE,
                    "POD_NAMESPACE": KEDA_NAMESPACE, "WATCH_NAMESPACE": ""}
        for name in ("keda-operator", "keda-adapter", "keda-webhooks"):
            launch(name, argv[name], keda_env)
        self.apply_nodes(cluster or ClusterSpec(name="local"))
        self._wait_ready(client, "keda-adapter (APIService v1beta1.external.metrics.k8s.io Available)",
                         lambda: _api_service_available(client), timeout_s=180)
        self._wait_ready(client, "keda-webhooks", lambda: processes.port_open(ports.webhooks), timeout_s=60)
        print(f"    control plane up in {time.monotonic() - started:.0f} s: {self.directory}", file=out, flush=True)
        return self.kubeconfig

    def apply_nodes(self, cluster: ClusterSpec) -> list[str]:
        """Make the KWOK Nodes exactly ``cluster``'s: apply its nodes, delete KWOK nodes it no longer has."""
        client = self.client()
        wanted = node_objects(cluster)
        self._apply(client, wanted)
        names = {node["metadata"]["name"] for node in wanted}
        annotation, value = next(iter(KWOK_ANNOTATION.items()))
        for node in client.list("v1", "Node"):
            if node["metadata"].get("annotations", {}).get(annotation) == value and node["metadata"]["name"] \
                    not in names:
                client.delete("v1", "Node", node["metadata"]["name"])
        return sorted(names)

    def _apply(self, client: KubeClient, objects: Iterable[dict[str, Any]]) -> None:
        for obj in objects:
            client.apply(obj)
            if obj["kind"] == "CustomResourceDefinition":
                client.forget_discovery()

    def _wait_crds(self, client: KubeClient) -> None:
        def established() -> bool:
            for crd in client.list("apiextensions.k8s.io/v1", "CustomResourceDefinition"):
                if conditions(crd).get("Established") != "True":
                    return False
            return True

        client.wait_for(established, what="the CRDs to be Established", timeout_s=60)

    def _wait_ready(self, client: KubeClient, what: str, check: Any, *, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            try:
                if check():
                    return
            except KubeError:
                pass
            dead = [name for name, process in self._recorded().items() if not processes.is_ours(process)]
            if dead:
                raise KubeError(f"{', '.join(dead)} exited while waiting for {what}: "
                                + "; ".join(f"{name}: {_last_line(self._log(name))}" for name in dead))
            time.sleep(0.5)
        raise KubeError(f"timed out after {timeout_s:.0f} s waiting for {what}; logs: {self.directory / 'logs'}")

    # -- down / status ---------------------------------------------------------------------------------------------

    def down(self, *, purge: bool = False) -> list[str]:
        """Stop this control plane's processes (last started first); with ``purge``, delete its directory."""
        state = self._read_state()
        recorded = self._recorded()
        stopped = [name for name in reversed(COMPONENTS) if name in recorded and processes.stop(recorded[name])]
        if state:
            state["processes"] = {}
            self._write_state(state)
        if purge and self.directory.exists():
            shutil.rmtree(self.directory)
        return stopped

    def status(self) -> dict[str, str]:
        """Each component: ``running (pid N)`` or ``stopped``; and the apiserver's ``/readyz``."""
        recorded = self._recorded()
        report = {name: (f"running (pid {recorded[name].pid})" if name in recorded
                         and processes.is_ours(recorded[name]) else "stopped") for name in COMPONENTS}
        if report["kube-apiserver"].startswith("running"):
            try:
                code, body = self.client().get_raw("/readyz", timeout_s=5)
                report["readyz"] = f"{code} {str(body).strip()[:60]}"
            except KubeError as exc:
                report["readyz"] = str(exc)
        return report

    # -- argv ------------------------------------------------------------------------------------------------------

    def _kubeconfig_of(self, identity: str) -> Path:
        return self.kubeconfig if identity == "admin" else self.directory / "kubeconfigs" / f"{identity}.yaml"

    def _write_kubeconfigs(self, ports: Ports) -> None:
        (self.directory / "kubeconfigs").mkdir(exist_ok=True, mode=0o700)
        for identity in IDENTITIES:
            if identity.name in ("front-proxy-client", "etcd-client"):
                continue
            config = {
                "apiVersion": "v1", "kind": "Config", "current-context": "asya-local",
                "clusters": [{"name": "asya-local", "cluster": {
                    "server": f"https://127.0.0.1:{ports.apiserver}", "certificate-authority": str(self.pki.ca)}}],
                "users": [{"name": identity.name, "user": {
                    "client-certificate": str(self.pki.cert(identity.name)),
                    "client-key": str(self.pki.key(identity.name))}}],
                "contexts": [{"name": "asya-local", "context": {"cluster": "asya-local", "user": identity.name}}],
            }
            path = self._kubeconfig_of(identity.name)
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            path.chmod(0o600)

    def _argv(self, ports: Ports, *, binaries: dict[str, Path]) -> dict[str, list[str]]:
        pki = self.pki
        data = self.directory / "etcd"
        loopback = "127.0.0.1"

        def auth(identity: str) -> list[str]:
            config = str(self._kubeconfig_of(identity))
            return [f"--kubeconfig={config}", f"--authentication-kubeconfig={config}",
                    f"--authorization-kubeconfig={config}"]

        keda_dir = str(pki.keda_dir)
        return {
            "etcd": [
                str(binaries["etcd"]), "--name=asya", f"--data-dir={data}",
                f"--listen-client-urls=https://{loopback}:{ports.etcd}",
                f"--advertise-client-urls=https://{loopback}:{ports.etcd}",
                f"--listen-peer-urls=https://{loopback}:{ports.etcd_peer}",
                f"--initial-advertise-peer-urls=https://{loopback}:{ports.etcd_peer}",
                f"--initial-cluster=asya=https://{loopback}:{ports.etcd_peer}",
                f"--cert-file={pki.cert('etcd')}", f"--key-file={pki.key('etcd')}",
                f"--trusted-ca-file={pki.ca}", "--client-cert-auth",
                f"--peer-cert-file={pki.cert('etcd')}", f"--peer-key-file={pki.key('etcd')}",
                f"--peer-trusted-ca-file={pki.ca}", "--peer-client-cert-auth",
                "--unsafe-no-fsync",  # a throwaway dev cluster: no fsync per write (CI disks are slow)
                "--log-level=warn",
            ],
            "kube-apiserver": [
                str(binaries["kube-apiserver"]), f"--advertise-address={loopback}", f"--bind-address={loopback}",
                f"--secure-port={ports.apiserver}",
                f"--etcd-servers=https://{loopback}:{ports.etcd}", f"--etcd-cafile={pki.ca}",
                f"--etcd-certfile={pki.cert('etcd-client')}", f"--etcd-keyfile={pki.key('etcd-client')}",
                f"--tls-cert-file={pki.cert('apiserver')}", f"--tls-private-key-file={pki.key('apiserver')}",
                f"--client-ca-file={pki.ca}", "--authorization-mode=Node,RBAC", "--anonymous-auth=false",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={pki.cert('service-account')}",
                f"--service-account-signing-key-file={pki.key('service-account')}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",  # as on EKS: Pod Security admission, not this flag, refuses privileged
                "--endpoint-reconciler-type=none",  # the kubernetes Service cannot point at a loopback address
                f"--requestheader-client-ca-file={pki.cert('front-proxy-ca')}",
                "--requestheader-allowed-names=front-proxy-client", "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group", "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={pki.cert('front-proxy-client')}",
                f"--proxy-client-key-file={pki.key('front-proxy-client')}",
                "--enable-aggregator-routing=false", "--profiling=false",
            ],
            "kube-controller-manager": [
                str(binaries["kube-controller-manager"]), *auth("controller-manager"),
                f"--bind-address={loopback}", f"--secure-port={ports.controller_manager}", "--leader-elect=false",
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={pki.key('service-account')}", f"--root-ca-file={pki.ca}",
                f"--horizontal-pod-autoscaler-sync-period={HPA_SYNC_PERIOD}", "--profiling=false",
            ],
            "kube-scheduler": [
                str(binaries["kube-scheduler"]), *auth("scheduler"), f"--bind-address={loopback}",
                f"--secure-port={ports.scheduler}", "--leader-elect=false", "--profiling=false",
            ],
            "kwok": [
                str(binaries["kwok"]), f"--kubeconfig={self._kubeconfig_of('kwok')}", "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector=" + ",".join(f"{k}={v}" for k, v in KWOK_ANNOTATION.items()),
                f"--server-address={loopback}:{ports.kwok}", f"--config={self.directory / 'kwok-stages.yaml'}",
                f"--node-ip={loopback}",
            ],
            "keda-operator": [
                str(binaries["keda-operator"]), f"--metrics-bind-address={loopback}:{ports.keda_metrics}",
                f"--health-probe-bind-address={loopback}:{ports.keda_probe}",
                f"--metrics-service-bind-address={loopback}:{ports.keda_grpc}", f"--cert-dir={keda_dir}",
                "--enable-cert-rotation=false", "--enable-webhook-patching=false", "--leader-elect=false",
                "--zap-log-level=info",
            ],
            "keda-adapter": [
                # the adapter reads the cluster with --lister-kubeconfig (custom-metrics-apiserver's flag)
                str(binaries["keda-adapter"]), *auth("keda")[1:], f"--lister-kubeconfig={self._kubeconfig_of('keda')}",
                f"--secure-port={ports.adapter}",
                f"--bind-address={loopback}", f"--tls-cert-file={keda_dir}/tls.crt",
                f"--tls-private-key-file={keda_dir}/tls.key", f"--client-ca-file={pki.ca}", f"--cert-dir={keda_dir}",
                f"--metrics-service-address={loopback}:{ports.keda_grpc}",
                f"--metrics-service-grpc-authority=keda-operator.{KEDA_NAMESPACE}.svc",
                f"--port={ports.adapter_metrics}", "--zap-log-level=error",
            ],
            "keda-webhooks": [
                str(binaries["keda-webhooks"]), f"--cert-dir={keda_dir}", f"--port={ports.webhooks}",
                f"--metrics-bind-address={loopback}:{ports.webhooks_metrics}",
                f"--health-probe-bind-address={loopback}:{ports.webhooks_probe}", "--zap-log-level=info",
            ],
        }


def _ports_of(argv: list[str]) -> list[int]:
    """The ports an argv listens on: ``--*bind-address=H:N``, ``--server-address=H:N``, ``--listen-*-urls``,
    ``--secure-port=N``, ``--port=N`` (never the addresses it dials)."""
    found = []
    for arg in argv:
        flag, _, value = arg.partition("=")
        if (flag.endswith(("bind-address", "server-address")) or flag.startswith("--listen-")) and ":" in value:
            found.append(int(value.rsplit(":", 1)[1]))
        elif flag in ("--secure-port", "--port"):
            found.append(int(value))
    return found


def _api_service_available(client: KubeClient) -> bool:
    try:
        service = client.get("apiregistration.k8s.io/v1", "APIService", "v1beta1.external.metrics.k8s.io")
    except ApplyError:
        return False
    return conditions(service).get("Available") == "True"


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except FileNotFoundError:
        return "no log"
    return lines[-1][:300] if lines else "empty log"
