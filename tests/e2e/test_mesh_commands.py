"""``asya send``, ``asya status`` and ``asya dlq redrive`` against a namespace on the real (local) broker.

The queues are created with :func:`asya_pulumi.local.queues.create_queues`, the code ``asya dev`` uses, from the
image-scoring pipeline; no actor runs, so every message stays where the commands put it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from asya_pulumi.cli.errors import EXIT_DLQ_NOT_EMPTY, EXIT_OK
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.queues import create_queues, mesh_queue_settings
from asya_pulumi.records import traceparent_for
from asya_pulumi.spec import load_pipeline_dir
from asya_runtime.naming import dlq_name, queue_name
from e2e.conftest import EXAMPLES, run_asya


def _depth(sqs: Any, name: str) -> int:
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


def test_send_status_and_redrive(broker: LocalBroker, sqs: Any, namespace: str):
    mesh = load_pipeline_dir(EXAMPLES / "image-scoring").model_copy(update={"namespace": namespace})
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    where = ["--sqs-endpoint", broker.endpoint, "--namespace", namespace]

    sent = run_asya("send", "preprocess,score-image", '{"image_id": "x", "pixels": [1]}', *where, timeout=60)
    assert sent.returncode == 0, sent.stderr
    envelope_id = sent.stdout.strip()
    url = sqs.get_queue_url(QueueName=queue_name(namespace=namespace, actor="preprocess"))["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5, VisibilityTimeout=0)["Messages"]
    body = json.loads(message["Body"])
    assert body["id"] == envelope_id
    assert body["route"] == {"prev": [], "curr": "preprocess", "next": ["score-image"]}
    assert body["payload"] == {"image_id": "x", "pixels": [1]}
    assert body["headers"] == {"traceparent": traceparent_for(envelope_id)}  # rooted at its id, as docs say

    dlq_url = sqs.get_queue_url(QueueName=dlq_name(namespace=namespace, actor="judge"))["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"poison": i}))
    status = run_asya("status", *where, timeout=60)
    assert status.returncode == EXIT_DLQ_NOT_EMPTY, status.stderr  # judge's DLQ holds 3
    assert "dead-lettered messages: judge (3)" in status.stdout
    cells = [line.replace("│", " ").split() for line in status.stdout.splitlines()]
    rows = {row[0]: row[1:] for row in cells if row}
    assert rows["preprocess"][0] == "1"  # waiting
    assert rows["judge"][3] == "3"  # DLQ
    assert set(rows) >= {"preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"}

    redrive = run_asya("dlq", "redrive", "judge", *where, timeout=120)
    assert redrive.returncode == 0, redrive.stdout + redrive.stderr
    assert "moved 3" in redrive.stdout
    deadline = time.monotonic() + 30
    while _depth(sqs, queue_name(namespace=namespace, actor="judge")) < 3 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _depth(sqs, queue_name(namespace=namespace, actor="judge")) == 3
    assert _depth(sqs, dlq_name(namespace=namespace, actor="judge")) == 0
    assert run_asya("status", *where, timeout=60).returncode == EXIT_OK  # every DLQ empty again


def test_a_hand_redrive_that_the_queue_refuses_leaves_the_message_in_the_dlq_and_fails(
    broker: LocalBroker, sqs: Any, namespace: str
):
    if broker.kind != "fauxqs":
        pytest.skip("the hand move runs only on a server without move tasks (fauxqs)")
    mesh = load_pipeline_dir(EXAMPLES / "image-scoring").model_copy(update={"namespace": namespace})
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    queue_url = sqs.get_queue_url(QueueName=queue_name(namespace=namespace, actor="store"))["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"MaximumMessageSize": "1024"})
    dlq_url = sqs.get_queue_url(QueueName=dlq_name(namespace=namespace, actor="store"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"big": "x" * 2000}))
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"small": 1}))

    redrive = run_asya("dlq", "redrive", "store", "--sqs-endpoint", broker.endpoint, "--namespace", namespace,
                       timeout=120)

    assert redrive.returncode == 1, redrive.stdout + redrive.stderr
    assert "by hand" in redrive.stderr and "moved 1 message(s)" in redrive.stdout  # progress on stderr
    assert "1 message(s) stay in the DLQ: store's queue refused them (InvalidParameterValue × 1)" in redrive.stdout
    assert _depth(sqs, queue_name(namespace=namespace, actor="store")) == 1


def test_send_and_redrive_print_one_json_object_with_json(broker: LocalBroker, sqs: Any, namespace: str):
    mesh = load_pipeline_dir(EXAMPLES / "image-scoring").model_copy(update={"namespace": namespace})
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    where = ["--sqs-endpoint", broker.endpoint, "--namespace", namespace, "--json"]

    sent = run_asya("send", "preprocess,score-image", '{"image_id": "x"}', *where, timeout=60)
    empty = run_asya("dlq", "redrive", "judge", *where, timeout=60)
    dlq_url = sqs.get_queue_url(QueueName=dlq_name(namespace=namespace, actor="judge"))["QueueUrl"]
    sqs.send_message(QueueUrl=dlq_url, MessageBody=json.dumps({"poison": 1}))
    moved = run_asya("dlq", "redrive", "judge", *where, timeout=120)

    assert sent.returncode == empty.returncode == moved.returncode == 0, sent.stderr + empty.stderr + moved.stderr
    assert json.loads(sent.stdout) == {"id": json.loads(sent.stdout)["id"], "route": ["preprocess", "score-image"],
                                       "namespace": namespace}
    assert json.loads(empty.stdout) == {"actor": "judge", "waiting": 0, "moved": 0, "state": "empty", "task": None}
    result = json.loads(moved.stdout)  # the whole of stdout: progress lines went to stderr
    assert (result["actor"], result["waiting"], result["moved"], result["state"]) == ("judge", 1, 1, "completed")


def test_send_to_an_unknown_actor_is_a_usage_error(broker: LocalBroker, namespace: str):
    run = run_asya("send", "ghost", "{}", "--sqs-endpoint", broker.endpoint, "--namespace", namespace, timeout=60)
    assert run.returncode == 2
    assert run.stderr.strip() == (
        f"asya: error: queue '{queue_name(namespace=namespace, actor='ghost')}' does not exist; "
        f"check the actor name and --namespace '{namespace}'; if 'ghost' is a route of the mesh, pass --mesh "
        "PIPELINE_DIR (or --stack) so that its routes are known"
    )


def test_send_takes_a_route_name_of_the_mesh_wherever_an_actor_name_goes(
    broker: LocalBroker, sqs: Any, namespace: str, tmp_path: Path
):
    pipeline = tmp_path / "greeter"
    assert run_asya("init", str(pipeline), timeout=60).returncode == 0  # its mesh declares the route 'greet'
    mesh = load_pipeline_dir(pipeline).model_copy(update={"namespace": namespace})
    (route_name, actors), *_ = mesh.routes.items()
    create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    where = ["--sqs-endpoint", broker.endpoint, "--namespace", namespace, "--mesh", str(pipeline), "--json"]

    sent = run_asya("send", route_name, '{"name": "route"}', *where, timeout=60)
    unknown = run_asya("send", "nope", "{}", *where, timeout=60)

    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["route"] == list(actors)
    url = sqs.get_queue_url(QueueName=queue_name(namespace=namespace, actor=actors[0]))["QueueUrl"]
    [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=5)["Messages"]
    assert json.loads(message["Body"])["payload"] == {"name": "route"}
    assert unknown.returncode == 2 and "'nope' is neither a route of the mesh (routes: " in unknown.stderr
