"""The handler-server wire protocol (docs/protocol.md), proven against both servers.

Every test starts a real server process (``handler_server.py`` or ``handler_server.js``) on a private Unix socket and
talks to it over that socket exactly as the sidecar does. Each behaviour runs once per server; the handlers of the
same name in ``handlers/py_handlers.py`` and ``handlers/js_handlers.js`` do the same thing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support.handler_servers import TRACEPARENT, Connection, ServerKind, ServerProcess, make_envelope, server_kind

from asya_runtime import handler_server

HANDLERS_DIR = Path(__file__).parent / "handlers"


@pytest.fixture(params=["python", "node"])
def kind(request: pytest.FixtureRequest) -> ServerKind:
    return server_kind(request.param, python_module="py_handlers", js_file="js_handlers.js")


@pytest.fixture
def start(kind: ServerKind) -> Iterator[Callable[..., ServerProcess]]:
    """Start a server for a handler (by its short name); every server is killed at the end of the test."""
    servers: list[ServerProcess] = []

    def _start(handler: str, **env: str) -> ServerProcess:
        server = ServerProcess(kind, handler, handlers_dir=HANDLERS_DIR, **env)
        servers.append(server)
        return server.start().wait_ready()

    yield _start
    for server in servers:
        server.close()


def wait_for(condition: Callable[[], Any], *, timeout_s: float = 15.0, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def assert_contract_error(response: dict[str, Any], error_type: str, *fragments: str) -> dict[str, Any]:
    assert response["ok"] is False, response
    error = response["error"]
    assert error["type"] == error_type
    assert error["mro"][:2] == [error_type, "ContractError"]
    assert error["retryable"] is False
    for fragment in fragments:
        assert fragment in error["message"]
    return error


# --------------------------------------------------------------------------------------------- results and routes


def test_a_returned_dict_is_the_next_payload_with_route_and_headers_kept(start: Callable[..., ServerProcess]) -> None:
    server = start("echo")
    response = server.call({"text": "hi", "n": 1})
    envelope = make_envelope({})
    assert response == {
        "ok": True,
        "kind": "return",
        "outputs": [{"route": envelope["route"], "headers": envelope["headers"], "payload": {"text": "hi", "n": 1}}],
    }


def test_returning_none_ends_the_envelope(start: Callable[..., ServerProcess]) -> None:
    assert start("end_here").call({"x": 1}) == {"ok": True, "kind": "none", "outputs": []}


def test_a_generator_fans_out_with_a_route_and_header_snapshot_per_child(start: Callable[..., ServerProcess]) -> None:
    connection = start("fan_out").connect()
    response = connection.call({"n": 3})
    assert response["ok"] is True and response["kind"] == "stream"
    assert [output["payload"] for output in response["outputs"]] == [{"i": 0}, {"i": 1}, {"i": 2}]
    for index, output in enumerate(response["outputs"]):
        assert output["route"] == {"prev": ["ingest"], "curr": "score", "next": [f"worker-{index}"]}
        assert output["headers"] == {"traceparent": TRACEPARENT, "index": index}
    single = connection.call({"n": 1})
    assert (single["kind"], len(single["outputs"])) == ("stream", 1)
    assert connection.call({"n": 0}) == {"ok": True, "kind": "none", "outputs": []}


def test_set_del_and_get_commands_edit_the_envelope(start: Callable[..., ServerProcess]) -> None:
    envelope = make_envelope({"keep": 1, "remove": 2}, drop_me="x")
    response = start("commands").connect().call(None, envelope=envelope)
    assert response["ok"] is True, response
    [output] = response["outputs"]
    assert output["route"] == {"prev": ["ingest"], "curr": "score", "next": ["store"]}
    assert output["headers"] == {
        "traceparent": TRACEPARENT,
        "seen": {"trace": TRACEPARENT, "curr": "score", "prev": ["ingest"], "attempt": 2, "missing": None},
        "nested": {"deep": 1},
    }
    assert output["payload"] == {"keep": 1, "added": True}


@pytest.mark.parametrize(
    ("command", "error_fragment"),
    [
        (["SET", ".id", "x"], ".id is read-only"),
        (["SET", ".parent_id", "x"], ".parent_id is read-only"),
        (["SET", ".route.prev", ["x"]], ".route.prev is read-only"),
        (["SET", ".route.curr", "x"], ".route.curr is read-only"),
        (["DEL", ".status.attempt"], ".status can be written, not deleted"),
        (["SET", ".headers", {}], ".headers is read-only"),
        (["GET", ".route.next[:1]"], "slices are for SET only"),
        (["SET", ".headers.x[0:1]", [1]], "slices are for SET of .route.next only"),
        (["SET", ".route.next", "store"], ".route.next must be a list of actor names"),
        (["SET", ".headers.traceparent.x", 1], ".headers.traceparent is a"),
        (["SET", "headers.x", 1], "must start with '.'"),
        (["SET", ".nope", 1], "unknown field"),
        (["PUT", ".headers.x", 1], "unknown command"),
        (["GET", ".headers.x", 1], "GET takes 1 argument"),
    ],
)
def test_bad_and_read_only_commands_are_refused(
    start: Callable[..., ServerProcess], kind: ServerKind, command: list[Any], error_fragment: str
) -> None:
    response = start("write_path").call({"command": command})
    error = assert_contract_error(response, "EnvelopeCommandError", error_fragment)
    assert error_fragment in error["traceback"]
    if kind.name == "python":  # Python extends a traceback as it passes a yield; a JS stack is fixed at creation
        assert "in write_path" in error["traceback"], "the traceback points at the handler's yield"


@pytest.mark.parametrize(
    ("handler", "fragment"), [("returns_list", "the handler returned"), ("yields_string", "the handler yielded")]
)
def test_a_result_that_is_not_a_dict_is_refused(
    start: Callable[..., ServerProcess], handler: str, fragment: str
) -> None:
    assert_contract_error(start(handler).call({}), "HandlerResultError", fragment)


def test_an_exception_is_reported_with_type_mro_message_and_traceback(start: Callable[..., ServerProcess]) -> None:
    response = start("fail").call({})
    assert response["ok"] is False
    error = response["error"]
    assert error["type"] == "RateLimited"
    assert error["mro"][:2] == ["RateLimited", "TransientError"]
    assert {"Exception", "Error"} & set(error["mro"]), "the language's base error class is in the mro"
    assert error["message"] == "slow down"
    assert error["retryable"] is True
    assert "fail" in error["traceback"] and "_handlers." in error["traceback"]
    assert "handler_server" not in error["traceback"], "the server's own frames are left out"


def test_python_reports_qualified_names_of_the_error_and_its_bases(
    kind: ServerKind, start: Callable[..., ServerProcess]
) -> None:
    error = start("fail").call({})["error"]
    if kind.name == "node":
        assert "mro_qualified" not in error, "JavaScript errors have no module path: rules match their short names"
        return
    assert error["mro_qualified"][:2] == ["py_handlers.RateLimited", "py_handlers.TransientError"]
    assert error["mro_qualified"][-2:] == ["builtins.Exception", "builtins.BaseException"]
    assert len(error["mro_qualified"]) == len(error["mro"])


# ------------------------------------------------------------------------------------------ FLY (partial outputs)


def test_fly_events_are_accepted_counted_and_dropped(start: Callable[..., ServerProcess]) -> None:
    response = start("flies").call({"n": 3})
    assert response["ok"] is True and response["kind"] == "stream"
    [output] = response["outputs"]
    assert output["payload"] == {"done": True, "replies": [None, None, None]}, "FLY sends nothing back"
    assert response["fly"] == 3


def test_an_async_generator_may_fly_too(start: Callable[..., ServerProcess]) -> None:
    response = start("async_flies").call({})
    assert [o["payload"] for o in response["outputs"]] == [{"done": True}] and response["fly"] == 2


def test_a_generator_that_only_flies_ends_the_envelope(start: Callable[..., ServerProcess]) -> None:
    response = start("only_flies").call({})
    assert response["kind"] == "none" and response["outputs"] == [] and response["fly"] == 1


def test_a_call_without_fly_events_has_no_fly_field(start: Callable[..., ServerProcess]) -> None:
    assert "fly" not in start("fan_out").call({"n": 2})
    assert "fly" not in start("echo").call({"x": 1})


def test_fly_without_its_argument_is_a_command_error(start: Callable[..., ServerProcess]) -> None:
    assert_contract_error(start("bad_fly").call({}), "EnvelopeCommandError", "FLY takes 1 argument")


# ------------------------------------------------------------------------------------------ kinds of handler


def test_an_async_handler_is_awaited(start: Callable[..., ServerProcess]) -> None:
    [output] = start("async_echo").call({"x": 1})["outputs"]
    assert output["payload"] == {"x": 1, "async": True}


def test_an_async_generator_streams_outputs_and_runs_commands(start: Callable[..., ServerProcess]) -> None:
    response = start("async_fan_out").call({"n": 2})
    assert response["kind"] == "stream"
    assert [(o["payload"], o["headers"]["index"]) for o in response["outputs"]] == [
        ({"i": 0, "curr": "score"}, 0),
        ({"i": 1, "curr": "score"}, 1),
    ]


def test_a_class_handler_is_instantiated_once(start: Callable[..., ServerProcess]) -> None:
    server = start("Counter.handle")
    first = server.connect()
    results = [first.call({})["outputs"][0]["payload"] for _ in range(3)]
    results.append(server.call({})["outputs"][0]["payload"])  # another connection, the same instance
    assert results == [{"calls": n, "instances": 1} for n in (1, 2, 3, 4)]


@pytest.mark.parametrize("concurrency", [1, 2])
def test_the_concurrency_limit_is_honoured(start: Callable[..., ServerProcess], concurrency: int) -> None:
    server = start("slow_async", **{handler_server.ENV_HANDLER_CONCURRENCY: str(concurrency)})
    connections = [server.connect() for _ in range(4)]
    sleep_s = 0.3
    results: list[Any] = []
    started = time.monotonic()
    threads = [threading.Thread(target=lambda c=c: results.append(c.call({"sleep_s": sleep_s}))) for c in connections]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    elapsed = time.monotonic() - started
    assert len(results) == 4 and all(r["ok"] for r in results), results
    assert max(r["outputs"][0]["payload"]["max_active"] for r in results) == concurrency
    rounds = 4 // concurrency
    assert elapsed >= rounds * sleep_s * 0.9, f"{elapsed:.2f} s for {rounds} rounds of {sleep_s} s"


# --------------------------------------------------------------------------------------------- health and life


def test_health_op_and_the_health_flag(start: Callable[..., ServerProcess]) -> None:
    server = start("echo")
    connection = server.connect()
    health = connection.request({"op": "health"})
    connection.close()  # an open connection would hold a draining server open (see the SIGTERM test)
    assert health["ok"] is True and health["status"] == "ok" and health["in_flight"] == 0
    assert health["pid"] == server.proc.pid and health["handler"] == server.kind.handler("echo")
    status, elapsed = server.health_cli()
    assert status == 0
    assert elapsed < 5.0, f"--health took {elapsed:.2f} s"  # ~0.1 s here; generous for a loaded CI machine
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert server.health_cli()[0] == 1, "no server: unhealthy"


def test_a_hung_call_turns_health_to_hung_and_ends_the_process_with_status_70(
    start: Callable[..., ServerProcess],
) -> None:
    server = start("hang")
    stuck = server.connect()
    stuck.send({"op": "call", "envelope": make_envelope({}), "timeout_s": 0.5})
    watcher = server.connect()
    started = time.monotonic()
    health = wait_for(
        lambda: (h := watcher.request({"op": "health"}))["status"] == "hung" and h, what="health to report hung"
    )
    assert health["ok"] is False and health["in_flight"] == 1
    assert server.wait_exit() == handler_server.EXIT_HUNG
    assert time.monotonic() - started < 0.5 + handler_server.HUNG_GRACE_S + 5
    [hung] = [event for event in server.log_events() if event["event"] == "hung"]
    assert hung["level"] == "error" and hung["exit_status"] == 70
    assert stuck.frames.readline() == b"", "the stuck call's connection is closed, unanswered"


def test_sigterm_finishes_the_call_in_flight_then_exits_0(start: Callable[..., ServerProcess]) -> None:
    server = start("slow")
    busy = server.connect()
    busy.send({"op": "call", "envelope": make_envelope({"sleep_s": 1.0}), "timeout_s": 30})
    watcher = server.connect()
    wait_for(lambda: watcher.request({"op": "health"})["in_flight"] == 1, what="the call to start")
    watcher.close()
    server.proc.send_signal(signal.SIGTERM)
    wait_for(lambda: not os.path.exists(server.socket_path), what="the socket to be removed")
    with pytest.raises(OSError):
        Connection(server.socket_path)
    response = busy.receive()
    assert response["ok"] is True and response["outputs"][0]["payload"] == {"slept": 1.0}
    busy.close()
    assert server.wait_exit() == 0
    assert [e["event"] for e in server.log_events()] == ["start", "stopping", "stop"]


def test_sigterm_closes_idle_keep_alive_connections_and_exits_at_once(start: Callable[..., ServerProcess]) -> None:
    """A client's pooled connections no longer keep a stopped server up for the drain bound (25 s): an idle one
    is closed right after the grace, and the server exits (``asya dev --watch`` reloads in about a second)."""
    server = start("echo")
    idle = server.connect()
    assert idle.call({"a": 1})["ok"] is True  # a used connection, kept open as the sidecar keeps it
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.wait_exit() == 0
    assert time.monotonic() - started < 1.5
    assert idle.frames.readline() == b"", "the idle connection was closed by the server"
    assert [e["event"] for e in server.log_events()] == ["start", "stopping", "stop"]


def test_a_stopping_server_leaves_its_successors_socket_in_place(kind: ServerKind) -> None:
    first = ServerProcess(kind, "echo", handlers_dir=HANDLERS_DIR)
    second = ServerProcess(kind, "echo", handlers_dir=HANDLERS_DIR)
    second.socket_path = first.socket_path  # the next server binds the path while the first still runs
    second.env[handler_server.ENV_SOCKET_PATH] = first.socket_path
    try:
        first.start().wait_ready()
        second.start()
        wait_for(lambda: Connection(first.socket_path).request({"op": "health"})["pid"] == second.proc.pid,
                 what="the second server to bind the path")
        first.proc.send_signal(signal.SIGTERM)
        assert first.wait_exit() == 0
        assert os.path.exists(first.socket_path)
        assert Connection(first.socket_path).request({"op": "health"})["pid"] == second.proc.pid
    finally:
        second.close()
        first.close()


def test_a_handler_that_exits_the_process_is_a_crash_with_status_1(start: Callable[..., ServerProcess]) -> None:
    server = start("exits")
    connection = server.connect()
    connection.send({"op": "call", "envelope": make_envelope({}), "timeout_s": 10})
    assert connection.frames.readline() == b"", "the call's connection is closed, unanswered"
    assert server.wait_exit() == 1
    assert [e["event"] for e in server.log_events()] == ["start", "crash"]


@pytest.mark.parametrize(
    ("handler", "fragment"),
    [
        ("", "ASYA_HANDLER is not set"),
        ("no_such_module.handle", "not found"),
        ("nope", "has no"),
        ("Broken.handle", "model weights missing"),
    ],
)
def test_a_startup_error_exits_2_with_one_readable_line(kind: ServerKind, handler: str, fragment: str) -> None:
    if handler == "no_such_module.handle" and kind.name == "node":
        handler = "no_such_file.js:handle"
    server = ServerProcess(kind, handler, handlers_dir=HANDLERS_DIR)
    if handler.startswith("no_such"):
        server.env[handler_server.ENV_HANDLER] = handler
    try:
        server.start()
        assert server.wait_exit() == handler_server.EXIT_STARTUP_ERROR
        [line] = server.stderr().strip().splitlines()
        record = json.loads(line)
        assert record["event"] == "startup_failed"
        assert "ASYA_HANDLER" in record["message"] and fragment in record["message"]
        if handler:
            assert server.env[handler_server.ENV_HANDLER] in record["message"]
        assert not os.path.exists(server.socket_path)
    finally:
        server.close()


def _check(kind: ServerKind, handler: str) -> tuple[int, dict[str, Any]]:
    """Run ``--check`` for ``handler`` (the server's own form) and return its exit status and its JSON answer."""
    env = {**os.environ, handler_server.ENV_HANDLER: handler, handler_server.ENV_HANDLER_PATH: str(HANDLERS_DIR)}
    done = subprocess.run([*kind.command, "--check"], env=env, capture_output=True, text=True, timeout=30)
    [line] = done.stdout.splitlines()
    return done.returncode, json.loads(line)


def test_check_loads_the_handler_and_answers_ok_without_listening_or_creating_the_class(kind: ServerKind) -> None:
    assert _check(kind, kind.handler("echo")) == (0, {"ok": True, "handler": kind.handler("echo")})
    # Broken() raises in its constructor; --check finds Broken.handle on the class and never creates one
    status, answer = _check(kind, kind.handler("Broken.handle"))
    assert (status, answer["ok"]) == (0, True)


def test_check_names_a_misspelled_function_and_what_the_module_has(kind: ServerKind) -> None:
    status, answer = _check(kind, kind.handler("ecko"))
    assert status == handler_server.EXIT_STARTUP_ERROR and answer["ok"] is False
    assert (answer["problem"], answer["missing"]) == ("attribute", "ecko")
    assert "echo" in answer["candidates"] and "ecko" in answer["message"]
    assert handler_server.close_match("ecko", answer["candidates"]) == "echo"
    if kind.name == "python":
        assert "did you mean 'echo'?" in answer["message"]


def test_check_names_a_missing_module(kind: ServerKind) -> None:
    handler = "py_handler.echo" if kind.name == "python" else "js_handler.js:echo"
    status, answer = _check(kind, handler)
    assert status == handler_server.EXIT_STARTUP_ERROR
    assert answer["problem"] == "module" and answer["missing"] in ("py_handler", "js_handler.js")
    assert handler_server.close_match(answer["missing"], answer["candidates"]) in ("py_handlers", "js_handlers.js")


def test_check_names_the_module_whose_import_raises_and_the_exception(kind: ServerKind) -> None:
    handler = "import_fails.handle" if kind.name == "python" else "import_fails.js:handle"
    status, answer = _check(kind, handler)
    assert status == handler_server.EXIT_STARTUP_ERROR and answer["problem"] == "import"
    assert "import_fails" in answer["message"] and "\n" not in answer["message"]
    assert "a_dependency_that_is_not_installed" in answer["message"].replace("-", "_")


def test_a_handler_that_takes_two_parameters_is_refused_at_load(kind: ServerKind) -> None:
    status, answer = _check(kind, kind.handler("two_args"))
    assert (status, answer["problem"]) == (handler_server.EXIT_STARTUP_ERROR, "signature")
    assert "payload" in answer["message"]
    server = ServerProcess(kind, "two_args", handlers_dir=HANDLERS_DIR)
    try:  # serving refuses it too: one startup_failed line, and no socket
        assert server.start().wait_exit() == handler_server.EXIT_STARTUP_ERROR
        [record] = server.log_events()
        assert record["event"] == "startup_failed" and "two_args" in record["message"]
        assert not os.path.exists(server.socket_path)
    finally:
        server.close()


def test_a_stale_socket_file_is_replaced(kind: ServerKind) -> None:
    stale = ServerProcess(kind, "echo", handlers_dir=HANDLERS_DIR)
    os.makedirs(os.path.dirname(stale.socket_path))
    Path(stale.socket_path).write_text("left behind by a crashed process")
    try:
        stale.start().wait_ready()
        assert stale.connect().call({"a": 1})["ok"] is True
    finally:
        stale.close()


# ----------------------------------------------------------------------------------------------- framing


def test_a_900_kb_payload_round_trips(start: Callable[..., ServerProcess]) -> None:
    payload = {"blob": "x" * 900_000, "rows": [{"i": i, "v": "ü" * 10} for i in range(1000)]}
    connection = start("echo").connect()
    for _ in range(2):  # twice on one connection: framing survives big frames
        assert connection.call(payload)["outputs"][0]["payload"] == payload


def test_unicode_round_trips_as_raw_utf8(start: Callable[..., ServerProcess]) -> None:
    payload = {"text": "héllo wörld — 世界 🚀", "🔑": "ключ", "escapes": 'line\nbreak "quoted" \\ tab\t'}
    connection = start("echo").connect()
    connection.send({"op": "call", "envelope": make_envelope(payload), "timeout_s": 10})
    raw = connection.receive_raw()
    assert "🚀".encode() in raw, "non-ASCII text is sent as UTF-8, not \\u escapes (smaller messages)"
    assert json.loads(raw)["outputs"][0]["payload"] == payload


@pytest.mark.parametrize(
    ("frame", "fragment"),
    [
        (b"this is not json\n", "not JSON"),
        (b'{"op": "dance"}\n', "unknown op"),
        (b'{"op": "call", "envelope": {"payload": {}}}\n', "'route'"),
        (b'{"op": "call", "envelope": {"route": {"curr": "a"}}, "timeout_s": "soon"}\n', "timeout_s"),
    ],
)
def test_a_bad_frame_gets_a_protocol_error_and_the_connection_stays_usable(
    start: Callable[..., ServerProcess], frame: bytes, fragment: str
) -> None:
    connection = start("echo").connect()
    assert_contract_error(connection.request(frame), "ProtocolError", fragment)
    assert connection.call({"still": "works"})["outputs"][0]["payload"] == {"still": "works"}


def test_identity_calls_per_second_over_one_connection(start: Callable[..., ServerProcess], kind: ServerKind) -> None:
    """A floor, not a benchmark: a regression to a thread or process per call would fall far below it."""
    connection = start("echo").connect()
    frame = json.dumps({"op": "call", "envelope": make_envelope({"x": 1}), "timeout_s": 10}).encode() + b"\n"
    calls = 2000
    started = time.perf_counter()
    for _ in range(calls):
        connection.send(frame)
        connection.receive_raw()
    rate = calls / (time.perf_counter() - started)
    print(f"{kind.name} handler server: {rate:.0f} identity calls/s over one connection")
    assert rate > 500


def test_the_node_server_uses_the_python_servers_names() -> None:
    js = (Path(handler_server.__file__).with_suffix(".js")).read_text()
    assert f'const DEFAULT_SOCKET_PATH = "{handler_server.DEFAULT_SOCKET_PATH}";' in js
    for name in ("ENV_HANDLER", "ENV_SOCKET_PATH", "ENV_HANDLER_CONCURRENCY"):
        assert f'const {name} = "{getattr(handler_server, name)}";' in js
    assert (handler_server.EXIT_HUNG, handler_server.EXIT_STARTUP_ERROR) == (70, 2)


# ------------------------------------------------------------------------------ call_batch (spec.batch)
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
    start: Callable[..., ServerProcess],
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
