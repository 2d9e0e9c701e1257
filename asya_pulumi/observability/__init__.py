"""Dashboards and alerts as code for a mesh: what Prometheus scrapes (``scrape``), the PromQL every panel and alert
runs (``queries``), the Grafana dashboard (``dashboard``), the alerting rules (``alerts``), and the check that every
expression names only metrics and labels the sidecar really exports (``promql_check``, used by the tests).

The component that deploys them is ``asya_pulumi.components.observability.Observability``.
"""

from asya_pulumi.observability.settings import ObservabilitySettings

__all__ = ["ObservabilitySettings"]
