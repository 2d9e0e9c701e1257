"""Session-wide fixtures: one embedded SQS + S3 broker (`ASYA_BROKER` picks which) for the run, and per-test meshes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from support.mesh import MeshHarness  # tests/ is on sys.path: pytest puts a rootdir conftest's folder there

from asya_pulumi.local.broker import LocalBroker


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
