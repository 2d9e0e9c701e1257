"""Pod Security Admission labels for a mesh namespace: ``restricted``, enforced, audited and warned.

The admission controller then refuses any pod in the namespace that is not non-root, RuntimeDefault-seccomp,
without privilege escalation and capabilities, on allowed volume types; the actor pods are built to pass
(``asya_pulumi.objects.pod``), so the labels cost nothing and stop anything else (a debug pod, a hand-edited Deployment)
from running privileged next to the actors. The policy version is pinned to the Kubernetes version the rendered
objects are validated against, so a cluster upgrade cannot tighten (or loosen) the rules underneath a running mesh.
"""

from __future__ import annotations

from typing import Literal

from asya_pulumi.checks.validate import KUBERNETES_VERSION

PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
MODES = ("enforce", "audit", "warn")
PREFIX = "pod-security.kubernetes.io/"


def policy_version(kubernetes_version: str = KUBERNETES_VERSION) -> str:
    """``"1.33.0"`` → ``"v1.33"`` (PSA versions name a minor release)."""
    major, minor = kubernetes_version.split(".")[:2]
    return f"v{major}.{minor}"


def pod_security_labels(level: PodSecurityLevel = "restricted", *, version: str | None = None) -> dict[str, str]:
    """``pod-security.kubernetes.io/{enforce,audit,warn}`` = ``level`` and each ``-version`` = ``version``."""
    pinned = version or policy_version()
    labels: dict[str, str] = {}
    for mode in MODES:
        labels[f"{PREFIX}{mode}"] = level
        labels[f"{PREFIX}{mode}-version"] = pinned
    return labels
