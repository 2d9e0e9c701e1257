"""Envelopes the sidecar must error-end, each with its reason, while it keeps running."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from support.mesh import MeshHarness

from asya_runtime.envelope import Status, child_id, new_envelope
from asya_runtime.resiliency import Resiliency

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
#: Three attempts, 50 ms apart: a retried error shows as attempt 3 within a second.
FAST_RETRIES = Resiliency.model_validate(
    {"policies": {"default": {"maxAttempts": 3, "backoff": "constant", "initialInterval": "50ms", "jitter": False}}}
)


def test_malformed_bodies_are_error_ended_with_the_raw_body_and_the_sidecar_keeps_running(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    elsewhere = new_envelope(route=["other"], payload={"key": "x"}).to_json()
    bad = {
        "not json {": "not JSON",
        "[1, 2]": "not an object",
        json.dumps({"id": "e1", "payload": {}}): "no 'route'",
        elsewhere: "not this actor",
    }
    for body in bad:
        mesh.send("worker", body)
    good = new_envelope(route=["worker"], payload={"key": "good"})
    mesh.send("worker", good)

    records = mesh.take("error-sink", len(bad))
    [success] = mesh.take("success-sink", 1)

    by_body = {r["payload"]["raw_body"]: r for r in records}
    assert set(by_body) == set(bad)
    for body, detail in bad.items():
        error = by_body[body]["status"]["error"]
        assert error["reason"] == "malformed envelope" and error["actor"] == "worker"
        assert detail in error["message"], (detail, error["message"])
    assert success["id"] == good.id
    assert [c["key"] for c in mesh.calls()] == ["good"]


def test_a_non_dict_result_is_error_ended_without_retry(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="non_dict")
    envelope = new_envelope(route=["worker"], payload={"key": "nd"}, headers={"traceparent": TRACEPARENT})
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "HandlerResultError" and error["reason"] == "not retryable"
    assert record["headers"] == {"traceparent": TRACEPARENT} and record["payload"] == {"key": "nd"}
    assert len(mesh.calls()) == 1
    mesh.assert_quiet("worker", "success-sink", "error-sink", wait_s=1)


def test_an_envelope_past_its_deadline_is_error_ended_without_calling_the_handler(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    envelope = new_envelope(route=["worker"], payload={"key": "late"}, headers={"traceparent": TRACEPARENT})
    envelope.status = Status(deadline_at=datetime.now(UTC) - timedelta(seconds=1))
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["reason"] == "deadline exceeded"
    assert record["headers"] == {"traceparent": TRACEPARENT}
    assert mesh.calls() == []


def test_an_envelope_delivered_more_often_than_max_attempts_is_error_ended_unhandled(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    envelope = new_envelope(route=["worker"], payload={"key": "again"})
    envelope.status = Status(attempt=4)  # as if attempts 1-3 had run; the default policy allows 3
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)

    assert record["status"]["error"]["reason"] == "redelivered too often"
    assert record["status"]["attempt"] == 4
    assert mesh.calls() == []


def test_a_result_over_the_message_size_limit_is_error_ended_with_sizes_in_the_reason(mesh: MeshHarness) -> None:
    mesh.standard("split")
    mesh.start_actor("split", handler="fan_out", max_message_bytes=8192)
    big = new_envelope(route=["split"], payload={"key": "big", "n": 1, "big": 0, "big_bytes": 20000})
    mesh.send("split", big)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["reason"] == "result too large" and error["type"] == "ResultTooLarge"
    assert "8192" in error["message"] and "bytes" in error["message"]
    assert record["id"] == big.id and record["payload"] == big.payload  # the input is kept, not the huge output


def test_one_oversized_fan_out_child_is_error_ended_and_its_siblings_still_go_on(mesh: MeshHarness) -> None:
    mesh.standard("split", "next")
    mesh.start_actor("split", handler="fan_out", max_message_bytes=8192)
    parent = new_envelope(
        route=["split", "next"],
        payload={"key": "fan", "n": 4, "big": 2, "big_bytes": 20000},
        headers={"traceparent": TRACEPARENT},
    )
    mesh.send("split", parent)

    forwarded = {c["id"]: c for c in mesh.take("next", 3)}
    [failed] = mesh.take("error-sink", 1)

    ids = [child_id(parent_id=parent.id, actor="split", index=i) for i in range(4)]
    assert set(forwarded) == {ids[0], ids[1], ids[3]}
    assert all(c["headers"] == {"traceparent": TRACEPARENT} for c in forwarded.values())
    assert failed["id"] == ids[2] and failed["parent_id"] == parent.id
    assert failed["status"]["error"]["reason"] == "result too large"
    mesh.assert_quiet("split", "next", "error-sink", wait_s=1)
    assert mesh.depth("split") == 0  # the parent was deleted once every output was accepted


def test_a_fan_out_child_with_a_character_sqs_refuses_raw_goes_with_its_siblings(mesh: MeshHarness) -> None:
    # Child 1 carries U+FFFF, which SQS refuses in a body: it used to fail its batch entry (the parent then came
    # back until its deliveries ran out). Sent as a JSON escape, it is an ordinary child.
    mesh.standard("split", "next")
    actor = mesh.start_actor("split", handler="fan_out")
    parent = new_envelope(route=["split", "next"], payload={"key": "u", "n": 3, "unsendable": 1})
    mesh.send("split", parent)

    children = {c["id"]: c for c in mesh.take("next", 3)}

    assert set(children) == {child_id(parent_id=parent.id, actor="split", index=i) for i in range(3)}
    assert children[child_id(parent_id=parent.id, actor="split", index=1)]["payload"]["text"] == "\uffff"
    assert "InvalidMessageContents" not in actor.logs()
    mesh.assert_quiet("error-sink", wait_s=1)
    assert mesh.depth("split") == 0


def test_an_output_the_handler_routes_to_the_error_sink_is_an_error_record_with_a_reason(mesh: MeshHarness) -> None:
    mesh.standard("router")
    mesh.start_actor("router", handler="route_to")
    envelope = new_envelope(route=["router", "later"], payload={"key": "bad", "next": ["error-sink"]})
    mesh.send("router", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "RoutedToErrorSink" and error["reason"] == "routed to error sink"
    assert error["actor"] == "router" and record["id"] == envelope.id
    assert record["payload"]["key"] == "bad"
    mesh.assert_quiet("success-sink", "error-sink", wait_s=1)


def test_a_huge_error_is_capped_retried_and_error_ended_within_the_size_limit(mesh: MeshHarness) -> None:
    limit = 8192
    resiliency = Resiliency.model_validate(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "100ms", "jitter": False}}}
    )
    mesh.standard("worker", resiliency=resiliency)
    mesh.start_actor("worker", handler="fail_loudly", resiliency=resiliency, max_message_bytes=limit)
    envelope = new_envelope(route=["worker"], payload={"key": "loud", "message_bytes": 100_000})
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)

    # The retry was sent (the handler ran twice) instead of being turned into "result too large".
    assert [c["key"] for c in mesh.calls()] == ["loud", "loud"]
    error = record["status"]["error"]
    assert error["type"] == "ValueError" and error["reason"] == "retries exhausted"
    assert error["message"].startswith("mmmm") and "truncated" in error["message"]
    assert record["payload"] == envelope.payload and record["status"]["attempt"] == 2
    assert len(json.dumps(record, separators=(",", ":")).encode()) <= limit


def test_a_huge_error_with_a_huge_payload_keeps_the_error_and_drops_the_payload(mesh: MeshHarness) -> None:
    limit = 8192
    resiliency = Resiliency.model_validate({"policies": {"default": {"maxAttempts": 1}}})
    mesh.standard("worker", resiliency=resiliency)
    mesh.start_actor("worker", handler="fail_loudly", resiliency=resiliency, max_message_bytes=limit)
    envelope = new_envelope(route=["worker"], payload={"key": "pad", "message_bytes": 2000, "pad": "p" * 20_000})
    mesh.send("worker", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "ValueError" and error["reason"] == "retries exhausted"
    assert error["message"] == "m" * 2000  # the error is kept whole; the payload gave way
    assert record["payload"]["truncated"] is True and record["payload"]["bytes"] > 20_000
    assert len(json.dumps(record, separators=(",", ":")).encode()) <= limit
    mesh.assert_quiet("worker", "error-sink", wait_s=1)


def test_an_answer_over_the_read_limit_is_error_ended_as_too_large_without_a_retry(mesh: MeshHarness) -> None:
    mesh.standard("split")
    mesh.start_actor("split", handler="fan_out", max_message_bytes=8192)  # read limit: 4 x 8 KiB + 1 MiB
    envelope = new_envelope(route=["split"], payload={"key": "huge", "n": 1, "big": 0, "big_bytes": 3_000_000})
    mesh.send("split", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "ResultTooLarge" and error["reason"] == "result too large"
    assert record["id"] == envelope.id and record["payload"] == envelope.payload
    assert len(mesh.calls()) == 1  # not retried
    mesh.assert_quiet("split", "error-sink", wait_s=1)


def test_a_route_loop_is_error_ended_by_the_hop_budget_naming_the_actors_it_went_round(mesh: MeshHarness) -> None:
    # ping routes every envelope to pong and pong back to ping (.route.next set by the handler): a loop
    mesh.standard("ping", "pong")
    mesh.start_actor("ping", handler="bounce", hop_budget=10)
    mesh.start_actor("pong", handler="bounce", hop_budget=10)
    envelope = new_envelope(route=["ping"], payload={"key": "loop", "peers": ["ping", "pong"]})
    mesh.send("ping", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["reason"] == "hop budget exhausted" and error["type"] == "HopBudgetExhausted"
    assert "10 hops" in error["message"] and "ping ×5" in error["message"] and "pong ×5" in error["message"]
    assert len(mesh.calls()) == 10  # the 11th delivery is refused before the handler is called
    mesh.assert_quiet("ping", "pong", "success-sink", "error-sink", wait_s=1)


def test_bodies_no_record_could_be_written_from_are_refused_at_parse_with_a_record(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    route = '{"prev":[],"curr":"worker","next":[]}'
    bad = {
        '{"id":"s1","route":' + route + ',"payload":{"x":"\\ud800"}}': "lone UTF-16 surrogate",
        '{"id":"s2","route":' + route + ',"payload":{"x":"\\udc00 tail"}}': "lone UTF-16 surrogate",
        '{"id":"nul\\u0000id","route":' + route + ',"payload":{}}': "control characters",
        '{"id":"cr\\rid","route":' + route + ',"payload":{}}': "control characters",
    }
    for body in bad:
        mesh.send("worker", body)
    emoji = '{"id":"ok","route":' + route + ',"payload":{"key":"pair","x":"\\ud83d\\ude00"}}'  # a pair is text
    mesh.send("worker", emoji)

    records = mesh.take("error-sink", len(bad))
    [success] = mesh.take("success-sink", 1)

    by_body = {r["payload"]["raw_body"]: r["status"]["error"] for r in records}
    for body, detail in bad.items():
        assert by_body[body]["reason"] == "malformed envelope" and detail in by_body[body]["message"]
    assert success["payload"] == {"key": "pair", "x": "😀"}
    assert [c["key"] for c in mesh.calls()] == ["pair"]


def test_an_envelope_that_carries_the_wake_up_attribute_is_still_processed(mesh: MeshHarness) -> None:
    from asya_runtime.sidecar import wakeup

    mesh.standard("worker")
    mesh.start_actor("worker", handler="identity")
    envelope = new_envelope(route=["worker"], payload={"key": "disguised"})
    mesh.sqs.send_message(
        QueueUrl=mesh.queue_url("worker"), MessageBody=envelope.to_json(),
        MessageAttributes={wakeup.ATTRIBUTE: {"DataType": "String", "StringValue": wakeup.WAKEUP}},
    )

    [done] = mesh.take("success-sink", 1)

    assert done["id"] == envelope.id and [c["key"] for c in mesh.calls()] == ["disguised"]


def test_a_payload_with_characters_sqs_refuses_raw_goes_through_as_json_escapes(mesh: MeshHarness) -> None:
    # SQS refuses any body with a character outside #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD: an emoji in a
    # handler's result once made every send fail, and the envelope never reached the next hop
    mesh.standard("first", "second")
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("second", handler="identity")
    text = "emoji 😀, U+FFFF \uffff, é"
    envelope = new_envelope(route=["first", "second"], payload={"key": "wide", "x": text})
    mesh.send("first", envelope)

    [done] = mesh.take("success-sink", 1)

    assert done["payload"]["x"] == text and [c["key"] for c in mesh.calls()] == ["wide", "wide"]


def test_a_typeerror_raised_by_the_call_itself_is_error_ended_after_one_attempt(mesh: MeshHarness) -> None:
    """The handler's signature refuses the payload (past the load check: it advertises one that does not): the
    same call can never succeed, so the envelope ends at once, not after ``maxAttempts``."""
    mesh.standard("worker", resiliency=FAST_RETRIES)
    mesh.start_actor("worker", handler="advertises_one_argument", resiliency=FAST_RETRIES)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "sig"}))

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "HandlerSignatureError" and error["reason"] == "not retryable"
    assert "cannot be called with one argument, the payload" in error["message"]
    assert "takes 0 positional arguments but 1 was given" in error["message"]
    assert record["status"]["attempt"] == 1
    assert [(h["attempt"], h["outcome"]) for h in record["hops"]] == [(1, "error")]
    mesh.assert_quiet("worker", "success-sink", "error-sink", wait_s=1)


@pytest.mark.parametrize("node", [False, True], ids=["python", "node"])
def test_a_typeerror_inside_the_handler_is_retried_by_the_policy(mesh: MeshHarness, node: bool) -> None:
    mesh.standard("worker", resiliency=FAST_RETRIES)
    mesh.start_actor("worker", handler="type_error_inside", node=node, resiliency=FAST_RETRIES)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": None}))

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["type"] == "TypeError" and error["reason"] == "retries exhausted"
    assert record["status"]["attempt"] == 3 and len(mesh.calls()) == 3
    mesh.assert_quiet("worker", "success-sink", "error-sink", wait_s=1)
