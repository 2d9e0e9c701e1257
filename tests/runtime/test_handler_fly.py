"""A call that asks for its FLY values (``"fly": true``) gets each as a ``{"fly": value}`` line before the answer, from
both handler servers (docs/protocol.md); without the flag nothing but the answer comes, as before."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.handler_servers import ServerKind, ServerProcess, make_envelope, server_kind

HANDLERS_DIR = Path(__file__).parent / "handlers"


@pytest.fixture(params=["python", "node"])
def kind(request: pytest.FixtureRequest) -> ServerKind:
    return server_kind(request.param, python_module="py_handlers", js_file="js_handlers.js")


@pytest.fixture
def serve(kind: ServerKind) -> Iterator[Any]:
    servers: list[ServerProcess] = []

    def start(handler: str, **env: str) -> ServerProcess:
        server = ServerProcess(kind, handler, handlers_dir=HANDLERS_DIR, **env).start().wait_ready()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _fly_call(**extra: Any) -> dict[str, Any]:
    return {"op": "call", "envelope": make_envelope({"n": 3}), "timeout_s": 30, "fly": True, **extra}


@pytest.mark.parametrize(("handler", "texts"), [("flies", ["token 0", "token 1", "token 2"]),
                                                ("async_flies", ["a", "b"])])
def test_fly_values_come_before_the_answer_when_asked(serve: Any, handler: str, texts: list[str]) -> None:
    connection = serve(handler).connect()
    connection.send(_fly_call())
    frames = [connection.receive() for _ in range(len(texts) + 1)]
    *flies, answer = frames
    assert [f["fly"]["text"] for f in flies] == texts
    assert answer["ok"] is True and answer["fly"] == len(texts)
    assert connection.call({"n": 3})["fly"] == len(texts)  # no flag: the answer only, on the same connection


def test_a_fly_value_that_is_not_an_object_is_sent_as_it_is(serve: Any) -> None:
    connection = serve("odd_flies").connect()
    connection.send(_fly_call())
    frames = [connection.receive() for _ in range(4)]
    assert frames[:3] == [{"fly": None}, {"fly": "héllo ✓"}, {"fly": 7}]
    assert frames[3]["ok"] is True and frames[3]["fly"] == 3


def test_pipelined_calls_keep_each_calls_fly_lines_before_its_own_answer(serve: Any) -> None:
    connection = serve("flies").connect()
    first, second = _fly_call(), _fly_call()
    second["envelope"]["payload"] = {"n": 2}
    connection.send(first)
    connection.send(second)  # sent before the first answer: answered in order, each call's FLY lines first
    frames = [connection.receive() for _ in range(3 + 1 + 2 + 1)]
    shape = ["fly" if "fly" in f and "ok" not in f else "answer" for f in frames]
    assert shape == ["fly", "fly", "fly", "answer", "fly", "fly", "answer"], frames
    assert frames[3]["fly"] == 3 and frames[6]["fly"] == 2


def test_fly_lines_go_only_to_the_connection_whose_call_asked(serve: Any) -> None:
    server = serve("flies", ASYA_HANDLER_CONCURRENCY="2")
    asking, other = server.connect(), server.connect()
    asking.send(_fly_call())
    other.send({"op": "call", "envelope": make_envelope({"n": 4}), "timeout_s": 30})
    assert other.receive()["fly"] == 4  # its answer, and no FLY line before it
    frames = [asking.receive() for _ in range(4)]
    assert [f["fly"]["text"] for f in frames[:3]] == ["token 0", "token 1", "token 2"]
    assert frames[3]["ok"] is True
