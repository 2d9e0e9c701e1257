"""The EKS version calendar: the default stays in standard support, an old version warns with its cost, the
Cluster Autoscaler and the validator follow the Kubernetes minor."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pulumi
import pytest
from infra_mocks import REGION, Deployment

from asya_pulumi.checks.validate import KUBERNETES_VERSION
from asya_pulumi.components import AsyaCluster
from asya_pulumi.spec import ClusterSpec
from asya_pulumi.spec.eks_versions import (
    DEFAULT_KUBERNETES_VERSION,
    EKS_VERSIONS,
    check_supported,
    extended_support_extra_per_month,
    minor_key,
    newest_in_standard_support,
    support_notice,
)


def default_version_problem(today: dt.date) -> str | None:
    """Why the default version is wrong on ``today`` (None: it is in standard support)."""
    default = EKS_VERSIONS[DEFAULT_KUBERNETES_VERSION]
    if today <= default.standard_support_ends:
        return None
    return (
        f"Kubernetes {DEFAULT_KUBERNETES_VERSION} left EKS standard support on {default.standard_support_ends}: "
        "every new cluster now pays extended support. Add the current EKS version to "
        "asya_pulumi/spec/eks_versions.py and make it DEFAULT_KUBERNETES_VERSION"
    )


def test_the_default_version_is_in_eks_standard_support_today() -> None:
    """Fails on the day the default leaves standard support: add the next row and move the default."""
    today = dt.date.today()
    assert default_version_problem(today) is None, default_version_problem(today)
    assert ClusterSpec.model_validate({"name": "c"}).kubernetes_version == DEFAULT_KUBERNETES_VERSION
    assert support_notice(DEFAULT_KUBERNETES_VERSION, today=today) is None


def test_the_default_version_check_fails_the_day_after_standard_support_ends() -> None:
    last_day = EKS_VERSIONS[DEFAULT_KUBERNETES_VERSION].standard_support_ends
    assert default_version_problem(last_day) is None
    assert "left EKS standard support" in (default_version_problem(last_day + dt.timedelta(days=1)) or "")
    assert support_notice(DEFAULT_KUBERNETES_VERSION, today=last_day + dt.timedelta(days=1)) is not None


def test_the_table_follows_the_eks_calendar_rules() -> None:
    """14 months of standard support, 12 of extended; the autoscaler image built for the same minor."""
    for minor, row in EKS_VERSIONS.items():
        months = (row.standard_support_ends.year - row.released.year) * 12 + (
            row.standard_support_ends.month - row.released.month
        )
        assert months == 14, (minor, months)
        assert row.extended_support_ends == row.standard_support_ends.replace(
            year=row.standard_support_ends.year + 1
        ), minor
        assert row.cluster_autoscaler_tag.startswith(f"v{minor}."), minor
    # The default is the newest version with known dates: nothing newer in the table is left unused.
    assert max(EKS_VERSIONS, key=minor_key) == DEFAULT_KUBERNETES_VERSION


def test_a_version_past_standard_support_warns_with_the_cost_at_preview(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, **_: warnings.append(message))
    spec = ClusterSpec.model_validate(
        {"name": "old", "kubernetesVersion": "1.33", "subnetIds": ["subnet-a", "subnet-b"]}
    )
    deployment.run(lambda: AsyaCluster("old", spec=spec, region=REGION).kubeconfig)
    (notice,) = [w for w in warnings if "standard support" in w]
    assert "1.33" in notice and "2026-07-29" in notice
    assert "$0.60 instead of $0.10 per cluster-hour" in notice and "≈ $365/month more" in notice
    assert f"kubernetesVersion to {newest_in_standard_support(dt.date.today())}" in notice
    # A warning, not an error: the cluster is still built on the version asked for.
    assert deployment.one("aws:eks/cluster:Cluster", "old").inputs["version"] == "1.33"


def test_the_default_version_builds_without_a_version_warning(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, **_: warnings.append(message))
    spec = ClusterSpec.model_validate({"name": "new", "subnetIds": ["subnet-a", "subnet-b"]})
    deployment.run(lambda: AsyaCluster("new", spec=spec, region=REGION).kubeconfig)
    assert [w for w in warnings if "Kubernetes" in w] == []
    assert deployment.one("aws:eks/cluster:Cluster", "new").inputs["version"] == DEFAULT_KUBERNETES_VERSION


def test_extended_support_costs_about_365_dollars_a_month_more() -> None:
    assert round(extended_support_extra_per_month()) == 365


def test_a_version_newer_than_the_table_warns_and_one_eks_no_longer_runs_is_refused() -> None:
    newest = max(EKS_VERSIONS, key=minor_key)
    major, minor = minor_key(newest)
    unknown = support_notice(f"{major}.{minor + 1}", today=dt.date.today())
    assert unknown is not None and "not in asya_pulumi/spec/eks_versions.py" in unknown
    with pytest.raises(ValueError, match=r"(?s)kubernetesVersion.*older than any version EKS still runs.*use 1\.\d+"):
        ClusterSpec.model_validate({"name": "c", "kubernetesVersion": "1.29"})
    row = EKS_VERSIONS["1.33"]
    check_supported("1.33", today=row.extended_support_ends)  # the last day of extended support: still accepted
    with pytest.raises(ValueError, match="extended support ended 2027-07-29"):
        check_supported("1.33", today=row.extended_support_ends + dt.timedelta(days=1))


@pytest.mark.parametrize("version", sorted(EKS_VERSIONS, key=minor_key))
def test_the_cluster_autoscaler_image_matches_the_kubernetes_minor(deployment: Deployment, version: str) -> None:
    spec = ClusterSpec.model_validate(
        {"name": "ca", "kubernetesVersion": version, "subnetIds": ["subnet-a", "subnet-b"],
         "gpuPools": [{"name": "gpu"}]}
    )
    deployment.run(lambda: AsyaCluster("ca", spec=spec, region=REGION).kubeconfig)
    # The node groups follow the cluster's version (EKS would otherwise keep them at their creation version).
    assert {g.inputs["version"] for g in deployment.of_type("aws:eks/nodeGroup:NodeGroup")} == {version}
    release = deployment.one("kubernetes:helm.sh/v3:Release", "ca-cluster-autoscaler")
    assert release.inputs["values"]["image"]["tag"] == EKS_VERSIONS[version].cluster_autoscaler_tag
    assert release.inputs["version"] == "9.59.0"


def test_the_docs_state_the_default_version_and_its_support_end() -> None:
    doc = " ".join((Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md").read_text().split())
    row = EKS_VERSIONS[DEFAULT_KUBERNETES_VERSION]
    assert f"default `kubernetesVersion` is **{row.minor}** (standard support until {row.standard_support_ends})" in doc


def test_rendered_objects_are_validated_against_the_default_minor() -> None:
    assert f"{DEFAULT_KUBERNETES_VERSION}.0" == KUBERNETES_VERSION
