"""asya_pulumi.local.broker: the embedded SQS + S3 server that `asya dev`, the benchmarks and the tests start."""

from __future__ import annotations

import os
import signal
import socket
import time
import uuid
from pathlib import Path

import boto3
import pytest

from asya_pulumi.local.broker import BrokerError, LocalBroker, broker_python, default_broker_kind
from asya_pulumi.local.processes import Supervisor


def test_a_missing_broker_interpreter_is_reported_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYA_BROKER_PYTHON", "/nonexistent/python")
    with pytest.raises(BrokerError, match=r"scripts/setup.*ASYA_BROKER_PYTHON"):
        broker_python()


def test_an_unknown_broker_kind_is_refused_with_the_choices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASYA_BROKER", "elasticmq")
    with pytest.raises(BrokerError, match=r"ASYA_BROKER='elasticmq'.*fauxqs, localstack"):
        default_broker_kind()
    monkeypatch.delenv("ASYA_BROKER")
    assert default_broker_kind() == "fauxqs"


def test_the_running_broker_serves_sqs_and_s3_on_loopback(broker: LocalBroker, sqs, s3) -> None:  # type: ignore[no-untyped-def]
    assert broker.endpoint.startswith("http://127.0.0.1:") and broker.is_healthy()
    name = f"asya-broker-{uuid.uuid4().hex[:12]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1)["Messages"][0]["Body"] == "hello"
    s3.create_bucket(Bucket=name)
    s3.put_object(Bucket=name, Key="k", Body=b"v")
    assert s3.get_object(Bucket=name, Key="k")["Body"].read() == b"v"


def _wait_restarted(broker: LocalBroker, *, old_pid: int, timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = broker.pid
        if pid is not None and pid != old_pid and broker.is_healthy():
            return pid
        time.sleep(0.05)
    raise AssertionError(f"the broker was not back within {timeout_s:g} s; see {broker.log_path}")


def test_a_sigkilled_broker_comes_back_on_its_port_with_every_queue_message_and_object() -> None:
    """Visible, delayed and in-flight messages and the bucket's objects survive; the held receipt handle still works
    (a sidecar's delete after the restart removes the message instead of leaving it to be delivered twice)."""
    with LocalBroker(kind="fauxqs") as broker:
        assert broker.state_file is not None
        sqs = boto3.client("sqs", **broker.client_kwargs())
        s3 = boto3.client("s3", **broker.client_kwargs())
        url = sqs.create_queue(QueueName="survivor")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(6)])
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=2)
        held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)["Messages"]
        s3.create_bucket(Bucket="survivor-bucket")
        s3.put_object(Bucket="survivor-bucket", Key="success/x.json", Body=b"{}")
        port, old_pid = broker.port, broker.pid
        assert old_pid is not None

        os.killpg(old_pid, signal.SIGKILL)
        new_pid = _wait_restarted(broker, old_pid=old_pid)

        assert broker.port == port and broker.restarts == 1 and new_pid != old_pid
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                 "ApproximateNumberOfMessagesDelayed"]
        depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        assert [int(depth[n]) for n in names] == [4, 2, 1]
        for message in held:  # the handles from before the kill
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        assert int(depth["ApproximateNumberOfMessagesNotVisible"]) == 0
        assert s3.get_object(Bucket="survivor-bucket", Key="success/x.json")["Body"].read() == b"{}"
        assert broker.log_path is not None and "1 queues restored" in broker.log_path.read_text()


def test_an_in_memory_broker_is_not_restarted(tmp_path: Path) -> None:
    with LocalBroker(kind="fauxqs", persist=False, state_dir=tmp_path) as broker:
        assert broker.state_file is None
        pid = broker.pid
        assert pid is not None
        os.killpg(pid, signal.SIGKILL)
        time.sleep(1.0)
        assert broker.pid is None and broker.restarts == 0
    assert tmp_path.is_dir() and not list(tmp_path.glob("fauxqs.db*"))  # a given directory is the caller's to remove


def test_a_broker_that_exits_before_it_is_healthy_is_one_error_with_its_log(tmp_path: Path) -> None:
    with socket.socket() as taken:  # the port is in use: fauxqs exits at once
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        broker = LocalBroker(kind="fauxqs", port=taken.getsockname()[1], state_dir=tmp_path)
        with pytest.raises(BrokerError, match=r"(?s)fauxqs exited with 1:.*EADDRINUSE"):
            broker.start()
    assert broker.pid is None  # stopped, not restarted behind the error


def test_asya_devs_wait_ends_in_one_line_when_the_broker_stays_unreachable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """watch_run (the loop `asya dev` waits in) skips the polls a restarting broker refuses (test_dev_broker_kill.py);
    one that does not come back ends the run with one line after UNREACHABLE_LIMIT_S, not a botocore traceback."""
    from asya_pulumi.cli.aws import Endpoints, s3_client, sqs_client
    from asya_pulumi.cli.dev import run
    from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
    from asya_pulumi.local.results import ResultCollector
    from asya_pulumi.ops.mesh_queues import MeshQueues
    from asya_pulumi.records import result_bucket_name
    from asya_pulumi.spec.actor import AsyncActorSpec
    from asya_pulumi.spec.mesh import MeshSpec
    from asya_runtime.envelope import new_envelope

    monkeypatch.setattr(run, "UNREACHABLE_LIMIT_S", 2.0)
    actor = AsyncActorSpec.model_validate({"name": "a", "image": "local", "handler": "steps.a"})
    mesh = MeshSpec(namespace="gone", actors=[actor], routes={"go": ["a"]})
    broker = LocalBroker(kind="fauxqs", persist=False).start()
    try:
        endpoints = Endpoints(region="us-east-1", sqs_endpoint=broker.endpoint, s3_endpoint=broker.endpoint)
        sqs, s3 = sqs_client(endpoints, attempts=1), s3_client(endpoints, attempts=1)
        settings = mesh_queue_settings(mesh)
        urls = create_queues(sqs=sqs, settings=settings)
        bucket = result_bucket_name(namespace=mesh.namespace)
        create_bucket(s3=s3, bucket=bucket, region="us-east-1")
        queues = MeshQueues(sqs=sqs, namespace=mesh.namespace)
        for setting in settings:
            queues.url(setting.dlq_name)  # resolved while the broker runs, as `asya dev` has by then
        collector = ResultCollector(s3=s3, bucket=bucket)
    finally:
        broker.stop()
    supervisor = Supervisor(specs=[], log_dir=tmp_path)
    started = time.monotonic()
    outcome = run.watch_run(
        queues=queues, collector=collector, supervisor=supervisor, settings=settings,
        urls=urls, inputs=[new_envelope(route=["a"], payload={})], replicas={"a": 1}, timeout_s=60,
    )
    assert [p.startswith("the broker has been unreachable for 2 s") for p in outcome.problems] == [True]
    assert len(outcome.missing) == 1 and time.monotonic() - started < 30
