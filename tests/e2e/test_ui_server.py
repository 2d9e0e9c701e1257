"""``asya ui``'s server against the real broker: live queue numbers in the graph, and the loopback defences.

Every request goes over a real socket with ``http.client``, so the Host, Origin and token checks are tested as a
browser (or an attacker's page) would meet them, not by calling the handler.
"""

from __future__ import annotations

import http.client
import json
import re
import signal
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from asya_pulumi.cli.dev.setup import load_mesh
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.records import result_bucket_name
from asya_pulumi.ui import security
from asya_pulumi.ui.backend import UiBackend
from asya_pulumi.ui.server import UiServer, index_page
from e2e.conftest import ASYA, EXAMPLES, run_asya


@pytest.fixture
def ui(broker: LocalBroker, sqs: Any, s3: Any, namespace: str) -> Iterator[UiServer]:
    """The image-scoring mesh's queues and bucket under a fresh namespace, and a UI server for it."""
    mesh, _ = load_mesh(str(EXAMPLES / "image-scoring"), namespace=namespace)
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    bucket = result_bucket_name(namespace=namespace)
    create_bucket(s3=s3, bucket=bucket, region=mesh.region)
    backend = UiBackend(
        queues=MeshQueues(sqs=sqs, namespace=namespace), s3=s3, bucket=bucket, routes=mesh.routes,
        declared_actors=[a.name for a in mesh.actors],
    )
    with UiServer(backend=backend) as server:
        yield server


def _request(
    server: UiServer, method: str, path: str, *, host: str | None = None, headers: dict[str, str] | None = None,
    body: Any = None,
) -> tuple[int, dict[str, str], bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    sent = {"Host": host or f"127.0.0.1:{server.port}", **(headers or {})}
    data = None if body is None else json.dumps(body).encode()
    if data is not None:
        sent["Content-Type"] = "application/json"
    connection.request(method, path, body=data, headers=sent)
    response = connection.getresponse()
    answer = response.status, dict(response.getheaders()), response.read()
    connection.close()
    return answer


def _replay(server: UiServer, **headers: str) -> tuple[int, dict[str, Any]]:
    status, _, body = _request(server, "POST", "/api/replay", headers=headers, body={"ids": ["x"], "dry_run": True})
    return status, json.loads(body)


def test_graph_shows_declared_routes_and_live_queue_numbers(ui: UiServer, sqs: Any, namespace: str):
    queues = MeshQueues(sqs=sqs, namespace=namespace)
    for _ in range(3):
        sqs.send_message(QueueUrl=queues.actor_url("preprocess"), MessageBody="{}")
    sqs.send_message(QueueUrl=queues.dlq_url("judge"), MessageBody="{}")

    status, _, body = _request(ui, "GET", "/api/graph")

    assert status == 200
    graph = json.loads(body)
    nodes = {n["name"]: n for n in graph["nodes"]}
    assert set(nodes) == {
        "preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink",
    }
    assert (nodes["preprocess"]["waiting"], nodes["preprocess"]["dlq"]) == (3, 0)
    assert (nodes["judge"]["waiting"], nodes["judge"]["dlq"]) == (0, 1)
    declared = {(e["from"], e["to"]) for e in graph["edges"] if e["kind"] == "declared"}
    assert declared == {("preprocess", "score-image"), ("score-image", "judge"), ("judge", "success-sink")}
    columns = [nodes[a]["column"] for a in ("preprocess", "score-image", "judge", "success-sink")]
    assert columns == sorted(columns) and len(set(columns)) == 4  # left to right along the route


@pytest.mark.parametrize("host", ["evil.example", f"evil.example:{0}", "127.0.0.1.evil.example", "10.0.0.1"])
def test_non_loopback_host_is_refused_before_anything_is_read(ui: UiServer, host: str):
    host = host.replace(":0", f":{ui.port}")
    for method, path in (("GET", "/"), ("GET", "/api/graph"), ("POST", "/api/replay")):
        status, _, body = _request(ui, method, path, host=host, headers={security.TOKEN_HEADER: ui.token})
        assert status == 403, (method, path, host)
        assert ui.token.encode() not in body


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "LOCALHOST", "[::1]"])
def test_loopback_hosts_with_our_port_are_served(ui: UiServer, host: str):
    status, headers, body = _request(ui, "GET", "/", host=f"{host}:{ui.port}")
    assert status == 200
    assert f'<meta name="asya-token" content="{ui.token}">'.encode() in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]  # no inline script can run
    wrong_port, _, _ = _request(ui, "GET", "/", host=f"{host}:{ui.port + 1}")
    assert wrong_port == 403


def test_replay_needs_the_token_and_our_origin(ui: UiServer):
    assert _replay(ui)[0] == 403
    assert _replay(ui, **{security.TOKEN_HEADER: "not-the-token"})[0] == 403
    cross = {security.TOKEN_HEADER: ui.token, "Origin": "http://evil.example"}
    assert _replay(ui, **cross)[0] == 403
    status, answer = _replay(ui, **{security.TOKEN_HEADER: ui.token, "Origin": f"http://127.0.0.1:{ui.port}"})
    assert status != 403, answer  # past the defences: the replay itself answers


def test_each_server_has_its_own_token(ui: UiServer):
    other = UiServer(backend=ui.backend)
    try:
        assert other.token != ui.token and len(ui.token) >= 40
    finally:
        other.httpd.server_close()


def test_only_the_page_files_are_served(ui: UiServer):
    assert _request(ui, "GET", "/static/app.js")[0] == 200
    for path in ("/static/../server.py", "/static/index.html/../../server.py", "/static/missing.js", "/etc/passwd"):
        assert _request(ui, "GET", path)[0] == 404, path


def test_page_escapes_the_namespace():
    page = index_page(token='t"><script>', namespace="<img src=x onerror=alert(1)>").decode()
    assert "<img src=x" not in page and "<script>" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_an_unknown_envelope_is_reported_as_not_found(ui: UiServer):
    status, _, body = _request(ui, "GET", f"/api/trace?id={uuid.uuid4()}")
    assert (status, json.loads(body)["state"]) == (200, "not found")
    status, _, body = _request(ui, "GET", "/api/trace")
    assert (status, json.loads(body)) == (400, {"error": "missing query parameter 'id'"})


def test_without_a_result_bucket_the_graph_still_shows_queues_and_records_say_why(
    broker: LocalBroker, sqs: Any, s3: Any, namespace: str
):
    mesh, _ = load_mesh(str(EXAMPLES / "image-scoring"), namespace=namespace)
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    with UiServer(backend=UiBackend(queues=MeshQueues(sqs=sqs, namespace=namespace), s3=s3)) as server:
        status, _, body = _request(server, "GET", "/api/graph")
        graph = json.loads(body)
        assert status == 200 and graph["queues_found"] == 7
        assert "no result bucket" in graph["records_problem"]
        status, _, body = _request(server, "GET", "/api/records")
        assert status == 400
        error = json.loads(body)["error"]
        assert "--bucket" in error and "Traceback" not in error and "\n" not in error


def test_asya_ui_serves_the_mesh_it_is_pointed_at(broker: LocalBroker, ui: UiServer, namespace: str):
    process = subprocess.Popen(
        [ASYA, "ui", "--mesh", str(EXAMPLES / "image-scoring"), "--namespace", namespace,
         "--sqs-endpoint", broker.endpoint, "--no-browser"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.fullmatch(rf"asya ui: http://127\.0\.0\.1:(\d+)/ \(mesh '{namespace}'; Ctrl-C stops it\)\n", line)
        assert match, line
        connection = http.client.HTTPConnection("127.0.0.1", int(match.group(1)), timeout=30)
        connection.request("GET", "/api/graph")
        graph = json.loads(connection.getresponse().read())
        assert graph["namespace"] == namespace and graph["routes"] == {"score": ["preprocess", "score-image", "judge"]}
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "no mesh namespace; pass --namespace NAME, --mesh PIPELINE_DIR or set ASYA_NAMESPACE"),
        (("--namespace", "m", "--port", "70000"), "--port 70000: a port is 0..65535 (0 picks a free one)"),
        (("--mesh", "no/such/dir"), "pipeline directory 'no/such/dir' does not exist"),
    ],
)
def test_asya_ui_usage_errors_are_one_line(args: tuple[str, ...], message: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ASYA_NAMESPACE", raising=False)
    run = run_asya("ui", *args, "--no-browser", timeout=60)
    assert (run.returncode, run.stdout, run.stderr) == (2, "", f"asya: error: {message}\n")


def test_asya_ui_refuses_a_namespace_without_queues(broker: LocalBroker, namespace: str):
    run = run_asya("ui", "--namespace", namespace, "--sqs-endpoint", broker.endpoint, "--no-browser", timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.startswith(f"asya: error: no queues found for namespace {namespace!r}; check --namespace")
    assert len(run.stderr.splitlines()) == 1


def _put_record(s3: Any, bucket: str, *, status: str, envelope_id: str, actor: str = "preprocess") -> None:
    """A final record as a sink writes it: a failed one at ``actor``, or a success that visited it."""
    failed = status == "failed"
    envelope = {
        "id": envelope_id, "route": {"prev": [] if failed else [actor], "curr": actor if failed else "success-sink",
                                     "next": []},
        "headers": {}, "payload": {"image_id": envelope_id, "pixels": []},
        "status": {"phase": "failed" if failed else "succeeded", "attempt": 1, "max_attempts": 1, "actor": actor,
                   "error": {"actor": actor, "type": "ValueError", "message": "bad pixels", "reason": "handler_error"}
                   if failed else None},
    }
    prefix = "failed" if failed else "succeeded"
    s3.put_object(Bucket=bucket, Key=f"{prefix}/{envelope_id}.json", Body=json.dumps(envelope).encode())


def _records(server: UiServer, query: str) -> dict[str, Any]:
    status, _, body = _request(server, "GET", f"/api/records?{query}")
    assert status == 200, body
    answer: dict[str, Any] = json.loads(body)
    return answer


def test_records_are_counted_and_paged_server_side_within_a_time_window(ui: UiServer, s3: Any):
    bucket = ui.backend.result_bucket()
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(7)]
    for i, envelope_id in enumerate(ids):
        _put_record(s3, bucket, status="failed" if i % 2 else "succeeded", envelope_id=envelope_id)

    first, second, last = (_records(ui, f"limit=3&offset={offset}") for offset in (0, 3, 6))

    assert [page["total"] for page in (first, second, last)] == [7, 7, 7]
    assert [len(page["records"]) for page in (first, second, last)] == [3, 3, 1]
    assert sorted(r["id"] for page in (first, second, last) for r in page["records"]) == ids  # each once
    failed = _records(ui, "status=failed&limit=2")
    assert (failed["total"], len(failed["records"])) == (3, 2)
    by_actor = _records(ui, "actor=preprocess&error_type=ValueError&limit=2&offset=2")
    assert (by_actor["total"], len(by_actor["records"])) == (3, 1)
    assert _records(ui, "since=1h")["total"] == 7
    assert _records(ui, "until=2020-01-01T00:00")["total"] == 0
    assert _records(ui, "since=2999-01-01T00:00Z")["total"] == 0
    status, _, body = _request(ui, "GET", "/api/records?since=yesterday")
    assert status == 400 and "neither a duration ago" in json.loads(body)["error"]


def test_replay_of_one_record_into_another_actor_with_a_replacement_payload(ui: UiServer, s3: Any, sqs: Any):
    from asya_pulumi.ops.replay import replay_id

    bucket = ui.backend.result_bucket()
    original = "0badc0de-0000-4000-8000-00000000e0e0"
    _put_record(s3, bucket, status="failed", envelope_id=original)
    headers = {security.TOKEN_HEADER: ui.token, "Origin": f"http://127.0.0.1:{ui.port}"}
    request = {"ids": [original], "to": "score-image", "payload": {"image_id": "fixed", "pixels": [1, 2]}}

    status, _, body = _request(ui, "POST", "/api/replay", headers=headers, body=request)
    plan = json.loads(body)
    assert status == 200 and plan["dry_run"] is True, plan
    assert plan["items"] == [{"id": original, "replay_id": replay_id(original), "actor": "score-image",
                              "error_type": "ValueError", "reason": None, "payload": request["payload"]}]

    status, _, body = _request(ui, "POST", "/api/replay", headers=headers, body={**request, "dry_run": False})
    sent = json.loads(body)
    assert status == 200 and sent["summary"] == "sent 1", sent
    assert [(i["id"], i["replay_id"], i["actor"]) for i in sent["sent_items"]] == [
        (original, replay_id(original), "score-image")
    ]
    queue = MeshQueues(sqs=sqs, namespace=ui.backend.namespace).actor_url("score-image")
    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
    envelope = json.loads(messages[0]["Body"])
    assert (envelope["id"], envelope["replay_of"], envelope["payload"]) == (
        replay_id(original), original, request["payload"]
    )


def test_a_replacement_payload_replays_exactly_one_envelope(ui: UiServer, s3: Any):
    bucket = ui.backend.result_bucket()
    for n in range(2):
        _put_record(s3, bucket, status="failed", envelope_id=f"0badc0de-0000-4000-8000-00000000000{n}")
    headers = {security.TOKEN_HEADER: ui.token}
    body = {"failed_at": "preprocess", "payload": {"pixels": [1]}}

    status, _, answer = _request(ui, "POST", "/api/replay", headers=headers, body=body)

    assert status == 400
    assert json.loads(answer)["error"].startswith("a replacement payload replays exactly one envelope; this selection")
