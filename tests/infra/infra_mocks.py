"""The infra tests' names for the package's mock runner (asya_pulumi.mocked)."""

from asya_pulumi.mocked import ACCOUNT, REGION, Registered
from asya_pulumi.mocked import MockedDeployment as Deployment

__all__ = ["ACCOUNT", "REGION", "Deployment", "Registered"]
