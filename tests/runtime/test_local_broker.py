"""asya_pulumi.local.broker: the embedded SQS + S3 server that `asya dev`, the benchmarks and the tests start."""

from __future__ import annotations

import uuid

import pytest

from asya_pulumi.local.broker import BrokerError, LocalBroker, broker_python, default_broker_kind


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
