"""Fuzz pass on the sidecar <-> handler server protocol (docs/protocol.md; issue 25, part 3).

Server side: whatever line arrives, the handler server answers with exactly one line, a JSON object that is either
``ok: true`` with outputs or ``ok: false`` with an error that has a type and a message; generated generator scripts
(commands, outputs with hostile values, junk) end the same way, and what the sidecar makes of an ``ok`` answer
serialises to bodies SQS takes. The Python server runs in-process (many cases); both servers run as subprocesses
for a few cases over their socket, and must agree.

Client side: whatever a server answers (any bytes, any JSON), :meth:`HandlerClient.call` returns a typed
:class:`HandlerAnswer` or raises a :class:`HandlerCallError`, and never waits past its budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support.handler_servers import ServerProcess, server_kind

from asya_runtime import handler_server
from asya_runtime.config import DEFAULT_MAX_FANOUT
from asya_runtime.envelope import Envelope, Route, Status
from asya_runtime.sidecar import routing
from asya_runtime.sidecar.answer import HandlerAnswer
from asya_runtime.sidecar.handler_client import HandlerCallError, HandlerClient, HandlerUnavailable

pytestmark = pytest.mark.timeout(120)

HANDLERS_DIR = Path(__file__).parent / "handlers"
SQS_BODY = re.compile("[\t\n\r\x20-\ud7ff\ue000-\ufffd]*")
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

hostile_text = st.text(alphabet=st.characters(codec=None, min_codepoint=0, max_codepoint=0x10FFFF), max_size=16)
#: Integers within JavaScript's exact range: past 2**53 the Node.js server rounds them, as JSON.parse does.
safe_integers = st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
finite_values = st.recursive(
    st.none() | st.booleans() | safe_integers | st.floats(allow_nan=False, allow_infinity=False) | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=8,
)
paths = st.one_of(
    st.sampled_from([".route.next", ".route.next[0]", ".route.next[:0]", ".route.next[1:]", ".headers.x",
                     '.headers["a.b"]', ".payload.k", ".payload.k[0]", ".status", ".id", ".route.curr", ".payload",
                     ".headers.__proto__", ".payload.__proto__.x", ".payload.constructor", ".[", ""]),
    hostile_text,
)
commands = st.one_of(
    st.tuples(st.sampled_from(["SET", "GET", "DEL", "FLY", "NOPE"]), paths, finite_values).map(list),
    st.tuples(st.sampled_from(["SET", "GET", "DEL", "FLY"]), paths).map(list),
    st.tuples(st.sampled_from(["SET", "GET", "DEL", "FLY"])).map(list),
    st.lists(st.sampled_from(["SET"]) | paths | st.lists(hostile_text, max_size=2), max_size=4),
)
steps = st.lists(
    st.one_of(commands, st.dictionaries(hostile_text, finite_values, max_size=3), st.none(), finite_values),
    max_size=5,
)


def source_envelope(payload: Any) -> Envelope:
    return Envelope(
        id="6a1f0c1e-2b1d-4c7e-9a55-0d2c1f1b9e10", route=Route(prev=["ingest"], curr="score", next=["judge"]),
        headers={"trace": "t"}, status=Status(attempt=1), payload=payload,
    )


#: Appended to every script: the envelope as the commands left it, so that the two servers can be compared.
FINAL_STATE = [["GET", ".route"], ["GET", ".headers"], ["GET", ".payload"], ["GET", ".status"]]


def script_frame(script: list[Any]) -> bytes:
    """A call frame whose handler (``script``) yields ``script``'s steps, then the envelope's state: what a
    handler may itself make (a lone surrogate, NaN) travels in the frame as JSON escapes; the sidecar side sees only
    what the handler yields."""
    envelope = source_envelope({"steps": [*script, *FINAL_STATE]}).model_dump(mode="python")
    return json.dumps({"op": "call", "timeout_s": 5, "envelope": envelope}, default=str).encode() + b"\n"


def check_answer_line_bytes(line: bytes) -> bytes:
    check_answer_line(line)
    return line


def check_answer_line(line: bytes) -> dict[str, Any]:
    """One line, one JSON object: ``ok`` with a list of outputs, or not ``ok`` with a typed error."""
    assert line.endswith(b"\n") and line.count(b"\n") == 1, line[:200]
    answer = json.loads(line.decode("utf-8"))
    assert isinstance(answer, dict) and isinstance(answer.get("ok"), bool), answer
    if "status" in answer:  # a health answer
        assert answer["status"] in ("hung", "draining", "ok")
    elif answer["ok"]:
        assert isinstance(answer["outputs"], list)
        assert all(isinstance(output, dict) and "payload" in output for output in answer["outputs"])
    else:
        error = answer["error"]
        assert isinstance(error["type"], str) and error["type"] and isinstance(error["message"], str)
        assert isinstance(error["retryable"], bool)
    return answer


def check_sidecar_side(line: bytes, *, read_limit: int = 1 << 20) -> HandlerAnswer | HandlerCallError:
    """What the sidecar's client makes of the answer ``line``: a call error, a typed error answer, or an ok answer
    whose envelopes (:func:`routing.next_hops`) are each SQS-safe and parse back the same."""
    outcome = _call_against(line, read_limit=read_limit)
    # The fake server always answers health: a client that never got through would pass every example unnoticed.
    assert not isinstance(outcome, HandlerUnavailable), outcome
    if isinstance(outcome, HandlerCallError):
        assert str(outcome)
        return outcome
    assert isinstance(outcome, HandlerAnswer)
    if not outcome.ok:
        assert outcome.error is not None and outcome.error.type
        json.dumps(dataclasses.asdict(outcome.error), ensure_ascii=False).encode()  # an error record can hold it
        return outcome
    hops = routing.next_hops(source=source_envelope({}), outputs=outcome.outputs)
    assert hops
    for hop in hops:
        body = hop.envelope.to_json()
        assert SQS_BODY.fullmatch(body)
        assert Envelope.parse(body).model_dump() == hop.envelope.model_dump()
    return outcome


def _script(payload: Any) -> Any:
    """The in-process twin of ``py_handlers.script``."""
    for step in (payload.get("steps") if isinstance(payload, dict) else None) or []:
        try:
            reply = yield tuple(step) if isinstance(step, list) else step
        except Exception as exc:
            yield {"refused": type(exc).__name__}
            continue
        if reply is not None:
            yield {"got": reply}


def in_process_server() -> handler_server.HandlerServer:
    return handler_server.HandlerServer(func=_script, handler="script", socket_path="-", concurrency=1, drain_s=1)


# ------------------------------------------------------------------------------------ the Python server, in-process


@FUZZ
@given(st.binary(max_size=120).map(lambda data: data.replace(b"\n", b" ") + b"\n"))
@example(b"[" * 100_000 + b"\n")  # found: RecursionError killed the connection's thread, the call got no answer
@example(b'{"op": "call", "envelope": {"route": {}, "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}\n")
@example(b'{"op": "call", "envelope": {"route": {}}, "timeout_s": NaN}\n')
@example(b'{"op": "health"}\n')
@example(b"\xff\xfe\n")
def test_any_line_gets_one_answer_line(line: bytes) -> None:
    check_answer_line(in_process_server()._respond(line))


call_frames = st.fixed_dictionaries(
    {"op": st.sampled_from(["call", "health", "CALL"]) | json_values,
     "envelope": st.one_of(
         steps.map(lambda s: source_envelope({"steps": s}).model_dump(mode="python")),
         st.dictionaries(st.sampled_from(["route", "payload", "headers"]), json_values, max_size=3), json_values),
     "timeout_s": st.none() | st.floats() | st.integers() | json_values},
)


@FUZZ
@given(call_frames)
def test_any_call_frame_gets_one_answer_line(frame: dict[str, Any]) -> None:
    check_answer_line(in_process_server()._respond(json.dumps(frame).encode() + b"\n"))


@FUZZ
@given(steps)
@example([["SET", ".headers.x", "\ud800"], {"k": 1}])  # a lone surrogate written by the handler
@example([["SET", ".route.next", ["a\x00b"]], {"k": 1}])
@example([["SET", ".payload.__proto__.x", 1], {"k": 1}])
@example([{"k": float("nan")}])
def test_any_generator_script_ends_in_an_answer_the_sidecar_can_send_on(script: list[Any]) -> None:
    check_sidecar_side(check_answer_line_bytes(in_process_server()._respond(script_frame(script))))


# ------------------------------------------------------------------------- both servers, as subprocesses


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, ServerProcess]]:
    started = {
        name: ServerProcess(server_kind(name, python_module="py_handlers", js_file="js_handlers.js"), "script",
                            handlers_dir=HANDLERS_DIR).start()
        for name in ("python", "node")
    }
    try:
        yield {name: server.wait_ready() for name, server in started.items()}
    finally:
        for server in started.values():
            server.close()


def _over_the_socket(server: ServerProcess, line: bytes) -> bytes:
    """The server's answer line to ``line`` (checked), after which the connection must still be usable."""
    connection = server.connect(timeout_s=10)
    try:
        connection.send(line)
        answer = check_answer_line_bytes(connection.receive_raw())
        assert connection.request({"op": "health"})["ok"] is True  # the connection is still usable
    finally:
        connection.close()
        server.connections.remove(connection)
    return answer


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
@example([["SET", ".payload.__proto__.x", 1], {"k": 1}, ["GET", ".payload"]])
@example([["SET", ".payload.a.b[0]", 1], ["GET", ".payload"], {"k": 1}])
def test_both_servers_answer_a_generated_script_alike(servers: dict[str, ServerProcess], script: list[Any]) -> None:
    frame = script_frame(script)
    lines = {name: _over_the_socket(server, frame) for name, server in servers.items()}
    for line in lines.values():
        check_sidecar_side(line)
    # Numbers as floats: JavaScript writes a float past 2**53 as its shortest digits (42379223623075390), Python
    # as the float (4.237922362307539e+16); both read back to the same double.
    answers = {name: json.loads(line, parse_int=float) for name, line in lines.items()}
    python, node = answers["python"], answers["node"]
    assert python["ok"] == node["ok"], answers
    if python["ok"]:
        assert python["outputs"] == node["outputs"]
    else:
        assert python["error"]["type"] == node["error"]["type"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=80).map(lambda data: data.replace(b"\n", b" ") + b"\n") | call_frames.map(
    lambda frame: json.dumps(frame, allow_nan=False, default=str).encode() + b"\n" if _finite(frame) else b"{}\n"))
@example(b"[" * 100_000 + b"\n")
def test_both_servers_answer_any_line(servers: dict[str, ServerProcess], line: bytes) -> None:
    if not line.strip():
        return  # a blank line is no frame: both servers skip it
    for server in servers.values():
        _over_the_socket(server, line)


def _finite(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------------------------- the client side


def _call_against(answer: bytes, *, read_limit: int = 2048) -> HandlerAnswer | HandlerCallError:
    """One HandlerClient.call against a server that answers health properly and the call with ``answer``.

    The server must have written ``answer`` (asserted): an error inside it is swallowed by asyncio, and the
    client would then see a bare EOF, which every example accepts as HandlerCrashed."""
    answered: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while line := await reader.readline():
            if b'"health"' in line:
                writer.write(b'{"ok":true,"status":"ok","pid":1}\n')
            else:
                writer.write(answer)
                answered.append(answer)
                with contextlib.suppress(ConnectionError):  # a client that stopped reading at its limit
                    await writer.drain()
                break
        writer.close()

    async def main(path: str) -> HandlerAnswer | HandlerCallError:
        server = await asyncio.start_unix_server(serve, path)
        client = HandlerClient(socket_path=path, read_limit=read_limit, max_outputs=DEFAULT_MAX_FANOUT)
        try:
            return await asyncio.wait_for(
                client.call(envelope_json=source_envelope({}).model_dump_json(), budget=lambda: 2.0,
                            connect_wait_s=1.0),
                timeout=10,
            )
        except HandlerCallError as exc:
            return exc
        finally:
            client.close()
            server.close()

    with tempfile.TemporaryDirectory(prefix="asya-fz-", dir="/tmp") as directory:
        outcome = asyncio.run(main(os.path.join(directory, "h.sock")))
    assert answered == [answer], f"the fake server never answered the call: {outcome!r}"
    return outcome


answer_objects = st.fixed_dictionaries(
    {}, optional={"ok": json_values, "outputs": json_values | st.lists(json_values, max_size=2),
                  "error": json_values | st.fixed_dictionaries({}, optional={
                      "type": json_values, "message": json_values, "mro": json_values, "retryable": json_values,
                      "traceback": json_values, "mro_qualified": json_values}),
                  "fly": json_values, "kind": json_values},
)


@FUZZ
@given(st.one_of(
    st.binary(max_size=64),
    answer_objects.map(lambda answer: json.dumps(answer).encode() + b"\n"),
    json_values.map(lambda value: json.dumps(value).encode() + b"\n"),
))
@example(b"[" * 5000 + b"\n")
@example(b'{"ok": true, "fly": "many"}\n')
@example(b'{"ok": false, "error": "boom"}\n')
@example(b'{"ok": false, "error": {"mro": 7}}\n')
@example(b'{"ok": true, "outputs": {"payload": 1}}\n')  # found (these five): an exception out of the client
@example(b'{"ok": true, "outputs": [{"route": "x", "payload": 1}]}\n')
@example(b'{"ok": true, "outputs": [{"route": {"next": [1]}, "headers": null, "payload": 1}]}\n')
@example(b'{"ok": true, "outputs": [{"headers": null, "payload": 1}]}\n')
@example(b'{"ok": true, "outputs": [{"payload": "\\ud800"}]}\n')  # found: sent on, then unserialisable
@example(b'{"ok": true, "outputs": [{"route": {}, "payload": "\\ud83d\\ude00"}]}\n')
@example(b'{"ok": false, "error": {"type": "E", "message": "\\ud83d", "mro": ["E", "\\udc00"]}}\n')
@example(b"x" * 5000 + b"\n")
def test_any_answer_is_typed_or_a_handler_call_error(answer: bytes) -> None:
    check_sidecar_side(answer, read_limit=2048)
