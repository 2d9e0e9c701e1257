"""``ObservabilitySettings``: what the mesh's dashboard and alerts look like and where they go."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")


@dataclass(frozen=True)
class ObservabilitySettings:
    """Switches for ``ActorMesh(observability=...)`` / :class:`Observability`; every default is usable as is with
    kube-prometheus-stack once its selectors match ``monitor_labels``.

    ``monitor_labels``: labels on the PodMonitor and PrometheusRule, for your Prometheus's ``podMonitorSelector`` /
    ``ruleSelector`` (kube-prometheus-stack selects ``release: <its release name>`` unless told to select all).
    Defaults to none (a Prometheus that selects every PodMonitor and rule).
    ``scrape_interval``: how often each sidecar is scraped. Defaults to ``30s``, which is also the least interval
    between two queue-depth requests of a sidecar (a faster scrape sees cached depths).
    ``dashboard_labels``: labels the Grafana sidecar looks for on ConfigMaps. Defaults to ``grafana_dashboard: "1"``
    (the Grafana chart's ``sidecar.dashboards.label`` / ``labelValue``).
    ``dashboard_folder``: the Grafana folder, as the annotation ``folder_annotation`` (the chart's
    ``sidecar.dashboards.folderAnnotation``; Grafana's sidecar ignores it unless that is set). Defaults to ``Asya``;
    None sets no annotation (the sidecar's default folder).
    ``dashboard_namespace``: where the dashboard's ConfigMap goes. Defaults to the mesh's namespace; name Grafana's
    own namespace when its sidecar watches only that one (``sidecar.dashboards.searchNamespace``).
    ``error_rate_per_minute``: an actor sending more envelopes than this per minute to the error sink, for
    ``alert_for``, alerts. Defaults to 1.
    ``latency_ratio``: handler p99 above this fraction of the actor's ``actorTimeout`` alerts. Defaults to 0.8.
    ``oldest_age_seconds``: the oldest waiting message older than this, and still ageing, alerts. Defaults to 300.
    ``alert_for``: how long a condition must hold before its alert fires (the DLQ alert: 1m). Defaults to ``10m``.
    ``alert_labels``: labels added to every alert (e.g. a ``team`` your Alertmanager routes on).
    """

    monitor_labels: Mapping[str, str] = field(default_factory=dict)
    scrape_interval: str = "30s"
    dashboard_labels: Mapping[str, str] = field(default_factory=lambda: {"grafana_dashboard": "1"})
    dashboard_folder: str | None = "Asya"
    folder_annotation: str = "grafana_folder"
    dashboard_namespace: str | None = None
    error_rate_per_minute: float = 1.0
    latency_ratio: float = 0.8
    oldest_age_seconds: float = 300.0
    alert_for: str = "10m"
    alert_labels: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("scrape_interval", "alert_for"):
            value = getattr(self, name)
            if not _DURATION.fullmatch(value):
                raise ValueError(f"observability.{name}: {value!r} is not a Prometheus duration; write e.g. '30s'")
        if not self.dashboard_labels:
            raise ValueError("observability.dashboard_labels is empty: Grafana's sidecar would never find the "
                             "dashboard; keep the default {'grafana_dashboard': '1'} or name your sidecar's label")
        if not 0 < self.latency_ratio <= 1:
            raise ValueError(f"observability.latency_ratio: {self.latency_ratio} is outside (0, 1]; it is the "
                             f"fraction of actorTimeout the handler p99 may reach, e.g. 0.8")
        for name in ("error_rate_per_minute", "oldest_age_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"observability.{name} must be above 0, e.g. {getattr(type(self), name)}")
        for key in self.alert_labels:
            if not _LABEL_NAME.fullmatch(key):
                raise ValueError(f"observability.alert_labels: {key!r} is not a Prometheus label name "
                                 f"([a-zA-Z_][a-zA-Z0-9_]*)")
