import json
import uuid

import pytest

from asya_runtime.envelope import Envelope, EnvelopeError, Route, child_id, new_envelope


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
