"""A call that asks for its FLY values (``"fly": true``) gets each as a ``{"fly": value}`` line before the answer, from
the Python handler server (docs/protocol.md); without the flag nothing but the answer comes, as before."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.handler_servers import ServerProcess, make_envelope, server_kind

HANDLERS_DIR = Path(__file__).parent / "handlers"


@pytest.mark.parametrize(("handler", "texts"), [("flies", ["token 0", "token 1", "token 2"]),
                                                ("async_flies", ["a", "b"])])
def test_fly_values_come_before_the_answer_when_asked(handler: str, texts: list[str]) -> None:
    kind = server_kind("python", python_module="py_handlers", js_file="js_handlers.js")
    server = ServerProcess(kind, handler, handlers_dir=HANDLERS_DIR).start().wait_ready()
    try:
        connection = server.connect()
        connection.send({"op": "call", "envelope": make_envelope({"n": 3}), "timeout_s": 30, "fly": True})
        frames = [connection.receive() for _ in range(len(texts) + 1)]
        *flies, answer = frames
        assert [f["fly"]["text"] for f in flies] == texts
        assert answer["ok"] is True and answer["fly"] == len(texts)
        assert connection.call({"n": 3})["fly"] == len(texts)  # no flag: the answer only, on the same connection
    finally:
        server.close()
