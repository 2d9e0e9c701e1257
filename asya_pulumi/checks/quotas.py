"""AWS quotas that only a whole program can reach, checked over what it registered (``asya render``).

A spec checks what one object may be (:mod:`asya_pulumi.spec.limits`); these limits bind a sum that no single
component sees: IAM roles count per account, EKS Pod Identity associations per cluster, and a role's inline
policies together. So they are checked over the rendered program's registrations (the records of
:class:`~asya_pulumi.checks.mocked.MockedDeployment`), at render, before ``pulumi up`` fails half-way through.

An adjustable quota is a warning from :data:`WARN_AT` of it (the account may hold other roles, or the quota may
already be raised: the program cannot know), saying how to raise it; a hard limit passed is an error (IAM refuses
the policy whatever the account). Figures and sources: docs/scale.md.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from asya_pulumi.checks.mocked import Registered

_ROLE = "aws:iam/role:Role"
_ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
#: A warning once a program alone uses this share of an adjustable quota.
WARN_AT = 0.8


@dataclass(frozen=True)
class Quota:
    """An AWS limit: its name as the source names it, the default, where it is documented, how to raise it."""

    name: str
    limit: int
    source: str
    to_raise: str
    adjustable: bool = True


IAM_ROLES_PER_ACCOUNT = Quota(
    name="IAM roles per account", limit=1000, source="IAM User Guide, 'IAM and AWS STS quotas'",
    to_raise="raise 'Roles per account' (AWS Identity and Access Management) in Service Quotas, up to 5,000",
)
POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER = Quota(
    name="EKS Pod Identity associations per cluster", limit=5000, source="Amazon EKS User Guide, 'service quotas'",
    to_raise="request an increase of 'Pod Identity associations per cluster' (Amazon EKS) in Service Quotas, or "
    "split the meshes over more clusters",
)
ROLE_INLINE_POLICY_CHARACTERS = Quota(
    name="IAM inline policy characters per role (all inline policies together, whitespace not counted)",
    limit=10240, source="IAM User Guide, 'IAM and AWS STS quotas'",
    to_raise="a hard limit: split the role's permissions, or use wildcards such as asya-{namespace}_*",
    adjustable=False,
)


@dataclass(frozen=True)
class QuotaFinding:
    """A quota a program uses ``used`` of, for ``subject`` (the account, a cluster, a role)."""

    quota: Quota
    used: int
    subject: str

    @property
    def error(self) -> bool:
        """Past a hard limit: AWS refuses the program whatever the account's settings."""
        return not self.quota.adjustable and self.used > self.quota.limit

    def message(self) -> str:
        q = self.quota
        where = f"{self.subject} uses {self.used:,} of {q.limit:,}"
        return f"{q.name}: {where} (default, {q.source}); {q.to_raise}"


def quota_findings(*, registered: Sequence[Registered]) -> list[QuotaFinding]:
    """Every quota the registered resources reach: adjustable ones from ``WARN_AT`` of the default, hard ones
    once past them. Empty when the program fits with room to spare."""
    found: list[QuotaFinding] = []
    roles = sum(1 for r in registered if r.type == _ROLE)
    found += _near(IAM_ROLES_PER_ACCOUNT, used=roles, subject="the program (its account)")
    associations = Counter(str(r.inputs.get("clusterName")) for r in registered if r.type == _POD_IDENTITY)
    for cluster, used in sorted(associations.items()):
        found += _near(POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER, used=used, subject=f"cluster {cluster}")
    characters: Counter[str] = Counter()
    for record in registered:
        if record.type == _ROLE_POLICY and isinstance(record.inputs.get("policy"), str):
            characters[str(record.inputs.get("role"))] += len(re.sub(r"\s", "", record.inputs["policy"]))
    for role, used in sorted(characters.items()):
        if used > ROLE_INLINE_POLICY_CHARACTERS.limit:
            found.append(QuotaFinding(quota=ROLE_INLINE_POLICY_CHARACTERS, used=used, subject=f"role {role}"))
    return found


def _near(quota: Quota, *, used: int, subject: str) -> list[QuotaFinding]:
    return [QuotaFinding(quota=quota, used=used, subject=subject)] if used >= WARN_AT * quota.limit else []
