"""``Observability``: dashboards and alerts as code for one mesh — a PodMonitor that scrapes every sidecar, the
mesh's Grafana dashboard as a ConfigMap Grafana's dashboard sidecar loads, and a PrometheusRule with its alerts.

Needs the Prometheus operator's CRDs (``monitoring.coreos.com/v1``; e.g. kube-prometheus-stack) in the cluster:
pass what installs them as ``wait_for``. ``ActorMesh(observability=ObservabilitySettings(...))`` creates one for
the mesh; a stack that deploys the mesh elsewhere can create it alone with the mesh's name. What the objects
contain is built in ``asya_pulumi/observability/`` (scrape, queries, dashboard, alerts); docs/observability.md
says where each number comes from.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_kubernetes as k8s

from asya_pulumi.components.common import PART_OF, TYPE_PREFIX, child
from asya_pulumi.objects.labels import MANAGED_BY_LABEL, MESH_LABEL, PART_OF_LABEL
from asya_pulumi.observability import alerts, dashboard, scrape
from asya_pulumi.observability.settings import ObservabilitySettings

MONITORING_API_VERSION = "monitoring.coreos.com/v1"


@dataclass(frozen=True)
class ObservabilityArgs:
    """``mesh``: the mesh's name (its namespace in ``MeshSpec``; an Output, e.g. a platform stack's export, works).
    ``namespace``: the Kubernetes namespace of the PodMonitor and PrometheusRule. Defaults to ``mesh`` (ActorMesh
    names its namespace after the mesh). ``settings``: labels, folder, thresholds (:class:`ObservabilitySettings`).
    ``wait_for``: what must exist first (the release that installs the Prometheus operator's CRDs)."""

    mesh: pulumi.Input[str]
    namespace: pulumi.Input[str] | None = None
    settings: ObservabilitySettings = field(default_factory=ObservabilitySettings)
    wait_for: Sequence[pulumi.Resource] = ()


def dashboard_file(mesh: str) -> str:
    """The ConfigMap key of the dashboard: Grafana's sidecar writes each key as a file of that name."""
    return f"asya-{mesh}.json"


class Observability(pulumi.ComponentResource):
    """Outputs: ``pod_monitor_name``, ``rule_name``, ``dashboard_uid``."""

    pod_monitor: k8s.apiextensions.CustomResource
    rule: k8s.apiextensions.CustomResource
    dashboard: k8s.core.v1.ConfigMap

    def __init__(self, resource_name: str, args: ObservabilityArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__(f"{TYPE_PREFIX}Observability", resource_name, None, opts)
        settings = args.settings
        mesh = pulumi.Output.from_input(args.mesh)
        namespace = args.namespace if args.namespace is not None else args.mesh
        labels = {PART_OF_LABEL: PART_OF, MANAGED_BY_LABEL: "pulumi", MESH_LABEL: mesh}
        monitor_meta = {"name": mesh.apply(lambda m: f"asya-{m}"), "namespace": namespace,
                        "labels": {**labels, **settings.monitor_labels}}
        in_order = child(self, depends_on=list(args.wait_for))
        self.pod_monitor = k8s.apiextensions.CustomResource(
            f"{resource_name}-pod-monitor",
            api_version=MONITORING_API_VERSION,
            kind="PodMonitor",
            metadata=monitor_meta,
            spec=mesh.apply(lambda m: scrape.pod_monitor_spec(mesh=m, interval=settings.scrape_interval)),
            opts=in_order,
        )
        self.rule = k8s.apiextensions.CustomResource(
            f"{resource_name}-rules",
            api_version=MONITORING_API_VERSION,
            kind="PrometheusRule",
            metadata=monitor_meta,
            spec=mesh.apply(lambda m: {"groups": alerts.rule_groups(mesh=m, settings=settings)}),
            opts=in_order,
        )
        folder = {settings.folder_annotation: settings.dashboard_folder} if settings.dashboard_folder else {}
        self.dashboard = k8s.core.v1.ConfigMap(
            f"{resource_name}-dashboard",
            metadata={
                "name": mesh.apply(lambda m: f"asya-{m}-dashboard"),
                "namespace": settings.dashboard_namespace or namespace,
                "labels": {**labels, **settings.dashboard_labels},
                "annotations": folder,
            },
            data=mesh.apply(
                lambda m: {dashboard_file(m): json.dumps(dashboard.dashboard(mesh=m), indent=1, sort_keys=True)}
            ),
            opts=child(self),
        )
        self.pod_monitor_name = self.pod_monitor.metadata.apply(lambda meta: meta["name"])
        self.rule_name = self.rule.metadata.apply(lambda meta: meta["name"])
        self.dashboard_uid = mesh.apply(dashboard.dashboard_uid)
        self.register_outputs(
            {"podMonitorName": self.pod_monitor_name, "ruleName": self.rule_name, "dashboardUid": self.dashboard_uid}
        )
