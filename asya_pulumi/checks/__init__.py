"""Offline checks of what ``pulumi up`` would create, needing no cloud credentials and no Pulumi CLI.

- :mod:`~asya_pulumi.checks.validate` — rendered Kubernetes objects against the real schemas (and the project's
  schemas for KEDA, Karpenter and the Prometheus operator), and the set as a whole;
- :mod:`~asya_pulumi.checks.schema_check` — a resource's properties against the package schema, as a typed SDK would;
- :mod:`~asya_pulumi.checks.mocked` — run a Pulumi program under mocks that record every resource (``asya render``,
  the infra tests, ``bench/mesh_build.py``);
- :mod:`~asya_pulumi.checks.quotas` — AWS quotas only the whole program reaches (IAM roles per account, Pod Identity
  associations per cluster, a role's inline policy size), over what ``mocked`` recorded.
"""
