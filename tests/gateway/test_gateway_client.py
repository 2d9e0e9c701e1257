"""The client's ``wait`` ends at its timeout even while the envelope's SSE stream stays open (the gateway's
``:keepalive`` comments keep every read short), and closes its stream when it returns (asya_runtime/client.py).

The envelope goes to ``echo``'s actor, whose queue no sidecar reads: it stays ``pending``, the stream never ends by
itself. Before this was bounded, ``wait(timeout=...)`` on such an envelope hung for as long as the gateway kept the
stream alive (the e2e async cancel case hung past 300 s so, issue 21).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from asya_runtime.client import AsyncGatewayClient, GatewayClient, WaitTimeout
from gateway.conftest import Gateway

TIMEOUT_S = 1.5


@pytest.mark.timeout(60)
def test_the_sync_wait_ends_within_one_keepalive_of_its_timeout(gateway: Gateway) -> None:
    with GatewayClient(gateway.url) as client:
        envelope_id = client.submit(route="echo", payload={})
        started = time.monotonic()
        with pytest.raises(WaitTimeout) as timed_out:
            client.wait(envelope_id, timeout=TIMEOUT_S)
        took = time.monotonic() - started
    gateway.sent("done")
    assert TIMEOUT_S <= took < TIMEOUT_S + gateway.config.keepalive_s + 1.0, took
    assert timed_out.value.last is not None and timed_out.value.last.status == "pending"
    assert f"not finished after {TIMEOUT_S:g} s" in str(timed_out.value)


@pytest.mark.timeout(60)
def test_the_async_wait_ends_at_its_timeout_and_closes_its_stream(gateway: Gateway) -> None:
    async def use() -> tuple[float, WaitTimeout, int]:
        async with AsyncGatewayClient(gateway.url) as client:
            envelope_id = await client.submit(route="echo", payload={})
            started = time.monotonic()
            try:
                await client.wait(envelope_id, timeout=TIMEOUT_S)
            except WaitTimeout as exc:
                timed_out = exc
            else:
                raise AssertionError("wait returned for an envelope that stays pending")
            took = time.monotonic() - started
            await asyncio.sleep(0)  # nothing left for the loop to finalize: the stream was closed by wait itself
            pool = client._http._transport._pool  # type: ignore[attr-defined]
            active = sum(1 for connection in pool.connections if not connection.is_idle())
        return took, timed_out, active

    took, timed_out, active = asyncio.run(use())
    gateway.sent("done")
    assert TIMEOUT_S <= took < TIMEOUT_S + 1.0, took
    assert timed_out.last is not None and timed_out.last.status == "pending"
    assert active == 0, "a connection still streams after wait returned"
