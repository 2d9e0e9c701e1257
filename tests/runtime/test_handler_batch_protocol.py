"""The ``call_batch`` frame (docs/protocol.md), on both handler servers: one handler call for a list of envelopes,
one result per envelope, each what a ``call`` of that envelope alone would have answered."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from support.handler_servers import ServerKind, ServerProcess, make_envelope
from test_handler_protocol import assert_contract_error, kind, start  # noqa: F401  (pytest fixtures)


def _batch(*payloads: Any, timeout_s: float | None = 30.0) -> dict[str, Any]:
    return {"op": "call_batch", "envelopes": [make_envelope(p) for p in payloads], "timeout_s": timeout_s}


def test_one_frame_carries_one_result_per_envelope_in_order_each_as_its_own_call_would(
    start: Callable[..., ServerProcess],
) -> None:
    server = start("batch_mixed")
    connection = server.connect()
    answer = connection.request(
        _batch({"x": 1}, {"op": "fail", "key": "k2"}, {"op": "none"}, {"op": "route", "x": 7}, {"x": 3})
    )
    assert answer["ok"] is True
    ok, failed, none, routed, last = answer["results"]
    envelope = make_envelope({})
    assert ok == {"ok": True, "kind": "return", "outputs": [
        {"route": envelope["route"], "headers": envelope["headers"], "payload": {"y": 2, "n": 5}}
    ]}
    assert failed["ok"] is False and failed["error"]["retryable"] is True
    assert failed["error"]["type"] in ("KeyError", "RangeError") and "k2" in failed["error"]["message"]
    assert none == {"ok": True, "kind": "none", "outputs": []}
    assert routed["kind"] == "stream" and [o["payload"] for o in routed["outputs"]] == [{"routed": 7}, {"routed": 8}]
    assert all(o["route"]["next"] == ["elsewhere"] for o in routed["outputs"])
    assert last["outputs"][0]["payload"] == {"y": 6, "n": 5}
    health = connection.request({"op": "health"})
    assert health["ok"] is True and health["in_flight"] == 0


def test_an_item_that_is_no_result_fails_alone_as_a_contract_error(start: Callable[..., ServerProcess]) -> None:
    answer = start("batch_mixed").connect().request(_batch({"x": 1}, {"op": "bad"}))
    good, bad = answer["results"]
    assert good["ok"] is True
    assert_contract_error(bad, "HandlerResultError", "str")


def test_a_wrong_number_of_results_fails_the_whole_batch_as_a_contract_error(
    start: Callable[..., ServerProcess],
) -> None:
    answer = start("batch_short").connect().request(_batch({"x": 1}, {"x": 2}, {"x": 3}))
    assert_contract_error(answer, "HandlerResultError", "2 results for 3 payloads")


def test_a_raising_batched_handler_fails_the_whole_frame_retryably(start: Callable[..., ServerProcess]) -> None:
    answer = start("batch_raises").connect().request(_batch({"x": 1}, {"x": 2}))
    assert answer["ok"] is False and answer["error"]["retryable"] is True
    assert "GPU busy for 2" in answer["error"]["message"]


def test_an_async_batched_handler_is_awaited(start: Callable[..., ServerProcess]) -> None:
    answer = start("batch_async").connect().request(_batch({"x": 1}, {"x": 2}))
    assert [r["outputs"][0]["payload"] for r in answer["results"]] == [{"y": 1}, {"y": 2}]


def test_a_malformed_call_batch_is_a_protocol_error(start: Callable[..., ServerProcess]) -> None:
    connection = start("batch_mixed").connect()
    assert_contract_error(connection.request({"op": "call_batch", "envelopes": []}), "ProtocolError", "envelopes")
    assert_contract_error(
        connection.request({"op": "call_batch", "envelopes": [{"payload": {}}]}), "ProtocolError", "route"
    )
    bad_timeout = {**_batch({"x": 1}), "timeout_s": "soon"}
    assert_contract_error(connection.request(bad_timeout), "ProtocolError", "timeout_s")


def test_a_batch_is_one_running_call_for_health_and_the_watchdog(
    kind: ServerKind, start: Callable[..., ServerProcess],  # noqa: F811
) -> None:
    """A batch past its timeout_s makes health report hung; past the grace the server exits 70."""
    server = start("batch_slow")
    connection = server.connect()
    connection.send(_batch({"sleep_s": 30}, {"sleep_s": 30}, timeout_s=0.3))
    probe = server.connect()
    deadline = time.monotonic() + 10
    while probe.request({"op": "health"})["status"] != "hung":
        assert time.monotonic() < deadline, "health never said hung"
        time.sleep(0.05)
    assert server.wait_exit() == 70
