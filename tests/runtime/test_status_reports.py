"""The sidecar's status reports on their own, on a real broker client (embedded broker) and moto's DynamoDB: a burst
of FLY events is coalesced into a few writes, keeps the last 20 and the latest progress; a batch of untracked
envelopes costs no request."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from support.status_table import StatusTable

from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.status_reports import StatusReports
from asya_runtime.status import TRACKED_HEADER, StatusRecord


@pytest.fixture(autouse=True)
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", LOCAL_CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", LOCAL_CREDENTIALS["aws_secret_access_key"])


def requests(metrics: Metrics) -> dict[str, float]:
    return {
        s.labels["api"]: s.value
        for m in metrics.dynamodb_requests.collect() for s in m.samples if s.name.endswith("_total")
    }


def scenario(broker: LocalBroker, table: StatusTable, work: Any) -> Any:
    config = SidecarConfig(
        actor="a", namespace=table.namespace, sqs_endpoint=broker.endpoint, status_table=table.name,
        dynamodb_endpoint=table.endpoint,
    )
    metrics = Metrics()

    async def main() -> Any:
        async with BrokerClient(config=config, metrics=metrics) as client:
            reports = StatusReports(config=config, broker=client, metrics=metrics, within_s=5)
            return await work(reports), requests(metrics)

    return asyncio.run(main())


def test_a_fly_burst_is_coalesced_and_keeps_the_latest_progress(broker: LocalBroker, status_table: StatusTable) -> None:
    envelope = new_envelope(route=["a"], payload={}, headers={TRACKED_HEADER: "1"})

    async def work(reports: StatusReports) -> None:
        await reports.store.create_pending(id=envelope.id, route="r")
        batch = reports.batch(1)
        ticket = batch.ticket()
        ticket.arrive(envelope)
        assert not await batch.canceled(envelope)
        fly = reports.fly_reporter(envelope, ticket)
        for i in range(50):  # a token stream: far faster than 4 writes a second
            fly({"text": f"t{i}", "progress": i * 2})
            await asyncio.sleep(0.005)
        fly("done")  # no progress: the last numeric one stays
        await fly.flushed(timeout_s=10)

    _, made = scenario(broker, status_table, work)
    item = status_table.item(envelope.id)
    assert item is not None
    record = StatusRecord.from_item(item)
    assert record.fly_seq == 51 and record.progress == 98 and record.status == "running"
    assert record.fly_events()[-1] == "done" and len(record.fly) == 20
    assert made["batch_get_item"] == 1
    assert made["update_item"] <= 1 + 6  # the running, then at most ~4 FLY writes a second over ~0.4 s (+ a cut)


def test_a_batch_without_tracked_envelopes_makes_no_request(broker: LocalBroker, status_table: StatusTable) -> None:
    plain = [new_envelope(route=["a"], payload={}) for _ in range(3)]

    async def work(reports: StatusReports) -> list[bool]:
        batch = reports.batch(len(plain))
        for envelope in plain:
            batch.ticket().arrive(envelope)
        return [await batch.canceled(e) for e in plain]

    canceled, made = scenario(broker, status_table, work)
    assert canceled == [False, False, False] and made == {}


@pytest.mark.parametrize("mode", ["success-sink", "error-sink"])
def test_a_fan_in_aggregates_end_also_ends_its_fan_out_parents_record(
    broker: LocalBroker, status_table: StatusTable, mode: str
) -> None:
    """The caller holds the parent's id; the aggregate has its own (``fanin_id``): without this the parent's record
    stayed ``running`` for good (found by tests/e2e/test_ml_pipeline.py through the gateway)."""
    parent = new_envelope(route=["split", "join"], payload={}, headers={TRACKED_HEADER: "1"})
    aggregate = new_envelope(route=["join"], payload={"joined": [1, 2]}, headers={TRACKED_HEADER: "1"})
    record = json.loads(aggregate.to_json())
    record["fanin"] = {"parent_id": parent.id, "total": 2, "errors": [], "missing": [], "at": 1}
    if mode == "error-sink":
        record["status"]["error"] = {"type": "FanInTimeout", "message": "children [1] ...", "reason": "fan-in timeout"}

    async def work(reports: StatusReports) -> None:
        await reports.store.create_pending(id=parent.id, route="r")
        body = json.dumps(record).encode()
        await reports.record_end(mode=mode, body=body, key=f"x/{aggregate.id}.json", bucket="b")
        await reports.record_end(mode=mode, body=body, key=f"x/{aggregate.id}.json", bucket="b")  # a redelivery

    scenario(broker, status_table, work)
    ended = {i: StatusRecord.from_item(status_table.item(i)) for i in (parent.id, aggregate.id)}  # type: ignore[arg-type]
    expected = "succeeded" if mode == "success-sink" else "failed"
    assert {i: r.status for i, r in ended.items()} == {parent.id: expected, aggregate.id: expected}
    if mode == "success-sink":
        assert json.loads(ended[parent.id].payload or "null") == {"joined": [1, 2]}
    else:
        assert (ended[parent.id].error or {}).get("reason") == "fan-in timeout"
