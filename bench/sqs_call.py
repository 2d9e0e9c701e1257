"""CPU per SQS call, by client: the loop's aiobotocore client, the sidecar's old aiobotocore client, AwsJsonClient.

    .venv/bin/python -m bench.sqs_call [--calls 200] [--rounds 5]

Against a fresh embedded broker, in one process, each client makes ``--calls`` calls of each kind in a row
(``SendMessageBatch`` of ten ~300-byte envelopes, ``ReceiveMessage`` of up to ten with the sidecar's attributes,
``DeleteMessageBatch`` of what was received), and this prints the process CPU per call (``time.process_time``:
this process only, not the broker's). The clients take turns for ``--rounds`` rounds and the median round is
reported, so a burst of load on the shared machine moves one round, not one client. docs/benchmarks.md, section 8.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import get_session

from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker
from asya_runtime.envelope import new_envelope
from asya_runtime.sidecar.aws import USER_AGENT
from asya_runtime.sidecar.aws_json import AwsJsonClient

RECEIVE_ATTRIBUTES = ["ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp"]
#: The sidecar's aiobotocore settings before AwsJsonClient (kept for S3 and for the client AwsJsonClient is made from).
SIDECAR_CONFIG = AioConfig(
    retries={"total_max_attempts": 1, "mode": "standard"}, parameter_validation=False, user_agent=USER_AGENT
)
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


def via_aiobotocore(client: Any) -> Call:
    async def call(api: str, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await getattr(client, api)(**params)
        return result

    return call


async def measure(*, endpoint: str, calls: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    session = get_session()
    keys = {"region_name": "us-east-1", **LOCAL_CREDENTIALS}
    async with (
        session.create_client("sqs", endpoint_url=endpoint, **keys) as loop_client,
        session.create_client("sqs", endpoint_url=endpoint, config=SIDECAR_CONFIG, **keys) as sidecar_client,
    ):
        lean = AwsJsonClient(
            client=sidecar_client,
            credentials=AioCredentials(keys["aws_access_key_id"], keys["aws_secret_access_key"]),
            user_agent=USER_AGENT,
            pool_size=4,
            connect_timeout_s=3,
            read_timeout_s=30,
        )
        clients = {
            "aiobotocore, the loop's settings": via_aiobotocore(loop_client),
            "aiobotocore, the sidecar's settings": via_aiobotocore(sidecar_client),
            "AwsJsonClient (the sidecar now)": lean.call,
        }
        url = (await loop_client.create_queue(QueueName="sqs-call-bench"))["QueueUrl"]
        body = new_envelope(route=["a", "b", "c"], payload={"n": 0}).to_json()
        entries = [{"Id": str(i), "MessageBody": body} for i in range(10)]
        cpu: dict[str, dict[str, list[float]]] = {name: {} for name in clients}
        try:
            for _ in range(rounds):
                for name, call in clients.items():
                    received: list[dict[str, Any]] = []

                    async def send(call: Call = call) -> None:
                        await call("send_message_batch", {"QueueUrl": url, "Entries": entries})

                    async def receive(call: Call = call, received: list[dict[str, Any]] = received) -> None:
                        answer = await call("receive_message", {
                            "QueueUrl": url, "MaxNumberOfMessages": 10, "WaitTimeSeconds": 0,
                            "MessageSystemAttributeNames": RECEIVE_ATTRIBUTES, "MessageAttributeNames": ["asya-wakeup"],
                        })
                        received.append(answer)

                    async def delete(call: Call = call, received: list[dict[str, Any]] = received) -> None:
                        messages = received.pop().get("Messages", [])
                        entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
                        if entries:
                            await call("delete_message_batch", {"QueueUrl": url, "Entries": entries})

                    for kind, step in (("SendMessageBatch", send), ("ReceiveMessage", receive)):
                        started = time.process_time()
                        for _ in range(calls):
                            await step()
                        cpu[name].setdefault(kind, []).append((time.process_time() - started) / calls)
                    started = time.process_time()
                    while received:
                        await delete()
                    cpu[name].setdefault("DeleteMessageBatch", []).append((time.process_time() - started) / calls)
        finally:
            await lean.close()
    return cpu


def main() -> None:
    parser = argparse.ArgumentParser(description="CPU per SQS call for each client the benchmark compares")
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with LocalBroker() as broker:
        cpu = asyncio.run(measure(endpoint=broker.endpoint, calls=args.calls, rounds=args.rounds))
    kinds = ["SendMessageBatch", "ReceiveMessage", "DeleteMessageBatch"]
    print(f"CPU per call, µs (median of {args.rounds} rounds of {args.calls}; load {os.getloadavg()[0]:.2f})")
    print(f"{'client':38}" + "".join(f"{k:>20}" for k in kinds))
    for name, by_kind in cpu.items():
        print(f"{name:38}" + "".join(f"{1e6 * statistics.median(by_kind[k]):>20.0f}" for k in kinds))
    print(json.dumps({name: {k: [round(1e6 * v) for v in by_kind[k]] for k in kinds} for name, by_kind in cpu.items()}))


if __name__ == "__main__":
    main()
