"""asya_pulumi.checks.quotas: the sums no single component sees, over a program's registrations."""

from __future__ import annotations

import json

from asya_pulumi.checks.mocked import Registered
from asya_pulumi.checks.quotas import (
    IAM_ROLES_PER_ACCOUNT,
    POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER,
    ROLE_INLINE_POLICY_CHARACTERS,
    WARN_AT,
    quota_findings,
)


def roles(count: int) -> list[Registered]:
    return [Registered(type="aws:iam/role:Role", name=f"r{i}", inputs={}, outputs={}) for i in range(count)]


def associations(count: int, *, cluster: str) -> list[Registered]:
    return [Registered(type="aws:eks/podIdentityAssociation:PodIdentityAssociation", name=f"{cluster}-{i}",
                       inputs={"clusterName": cluster}, outputs={}) for i in range(count)]


def policy(role: str, *, characters: int) -> Registered:
    """An inline policy of ``role`` whose JSON has ``characters`` non-whitespace characters, and as much space."""
    skeleton = json.dumps({"Sid": ""}, separators=(",", ":"))
    document = json.dumps({"Sid": "x" * (characters - len(skeleton))}, indent=8).replace("\n", "\n" + " " * 500)
    return Registered(type="aws:iam/rolePolicy:RolePolicy", name=f"{role}-p{characters}",
                      inputs={"role": role, "policy": document}, outputs={})


def test_iam_roles_warn_from_the_threshold_and_name_the_quota_and_how_to_raise_it() -> None:
    below = int(WARN_AT * IAM_ROLES_PER_ACCOUNT.limit) - 1
    assert quota_findings(registered=roles(below)) == []
    (finding,) = quota_findings(registered=roles(IAM_ROLES_PER_ACCOUNT.limit + 1))
    assert finding.quota is IAM_ROLES_PER_ACCOUNT and finding.used == 1001
    assert not finding.error  # adjustable: the account may have it raised already
    assert "IAM roles per account" in finding.message() and "Service Quotas" in finding.message()
    assert "1,001 of 1,000" in finding.message()


def test_pod_identity_associations_count_per_cluster() -> None:
    near = int(WARN_AT * POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER.limit)
    found = quota_findings(registered=[*associations(near, cluster="c1"), *associations(near - 1, cluster="c2")])
    expected = [(POD_IDENTITY_ASSOCIATIONS_PER_CLUSTER, "cluster c1", near)]
    assert [(f.quota, f.subject, f.used) for f in found] == expected


def test_a_role_past_the_inline_policy_limit_is_an_error_whitespace_not_counted() -> None:
    limit = ROLE_INLINE_POLICY_CHARACTERS.limit
    fits = [policy("fits", characters=limit // 2), policy("fits", characters=limit // 2)]
    assert quota_findings(registered=fits) == []  # thousands of spaces, yet exactly at the limit
    (finding,) = quota_findings(registered=[*fits, policy("over", characters=limit // 2),
                                            policy("over", characters=limit // 2 + 1)])
    assert finding.error and finding.subject == "role over" and finding.used == limit + 1
    assert "hard limit" in finding.message()
