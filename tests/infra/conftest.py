"""Fixtures for the infrastructure tests: a fresh recording Pulumi mock per test (see infra_mocks.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pulumi
import pytest
from infra_mocks import Deployment, RecordingMocks, RecordingMonitor
from pulumi.runtime import settings


@pytest.fixture
def deployment() -> Iterator[Deployment]:
    mocks = RecordingMocks()
    settings.ROOT.set(None)
    pulumi.runtime.set_mocks(mocks, project="asya", stack="test", preview=False, monitor=RecordingMonitor(mocks))
    yield Deployment(mocks)
    settings.ROOT.set(None)
