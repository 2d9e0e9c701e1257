"""Upstream Asya's ABI reference (``deliveryhero/asya``, ``docs/reference/specs/abi-protocol.md``), example by
example, on both handler servers.

Each case is one documented fact — a path, a verb, a row of the access table, a kind of yielded value — replayed
by the ``script`` handler (``handlers/abi_script.py`` and ``.js``) against an envelope shaped like upstream's
(``envelope.md``), and checked against what the reference says. The facts are upstream's; the cases are ours.
One server of each language serves every case (module-scoped), so the suite costs two process starts.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.handler_servers import Connection, ServerProcess, server_kind

HANDLERS_DIR = Path(__file__).parent / "handlers"
ENVELOPE: dict[str, Any] = {
    "id": "abc-123",
    "parent_id": "original-message-id",
    "route": {"prev": ["prep"], "curr": "infer", "next": ["post"]},
    "headers": {"trace_id": "abc-123", "priority": "high", "model.config.version": "v2"},
    "status": {
        "phase": "pending", "actor": "infer", "attempt": 1, "max_attempts": 1,
        "created_at": "2025-11-18T12:00:00Z", "updated_at": "2025-11-18T12:00:00Z",
        "error.detail": {"message": "kept for bracket access"},
    },
    "payload": {"text": "Hello world"},
}
REFUSED = {"refused": "EnvelopeCommandError"}


@dataclass(frozen=True)
class Case:
    """``steps`` replayed in order; ``results`` what each sent back (a refusal compares by its type only); the
    envelope's route ``next`` and headers afterwards, when the case is about them."""

    steps: list[Any]
    results: list[Any]
    next: list[str] | None = None
    headers: dict[str, Any] | None = None
    route_next: list[str] = field(default_factory=lambda: ["post"])


FOUR = ["a", "b", "c", "d"]
CASES: dict[str, Case] = {
    # --- GET: read metadata (a deep copy)
    "get route.prev": Case([["GET", ".route.prev"]], [["prep"]]),
    "get route.curr": Case([["GET", ".route.curr"]], ["infer"]),
    "get route.next": Case([["GET", ".route.next"]], [["post"]]),
    "get the whole route subtree": Case([["GET", ".route"]], [{"prev": ["prep"], "curr": "infer", "next": ["post"]}]),
    "get all headers": Case([["GET", ".headers"]], [ENVELOPE["headers"]]),
    "get one header": Case([["GET", ".headers.trace_id"]], ["abc-123"]),
    "get the message id": Case([["GET", ".id"]], ["abc-123"]),
    "get the parent id": Case([["GET", ".parent_id"]], ["original-message-id"]),
    "get status.phase": Case([["GET", ".status.phase"]], ["pending"]),
    "get status.actor": Case([["GET", ".status.actor"]], ["infer"]),
    "get a missing header is null": Case([["GET", ".headers.nope"]], [None]),
    "get returns a deep copy": Case(
        [["GET", ".route.next"], "mutate", ["GET", ".route.next"]], [["post"], "mutated", ["post"]]
    ),
    "get of headers returns a deep copy": Case(
        [["GET", ".headers"], "mutate", ["GET", ".headers.mutated"]], [ENVELOPE["headers"], "mutated", None]
    ),
    # --- path syntax
    "bracket access for a dotted key": Case([["GET", '.headers["model.config.version"]']], ["v2"]),
    "dot and bracket mix": Case([["GET", '.status["error.detail"].message']], ["kept for bracket access"]),
    "index 0 is the first element": Case([["GET", ".route.next[0]"]], ["b"], route_next=["b", "c"]),
    "index -1 is the last element": Case([["GET", ".route.next[-1]"]], ["c"], route_next=["b", "c"]),
    "an index past the end reads null": Case([["GET", ".route.next[5]"]], [None]),
    "the leading dot is required": Case([["GET", "route.next"]], [REFUSED]),
    # --- SET: write metadata (a deep copy of the value)
    "set route.next replaces it": Case(
        [["SET", ".route.next", ["actor_a", "actor_b"]]], [None], next=["actor_a", "actor_b"]
    ),
    "set route.next[:0] prepends": Case(
        [["SET", ".route.next[:0]", ["urgent_handler"]]], [None], next=["urgent_handler", "post"]
    ),
    "set route.next[:0] prepends several": Case(
        [["SET", ".route.next[:0]", ["reviewer", "notifier"]]], [None], next=["reviewer", "notifier", "post"]
    ),
    "set route.next[999:] appends": Case(
        [["SET", ".route.next[999:]", ["final_step"]]], [None], next=["post", "final_step"]
    ),
    "read-modify-write appends": Case(
        [["GET", ".route.next"], ["SET", ".route.next", ["post", "final_step"]]], [["post"], None],
        next=["post", "final_step"],
    ),
    "set route.next[1:3] replaces a range": Case(
        [["SET", ".route.next[1:3]", ["replace"]]], [None], next=["a", "replace", "d"], route_next=FOUR
    ),
    "set route.next[0] replaces one actor": Case(
        [["SET", ".route.next[0]", "other"]], [None], next=["other"]
    ),
    "set a header": Case([["SET", ".headers.trace_id", "xyz-789"]], [None], headers={
        **ENVELOPE["headers"], "trace_id": "xyz-789",
    }),
    "set a dotted header by bracket": Case([["SET", '.headers["a.b"]', 1], ["GET", '.headers["a.b"]']], [None, 1]),
    "set status.phase": Case(
        [["SET", ".status.phase", "processing"], ["GET", ".status.phase"]], [None, "processing"]
    ),
    "set the whole status": Case(
        [["SET", ".status", {"phase": "paused"}], ["GET", ".status"]], [None, {"phase": "paused"}]
    ),
    "set copies the value in": Case(
        [["SET", ".headers.list", [1]], "mutate", ["GET", ".headers.list"]], [None, "mutated", [1]]
    ),
    # --- DEL: remove metadata
    "del a header": Case(
        [["DEL", ".headers.trace_id"], ["GET", ".headers.trace_id"]], [None, None],
        headers={"priority": "high", "model.config.version": "v2"},
    ),
    "del route.next ends the route here": Case([["DEL", ".route.next"]], [None], next=[]),
    "del route.next[0] removes one actor": Case([["DEL", ".route.next[0]"]], [None], next=["b", "c"],
                                                route_next=["a", "b", "c"]),
    # --- the access table's refusals
    "set id is denied": Case([["SET", ".id", "x"]], [REFUSED]),
    "del id is denied": Case([["DEL", ".id"]], [REFUSED]),
    "set parent_id is denied": Case([["SET", ".parent_id", "x"]], [REFUSED]),
    "del parent_id is denied": Case([["DEL", ".parent_id"]], [REFUSED]),
    "set route.prev is denied": Case([["SET", ".route.prev", ["x"]]], [REFUSED]),
    "del route.prev is denied": Case([["DEL", ".route.prev"]], [REFUSED]),
    "set route.curr is denied": Case([["SET", ".route.curr", "x"]], [REFUSED]),
    "del route.curr is denied": Case([["DEL", ".route.curr"]], [REFUSED]),
    "del status is denied": Case([["DEL", ".status"]], [REFUSED]),
    "del status.phase is denied": Case([["DEL", ".status.phase"]], [REFUSED]),
    "slices in GET are refused": Case([["GET", ".route.next[:1]"]], [REFUSED]),
    "slices in DEL are refused": Case([["DEL", ".route.next[0:1]"]], [REFUSED], next=["post"]),
    # --- type-based dispatch
    "a bare yield is a no-op": Case([None], [None]),
    "fly is fire-and-forget": Case([["FLY", {"partial": True, "text": "streaming..."}]], [None]),
    "an unknown verb is refused": Case([["PUT", ".headers.x", 1]], [REFUSED]),
    "a yielded string is a protocol error": Case(["yield_text"], [{"refused": "HandlerResultError"}]),
}


@pytest.fixture(scope="module", params=["python", "node"])
def server(request: pytest.FixtureRequest) -> Iterator[ServerProcess]:
    kind = server_kind(request.param, python_module="abi_script", js_file="abi_script.js")
    process = ServerProcess(kind, "script", handlers_dir=HANDLERS_DIR)
    process.start().wait_ready()
    yield process
    process.close()


def call(server: ServerProcess, handler_input: dict[str, Any], **route: Any) -> dict[str, Any]:
    envelope = copy.deepcopy(ENVELOPE)
    envelope["route"].update(route)
    envelope["payload"] = handler_input
    connection: Connection = server.connect()
    try:
        response = connection.request({"op": "call", "envelope": envelope, "timeout_s": 30})
    finally:
        connection.close()
    assert response["ok"] is True, response
    return response


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_each_documented_example_behaves_as_documented(server: ServerProcess, case: Case) -> None:
    response = call(server, {"steps": case.steps}, next=case.route_next)
    output = response["outputs"][-1]
    results = [
        {"refused": got["refused"]} if isinstance(got, dict) and "refused" in got else got  # the type, not the text
        for got in output["payload"]["results"]
    ]
    assert results == case.results
    if case.next is not None:
        assert output["route"]["next"] == case.next
    if case.headers is not None:
        assert output["headers"] == case.headers


def test_emitting_several_dicts_fans_out_with_a_snapshot_each(server: ServerProcess) -> None:
    """``yield {...}`` is EMIT; each is its own downstream frame, with the route as it was then."""
    steps = [{"emit": {"n": 1}}, ["SET", ".route.next", ["x"]], {"emit": {"n": 2}}]
    outputs = call(server, {"steps": steps})["outputs"]
    assert [(o["payload"], o["route"]["next"]) for o in outputs[:2]] == [({"n": 1}, ["post"]), ({"n": 2}, ["x"])]
    assert len(outputs) == 3 and outputs[2]["payload"] == {"results": [None, None, None]}


@pytest.mark.parametrize("handler", ["delegating", "async_delegating", "splitter"])
def test_delegation_and_the_splitter_example(request: pytest.FixtureRequest, server: ServerProcess,
                                             handler: str) -> None:
    """``yield from`` (sync) and explicit iteration (async) delegate commands; the splitter routes each item."""
    kind = server.kind
    process = ServerProcess(kind, handler, handlers_dir=HANDLERS_DIR)
    request.addfinalizer(process.close)
    process.start().wait_ready()
    response = call(process, {"items": [1, 2]} if handler == "splitter" else {"k": 1})
    if handler == "splitter":
        assert [(o["payload"], o["route"]["next"]) for o in response["outputs"]] == [
            ({"item": 1}, ["item_processor"]), ({"item": 2}, ["item_processor"]),
        ]
    else:
        [output] = response["outputs"]
        assert output["route"]["next"] == ["actor_a", "actor_b"] and output["payload"] == {"k": 1}
