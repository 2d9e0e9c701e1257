"""Asya's resiliency contract on the real local broker: maxDuration, onExhausted, qualified-name rules, the
deadline cutting a call short, FLY partial outputs, and bodies no sink key or parser could hold."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from support.mesh import MeshHarness

from asya_runtime.envelope import MAX_ID_BYTES, Status, new_envelope
from asya_runtime.naming import dlq_name
from asya_runtime.resiliency import Resiliency

TRACEPARENT = "00-11111111111111111111111111111111-2222222222222222-01"
#: A loaded 2-core machine may be late (never early) by this much.
LATE_TOLERANCE_S = 1.5


def _resiliency(block: dict) -> Resiliency:
    return Resiliency.model_validate(block)


# -- maxDuration


def test_max_duration_stops_retries_that_max_attempts_would_still_allow(mesh: MeshHarness) -> None:
    resiliency = _resiliency(
        {"policies": {"default": {"maxAttempts": 50, "backoff": "constant", "initialInterval": "300ms",
                                  "jitter": False, "maxDuration": "1s"}}}
    )
    mesh.standard("flaky", resiliency=resiliency)
    mesh.start_actor("flaky", handler="fail", resiliency=resiliency)
    envelope = new_envelope(route=["flaky"], payload={"key": "md"}, headers={"traceparent": TRACEPARENT})
    mesh.send("flaky", envelope)

    [record] = mesh.take("error-sink", 1)

    times = [c["t"] for c in mesh.calls()]
    # Attempts at ~0, 0.3, 0.6, 0.9 s; the next would start at ~1.2 s, past maxDuration: it is never scheduled.
    assert 2 <= len(times) <= 4, times
    assert times[-1] - times[0] < 1.0 + LATE_TOLERANCE_S
    status = record["status"]
    assert status["error"]["reason"] == "retries exhausted" and status["error"]["type"] == "ValueError"
    assert status["attempt"] == len(times)
    first = datetime.fromisoformat(status["first_attempt_at"]).timestamp()
    assert abs(first - times[0]) < 0.5, "status.first_attempt_at is the first attempt's time, kept on every retry"
    assert record["headers"] == {"traceparent": TRACEPARENT}
    mesh.assert_quiet("flaky", "error-sink", "success-sink", wait_s=1)


def test_a_redelivered_first_attempt_counts_max_duration_from_sqs_first_receive(mesh: MeshHarness) -> None:
    """The body of a first attempt carries no first_attempt_at: a redelivery (the pod died mid-call) counts from
    SQS's ApproximateFirstReceiveTimestamp, so a crash loop cannot restart the clock."""
    resiliency = _resiliency({"policies": {"default": {"maxAttempts": 5, "initialInterval": "100ms",
                                                       "jitter": False, "maxDuration": "1s"}}})
    mesh.standard("crashy", resiliency=resiliency)
    envelope = new_envelope(route=["crashy"], payload={"key": "rd"})
    mesh.send("crashy", envelope)
    url = mesh.queue_url("crashy")
    [first] = mesh.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, VisibilityTimeout=1)["Messages"]
    time.sleep(1.5)  # a sidecar took it, then died: it comes back once its visibility runs out
    mesh.start_actor("crashy", handler="fail", resiliency=resiliency)

    [record] = mesh.take("error-sink", 1)

    assert len(mesh.calls()) == 1, "past maxDuration since the first receive: no retry after the failed call"
    assert record["status"]["error"]["reason"] == "retries exhausted"
    assert record["status"]["attempt"] == 2, "the redelivery counted as an attempt"
    assert record["id"] == envelope.id and first["MessageId"]


# -- onExhausted


def test_on_exhausted_routes_to_the_recovery_actor_with_the_error_kept(mesh: MeshHarness) -> None:
    resiliency = _resiliency(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "100ms", "jitter": False,
                                  "onExhausted": ["recover"]}}}
    )
    mesh.standard("flaky", resiliency=resiliency)
    mesh.standard("recover")
    mesh.start_actor("flaky", handler="fail", resiliency=resiliency)
    mesh.start_actor("recover", handler="recover")
    envelope = new_envelope(route=["flaky", "never"], payload={"key": "oe"}, headers={"traceparent": TRACEPARENT})
    mesh.send("flaky", envelope)

    [done] = mesh.take("success-sink", 1)

    assert [c["key"] for c in mesh.calls()] == ["oe", "oe", "oe"], "two attempts, then the recovery actor"
    payload = done["payload"]
    assert payload["key"] == "oe" and payload["prev"] == ["flaky"]
    error = payload["recovered_from"]
    assert error["reason"] == "retries exhausted" and error["type"] == "ValueError" and error["actor"] == "flaky"
    assert "refusing oe" in error["message"] and "ValueError" in error["traceback"]
    assert done["id"] == envelope.id and done["headers"] == {"traceparent": TRACEPARENT}
    assert done["route"]["prev"] == ["flaky", "recover"], "the original rest of the route ([never]) is replaced"
    mesh.assert_quiet("error-sink", "flaky", "recover", wait_s=1)


def test_on_exhausted_does_not_catch_contract_violations(mesh: MeshHarness) -> None:
    """onExhausted is for a policy that ran out; a not-retryable error still ends in the error sink."""
    resiliency = _resiliency({"policies": {"default": {"maxAttempts": 2, "onExhausted": "recover"}}})
    mesh.standard("worker", "recover", resiliency=resiliency)
    mesh.start_actor("worker", handler="non_dict", resiliency=resiliency)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "cv"}))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["reason"] == "not retryable"
    mesh.assert_quiet("recover", wait_s=1)


# -- rules by short and qualified names


@pytest.mark.parametrize(
    "entry",
    ["JSONDecodeError", "json.decoder.JSONDecodeError", "json.JSONDecodeError", "builtins.ValueError"],
)
def test_a_rule_matches_the_short_the_qualified_and_the_re_exported_name(mesh: MeshHarness, entry: str) -> None:
    resiliency = _resiliency(
        {"policies": {"default": {"maxAttempts": 3, "initialInterval": "100ms", "jitter": False},
                      "never": {"maxAttempts": 1}},
         "rules": [{"errors": [entry], "policy": "never"}]}
    )
    mesh.standard("parser", resiliency=resiliency)
    mesh.start_actor("parser", handler="bad_json", resiliency=resiliency)
    mesh.send("parser", new_envelope(route=["parser"], payload={"key": entry}))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["type"] == "JSONDecodeError"
    assert record["status"]["attempt"] == 1 and len(mesh.calls()) == 1, f"rule {entry!r} chose the 'never' policy"


def test_a_qualified_rule_of_another_package_does_not_match(mesh: MeshHarness) -> None:
    resiliency = _resiliency(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "100ms", "jitter": False},
                      "never": {"maxAttempts": 1}},
         "rules": [{"errors": ["simplejson.JSONDecodeError"], "policy": "never"}]}
    )
    mesh.standard("parser", resiliency=resiliency)
    mesh.start_actor("parser", handler="bad_json", resiliency=resiliency)
    mesh.send("parser", new_envelope(route=["parser"], payload={"key": "other"}))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["attempt"] == 2 and len(mesh.calls()) == 2, "the default policy applied"


# -- the effective timeout: min(actorTimeout, deadline - now)


def test_the_envelope_deadline_cuts_a_call_short_of_the_actor_timeout(mesh: MeshHarness) -> None:
    resiliency = _resiliency({"actorTimeout": "30s", "policies": {"default": {"maxAttempts": 3}}})
    mesh.standard("worker", resiliency=resiliency)
    mesh.start_actor("worker", handler="slow", resiliency=resiliency)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "warm", "sleep_s": 0}))
    mesh.take("success-sink", 1)  # the handler server is up: the deadline below is all the call's
    envelope = new_envelope(route=["worker"], payload={"key": "dl", "sleep_s": 20})
    budget_s = 2.0
    envelope.status = Status(deadline_at=datetime.now(UTC) + timedelta(seconds=budget_s))
    sent = time.time()
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)
    arrived = time.time()

    [call] = [c for c in mesh.calls() if c["key"] == "dl"]
    error = record["status"]["error"]
    assert error["type"] == "ActorTimeout" and error["reason"] == "deadline exceeded"
    deadline = datetime.fromisoformat(record["status"]["deadline_at"]).timestamp()
    assert call["t"] < deadline, "the handler was called before the deadline"
    assert deadline <= arrived < deadline + LATE_TOLERANCE_S + 1.0, (arrived - sent, "ended at the deadline")
    assert arrived - sent < 10, "not at actorTimeout (30 s) nor at the handler's 20 s sleep"
    assert "did not answer within" in error["message"]
    timeout_s = float(error["message"].split("within ")[1].rstrip("s"))
    assert timeout_s <= budget_s, "the call was given what was left of the deadline, not actorTimeout"


# -- FLY partial outputs


@pytest.mark.parametrize("node", [False, True], ids=["python", "node"])
def test_fly_events_are_dropped_and_the_envelope_goes_on(mesh: MeshHarness, node: bool) -> None:
    mesh.standard("streamer")
    mesh.start_actor("streamer", handler="flies", node=node)
    envelope = new_envelope(route=["streamer"], payload={"key": "fly"})
    mesh.send("streamer", envelope)

    [done] = mesh.take("success-sink", 1)

    assert done["payload"] == {"key": "fly", "flew": True} and done["id"] == envelope.id
    mesh.assert_quiet("error-sink", "streamer", wait_s=1)


# -- bodies no parser or sink key could hold


DEEP = "[" * 100_000 + "]" * 100_000


def test_a_body_nested_past_the_parser_is_a_malformed_envelope_with_a_record(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    deep = '{"id": "d1", "route": {"curr": "worker"}, "payload": ' + DEEP + "}"
    mesh.send("worker", deep)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "after"}))

    [record] = mesh.take("error-sink", 1)
    mesh.take("success-sink", 1)

    error = record["status"]["error"]
    assert error["reason"] == "malformed envelope" and "nests too deeply" in error["message"]
    assert record["payload"]["raw_body"] == deep
    assert [c["key"] for c in mesh.calls()] == ["after"], "the sidecar kept going"
    dlq = mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor="worker"))["QueueUrl"]
    assert "Messages" not in mesh.sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=0), "nothing was dead-lettered"


def test_an_over_long_id_is_a_malformed_envelope_recorded_under_a_derived_id(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    long_id = "x" * (MAX_ID_BYTES + 1)
    body = new_envelope(route=["worker"], payload={"key": "long"}).model_dump(mode="json")
    body["id"] = long_id
    mesh.send("worker", json.dumps(body))

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["reason"] == "malformed envelope"
    assert f"over {MAX_ID_BYTES}" in record["status"]["error"]["message"]
    assert uuid.UUID(record["id"]), "the record's id derives from the SQS MessageId"
    assert json.loads(record["payload"]["raw_body"])["id"] == long_id
    assert mesh.calls() == []


@pytest.mark.parametrize("case", ["deep", "long id"])
def test_sinks_record_deep_bodies_and_over_long_ids_as_malformed(mesh: MeshHarness, case: str) -> None:
    mesh.standard(sinks=True)
    body = DEEP if case == "deep" else json.dumps({"id": "y" * (MAX_ID_BYTES + 1), "route": {"curr": "x"}})
    mesh.send("success-sink", body)

    records = mesh.wait_records("failed", 1)

    [(key, record)] = records.items()
    assert uuid.UUID(key) and record["raw_body"] == body and record["reason"] == "malformed envelope"
    assert ("nests too deeply" if case == "deep" else f"over {MAX_ID_BYTES}") in record["detail"]
    assert mesh.keys("succeeded") == []
