"""The sidecar's SQS client sends what the aiobotocore client sends and fails the way it fails.

Two real servers: the session's embedded broker (answers and SQS's own errors), and an HTTP server in the test
that records every request and answers what the test tells it to (the same answer to both clients), so the
requests can be compared byte for byte and the error answers AWS gives under load can be produced on demand.
"""

from __future__ import annotations

import asyncio
import datetime
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import botocore.auth
import pytest
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import get_session
from aiohttp import web
from botocore.credentials import ReadOnlyCredentials
from botocore.exceptions import ClientError

from asya_pulumi.local.broker import LocalBroker, free_port
from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import sigv4
from asya_runtime.sidecar.aws import USER_AGENT, BrokerClient, error_code, is_transient
from asya_runtime.sidecar.aws_json import AwsJsonClient
from asya_runtime.sidecar.metrics import Metrics

NOW = datetime.datetime(2026, 11, 30, 12, 0, 0, tzinfo=datetime.UTC)
KEYS = {"aws_access_key_id": "AKIDTEST", "aws_secret_access_key": "secret", "aws_session_token": "token-1"}
#: Headers botocore adds for its own telemetry, outside the signature; the sidecar sends none of them.
BOTOCORE_TELEMETRY = {"amz-sdk-invocation-id", "amz-sdk-request"}


@dataclass
class Recorder:
    """What the test server received, and what it answers next: ``(status, headers, body)``."""

    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    answer: tuple[int, dict[str, str], bytes] = (200, {}, b"{}")

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append((dict(request.headers), await request.read()))
        status, headers, body = self.answer
        return web.Response(
            status=status, headers={"Content-Type": "application/x-amz-json-1.0", **headers}, body=body
        )


@asynccontextmanager
async def recording_server() -> AsyncIterator[tuple[str, Recorder]]:
    recorder = Recorder()
    app = web.Application()
    app.router.add_post("/", recorder.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}", recorder
    finally:
        await runner.cleanup()


@asynccontextmanager
async def both_clients(endpoint: str, *, credentials: Any = None) -> AsyncIterator[tuple[Any, AwsJsonClient]]:
    """An aiobotocore SQS client configured as the sidecar's, and the AwsJsonClient made from it."""
    session = get_session()
    async with session.create_client("sqs", endpoint_url=endpoint, region_name="eu-west-1", **KEYS) as boto:
        lean = AwsJsonClient(
            client=boto,
            credentials=credentials or AioCredentials(*KEYS.values()),
            user_agent=USER_AGENT,
            pool_size=4,
            connect_timeout_s=3,
            read_timeout_s=30,
        )
        try:
            yield boto, lean
        finally:
            await lean.close()


def frozen_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: NOW.replace(tzinfo=None))
    monkeypatch.setattr(sigv4, "_now", lambda: NOW)


async def raised(call: Callable[[], Awaitable[Any]]) -> BaseException:
    try:
        await call()
    except Exception as exc:
        return exc
    raise AssertionError("no exception")


CALLS = [
    ("send_message_batch", {"QueueUrl": "http://q/000/a", "Entries": [
        {"Id": "0", "MessageBody": '{"payload": "caf\u00e9 \\"quoted\\""}'},
        {"Id": "1", "MessageBody": "x" * 300, "DelaySeconds": 7},
    ]}),
    ("receive_message", {
        "QueueUrl": "http://q/000/a", "MaxNumberOfMessages": 10, "WaitTimeSeconds": 20,
        "MessageSystemAttributeNames": ["ApproximateReceiveCount", "SentTimestamp"],
        "MessageAttributeNames": ["asya-wakeup"],
    }),
    ("delete_message_batch", {"QueueUrl": "http://q/000/a", "Entries": [{"Id": "0", "ReceiptHandle": "rh+/=="}]}),
    ("change_message_visibility_batch", {
        "QueueUrl": "http://q/000/a", "Entries": [{"Id": "0", "ReceiptHandle": "rh", "VisibilityTimeout": 30}],
    }),
    ("get_queue_url", {"QueueName": "asya-ns_a"}),
    ("get_queue_attributes", {"QueueUrl": "http://q/000/a", "AttributeNames": ["VisibilityTimeout"]}),
    ("send_message", {  # the wake-up message of sidecar/wakeup.py
        "QueueUrl": "http://q/000/a", "MessageBody": "{}",
        "MessageAttributes": {"asya-control": {"DataType": "String", "StringValue": "wakeup"}},
    }),
]


@pytest.mark.parametrize(("api", "params"), CALLS, ids=[api for api, _ in CALLS])
def test_each_request_is_the_aiobotocore_clients_byte_for_byte(
    api: str, params: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    frozen_clock(monkeypatch)

    async def scenario() -> list[tuple[dict[str, str], bytes]]:
        async with recording_server() as (endpoint, recorder), both_clients(endpoint) as (boto, lean):
            await getattr(boto, api)(**params)
            await lean.call(api, params)
            return recorder.requests

    (boto_headers, boto_body), (lean_headers, lean_body) = asyncio.run(scenario())
    assert lean_body == boto_body
    signed = ["Authorization", "X-Amz-Date", "X-Amz-Security-Token", "X-Amz-Target", "Content-Type", "Host"]
    assert {h: lean_headers.get(h) for h in signed} == {h: boto_headers.get(h) for h in signed}
    assert lean_headers["x-amzn-query-mode"] == boto_headers["x-amzn-query-mode"] == "true"
    assert "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target;x-amzn-query-mode" in (
        lean_headers["Authorization"]
    )
    assert lean_headers["User-Agent"] == USER_AGENT
    assert lean_headers["Accept-Encoding"] == boto_headers["Accept-Encoding"] == "identity"
    assert not BOTOCORE_TELEMETRY & {h.lower() for h in lean_headers}


@pytest.mark.parametrize(
    ("status", "headers", "body", "code", "transient"),
    [
        (400, {"x-amzn-query-error": "AWS.SimpleQueueService.NonExistentQueue;Sender"},
         {"__type": "com.amazonaws.sqs#QueueDoesNotExist", "message": "no such queue"},
         "AWS.SimpleQueueService.NonExistentQueue", False),
        (400, {"x-amzn-query-error": "RequestThrottled;Sender"},
         {"__type": "com.amazonaws.sqs#RequestThrottled", "message": "slow down"}, "RequestThrottled", True),
        (400, {}, {"__type": "com.amazonaws.sqs#KmsThrottled", "message": "KMS"}, "KmsThrottled", False),
        (500, {}, {"__type": "com.amazonaws.sqs#InternalError", "message": "oops"}, "InternalError", True),
        (503, {}, b"<html>Service Unavailable</html>", "503", True),
    ],
    ids=["no-such-queue", "throttled", "modelled", "internal-error", "html-503"],
)
def test_an_error_answer_raises_the_client_error_botocore_raises(
    status: int, headers: dict[str, str], body: Any, code: str, transient: bool
) -> None:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()

    async def scenario() -> tuple[BaseException, BaseException]:
        async with recording_server() as (endpoint, recorder), both_clients(endpoint) as (boto, lean):
            recorder.answer = (status, headers, raw)
            return (
                await raised(lambda: boto.get_queue_url(QueueName="q")),
                await raised(lambda: lean.call("get_queue_url", {"QueueName": "q"})),
            )

    boto_error, lean_error = asyncio.run(scenario())
    assert isinstance(lean_error, ClientError) and isinstance(boto_error, ClientError)
    assert lean_error.response["Error"] == boto_error.response["Error"]
    assert error_code(lean_error) == code
    assert lean_error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert lean_error.operation_name == "GetQueueUrl"
    assert is_transient(lean_error) is transient


def test_the_embedded_brokers_answers_and_errors_match_aiobotocores(broker: LocalBroker) -> None:
    async def scenario() -> dict[str, Any]:
        async with both_clients(broker.endpoint) as (boto, lean):
            url = (await lean.call("create_queue", {"QueueName": "sqs-json-check"}))["QueueUrl"]
            sent = await lean.call("send_message_batch", {"QueueUrl": url, "Entries": [
                {"Id": str(i), "MessageBody": f"m{i} \u00e9"} for i in range(3)
            ]})
            got = await lean.call("receive_message", {
                "QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 1,
                "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
            })
            deleted = await lean.call("delete_message_batch", {"QueueUrl": url, "Entries": [
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got["Messages"])
            ]})
            missing = {"QueueName": "sqs-json-no-such-queue"}
            return {
                "sent": sent, "got": got, "deleted": deleted,
                "lean_error": await raised(lambda: lean.call("get_queue_url", missing)),
                "boto_error": await raised(lambda: boto.get_queue_url(**missing)),
            }

    out = asyncio.run(scenario())
    assert sorted(e["Id"] for e in out["sent"]["Successful"]) == ["0", "1", "2"]
    assert sorted(m["Body"] for m in out["got"]["Messages"]) == ["m0 \u00e9", "m1 \u00e9", "m2 \u00e9"]
    assert all(m["Attributes"]["ApproximateReceiveCount"] == "1" for m in out["got"]["Messages"])
    assert len(out["deleted"]["Successful"]) == 3 and not out["deleted"].get("Failed")
    assert error_code(out["lean_error"]) == error_code(out["boto_error"])
    assert out["lean_error"].response["Error"] == out["boto_error"].response["Error"]


def test_a_closed_port_is_a_transient_failure() -> None:
    async def scenario() -> BaseException:
        async with both_clients(f"http://127.0.0.1:{free_port()}") as (_, lean):
            return await raised(lambda: lean.call("get_queue_url", {"QueueName": "q"}))

    error = asyncio.run(scenario())
    assert isinstance(error, aiohttp.ClientConnectionError)
    assert is_transient(error)


class RotatingCredentials:
    """Temporary credentials that change between requests, as Pod Identity's do when they are refreshed."""

    def __init__(self) -> None:
        self.served = 0

    async def get_frozen_credentials(self) -> ReadOnlyCredentials:
        self.served += 1
        return ReadOnlyCredentials(f"AKID{self.served}", f"secret-{self.served}", f"token-{self.served}")


def test_every_request_is_signed_with_the_credentials_current_at_that_moment() -> None:
    credentials = RotatingCredentials()

    async def scenario() -> list[tuple[dict[str, str], bytes]]:
        async with recording_server() as (endpoint, recorder), both_clients(endpoint, credentials=credentials) as (
            _,
            lean,
        ):
            for _ in range(3):
                await lean.call("get_queue_url", {"QueueName": "q"})
            return recorder.requests

    requests = asyncio.run(scenario())
    assert [h["X-Amz-Security-Token"] for h, _ in requests] == ["token-1", "token-2", "token-3"]
    assert [h["Authorization"].split("/")[0] for h, _ in requests] == [
        "AWS4-HMAC-SHA256 Credential=AKID1", "AWS4-HMAC-SHA256 Credential=AKID2", "AWS4-HMAC-SHA256 Credential=AKID3"
    ]


def test_the_broker_client_sends_sqs_requests_through_it_and_counts_them(
    broker: LocalBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}.items():
        monkeypatch.setenv(name, value)
    config = SidecarConfig.from_env({
        "ASYA_NAMESPACE": "sqsjson", "ASYA_ACTOR": "a", "ASYA_SQS_ENDPOINT": broker.endpoint,
        "ASYA_S3_ENDPOINT": broker.endpoint, "ASYA_AWS_REGION": "us-east-1",
    })
    sent: list[str] = []
    real_call = AwsJsonClient.call

    async def spy(self: AwsJsonClient, api: str, params: dict[str, Any]) -> dict[str, Any]:
        sent.append(api)
        return await real_call(self, api, params)

    monkeypatch.setattr(AwsJsonClient, "call", spy)

    async def scenario() -> tuple[str | None, float]:
        metrics = Metrics()
        async with BrokerClient(config=config, metrics=metrics) as client:
            await client.call("create_queue", QueueName="asya-sqsjson_a")
            url = await client.queue_url("a")
            return url, metrics.labelled(metrics.sqs_requests, "get_queue_url")._value.get()

    url, counted = asyncio.run(scenario())
    assert url is not None and url.endswith("asya-sqsjson_a")
    assert sent == ["create_queue", "get_queue_url"]
    assert counted == 1
