"""The PodMonitor: Prometheus scrapes each actor pod's sidecar on its ``metrics`` port, and labels every series with
the actor and the mesh it came from (the sidecar's own metrics carry neither: the pod's labels say it once).

Prometheus (the operator's PodMonitor discovery) adds ``namespace``, ``pod``, ``container``, ``endpoint``, ``job`` and
``instance`` to every target; the relabelings below add ``actor`` and ``mesh`` from the pod labels that
``objects.labels.labels`` gives every actor and sink. The dashboard and the alerts group by those two.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.objects.labels import MESH_LABEL as MESH_POD_LABEL
from asya_pulumi.objects.labels import NAME_LABEL, PART_OF, PART_OF_LABEL

#: Series labels the dashboard and alerts use, set by the PodMonitor's relabelings.
ACTOR_LABEL = "actor"
MESH_LABEL = "mesh"
#: Pod label → the series label it becomes (pod labels from ``objects.labels.labels``).
POD_LABEL_TO_SERIES_LABEL = {NAME_LABEL: ACTOR_LABEL, MESH_POD_LABEL: MESH_LABEL}
#: Labels the Prometheus operator's PodMonitor discovery puts on every target, before any relabeling.
OPERATOR_TARGET_LABELS = frozenset({"namespace", "pod", "container", "endpoint", "job", "instance"})
#: The sidecar container's port name (``pod.sidecar_container``; the tests check they agree): scraped by name.
METRICS_PORT_NAME = "metrics"


def discovered_pod_label(pod_label: str) -> str:
    """Prometheus's service-discovery name of a pod label: every character outside [a-zA-Z0-9_] becomes ``_``."""
    return "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() or c == "_" else "_" for c in pod_label)


def pod_monitor_spec(*, mesh: str, interval: str) -> dict[str, Any]:
    """Select the mesh's actor and sink pods, scrape ``/metrics`` on the sidecar's port every ``interval``."""
    return {
        "selector": {"matchLabels": {PART_OF_LABEL: PART_OF, MESH_POD_LABEL: mesh}},
        "podMetricsEndpoints": [
            {
                "port": METRICS_PORT_NAME,
                "path": "/metrics",
                # No scrapeTimeout: Prometheus's default (10 s, or the interval when shorter) always fits the
                # interval, and a scrape that refreshes the queue depths gives up on SQS after 5 s.
                "interval": interval,
                "relabelings": [
                    {"action": "replace", "sourceLabels": [discovered_pod_label(source)], "targetLabel": target}
                    for source, target in POD_LABEL_TO_SERIES_LABEL.items()
                ],
            }
        ],
    }


def series_target_labels(spec: dict[str, Any]) -> frozenset[str]:
    """Every label a series scraped through PodMonitor ``spec`` carries besides its own: the operator's target labels
    and each relabeling's ``targetLabel`` (read from the spec, so the check follows what is really deployed)."""
    added = {
        relabeling["targetLabel"]
        for endpoint in spec["podMetricsEndpoints"]
        for relabeling in endpoint.get("relabelings", [])
        if "targetLabel" in relabeling
    }
    return OPERATOR_TARGET_LABELS | added

