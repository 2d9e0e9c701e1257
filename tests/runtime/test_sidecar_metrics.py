"""The sidecar's /metrics and /healthz endpoints, and its JSON logs."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support.mesh import MeshHarness, wait_for

from asya_pulumi.local.broker import free_port
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.sidecar.metrics import Metrics, MetricsServer


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_what_happened_and_logs_are_json_lines_with_envelope_ids(mesh: MeshHarness) -> None:
    mesh.standard("worker", "next")
    actor = mesh.start_actor("worker", handler="non_dict")
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "bad"}))
    [failed] = mesh.take("error-sink", 1)
    actor.stop()
    mesh.calls_path.unlink()
    actor = mesh.start_actor("worker", handler="identity", log_level="debug")
    good = [new_envelope(route=["worker", "next"], payload={"key": f"g{i}", "secret": "s3cr3t"}) for i in range(3)]
    mesh.send_many("worker", good)
    mesh.take("next", 3)

    def settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = _samples(actor.read_metrics())
        # A success is counted once its outputs were accepted; the message leaves in-flight after its delete.
        done = samples.get(("asya_messages_succeeded_total", ())) == 3 and samples[("asya_messages_in_flight", ())] == 0
        return samples if done else None

    samples = wait_for(settled, timeout_s=30, what="3 successes and nothing in flight in /metrics")
    assert samples[("asya_messages_received_total", ())] == 3
    assert samples[("asya_envelopes_sent_total", (("to", "next"),))] == 3
    assert samples[("asya_handler_duration_seconds_count", (("outcome", "ok"),))] == 3
    assert samples[("asya_messages_in_flight", ())] == 0
    requests = {labels[0][1]: v for (name, labels), v in samples.items() if name == "asya_sqs_requests_total"}
    assert requests["receive_message"] >= 1 and requests["send_message_batch"] >= 1
    assert requests["delete_message_batch"] >= 1 and requests["get_queue_url"] == 2  # own queue, "next"
    with urllib.request.urlopen(f"http://127.0.0.1:{actor.config.metrics_port}/healthz", timeout=5) as response:
        assert response.status == 200 and json.load(response)["ok"] is True

    lines = [json.loads(line) for line in actor.logs().splitlines() if line.startswith("{")]
    sent = [line for line in lines if line["event"] == "sent"]
    assert {line["id"] for line in sent} == {e.id for e in good}
    assert all(line["actor"] == "worker" and "payload" not in line for line in sent)
    assert "s3cr3t" not in actor.logs()
    assert failed["status"]["error"]["reason"] == "not retryable"


def test_failures_are_counted_by_reason(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    actor = mesh.start_actor("worker", handler="non_dict")
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "bad"}))
    mesh.send("worker", "not json")
    mesh.take("error-sink", 2)

    def settled() -> dict[tuple[str, tuple[tuple[str, str], ...]], float] | None:
        samples = _samples(actor.read_metrics())
        return samples if samples.get(("asya_messages_dead_lettered_total", ())) == 2 else None

    samples = wait_for(settled, timeout_s=30, what="2 error-ended envelopes in /metrics")
    assert samples[("asya_messages_failed_total", (("reason", "not retryable"),))] == 1
    assert samples[("asya_messages_failed_total", (("reason", "malformed envelope"),))] == 1


def _healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)
    except urllib.error.URLError:  # not serving yet
        return 0, {}


def test_healthz_reports_receives_the_broker_refuses_and_clears_once_they_succeed(mesh: MeshHarness) -> None:
    """A refusal that is not an outage (here: the queue deleted under the sidecar) shows on /healthz at once."""
    mesh.standard("worker")
    actor = mesh.start_actor("worker", handler="identity")
    port = actor.config.metrics_port
    body = wait_for(lambda: _healthz(port)[1], timeout_s=30, what="/healthz to answer")
    assert body["ok"] is True and "receive_refused_s" not in body

    mesh.sqs.delete_queue(QueueUrl=mesh.queue_url("worker"))

    def refused() -> dict[str, Any] | None:
        status, body = _healthz(port)
        return body if status == 200 and body.get("receive_refused_s", 0) > 0 else None

    body = wait_for(refused, timeout_s=30, what="/healthz to report refused receives")
    assert body["ok"] is True  # within ASYA_WAIT_TIME_SECONDS + 60 s: still alive
    assert body["error"].startswith("ClientError") and "NonExistentQueue" in body["error"]

    mesh.create_queue("worker")  # the same name, so the same URL: receives succeed again

    def cleared() -> dict[str, Any] | None:
        status, body = _healthz(port)
        return body if status == 200 and "receive_refused_s" not in body else None

    wait_for(cleared, timeout_s=30, what="/healthz to clear once receives succeed")


def test_healthz_turns_unhealthy_once_receives_have_been_refused_past_the_limit() -> None:
    metrics = Metrics()
    server = MetricsServer(metrics=metrics, host="127.0.0.1", port=free_port(), stale_after_s=62)

    async def scenario() -> list[tuple[int, dict[str, Any]]]:
        await server.start()
        try:
            seen = []
            for refused_for_s in (10.0, 100.0):
                metrics.last_receive = time.monotonic()  # the loop turns: only the refusals can make it unhealthy
                metrics.receive_refused_since = time.monotonic() - refused_for_s
                metrics.receive_refused_error = "ClientError: SignatureDoesNotMatch"
                seen.append(await asyncio.to_thread(_healthz, server.port))
            return seen
        finally:
            await server.stop()

    (early_status, early), (late_status, late) = asyncio.run(scenario())
    assert early_status == 200 and early["ok"] is True and early["receive_refused_s"] >= 10
    assert late_status == 503 and late["ok"] is False and late["receive_refused_s"] >= 100
    assert late["error"] == "ClientError: SignatureDoesNotMatch"


def _other_address() -> str | None:
    """An address of this machine that is not loopback (the one a default route leaves by), if there is one."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: nothing is sent, the kernel only picks a source address
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if address.startswith("127.") else address


def test_by_default_metrics_listen_on_loopback_only() -> None:
    other = _other_address()
    if other is None:
        pytest.skip("this machine has no address other than loopback to try")
    config = SidecarConfig.model_validate({"ASYA_ACTOR": "a", "ASYA_NAMESPACE": "m"})
    server = MetricsServer(metrics=Metrics(), host=config.metrics_host, port=free_port(), stale_after_s=62)

    async def scenario() -> tuple[bool, bool]:
        await server.start()
        try:
            return await asyncio.to_thread(_answers, "127.0.0.1", server.port), await asyncio.to_thread(
                _answers, other, server.port)
        finally:
            await server.stop()

    on_loopback, on_other = asyncio.run(scenario())
    assert on_loopback and not on_other


def _answers(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False
