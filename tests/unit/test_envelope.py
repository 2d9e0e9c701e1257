import json
import uuid

import pytest

from asya_runtime.envelope import MAX_ID_BYTES, MAX_NESTING, Envelope, EnvelopeError, Route, child_id, new_envelope


def test_route_advances_and_ends() -> None:
    r = Route(prev=["a"], curr="b", next=["c", "d"])
    nxt = r.advanced()
    assert nxt == Route(prev=["a", "b"], curr="c", next=["d"])
    assert Route(curr="z").advanced() is None


def test_new_envelope_addresses_the_first_actor() -> None:
    env = new_envelope(route=["a", "b"], payload={"x": 1}, headers={"traceparent": "00-1-2-01"})
    assert env.route.curr == "a" and env.route.next == ["b"] and env.route.prev == []
    assert env.status.attempt == 1
    assert Envelope.parse(env.to_json()) == env


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"\xff\xfe", "not JSON"),
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON list, not an object"),
        ('{"id": "x", "payload": {}}', "no 'route'"),
        ('{"id": "x", "route": {"next": []}}', "route.curr"),
        ('{"id": "x", "route": {"curr": "a"}, "status": {"attempt": 0}}', "status.attempt"),
    ],
)
def test_malformed_bodies_raise_with_a_reason(body: str | bytes, detail: str) -> None:
    with pytest.raises(EnvelopeError, match=detail) as info:
        Envelope.parse(body)
    assert info.value.reason == "malformed envelope"


def test_unknown_fields_and_headers_survive_a_round_trip() -> None:
    body = {"id": "1", "route": {"curr": "a"}, "headers": {"traceparent": "t", "x": {"y": 1}}, "extra": 5}
    env = Envelope.parse(json.dumps(body))
    again = json.loads(env.to_json())
    assert again["headers"] == body["headers"] and again["extra"] == 5


def test_child_ids_are_deterministic_and_distinct() -> None:
    parent = str(uuid.uuid4())
    ids = [child_id(parent_id=parent, actor="chunk", index=i) for i in range(3)]
    assert ids == [child_id(parent_id=parent, actor="chunk", index=i) for i in range(3)]
    assert len(set(ids)) == 3 and parent not in ids
    assert child_id(parent_id="not-a-uuid", actor="a", index=0) != child_id(parent_id="other", actor="a", index=0)


# -- bodies that could never be recorded: too deep, or an id too long for a sink key


def _body(*, payload: str = "{}", envelope_id: str = "e1") -> str:
    return '{"id": ' + json.dumps(envelope_id) + ', "route": {"curr": "a"}, "payload": ' + payload + "}"


def test_json_nested_past_the_parser_recursion_limit_is_a_malformed_envelope() -> None:
    deep = "[" * 100_000 + "]" * 100_000
    with pytest.raises(EnvelopeError, match="nests too deeply") as caught:
        Envelope.parse(_body(payload=deep))
    assert caught.value.reason == "malformed envelope"


def test_nesting_past_the_limit_is_refused_up_front_and_the_limit_still_serialises() -> None:
    ok = "[" * (MAX_NESTING - 1) + "]" * (MAX_NESTING - 1)  # the envelope (level 1) + lists: exactly the limit
    assert Envelope.parse(_body(payload=ok)).to_json(), "the sidecar can still write what it accepted"
    too_deep = "[" * MAX_NESTING + "]" * MAX_NESTING
    with pytest.raises(EnvelopeError, match=f"deeper than {MAX_NESTING} levels"):
        Envelope.parse(_body(payload=too_deep))


def test_many_brackets_side_by_side_are_not_nesting() -> None:
    wide = json.dumps([[i] for i in range(5_000)])
    assert len(Envelope.parse(_body(payload=wide)).payload) == 5_000


@pytest.mark.parametrize(
    ("envelope_id", "fits"),
    [("x" * MAX_ID_BYTES, True), ("x" * (MAX_ID_BYTES + 1), False), ("é" * (MAX_ID_BYTES // 2), True),
     ("é" * (MAX_ID_BYTES // 2 + 1), False), ("", False), ("a/b", False)],
)
def test_envelope_ids_are_bounded_in_utf8_bytes(envelope_id: str, fits: bool) -> None:
    if fits:
        assert Envelope.parse(_body(envelope_id=envelope_id)).id == envelope_id
        assert len(f"failed/{envelope_id}.json".encode()) <= 1024
    else:
        with pytest.raises(EnvelopeError, match="malformed envelope: id"):
            Envelope.parse(_body(envelope_id=envelope_id))


@pytest.mark.parametrize(
    "body",
    [
        new_envelope(route=["a", "b"], payload={"x": [1, 2.5, "é", None, {"y": True}]}, headers={"h": 1}).to_json(),
        '{"id": "x", "route": {"curr": "a"}, "payload": 1e400, "status": {"deadline_at": "2030-01-01T00:00:00+02:00"}}',
        '{"id": "x", "route": {"curr": "a"}, "payload": "\\ud83d\\ude00 paired surrogates", "extra": [1]}',
        '{"id": "x", "route": {"curr": "a"}, "payload": {"n": 123456789012345678901234567890}}',
    ],
)
def test_the_one_pass_parse_gives_what_json_loads_and_validation_give(body: str) -> None:
    assert Envelope.parse(body) == Envelope.model_validate(json.loads(body))


def test_a_call_carries_the_body_as_received_when_it_states_every_field_on_one_line() -> None:
    full = new_envelope(route=["a"], payload={"k": "v"}).to_json()
    assert Envelope.parse(full).call_json(full) is full
    sparse = '{"id": "x", "route": {"curr": "a"}, "payload": {}}'  # defaults filled in, as the handler expects them
    called = json.loads(Envelope.parse(sparse).call_json(sparse))
    assert called["status"]["attempt"] == 1 and called["headers"] == {} and called["parent_id"] is None
    no_status_fields = '{"id":"x","parent_id":null,"route":{"curr":"a"},"headers":{},"status":{},"payload":{}}'
    assert json.loads(Envelope.parse(no_status_fields).call_json(no_status_fields))["status"]["attempt"] == 1
    pretty = json.dumps(json.loads(full), indent=2)  # newlines would split the protocol's one-line frame
    assert "\n" not in Envelope.parse(pretty).call_json(pretty)
    assert json.loads(Envelope.parse(pretty).call_json(pretty)) == json.loads(full)


def test_the_sidecar_stamps_upstreams_lifecycle_alongside_its_own_status() -> None:
    """``status.phase``/``actor``/``reason``/``created_at``/``updated_at`` carry upstream Asya's values at each step
    (docs/asya-compat.md); the attempt count and ``error`` keep their own meaning."""
    from asya_runtime.sidecar import routing

    env = new_envelope(route=["a", "b"], payload={"x": 1})
    assert (env.status.phase, env.status.actor, env.status.reason) == ("pending", "a", None)
    created = env.status.created_at
    assert created is not None and env.status.updated_at == created

    [to_b] = routing.next_hops(source=env, outputs=[{"payload": {"y": 1}}])
    assert (to_b.to, to_b.envelope.status.phase, to_b.envelope.status.actor) == ("b", "processing", "a")
    assert to_b.envelope.status.created_at == created and to_b.envelope.status.updated_at >= created

    [done] = routing.next_hops(source=to_b.envelope.model_copy(update={"route": Route(prev=["a"], curr="b")}),
                               outputs=[{"payload": {}}])
    assert (done.to, done.envelope.status.phase, done.envelope.status.actor) == ("success-sink", "succeeded", "b")
    [ended] = routing.next_hops(source=env, outputs=[])
    assert (ended.envelope.status.phase, ended.envelope.status.actor) == ("succeeded", "a")

    failed = routing.error_record(envelope=env, actor="a", reason=routing.RETRIES_EXHAUSTED, type_name="E", message="m")
    status = failed.envelope.status
    assert (status.phase, status.actor, status.reason) == ("failed", "a", "PolicyExhausted")
    assert status.error is not None and status.error.reason == "retries exhausted"
    late = routing.error_record(envelope=env, actor="a", reason=routing.DEADLINE_EXCEEDED, type_name="E", message="m")
    assert late.envelope.status.reason == "RuntimeError"

    assert status.error is not None
    routed = routing.recovery_hop(envelope=env, actors=("fix",), error=status.error)
    assert (routed.envelope.status.phase, routed.envelope.status.reason) == ("failed", "PolicyRouted")
    assert Envelope.parse(routed.envelope.to_json()) == routed.envelope


def test_an_envelope_from_upstream_with_its_status_fields_parses() -> None:
    body = {
        "id": "abc-123", "route": {"prev": ["prep"], "curr": "infer", "next": ["post"]},
        "headers": {"trace_id": "abc-123"},
        "status": {"phase": "pending", "actor": "infer", "attempt": 1, "max_attempts": 1,
                   "created_at": "2025-11-18T12:00:00Z", "updated_at": "2025-11-18T12:00:00Z",
                   "deadline_at": "2025-11-18T12:05:00Z"},
        "payload": {"text": "Hello world"},
    }
    env = Envelope.parse(json.dumps(body))
    assert env.status.phase == "pending" and env.status.created_at is not None and env.status.deadline_at is not None
