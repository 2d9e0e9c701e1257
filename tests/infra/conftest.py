"""Fixtures for the infrastructure tests: a fresh recording Pulumi mock per test (see asya_pulumi/checks/mocked.py)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from pulumi.runtime import settings

from asya_pulumi.checks.mocked import MockedDeployment


@pytest.fixture
def deployment() -> Iterator[MockedDeployment]:
    _ensure_current_event_loop()
    yield MockedDeployment.start(stack="test")
    settings.ROOT.set(None)


def _ensure_current_event_loop() -> None:
    """Pulumi's mocks run on the thread's current event loop. A test elsewhere that called ``asyncio.run`` leaves
    the main thread with none (``asyncio.run`` ends by setting it to None), so whether these tests passed depended
    on the order tests ran in; give the thread a fresh loop when it has none."""
    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
