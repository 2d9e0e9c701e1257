"""``asya ui`` lists the envelopes in flight from the mesh's status store (moto's server over HTTP), with the actor
and attempt each last reported, and hides the list for a mesh without one."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
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
from e2e.conftest import ASYA, EXAMPLES, REPO
from e2e.test_gateway_dev import PIPELINE
from e2e.test_ui_browser import Output

dynamodb_server, status_table = tables.dynamodb_server, tables.status_table  # the status store's fixtures
CHROMIUM = os.environ.get("ASYA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"


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


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM}: apt-get install -y chromium")
def test_asya_dev_gateway_ui_shows_an_envelope_running_at_its_actor_in_the_browser(tmp_path: Path) -> None:
    """``asya dev --gateway --ui``: an envelope submitted through the gateway appears in the page's in-flight list
    at the actor running it (slow, attempt 1), and leaves the list once it is final."""
    from playwright.sync_api import expect, sync_playwright

    from asya_runtime.client import GatewayClient

    process = subprocess.Popen(
        [ASYA, "dev", str(PIPELINE), "--gateway", "--ui", "--namespace", f"gwui-{uuid.uuid4().hex[:8]}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, start_new_session=True,
        env={**os.environ, "GATEWAY_E2E_MARKS": str(tmp_path)},
    )
    output = Output(process)
    try:
        gateway_url = output.wait_for(r"^gateway: (http://127\.0\.0\.1:\d+)$", timeout_s=240).group(1)
        page_url = output.wait_for(r"asya ui: (http://127\.0\.0\.1:\d+/)", timeout_s=30).group(1)
        with GatewayClient(gateway_url) as gateway, sync_playwright() as playwright:
            envelope_id = gateway.submit(route="flow", payload={"tag": "ui", "sleep_s": 6})
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.set_default_timeout(20_000)
                page.goto(page_url)
                row = page.locator(f'#inflight tr.inflight[data-id="{envelope_id}"]')
                expect(page.locator("#inflight-panel")).to_be_visible()
                expect(row.locator("td.actor")).to_have_text("slow")
                expect(row).to_have_class(re.compile(r"\brunning\b"))
                expect(row.locator("td.attempt")).to_have_text("1")
                assert gateway.wait(envelope_id, timeout=60).succeeded
                expect(row).to_have_count(0)
            finally:
                browser.close()
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        print("".join(output.seen))
