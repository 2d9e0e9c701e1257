"""The counting proxy that the benchmark's request numbers rest on: real calls through it, counted at the proxy."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import boto3

from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker
from bench.counting_proxy import CountingProxyProcess, sqs_action


def test_counts_every_sqs_call_by_action_and_bills_64_kib_chunks(broker: LocalBroker, tmp_path: Path) -> None:
    with CountingProxyProcess(upstream=broker.endpoint, workdir=str(tmp_path)) as proxy:
        sqs = boto3.client("sqs", endpoint_url=proxy.url, **LOCAL_CREDENTIALS)
        s3 = boto3.client("s3", endpoint_url=proxy.url, **LOCAL_CREDENTIALS)
        url = sqs.create_queue(QueueName=f"proxy-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": "x"} for i in range(10)])
        sqs.send_message(QueueUrl=url, MessageBody="y" * 100_000)  # 2 chunks of 64 KiB
        received: list[dict[str, Any]] = []
        while len(received) < 11:
            received += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
        receives = proxy.counts()["by_action"]["ReceiveMessage"]
        for start in range(0, 11, 10):
            chunk = received[start : start + 10]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        s3.list_buckets()

        counts = proxy.counts()
        assert counts["by_action"] == {
            "CreateQueue": 1,
            "SendMessageBatch": 1,
            "SendMessage": 1,
            "ReceiveMessage": receives,
            "DeleteMessageBatch": 2,
            "other": 1,  # the S3 call is not an SQS request
        }
        assert counts["sqs_requests"] == 5 + receives
        # The 100 kB message is 2 billed units when sent and again in the receive answer that carried it.
        assert counts["billed_requests"] == counts["sqs_requests"] + 2

        assert proxy.reset()["sqs_requests"] == 0
        assert proxy.counts()["by_action"] == {}


def test_reads_the_action_of_both_protocols() -> None:
    assert sqs_action(target="AmazonSQS.ReceiveMessage", path=b"/", body=b"", content_type=None) == "ReceiveMessage"
    assert sqs_action(target="DynamoDB_20120810.GetItem", path=b"/", body=b"", content_type=None) is None
    form = "application/x-www-form-urlencoded; charset=utf-8"
    assert sqs_action(target=None, path=b"/", body=b"Action=SendMessage&QueueUrl=x", content_type=form) == "SendMessage"
    assert sqs_action(target=None, path=b"/?Action=ListQueues", body=b"", content_type=None) == "ListQueues"
    assert sqs_action(target=None, path=b"/bucket/key", body=b"", content_type="application/json") is None
