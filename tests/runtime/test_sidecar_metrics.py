"""The sidecar's /metrics and /healthz endpoints, and its JSON logs."""

from __future__ import annotations

import json
import urllib.request

from prometheus_client.parser import text_string_to_metric_families
from support.mesh import MeshHarness, wait_for

from asya_runtime.envelope import new_envelope


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
