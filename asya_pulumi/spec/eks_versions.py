"""EKS's Kubernetes version calendar, in one place: the default version, support dates, and the add-on versions
that follow the Kubernetes minor.

EKS supports a minor version for 14 months at $0.10 per cluster-hour (standard support), then 12 more months at
$0.60 (extended support, on by default), then upgrades the cluster itself. A cluster created on a version past its
standard support costs $0.50/h ≈ $365/month more than the idle cost the docs state, so :func:`support_notice` warns
at preview; ``tests/infra/test_eks_versions.py`` fails on the day the default version leaves standard support, so the
table below is kept current (add the new row, move ``DEFAULT_KUBERNETES_VERSION``).

Source: the AWS EKS release calendar (docs.aws.amazon.com/eks/latest/userguide/kubernetes-versions.html); the Cluster
Autoscaler image follows the Kubernetes minor (registry.k8s.io/autoscaling/cluster-autoscaler, newest patch per minor
when the row was written).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

#: USD per cluster-hour (us-east-1, the same in every commercial region).
STANDARD_SUPPORT_HOURLY = 0.10
EXTENDED_SUPPORT_HOURLY = 0.60
HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class EksVersion:
    minor: str
    released: dt.date
    standard_support_ends: dt.date
    extended_support_ends: dt.date
    #: The Cluster Autoscaler image tag built for this Kubernetes minor.
    cluster_autoscaler_tag: str


EKS_VERSIONS: dict[str, EksVersion] = {
    v.minor: v
    for v in (
        EksVersion("1.32", dt.date(2025, 1, 25), dt.date(2026, 3, 23), dt.date(2027, 3, 23), "v1.32.7"),
        EksVersion("1.33", dt.date(2025, 5, 28), dt.date(2026, 7, 29), dt.date(2027, 7, 29), "v1.33.6"),
        EksVersion("1.34", dt.date(2025, 10, 6), dt.date(2026, 12, 2), dt.date(2027, 12, 2), "v1.34.5"),
        EksVersion("1.35", dt.date(2026, 1, 28), dt.date(2027, 3, 27), dt.date(2028, 3, 27), "v1.35.2"),
    )
}
#: The newest minor whose EKS dates are known: in standard support until 2027-03-27.
DEFAULT_KUBERNETES_VERSION = "1.35"


def extended_support_extra_per_month() -> float:
    """What extended support adds to one cluster's monthly bill (≈ $365)."""
    return (EXTENDED_SUPPORT_HOURLY - STANDARD_SUPPORT_HOURLY) * HOURS_PER_MONTH


def minor_key(version: str) -> tuple[int, int]:
    major, minor = version.split(".")[:2]
    return int(major), int(minor)


def check_supported(version: str, *, today: dt.date) -> None:
    """Refuse a version EKS no longer runs at all (past extended support, or older than the table).

    EKS refuses to create such a cluster and upgrades existing ones itself; failing here says so before ``pulumi up``.
    """
    oldest = min(EKS_VERSIONS, key=minor_key)
    known = EKS_VERSIONS.get(version)
    if known is None and minor_key(version) < minor_key(oldest):
        raise ValueError(
            f"Kubernetes {version} is older than any version EKS still runs (oldest known here: {oldest}); "
            f"use {DEFAULT_KUBERNETES_VERSION}"
        )
    if known is not None and today > known.extended_support_ends:
        raise ValueError(
            f"Kubernetes {version}: EKS extended support ended {known.extended_support_ends}; EKS no longer creates "
            f"clusters on it. Use {DEFAULT_KUBERNETES_VERSION}"
        )


def support_notice(version: str, *, today: dt.date) -> str | None:
    """A warning for a version past standard support (with what it costs) or missing from the table; else None."""
    known = EKS_VERSIONS.get(version)
    if known is None:
        return (
            f"Kubernetes {version} is not in asya_pulumi/spec/eks_versions.py, so its EKS support dates and cost are "
            f"unknown here (the Cluster Autoscaler image stays at {cluster_autoscaler_tag(version)}); check the EKS "
            "release calendar and add the version to the table"
        )
    if today <= known.standard_support_ends:
        return None
    return (
        f"Kubernetes {version}: EKS standard support ended {known.standard_support_ends}, so this cluster runs in "
        f"extended support at ${EXTENDED_SUPPORT_HOURLY:.2f} instead of ${STANDARD_SUPPORT_HOURLY:.2f} per "
        f"cluster-hour (≈ ${extended_support_extra_per_month():.0f}/month more) until {known.extended_support_ends}, "
        f"when EKS upgrades it itself. Set asya:cluster.kubernetesVersion to {newest_in_standard_support(today)} "
        "(an in-place upgrade, one minor at a time)"
    )


def newest_in_standard_support(today: dt.date) -> str:
    """The newest table version still in standard support on ``today`` (the default when none is)."""
    current = [v.minor for v in EKS_VERSIONS.values() if today <= v.standard_support_ends]
    return max(current, key=minor_key) if current else DEFAULT_KUBERNETES_VERSION


def cluster_autoscaler_tag(version: str) -> str:
    """The autoscaler image for ``version``: its row's tag, or the newest row's for a version newer than the table."""
    known = EKS_VERSIONS.get(version)
    if known is not None:
        return known.cluster_autoscaler_tag
    return EKS_VERSIONS[max(EKS_VERSIONS, key=minor_key)].cluster_autoscaler_tag
