"""Sidecars and sinks write the status store (docs/gateway.md, "Who writes what"): real sidecar and handler server
processes on the embedded broker, DynamoDB from moto's server over HTTP."""

from __future__ import annotations

import asyncio
import datetime
import socket
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support.mesh import MeshHarness, wait_for
from support.status_table import StatusTable, create_status_table
from support.tcp_proxy import TcpProxy

from asya_runtime.envelope import Envelope, child_id, new_envelope
from asya_runtime.sidecar.routing import CANCELED, DEADLINE_EXCEEDED
from asya_runtime.status import TRACKED_HEADER, StatusRecord

TRACKED = {TRACKED_HEADER: "1"}


def status_env(table: StatusTable) -> dict[str, Any]:
    return {"status_table": table.name, "dynamodb_endpoint": table.endpoint}


def submit(mesh: MeshHarness, table: StatusTable, envelope: Envelope, *, route: str = "r") -> None:
    """What the gateway does: the pending item, then the send to the first actor."""

    async def pending() -> None:
        async with table.store() as store:
            assert await store.create_pending(id=envelope.id, route=route, actor=envelope.route.curr)

    asyncio.run(pending())
    mesh.send(envelope.route.curr, envelope)


def record(table: StatusTable, id: str) -> StatusRecord | None:
    item = table.item(id)
    return None if item is None else StatusRecord.from_item(item)


def wait_status(table: StatusTable, id: str, status: str, *, timeout_s: float = 60) -> StatusRecord:
    def reached() -> StatusRecord | None:
        found = record(table, id)
        return found if found is not None and found.status == status else None

    result: StatusRecord = wait_for(reached, timeout_s=timeout_s, what=f"{id} {status} in the status store")
    return result


def dynamodb_requests(metrics_text: str) -> dict[str, float]:
    return {
        s.labels["api"]: s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "asya_dynamodb_requests_total"
    }


def with_sinks(mesh: MeshHarness, table: StatusTable, *actors: str) -> None:
    mesh.standard(*actors)
    mesh.create_bucket()
    mesh.start_sinks(**status_env(table))


def test_a_tracked_envelope_runs_flies_and_succeeds_in_the_store(mesh: MeshHarness, status_table: StatusTable) -> None:
    with_sinks(mesh, status_table, "a", "b")
    first = mesh.start_actor("a", handler="flies", **status_env(status_table))
    mesh.start_actor("b", handler="identity", **status_env(status_table))
    envelope = new_envelope(route=["a", "b"], payload={"key": "k"}, headers=TRACKED)
    submit(mesh, status_table, envelope)

    done = wait_status(status_table, envelope.id, "succeeded")

    assert done.payload is not None and '"flew":true' in done.payload and done.payload_ref is None
    assert done.actor == "b" and done.seq == 1  # b's running (hop 1) came after a's (hop 0)
    assert done.fly_seq == 3 and [e["text"] for e in done.fly_events()] == ["token 0", "token 1", "token 2"]
    requests = dynamodb_requests(first.read_metrics())
    assert requests["batch_get_item"] == 1  # the cancel check of a's one batch
    assert requests["update_item"] >= 2  # its running, and at least one FLY write


def test_a_canceled_envelope_is_ended_without_calling_the_handler(
    mesh: MeshHarness, status_table: StatusTable
) -> None:
    with_sinks(mesh, status_table, "a")
    envelope = new_envelope(route=["a"], payload={"key": "canceled"}, headers=TRACKED)

    async def pending_then_canceled() -> None:
        async with status_table.store() as store:
            await store.create_pending(id=envelope.id, route="r")
            assert await store.cancel(id=envelope.id) == "canceled"

    asyncio.run(pending_then_canceled())
    mesh.start_actor("a", handler="identity", **status_env(status_table))
    mesh.send("a", envelope)

    [stored] = mesh.wait_records("failed", 1).values()

    assert stored["status"]["error"]["reason"] == CANCELED
    assert stored["hops"][-1]["outcome"] == "canceled"
    assert mesh.calls() == []  # the handler never saw it
    assert mesh.depth("a") == 0  # deleted from the actor's queue
    assert wait_status(status_table, envelope.id, "canceled").error is None  # the sink's write did not change it


def test_a_payload_over_32_kib_is_kept_by_reference(mesh: MeshHarness, status_table: StatusTable) -> None:
    with_sinks(mesh, status_table, "big")
    mesh.start_actor("big", handler="inflate", **status_env(status_table))
    envelope = new_envelope(route=["big"], payload={"key": "k", "inflate": 40_000}, headers=TRACKED)
    submit(mesh, status_table, envelope)

    done = wait_status(status_table, envelope.id, "succeeded")

    assert done.payload is None
    assert done.payload_ref == f"s3://{mesh.bucket}/succeeded/{envelope.id}.json"
    assert envelope.id in mesh.records("succeeded")


def test_a_passed_deadline_ends_it_failed_with_the_reason(mesh: MeshHarness, status_table: StatusTable) -> None:
    with_sinks(mesh, status_table, "a")
    mesh.start_actor("a", handler="identity", **status_env(status_table))
    envelope = new_envelope(route=["a"], payload={"key": "late"}, headers=TRACKED)
    past = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=5)
    envelope = envelope.model_copy(update={"status": envelope.status.model_copy(update={"deadline_at": past})})
    submit(mesh, status_table, envelope)

    failed = wait_status(status_table, envelope.id, "failed")

    assert failed.error is not None
    assert (failed.error["type"], failed.error["reason"]) == ("DeadlineExceeded", DEADLINE_EXCEEDED)
    assert "deadline" in failed.error["message"]
    assert mesh.calls() == []


def test_a_fan_out_parent_records_its_children(mesh: MeshHarness, status_table: StatusTable) -> None:
    with_sinks(mesh, status_table, "split")
    mesh.start_actor("split", handler="fan_out", **status_env(status_table))
    parent = new_envelope(route=["split"], payload={"key": "p", "n": 3}, headers=TRACKED)
    submit(mesh, status_table, parent)

    children = [child_id(parent_id=parent.id, actor="split", index=i) for i in range(3)]
    ended = [wait_status(status_table, c, "succeeded") for c in children]

    assert {c.parent_id for c in ended} == {parent.id} and all(c.created_at.endswith("Z") for c in ended)
    found = record(status_table, parent.id)
    assert found is not None and found.fanout == {"actor": "split", "count": 3} and found.status == "running"


def test_a_failed_status_write_leaves_the_message_queued(mesh: MeshHarness, status_table: StatusTable) -> None:
    """The sinks' table does not exist yet: the record is stored, the status cannot be, so the message stays
    queued and comes back; once the table exists the redelivery writes it and only then is it deleted."""
    mesh.standard()
    mesh.create_bucket()
    missing = StatusTable(endpoint=status_table.endpoint, namespace=status_table.namespace + "x",
                          client=status_table.client)
    mesh.start_sinks(**status_env(missing))
    envelope = new_envelope(route=["a"], payload={"key": "k"}, headers=TRACKED)
    ended = envelope.model_copy(update={"status": envelope.status.stamped(phase="succeeded", actor="a")})
    mesh.send("success-sink", ended)

    mesh.wait_records("succeeded", 1)
    wait_for(lambda: "status write failed" in "".join(p.logs() for p in mesh.actors), timeout_s=30,
             what="the sink's status write failure")
    assert mesh.depth("success-sink") == 1  # not deleted

    create_status_table(endpoint=status_table.endpoint, namespace=missing.namespace)
    wait_status(missing, envelope.id, "succeeded", timeout_s=60)
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message deleted after the write")


def test_with_status_off_not_one_dynamodb_request_is_made(mesh: MeshHarness, status_table: StatusTable) -> None:
    """No ASYA_STATUS_TABLE: tracked envelopes go through as always, and the DynamoDB endpoint (behind a proxy that
    counts connections) is never reached."""
    host, port = status_table.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        mesh.standard("a")
        mesh.create_bucket()
        mesh.start_sinks(dynamodb_endpoint=proxy.endpoint)
        actor = mesh.start_actor("a", handler="flies", dynamodb_endpoint=proxy.endpoint)
        envelopes = [new_envelope(route=["a"], payload={"key": f"k{i}"}, headers=TRACKED) for i in range(5)]
        mesh.send_many("a", envelopes)
        mesh.wait_records("succeeded", 5)
        assert proxy.connections == 0
        # The positive control: the proxy forwards (a dead accept thread would have counted 0 as well).
        socket.create_connection(("127.0.0.1", proxy.port), timeout=5).close()
        wait_for(lambda: proxy.connections == 1, timeout_s=5, what="the proxy forwarding a connection")
    assert dynamodb_requests(actor.read_metrics()) == {}



def test_status_retention_days_sets_each_writes_expiry(mesh: MeshHarness, status_table: StatusTable) -> None:
    """``ASYA_STATUS_RETENTION_DAYS`` (the mesh's ``gateway.statusRetentionDays``): the sidecar's ``running`` and the
    sink's end each set ``expires_at`` that many days after they were written, not the default 7."""
    days = 3
    mesh.standard("a")
    mesh.create_bucket()
    mesh.start_sinks(status_retention_days=days, **status_env(status_table))
    mesh.start_actor("a", handler="slow", status_retention_days=days, **status_env(status_table))
    envelope = new_envelope(route=["a"], payload={"sleep_s": 2}, headers=TRACKED)
    submit(mesh, status_table, envelope)

    def expiry_after_write(found: StatusRecord) -> float:
        assert found.expires_at is not None
        return found.expires_at - datetime.datetime.fromisoformat(found.updated_at).timestamp()

    running = wait_status(status_table, envelope.id, "running")
    done = wait_status(status_table, envelope.id, "succeeded")
    for found in (running, done):
        assert abs(expiry_after_write(found) - days * 86400) <= 5, found


def test_a_node_handlers_fly_events_reach_the_store(mesh: MeshHarness, status_table: StatusTable) -> None:
    """handler_server.js sends a tracked call's FLY values as ``{"fly": value}`` lines too (docs/protocol.md)."""
    with_sinks(mesh, status_table, "a")
    mesh.start_actor("a", handler="flies", node=True, **status_env(status_table))
    envelope = new_envelope(route=["a"], payload={"key": "k"}, headers=TRACKED)
    submit(mesh, status_table, envelope)

    done = wait_status(status_table, envelope.id, "succeeded")

    assert done.fly_seq == 3 and [e["text"] for e in done.fly_events()] == ["token 0", "token 1", "token 2"]
