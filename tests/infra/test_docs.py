"""docs/infrastructure.md states the pinned chart versions and the scaling defaults the code actually uses."""

from __future__ import annotations

from pathlib import Path

from asya_pulumi.components.cluster_addons import CLUSTER_AUTOSCALER_CHART, NVIDIA_DEVICE_PLUGIN_CHART
from asya_pulumi.components.keda import KEDA_CHART_VERSION
from asya_pulumi.spec import ScalingSpec

DOC = (Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md").read_text()


def test_pinned_chart_versions_are_the_documented_ones() -> None:
    assert f"chart **{KEDA_CHART_VERSION}**" in DOC
    assert f"device plugin chart {NVIDIA_DEVICE_PLUGIN_CHART[2]}" in DOC
    assert f"Cluster Autoscaler (chart {CLUSTER_AUTOSCALER_CHART[2]}" in DOC


def test_every_scaling_default_is_documented_with_its_value() -> None:
    defaults = ScalingSpec()
    for name, field in ScalingSpec.model_fields.items():
        row = f"| `{field.alias}` | {getattr(defaults, name)} |"
        assert row in DOC, f"docs/infrastructure.md lacks the row {row!r}"
