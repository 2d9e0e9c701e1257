"""Fixtures for the infrastructure tests: a fresh recording Pulumi mock per test (see asya_pulumi/checks/mocked.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pulumi.runtime import settings

from asya_pulumi.checks.mocked import MockedDeployment


@pytest.fixture
def deployment() -> Iterator[MockedDeployment]:
    yield MockedDeployment.start(stack="test")
    settings.ROOT.set(None)

