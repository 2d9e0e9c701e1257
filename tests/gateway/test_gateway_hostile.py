"""Hostile requests: every one is a 4xx with a JSON error naming the problem (never a 500), and none of them stores,
sends or duplicates anything — while valid submissions interleaved with them are each stored and sent exactly once."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from gateway.conftest import Gateway

_DEEP = "[" * 300 + "]" * 300
#: (name, method, path, body bytes or None, headers, expected status, a phrase the error must contain)
HOSTILE: list[tuple[str, str, str, bytes | None, dict[str, str], int, str]] = [
    ("no target", "POST", "/api/v1/mesh/", b"{}", {}, 400, "exactly one"),
    ("actor and route", "POST", "/api/v1/mesh/?actor=done&route=echo", b"{}", {}, 400, "exactly one"),
    ("unknown actor", "POST", "/api/v1/mesh/?actor=ghost", b"{}", {}, 404, "'ghost' is not an actor"),
    ("unknown route", "POST", "/api/v1/mesh/?route=ghost", b"{}", {}, 404, "'ghost' is not a route"),
    ("a sink as actor", "POST", "/api/v1/mesh/?actor=success-sink", b"{}", {}, 404, "not an actor"),
    ("another mesh", "POST", "/api/v1/mesh/?actor=done&namespace=other", b"{}", {}, 403, "another mesh"),
    ("malformed JSON", "POST", "/api/v1/mesh/?actor=done", b'{"payload": ', {}, 400, "not valid JSON"),
    ("body is an array", "POST", "/api/v1/mesh/?actor=done", b"[1]", {}, 400, "JSON list"),
    ("body is a string", "POST", "/api/v1/mesh/?actor=done", b'"hi"', {}, 400, "JSON str"),
    ("payload is a list", "POST", "/api/v1/mesh/?actor=done", b'{"payload": [1]}', {}, 400, "payload is JSON list"),
    ("payload is text", "POST", "/api/v1/mesh/?actor=done", b'{"payload": "x"}', {}, 400, "payload is JSON str"),
    ("payload is a number", "POST", "/api/v1/mesh/?actor=done", b'{"payload": 3}', {}, 400, "payload is JSON int"),
    ("NaN in the payload", "POST", "/api/v1/mesh/?actor=done", b'{"payload": {"x": NaN}}', {}, 400, "NaN"),
    ("timeout zero", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": 0}', {}, 400, "positive"),
    ("timeout negative", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": -5}', {}, 400, "positive"),
    ("timeout text", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": "30"}', {}, 400, "timeout is str"),
    ("timeout NaN", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": NaN}', {}, 400, "NaN"),
    ("timeout infinite", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": 1e999}', {}, 400, "float's range"),
    ("timeout huge", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": 1000000000}', {}, 400, "7 days"),
    ("timeout boolean", "POST", "/api/v1/mesh/?actor=done", b'{"timeout": true}', {}, 400, "timeout is bool"),
    ("headers a list", "POST", "/api/v1/mesh/?actor=done", b'{"headers": ["a"]}', {}, 400, "headers is JSON list"),
    ("reserved header", "POST", "/api/v1/mesh/?actor=done", b'{"headers": {"x-asya-tracked": "0"}}', {}, 400,
     "reserved"),
    ("reserved header, capitals", "POST", "/api/v1/mesh/?actor=done", b'{"headers": {"X-Asya-Hops": 1}}', {}, 400,
     "reserved"),
    ("unknown body field", "POST", "/api/v1/mesh/?actor=done", b'{"route": ["done"]}', {}, 400, "unknown fields"),
    ("not UTF-8", "POST", "/api/v1/mesh/?actor=done", b'{"payload": {"x": "\xff\xfe"}}', {}, 400, "not UTF-8"),
    ("lone surrogate", "POST", "/api/v1/mesh/?actor=done", b'{"payload": {"x": "\\ud800"}}', {}, 400, "surrogate"),
    ("nested too deep", "POST", "/api/v1/mesh/?actor=done", b'{"payload": {"x": ' + _DEEP.encode() + b"}}", {}, 400,
     "nests"),
    ("oversize body", "POST", "/api/v1/mesh/?actor=done", b'{"payload": {"x": "' + b"a" * 300_000 + b'"}}', {}, 413,
     "over the gateway's"),
    ("empty idempotency key", "POST", "/api/v1/mesh/?actor=done", b"{}", {"Idempotency-Key": ""}, 400,
     "Idempotency-Key"),
    ("long idempotency key", "POST", "/api/v1/mesh/?actor=done", b"{}", {"Idempotency-Key": "k" * 300}, 400,
     "Idempotency-Key"),
    ("bad status filter", "GET", "/api/v1/mesh/?status=bogus", None, {}, 400, "not a status"),
    ("limit zero", "GET", "/api/v1/mesh/?limit=0", None, {}, 400, "out of range"),
    ("limit too big", "GET", "/api/v1/mesh/?limit=1000", None, {}, 400, "out of range"),
    ("limit text", "GET", "/api/v1/mesh/?limit=ten", None, {}, 400, "not an integer"),
    ("offset negative", "GET", "/api/v1/mesh/?offset=-1", None, {}, 400, "out of range"),
    ("list another mesh", "GET", "/api/v1/mesh/?namespace=other", None, {}, 403, "another mesh"),
    ("unknown id", "GET", "/api/v1/mesh/6b1c3c3e-0000-4000-8000-000000000000", None, {}, 404, "no envelope"),
    ("id with a NUL", "GET", "/api/v1/mesh/abc%00def", None, {}, 400, "control characters"),
    ("id too long", "GET", "/api/v1/mesh/" + "i" * 300, None, {}, 400, "over 256"),
    ("events of unknown id", "GET", "/api/v1/mesh/nope/events", None, {}, 404, "no envelope"),
    ("cancel unknown id", "DELETE", "/api/v1/mesh/nope", None, {}, 404, "no envelope"),
    ("wrong method", "PUT", "/api/v1/mesh/", b"{}", {}, 405, "not allowed"),
    ("no such endpoint", "GET", "/api/v2/whatever", None, {}, 404, "no endpoint"),
]


def _valid(http: httpx.Client, index: int) -> str:
    answer = http.post("/api/v1/mesh/?actor=done", json={"payload": {"i": index}})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def test_hostile_requests_are_refused_and_nothing_is_lost_or_duplicated(gateway: Gateway) -> None:
    assert len(HOSTILE) >= 30
    gateway.sent("done", wait_s=0.1)  # an empty queue to count in
    with gateway.http() as http:
        before = http.get("/api/v1/mesh/", params={"limit": 1}).json()["total"]
        accepted: list[str] = []
        for index, (name, method, path, body, headers, status, phrase) in enumerate(HOSTILE):
            answer = http.request(method, path, content=body, headers={"content-type": "application/json", **headers})
            assert answer.status_code == status, f"{name}: {answer.status_code} {answer.text[:300]}"
            assert answer.headers["content-type"].startswith("application/json"), name
            error: Any = answer.json()["error"]
            assert isinstance(error, str) and phrase in error, f"{name}: {error!r} lacks {phrase!r}"
            accepted.append(_valid(http, index))  # a good submission between every two bad ones
        after = http.get("/api/v1/mesh/", params={"limit": 1}).json()["total"]
        for envelope_id in accepted:
            assert http.get(f"/api/v1/mesh/{envelope_id}").json()["status"] == "pending"
    assert after - before == len(accepted)
    sent = [envelope["id"] for envelope in gateway.sent("done")]
    assert sorted(sent) == sorted(accepted)  # each exactly once
    assert "Traceback" not in gateway.log()


def test_an_oversize_body_without_a_length_is_cut_off_while_it_streams(gateway: Gateway) -> None:
    def chunks() -> Any:
        yield b'{"payload": {"x": "'
        for _ in range(100):
            yield b"a" * 10_000
        yield b'"}}'

    with gateway.http() as http:
        answer = http.post("/api/v1/mesh/?actor=done", content=chunks())
    assert answer.status_code == 413 and "over the gateway's" in answer.json()["error"]
    assert gateway.sent("done", wait_s=0.2) == []


@pytest.mark.parametrize("body", [b"", b"  "])
def test_an_empty_body_is_an_empty_payload(gateway: Gateway, body: bytes) -> None:
    with gateway.http() as http:
        answer = http.post("/api/v1/mesh/?actor=done", content=body)
    assert answer.status_code == 201
    [envelope] = gateway.sent("done")
    assert envelope["payload"] == {} and envelope["id"] == answer.json()["id"]


def test_a_status_store_that_cannot_be_reached_is_503_not_500(
    broker: Any, sqs: Any, s3: Any, tmp_path: Any
) -> None:
    import uuid

    from support.status_table import StatusTable

    from asya_pulumi.local.broker import free_port
    from gateway.conftest import running_gateway

    gone = StatusTable(endpoint=f"http://127.0.0.1:{free_port()}", namespace=f"dn{uuid.uuid4().hex[:10]}", client=None)
    with running_gateway(broker=broker, sqs=sqs, s3=s3, table=gone, tmp=tmp_path) as gateway, gateway.http() as http:
        for method, path in (("POST", "/api/v1/mesh/?actor=done"), ("GET", "/api/v1/mesh/"),
                             ("GET", "/api/v1/mesh/abc"), ("DELETE", "/api/v1/mesh/abc")):
            answer = http.request(method, path, json={})
            assert answer.status_code == 503, (path, answer.text)
            assert "try again" in answer.json()["error"]
        assert gateway.sent("done", wait_s=0.2) == []  # nothing sent without its record
        assert "Traceback" not in gateway.log()
