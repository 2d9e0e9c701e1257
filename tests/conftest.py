"""Session-wide fixtures: one embedded SQS + S3 broker (`ASYA_BROKER` picks which) for the run, and per-test meshes."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from hypothesis import settings
from support.mesh import MeshHarness  # tests/ is on sys.path: pytest puts a rootdir conftest's folder there

from asya_pulumi.local.broker import LocalBroker

# The fuzz tests (tests/runtime/test_fuzz_*.py) draw the same examples on every run, so that a CI run fails only on a
# change, never on a draw. `ASYA_FUZZ=explore` draws new ones (and keeps failures in .hypothesis/ to replay them).
settings.register_profile("reproducible", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile("explore" if os.environ.get("ASYA_FUZZ") == "explore" else "reproducible")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (what `timeout` and CI runners send) ends the run as Ctrl-C does: pytest then tears the fixtures
    down, so no control plane, broker or pod outlives a run that was stopped (by default SIGTERM kills pytest at
    once and leaves them running)."""
    signal.signal(signal.SIGTERM, _interrupted)


@pytest.fixture(scope="session")
def broker() -> Iterator[LocalBroker]:
    with LocalBroker() as running:
        yield running


@pytest.fixture(scope="session")
def sqs(broker: LocalBroker):  # type: ignore[no-untyped-def]
    return boto3.client("sqs", **broker.client_kwargs())


@pytest.fixture(scope="session")
def s3(broker: LocalBroker):  # type: ignore[no-untyped-def]
    return boto3.client("s3", **broker.client_kwargs())


@pytest.fixture
def mesh(broker: LocalBroker, sqs, s3, tmp_path: Path) -> Iterator[MeshHarness]:  # type: ignore[no-untyped-def]
    """A fresh namespace on the shared broker; every process it started is stopped afterwards."""
    harness = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=tmp_path)
    try:
        yield harness
    finally:
        harness.close()
