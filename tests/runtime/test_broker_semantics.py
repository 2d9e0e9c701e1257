"""The SQS and S3 behaviour the mesh relies on, checked on every embedded broker (fauxqs and LocalStack).

The sidecar's retry and dead-letter design (docs/sidecar.md) and `asya dev`'s end-of-run rule
(asya_pulumi/local/results.py) assume these semantics of real SQS and S3. `asya dev` runs on fauxqs for speed; the
whole suite runs on it too. LocalStack, slower but the closer emulation, is the reference: every test here runs on
both, so an emulator upgrade that changes one of these behaviours fails here, not in a user's pipeline.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from asya_pulumi.local.broker import BROKER_KINDS, BrokerError, LocalBroker
from asya_pulumi.ops.mesh_queues import MeshQueues


@pytest.fixture(scope="module", params=BROKER_KINDS)
def server(request: pytest.FixtureRequest) -> Iterator[LocalBroker]:
    shared: LocalBroker = request.getfixturevalue("broker")
    if request.param == shared.kind:
        yield shared
        return
    try:
        other = LocalBroker(kind=request.param).start()
    except BrokerError as exc:
        pytest.skip(f"{request.param} is not installed here ({exc}); `scripts/setup --localstack` installs it")
    try:
        yield other
    finally:
        other.stop()


@pytest.fixture(scope="module")
def sqs(server: LocalBroker) -> Any:
    return boto3.client("sqs", **server.client_kwargs())


@pytest.fixture(scope="module")
def s3(server: LocalBroker) -> Any:
    return boto3.client("s3", **server.client_kwargs())


def _name() -> str:
    return f"sem-{uuid.uuid4().hex[:12]}"


def _queue(sqs: Any, *, visibility_s: int = 30, max_receives: int | None = None) -> tuple[str, str | None]:
    """A queue (and, with ``max_receives``, its DLQ wired by RedrivePolicy); returns (queue URL, DLQ URL)."""
    name = _name()
    attributes = {"VisibilityTimeout": str(visibility_s)}
    dlq_url = None
    if max_receives is not None:
        dlq_url = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"], dlq_url


def _depth(sqs: Any, url: str) -> tuple[int, int, int]:
    """(visible, in flight, delayed), read the way `asya status` and `asya dev` read it."""
    depth = MeshQueues(sqs=sqs, namespace="semantics").depth(url)
    return (depth.visible, depth.in_flight, depth.delayed)


def _receive(sqs: Any, url: str, *, wait_s: int = 0, **kwargs: Any) -> list[dict[str, Any]]:
    return list(
        sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait_s, MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"], **kwargs,
        ).get("Messages", [])
    )


def test_a_message_received_max_receive_count_times_moves_to_the_dlq(sqs: Any) -> None:
    url, dlq_url = _queue(sqs, max_receives=2)
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    counts = []
    for _ in range(2):
        [message] = _receive(sqs, url, wait_s=1)
        counts.append(message["Attributes"]["ApproximateReceiveCount"])
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    assert counts == ["1", "2"]
    assert _receive(sqs, url, wait_s=1) == []  # the third receive moves it instead of delivering it
    [dead] = _receive(sqs, dlq_url, wait_s=2)
    assert dead["Body"] == "poison"


def test_a_received_message_stays_hidden_until_its_visibility_times_out(sqs: Any) -> None:
    url, _ = _queue(sqs, visibility_s=1)
    sqs.send_message(QueueUrl=url, MessageBody="m")
    assert len(_receive(sqs, url, wait_s=1)) == 1
    assert _depth(sqs, url) == (0, 1, 0)
    assert _receive(sqs, url) == []
    time.sleep(1.2)
    # Counted as visible again although nobody received meanwhile (the counters are approximate: LocalStack
    # settles them on a timer, our fauxqs launcher on each GetQueueAttributes).
    deadline = time.monotonic() + 5
    while _depth(sqs, url) != (1, 0, 0) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _depth(sqs, url) == (1, 0, 0)
    [again] = _receive(sqs, url, wait_s=1)
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"


def test_change_visibility_zero_releases_at_once_and_a_deleted_message_is_gone(sqs: Any) -> None:
    url, _ = _queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(2)])
    first, second = sorted(_receive(sqs, url, wait_s=1), key=lambda m: m["Body"])
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=first["ReceiptHandle"], VisibilityTimeout=0)
    sqs.delete_message_batch(QueueUrl=url, Entries=[{"Id": "0", "ReceiptHandle": second["ReceiptHandle"]}])
    assert [m["Body"] for m in _receive(sqs, url, wait_s=1)] == ["m0"]
    assert _depth(sqs, url) == (0, 1, 0)


def test_a_per_message_delay_hides_it_and_counts_it_as_delayed(sqs: Any) -> None:
    url, _ = _queue(sqs)
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "0", "MessageBody": "later", "DelaySeconds": 2}])
    assert _depth(sqs, url) == (0, 0, 1)
    assert _receive(sqs, url) == []
    [message] = _receive(sqs, url, wait_s=5)
    assert message["Body"] == "later"


def test_a_long_poll_returns_as_soon_as_a_message_arrives(sqs: Any) -> None:
    url, _ = _queue(sqs)
    sender = threading.Timer(0.5, lambda: sqs.send_message(QueueUrl=url, MessageBody="wake"))
    started = time.monotonic()
    sender.start()
    try:
        messages = _receive(sqs, url, wait_s=10)
    finally:
        sender.join()
    assert [m["Body"] for m in messages] == ["wake"]
    assert time.monotonic() - started < 5  # woke on arrival, not at the end of the 10 s wait


def test_message_attributes_round_trip_with_checksums(sqs: Any) -> None:
    url, _ = _queue(sqs)
    attributes = {"attempt": {"DataType": "Number", "StringValue": "3"}, "kind": {"DataType": "String",
                                                                                  "StringValue": "retry"}}
    sqs.send_message(QueueUrl=url, MessageBody="{}", MessageAttributes=attributes)  # botocore checks the MD5s
    [message] = _receive(sqs, url, wait_s=1)
    assert message["MessageAttributes"] == attributes


def test_a_batch_reports_a_refused_entry_alone_and_sends_its_siblings(sqs: Any) -> None:
    url, _ = _queue(sqs)
    entries = [{"Id": "ok", "MessageBody": "fine"}, {"Id": "bad", "MessageBody": "\uffff"}]
    result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
    assert [e["Id"] for e in result["Successful"]] == ["ok"]
    [failed] = result["Failed"]
    assert failed["Id"] == "bad" and failed["Code"] == "InvalidMessageContents"
    assert [m["Body"] for m in _receive(sqs, url, wait_s=1)] == ["fine"]


def test_a_missing_queue_is_named_in_the_error(sqs: Any) -> None:
    with pytest.raises(ClientError) as raised:
        sqs.get_queue_url(QueueName=_name())
    assert "NonExistent" in raised.value.response["Error"]["Code"]


def test_s3_put_overwrites_one_key_and_lists_by_prefix(s3: Any) -> None:
    bucket = _name()
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="succeeded/a.json", Body=b'{"v": 1}', ContentType="application/json")
    s3.put_object(Bucket=bucket, Key="succeeded/a.json", Body=b'{"v": 2}', ContentType="application/json")
    s3.put_object(Bucket=bucket, Key="failed/b.json", Body=b"{}")
    listed = s3.list_objects_v2(Bucket=bucket, Prefix="succeeded/")["Contents"]
    assert [o["Key"] for o in listed] == ["succeeded/a.json"]
    assert s3.get_object(Bucket=bucket, Key="succeeded/a.json")["Body"].read() == b'{"v": 2}'
