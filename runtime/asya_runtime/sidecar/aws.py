"""The sidecar's only door to SQS, S3 and (sinks) IAM: counts every request, outlasts broker outages and throttling.

Every call goes through :meth:`BrokerClient.call`, which retries transport failures (connection refused, reset,
timed out) and throttling/5xx answers with capped exponential backoff, forever or until the caller is cancelled
(S3 calls from the sinks: for a bounded time, see :meth:`BrokerClient.call_s3`).
The sidecar's own state (what is in flight, what is yet to be sent) lives in memory meanwhile, so an outage delays
work but never drops it. Botocore's own retries are off so that this is the one place retries happen and every
request is counted in ``asya_sqs_requests{api}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import botocore
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

from asya_runtime.config import SidecarConfig
from asya_runtime.naming import queue_name
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.aws_json import AwsJsonClient
from asya_runtime.sidecar.metrics import Metrics

_TRANSIENT_CODES = {
    "Throttling",
    "ThrottlingException",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ServiceUnavailable",
    "InternalError",
    "InternalFailure",
    "KMS.ThrottlingException",
    # DynamoDB's (the status store): throttled, or a fault on its side.
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "InternalServerError",
}
_NO_SUCH_QUEUE = {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
#: The sidecar's User-Agent on every AWS request.
USER_AGENT = f"asya-sidecar botocore/{botocore.__version__}"
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 5.0


def error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def is_transient(exc: BaseException) -> bool:
    """Worth trying again unchanged: the broker could not be reached, or asked us to slow down."""
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return error_code(exc) in _TRANSIENT_CODES or status >= 500
    return isinstance(exc, (ConnectionError, HTTPClientError, aiohttp.ClientError, asyncio.TimeoutError, OSError))


@functools.cache
def _shared_session() -> Any:
    """One botocore session per process: its loaders cache the parsed service models and endpoint rules, which
    every client would otherwise parse again (measured: ~0.5 s per sidecar on a busy 2-core machine when a local
    host runs 20 sidecars in one process; a pod runs one, so nothing changes there)."""
    return get_session()


class BrokerClient:
    """SQS (and, for sinks and offloading actors, S3) requests with request counting and outage handling.

    SQS requests go out through :class:`~asya_runtime.sidecar.aws_json.AwsJsonClient` (the same requests as
    the aiobotocore client, at about a third of its CPU per call); the aiobotocore SQS client it is made from supplies
    the endpoint, model and credentials. S3 stays on aiobotocore: it is off the per-message path.
    """

    def __init__(self, *, config: SidecarConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self._stack = contextlib.AsyncExitStack()
        self._sqs: AwsJsonClient | None = None
        self._s3: Any = None
        self._iam: Any = None
        self._dynamodb: AwsJsonClient | None = None
        self._queue_urls: dict[str, str] = {}
        self._urls_by_actor: dict[str, str] = {}
        self._outage_since: float | None = None
        self._lookup_lock = asyncio.Lock()

    async def __aenter__(self) -> BrokerClient:
        session = _shared_session()
        base = {"region_name": self.config.region}
        aio_config = AioConfig(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=3,
            read_timeout=self.config.wait_time_seconds + 15,
            max_pool_connections=max(10, self.config.concurrency * 2 + 4),
            s3={"addressing_style": "path"},
            # The sidecar builds every request itself; checking its parameters against the service model costs
            # ~10 % of a call's CPU (measured: 0.81 → 0.74 ms per SendMessageBatch of 10) and the broker checks them
            # anyway.
            parameter_validation=False,
            # A fixed User-Agent (which also names the sidecar in CloudTrail): botocore otherwise rebuilds its own
            # from ~30 sanitised parts twice per request (7 % of a call's CPU in the profile of docs/benchmarks.md).
            user_agent=USER_AGENT,
        )
        sqs = await self._stack.enter_async_context(
            session.create_client("sqs", endpoint_url=self.config.sqs_endpoint, config=aio_config, **base)
        )
        self._sqs = AwsJsonClient(
            client=sqs,
            credentials=await session.get_credentials(),
            user_agent=USER_AGENT,
            pool_size=aio_config.max_pool_connections,
            connect_timeout_s=aio_config.connect_timeout,
            read_timeout_s=aio_config.read_timeout,
            ca_bundle=session.get_config_variable("ca_bundle"),
        )
        self._stack.push_async_callback(self._sqs.close)
        # Sinks; actors that offload, or that gather a fan-in (its state is in the bucket).
        if self.config.mode != "actor" or self.config.offload_threshold or self.config.fanin_timeout:
            self._s3 = await self._stack.enter_async_context(
                session.create_client("s3", endpoint_url=self.config.s3_endpoint, config=aio_config, **base)
            )
        if self.config.status_table:  # the status store (docs/gateway.md): the same lean path as SQS
            dynamodb = await self._stack.enter_async_context(
                session.create_client("dynamodb", endpoint_url=self.config.dynamodb_endpoint, config=aio_config, **base)
            )
            self._dynamodb = AwsJsonClient(
                client=dynamodb,
                credentials=await session.get_credentials(),
                user_agent=USER_AGENT,
                pool_size=aio_config.max_pool_connections,
                connect_timeout_s=aio_config.connect_timeout,
                read_timeout_s=10,
                ca_bundle=session.get_config_variable("ca_bundle"),
            )
            self._stack.push_async_callback(self._dynamodb.close)
        if self.config.mode != "actor" and self.config.verify_senders:  # sinks: who sent a record (sinks.py)
            self._iam = await self._stack.enter_async_context(
                session.create_client("iam", endpoint_url=self.config.iam_endpoint, config=aio_config, **base)
            )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._stack.aclose()

    async def call(self, api: str, **kwargs: Any) -> dict[str, Any]:
        """One SQS request (``api`` in botocore's snake_case), retried while the failure is transient."""
        assert self._sqs is not None, "enter the client first"
        return await self._call(self._sqs.call, self.metrics.sqs_requests, api, kwargs)

    async def call_s3(self, api: str, *, within_s: float, **kwargs: Any) -> dict[str, Any]:
        """One S3 request, retried like SQS calls while the failure is transient, for at most ``within_s`` seconds.

        The bound exists because the caller holds an SQS message meanwhile (its heartbeat keeps it invisible);
        after that the last error is raised and the caller decides what it means (the sink hands the message back).
        """
        give_up_at = time.monotonic() + within_s
        return await self._call(self._send_s3, self.metrics.s3_requests, api, kwargs, give_up_at=give_up_at)

    async def call_iam(self, api: str, *, within_s: float, **kwargs: Any) -> dict[str, Any]:
        """One IAM request (a sink's ``get_role``), retried like :meth:`call_s3` for at most ``within_s`` seconds."""
        give_up_at = time.monotonic() + within_s
        return await self._call(self._send_iam, self.metrics.iam_requests, api, kwargs, give_up_at=give_up_at)

    async def call_dynamodb(self, api: str, params: dict[str, Any], *, within_s: float) -> dict[str, Any]:
        """One DynamoDB request (the status store's), retried like :meth:`call_s3` for at most ``within_s`` seconds."""
        assert self._dynamodb is not None, "DynamoDB is a client of sidecars with ASYA_STATUS_TABLE only"
        give_up_at = time.monotonic() + within_s
        return await self._call(
            self._dynamodb.call, self.metrics.dynamodb_requests, api, params, give_up_at=give_up_at
        )

    async def _send_s3(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await getattr(self._s3, api)(**params)
        return result

    async def _send_iam(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._iam is not None, "IAM is a client of sinks that verify senders only"
        result: dict[str, Any] = await getattr(self._iam, api)(**params)
        return result

    async def _call(
        self,
        send: Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]],
        counter: Any,
        api: str,
        kwargs: dict[str, Any],
        *,
        give_up_at: float | None = None,
    ) -> dict[str, Any]:
        delay = BACKOFF_FIRST_S
        while True:
            self.metrics.labelled(counter, api).inc()
            try:
                result = await send(api, kwargs)
            except Exception as exc:
                if not is_transient(exc) or (give_up_at is not None and time.monotonic() + delay > give_up_at):
                    raise
                self.metrics.labelled(self.metrics.broker_errors, api).inc()
                if api == "receive_message":  # backing off is the receive loop alive, not stuck
                    self.metrics.last_receive = time.monotonic()
                if self._outage_since is None:
                    self._outage_since = time.monotonic()
                    logs.warning("broker unreachable, backing off", api=api, error=f"{type(exc).__name__}: {exc}")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
                continue
            if self._outage_since is not None:
                logs.event("broker reachable again", api=api, outage_s=round(time.monotonic() - self._outage_since, 2))
                self._outage_since = None
            return result

    def known_queue_url(self, actor: str) -> str | None:
        """URL of ``actor``'s queue if it was looked up before (no request, no coroutine: the per-output path)."""
        return self._urls_by_actor.get(actor)

    async def queue_url(self, actor: str) -> str | None:
        """URL of ``actor``'s queue (cached), or None when no such queue exists."""
        known = self._urls_by_actor.get(actor)
        if known is not None:
            return known
        name = queue_name(namespace=self.config.namespace, actor=actor)
        cached = self._queue_urls.get(name)
        if cached is not None:
            return cached
        async with self._lookup_lock:  # a burst of messages to a new actor asks once, not once per message
            if name in self._queue_urls:
                return self._queue_urls[name]
            try:
                result = await self.call("get_queue_url", QueueName=name)
            except ClientError as exc:
                if error_code(exc) in _NO_SUCH_QUEUE:
                    return None
                raise
            url = str(result["QueueUrl"])
            self._queue_urls[name] = url
            self._urls_by_actor[actor] = url
            return url

    async def visibility_timeout(self, queue_url: str) -> int:
        """The queue's configured VisibilityTimeout: heartbeats must beat the queue's clock, whatever it is."""
        result = await self.call("get_queue_attributes", QueueUrl=queue_url, AttributeNames=["VisibilityTimeout"])
        return int(result["Attributes"]["VisibilityTimeout"])
