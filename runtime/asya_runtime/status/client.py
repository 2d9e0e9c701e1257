"""A :class:`~asya_runtime.status.store.StatusStore` with its own DynamoDB connection: the gateway's and ``asya dev``'s.

(The sidecar makes its store from its broker client instead, which counts and retries every request:
``sidecar/status_reports.py``.) Requests go out over :class:`~asya_runtime.sidecar.aws_json.AwsJsonClient`, made
from an aiobotocore DynamoDB client as the sidecar's SQS client is; transient failures (throttling, 5xx, a refused
connection) are tried again a few times with a short backoff, then raised.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from asya_runtime.sidecar.aws import USER_AGENT, is_transient
from asya_runtime.sidecar.aws_json import AwsJsonClient
from asya_runtime.status.schema import DEFAULT_TTL_S
from asya_runtime.status.store import Call, StatusStore

ATTEMPTS = 4
BACKOFF_FIRST_S = 0.05


@asynccontextmanager
async def open_store(
    *,
    table: str,
    region: str,
    endpoint: str | None = None,
    ttl_s: int = DEFAULT_TTL_S,
    pool_size: int = 20,
    access_key: tuple[str, str] | None = None,
) -> AsyncIterator[StatusStore]:
    """The store of ``table`` in ``region`` (``endpoint``: a local server such as moto's; None: AWS), open until the
    block ends. Credentials come from botocore's usual chain, or ``access_key`` (id, secret: a local server's)."""
    session = get_session()
    if access_key is not None:
        session.set_credentials(*access_key)
    config = AioConfig(retries={"total_max_attempts": 1, "mode": "standard"}, user_agent=USER_AGENT)
    async with session.create_client("dynamodb", region_name=region, endpoint_url=endpoint, config=config) as boto:
        client = AwsJsonClient(
            client=boto, credentials=await session.get_credentials(), user_agent=USER_AGENT, pool_size=pool_size,
            connect_timeout_s=3, read_timeout_s=10, ca_bundle=session.get_config_variable("ca_bundle"),
        )
        try:
            yield StatusStore(table=table, call=retrying(client.call), ttl_s=ttl_s)
        finally:
            await client.close()


def retrying(call: Call, *, attempts: int = ATTEMPTS) -> Call:
    """``call``, tried up to ``attempts`` times while it fails transiently (doubling waits from 50 ms)."""

    async def tried(api: str, params: dict[str, Any]) -> dict[str, Any]:
        delay = BACKOFF_FIRST_S
        for attempt in range(1, attempts + 1):
            try:
                return await call(api, params)
            except Exception as exc:
                if attempt == attempts or not is_transient(exc):
                    raise
            await asyncio.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    return tried
