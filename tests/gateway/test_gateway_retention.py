"""``ASYA_STATUS_RETENTION_DAYS`` (the mesh's ``gateway.statusRetentionDays``): what the gateway writes — the
``pending`` record, a cancel — expires that many days after it was written (DynamoDB's TTL on ``expires_at``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from support.moto_server import MotoServer
from support.status_table import create_status_table

from asya_pulumi.local.broker import LocalBroker
from asya_runtime.status import StatusRecord
from gateway.conftest import Gateway, running_gateway

DAYS = 2


@pytest.fixture(scope="module")
def kept_two_days(
    broker: LocalBroker, sqs: Any, s3: Any, dynamodb_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Gateway]:
    table = create_status_table(endpoint=dynamodb_server.url, namespace=f"gk{uuid.uuid4().hex[:10]}")
    with running_gateway(broker=broker, sqs=sqs, s3=s3, table=table, tmp=tmp_path_factory.mktemp("kept"),
                         status_retention_days=DAYS) as gateway:
        yield gateway


def _lives_after_its_write(gateway: Gateway, envelope_id: str) -> float:
    item = gateway.table.item(envelope_id)
    assert item is not None
    record = StatusRecord.from_item(item)
    assert record.expires_at is not None
    return record.expires_at - datetime.fromisoformat(record.updated_at).timestamp()


def test_a_submission_and_its_cancel_expire_after_the_configured_days(kept_two_days: Gateway) -> None:
    assert kept_two_days.config.to_env()["ASYA_STATUS_RETENTION_DAYS"] == str(DAYS)
    with kept_two_days.http() as http:
        envelope_id = http.post("/api/v1/mesh/?actor=done", json={"payload": {}}).json()["id"]
        assert abs(_lives_after_its_write(kept_two_days, envelope_id) - DAYS * 86400) <= 5
        assert http.delete(f"/api/v1/mesh/{envelope_id}").status_code == 204
    assert abs(_lives_after_its_write(kept_two_days, envelope_id) - DAYS * 86400) <= 5
    kept_two_days.sent("done")
