"""The bar to beat: one actor as a hand-written loop, the way a strong engineer would write it.

Long-poll ``ReceiveMessage`` for up to 10 messages, run the handler on each in-process, advance each envelope's
route, send the results to their next queues with ``SendMessageBatch`` (one call per destination queue), then
delete what was handled with one ``DeleteMessageBatch``. Queue URLs are looked up once and cached; the envelope is
handled as a plain dict (no validation layer). It has none of the sidecar's duties (retries with backoff, deadlines,
heartbeats, error sink, handler isolation), so it is the cheapest correct loop: the floor for requests and CPU.

Two SQS clients, the same loop (``--client``):

* ``aiobotocore`` (the *loop* contender): what such an engineer reaches for first;
* ``lean`` (the *lean-loop* contender): the sidecar's own lean JSON client
  (:class:`~asya_runtime.sidecar.aws_json.AwsJsonClient`, about a third of aiobotocore's CPU per call), made from an
  aiobotocore client as the sidecar's broker client makes it, and called directly (no retry or counting layer): the
  loop the sidecar's per-envelope overhead is measured against once the client is no longer the difference.

    python -m bench.baseline_loop --endpoint http://127.0.0.1:4566 --namespace bench --actor a [--client lean]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Literal

from aiobotocore.session import get_session

from asya_runtime.naming import SUCCESS_SINK, queue_name
from asya_runtime.sidecar.aws import USER_AGENT
from asya_runtime.sidecar.aws_json import AwsJsonClient
from bench.identity import handle as identity

BATCH = 10
Handler = Callable[[Any], Any]
Client = Literal["aiobotocore", "lean"]
#: One SQS request: botocore's snake_case name and the API's parameters, answered as botocore answers.
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
CLIENTS: tuple[Client, ...] = ("aiobotocore", "lean")


@contextlib.asynccontextmanager
async def sqs_calls(*, endpoint: str, client: Client) -> AsyncIterator[Call]:
    """SQS calls through ``client``: aiobotocore's methods, or the lean JSON client the sidecar sends with."""
    session = get_session()
    async with session.create_client(
        "sqs", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test", aws_secret_access_key="test"
    ) as sqs:
        if client == "aiobotocore":
            async def call(api: str, params: dict[str, Any]) -> dict[str, Any]:
                result: dict[str, Any] = await getattr(sqs, api)(**params)
                return result

            yield call
            return
        session.set_credentials("test", "test")
        lean = AwsJsonClient(
            client=sqs, credentials=await session.get_credentials(), user_agent=USER_AGENT, pool_size=10,
            connect_timeout_s=3, read_timeout_s=35,
        )
        try:
            yield lean.call
        finally:
            await lean.close()


def advance(envelope: dict[str, Any], result: Any) -> str:
    """Apply the handler's result to ``envelope`` in place and return the actor it goes to next."""
    route = envelope["route"]
    if result is None:
        return SUCCESS_SINK
    envelope["payload"] = result
    if not route.get("next"):
        return SUCCESS_SINK
    route["prev"] = [*route.get("prev", []), route["curr"]]
    route["curr"] = route["next"].pop(0)
    return str(route["curr"])


async def run_actor(
    *, endpoint: str, namespace: str, actor: str, handler: Handler, stop: asyncio.Event, client: Client = "aiobotocore"
) -> None:
    """Consume ``asya-{namespace}-{actor}`` until ``stop`` is set."""
    async with sqs_calls(endpoint=endpoint, client=client) as sqs:
        urls: dict[str, str] = {}

        async def url_of(name: str) -> str:
            if name not in urls:
                found = await sqs("get_queue_url", {"QueueName": queue_name(namespace=namespace, actor=name)})
                urls[name] = found["QueueUrl"]
            return urls[name]

        own_url = await url_of(actor)
        while not stop.is_set():
            received = await sqs(
                "receive_message", {"QueueUrl": own_url, "MaxNumberOfMessages": BATCH, "WaitTimeSeconds": 20}
            )
            messages = received.get("Messages", [])
            if not messages:
                continue
            outgoing: dict[str, list[dict[str, str]]] = defaultdict(list)
            for i, message in enumerate(messages):
                envelope = json.loads(message["Body"])
                destination = advance(envelope, handler(envelope["payload"]))
                outgoing[destination].append({"Id": str(i), "MessageBody": json.dumps(envelope)})
            for destination, entries in outgoing.items():
                sent = await sqs("send_message_batch", {"QueueUrl": await url_of(destination), "Entries": entries})
                if sent.get("Failed"):
                    raise RuntimeError(f"send to {destination} failed: {sent['Failed']}")
            await sqs("delete_message_batch", {
                "QueueUrl": own_url,
                "Entries": [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            })


async def _main(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(
        run_actor(endpoint=args.endpoint, namespace=args.namespace, actor=args.actor, handler=identity, stop=stop,
                  client=args.client)
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    with contextlib.suppress(asyncio.CancelledError):
        await task


def main() -> None:
    parser = argparse.ArgumentParser(description="one actor of the baseline pipeline (identity handler)")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--actor", required=True)
    parser.add_argument("--client", choices=CLIENTS, default="aiobotocore", help="the SQS client the loop sends with")
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
