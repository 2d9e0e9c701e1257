"""The infra tests' names for the package's mock runner (asya_pulumi.checks.mocked)."""

from asya_pulumi.checks.mocked import ACCOUNT, REGION, Registered
from asya_pulumi.checks.mocked import MockedDeployment as Deployment

__all__ = ["ACCOUNT", "REGION", "Deployment", "Registered"]
