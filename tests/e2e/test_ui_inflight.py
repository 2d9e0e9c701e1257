"""``asya ui`` lists the envelopes in flight from the mesh's status store (moto's server over HTTP), with the actor
and attempt each last reported, and hides the list for a mesh without one."""

from __future__ import annotations

import asyncio
import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support import status_table as tables
from support.status_table import StatusTable

from asya_pulumi.cli.dev.setup import load_mesh
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import result_bucket_name
from asya_pulumi.ui.backend import UiBackend
from asya_pulumi.ui.inflight import InFlightReader
from asya_pulumi.ui.server import UiServer
from asya_runtime.status import RunningUpdate
from e2e.conftest import EXAMPLES

dynamodb_server, status_table = tables.dynamodb_server, tables.status_table  # the status store's fixtures


def _backend(sqs: Any, s3: Any, namespace: str) -> UiBackend:
    mesh, _ = load_mesh(str(EXAMPLES / "image-scoring"), namespace=namespace)
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    bucket = result_bucket_name(namespace=namespace)
    create_bucket(s3=s3, bucket=bucket, region=mesh.region)
    return UiBackend(queues=MeshQueues(sqs=sqs, namespace=namespace), s3=s3, bucket=bucket, routes=mesh.routes,
                     declared_actors=[a.name for a in mesh.actors])


def _get(server: UiServer, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    connection.request("GET", path, headers={"Host": f"127.0.0.1:{server.port}"})
    response = connection.getresponse()
    answer = response.status, json.loads(response.read())
    connection.close()
    return answer


@pytest.fixture
def ui(broker: LocalBroker, sqs: Any, s3: Any, namespace: str, status_table: StatusTable) -> Iterator[UiServer]:
    backend = _backend(sqs, s3, namespace)
    backend.status = InFlightReader(dynamodb=status_table.client, table=status_table.name)
    with UiServer(backend=backend) as server:
        yield server


def test_envelopes_in_flight_are_listed_with_actor_and_attempt_and_finished_ones_are_not(
    ui: UiServer, status_table: StatusTable
) -> None:
    pending, running, done = (str(uuid.uuid4()) for _ in range(3))

    async def write() -> None:
        async with status_table.store() as store:
            for envelope_id in (pending, running, done):
                assert await store.create_pending(id=envelope_id, route="score", actor="preprocess")
            await store.report_running(updates=[RunningUpdate(id=running, actor="score-image", attempt=2, seq=1)])
            await store.finish(id=done, status="succeeded", payload_json="{}")

    asyncio.run(write())
    status, answer = _get(ui, "/api/inflight")
    assert status == 200 and answer["available"] is True
    listed = {e["id"]: e for e in answer["envelopes"]}
    assert set(listed) == {pending, running}
    assert listed[running]["status"] == "running"
    assert (listed[running]["actor"], listed[running]["attempt"]) == ("score-image", 2)
    assert listed[pending]["status"] == "pending" and listed[pending]["actor"] == "preprocess"
    assert answer["totals"] == {"running": 1, "pending": 1, "paused": 0} and answer["total"] == 2


def test_a_mesh_without_a_status_store_says_so(broker: LocalBroker, sqs: Any, s3: Any, namespace: str) -> None:
    with UiServer(backend=_backend(sqs, s3, namespace)) as server:
        status, answer = _get(server, "/api/inflight")
    assert status == 200
    assert answer["available"] is False and answer["configured"] is False
    assert "no status store" in answer["reason"]


def test_a_store_that_cannot_be_read_answers_the_reason(broker: LocalBroker, sqs: Any, s3: Any, namespace: str,
                                                        status_table: StatusTable) -> None:
    backend = _backend(sqs, s3, namespace)
    backend.status = InFlightReader(dynamodb=status_table.client, table="asya-no-such-mesh_status")
    with UiServer(backend=backend) as server:
        status, answer = _get(server, "/api/inflight")
    assert status == 200 and answer["available"] is False and answer["configured"] is True
    assert "no-such-mesh" in answer["reason"] or "ResourceNotFound" in answer["reason"]
