"""MCP over Streamable HTTP at /mcp, driven by the official SDK's own client: one tool per named route, a call that
waits for the final payload with FLY events as progress notifications, and error results for what did not succeed."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from typing import Any

import pytest
from mcp import Client, MCPError

from asya_runtime.status import RunningUpdate, StatusStore
from gateway.conftest import ROUTES, Gateway


def drive(gateway: Gateway, route: str, *, finish: dict[str, Any], fly: list[dict[str, Any]]) -> threading.Thread:
    """In the background: wait for the envelope the tool call submits (it is on the first actor's queue), then move
    it along as the sidecars and sinks would: running, the FLY events, the terminal state ``finish``."""
    first = ROUTES[route]["actors"][0]

    def run() -> None:
        deadline = time.monotonic() + 20
        sent: list[dict[str, Any]] = []
        while not sent and time.monotonic() < deadline:
            sent = gateway.sent(first, wait_s=0.1)
        [envelope] = sent
        envelope_id = envelope["id"]

        async def steps(store: StatusStore) -> None:
            await store.report_running(updates=[RunningUpdate(id=envelope_id, actor=first, attempt=1, seq=0)])
            for event in fly:
                await asyncio.sleep(0.2)
                await store.report_fly(id=envelope_id, events=[event], progress=event.get("progress"))
            await asyncio.sleep(0.2)
            await store.finish(id=envelope_id, **finish)

        gateway.store(steps)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_the_sdk_client_lists_one_tool_per_route_with_its_schema(gateway: Gateway) -> None:
    async def main() -> Any:
        async with Client(f"{gateway.url}/mcp") as client:
            return await client.list_tools()

    tools = {tool.name: tool for tool in asyncio.run(main()).tools}
    assert set(tools) == set(ROUTES)
    assert tools["pipeline"].description == ROUTES["pipeline"]["description"]
    assert tools["pipeline"].input_schema == ROUTES["pipeline"]["inputSchema"]
    assert tools["echo"].input_schema == {"type": "object"}


def test_a_tool_call_returns_the_final_payload_and_reports_fly_as_progress(gateway: Gateway) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    fly = [{"step": "parsed", "progress": 30}, {"step": "scored", "progress": 80}]
    mover = drive(gateway, "pipeline", fly=fly,
                  finish={"status": "succeeded", "payload_json": json.dumps({"text": "DONE", "n": 2})})

    async def main() -> Any:
        async with Client(f"{gateway.url}/mcp") as client:
            return await client.call_tool("pipeline", {"text": "go"}, progress_callback=on_progress)

    result = asyncio.run(main())
    mover.join()
    assert not result.is_error, result.content
    assert result.structured_content == {"text": "DONE", "n": 2}
    assert json.loads(result.content[0].text) == {"text": "DONE", "n": 2}
    assert [value for value, _ in progress] == [30.0, 80.0]
    assert [json.loads(message or "null") for _, message in progress] == fly


def test_a_failed_envelope_is_an_error_result_naming_why(gateway: Gateway) -> None:
    mover = drive(gateway, "echo", fly=[], finish={
        "status": "failed", "error": {"type": "ValueError", "message": "bad input", "reason": "RuntimeError"}})

    async def main() -> Any:
        async with Client(f"{gateway.url}/mcp") as client:
            return await client.call_tool("echo", {"anything": 1})

    result = asyncio.run(main())
    mover.join()
    assert result.is_error
    assert "failed: bad input" in result.content[0].text


def test_arguments_against_the_schema_are_refused_before_anything_is_sent(gateway: Gateway) -> None:
    async def main() -> Any:
        async with Client(f"{gateway.url}/mcp") as client:
            return await client.call_tool("pipeline", {"text": 5})

    result = asyncio.run(main())
    assert result.is_error
    assert "input schema" in result.content[0].text
    assert gateway.sent("prep", wait_s=0.3) == []


def test_a_call_the_client_abandons_cancels_its_envelope(gateway: Gateway) -> None:
    """The SDK's client gives up after its read timeout and sends ``notifications/cancelled``: the envelope, which
    nothing moves along here, becomes ``canceled`` (so the next sidecar ends it without calling its handler)."""

    async def main() -> None:
        async with Client(f"{gateway.url}/mcp") as client:
            with pytest.raises(MCPError, match=r"[Tt]imed out|timeout"):
                await client.call_tool("pipeline", {"text": "abandoned"}, read_timeout_seconds=1.5)

    asyncio.run(main())
    [envelope] = gateway.sent("prep", wait_s=5)
    deadline = time.monotonic() + 10
    while (status := gateway.store(lambda store: store.get(id=envelope["id"])).status) != "canceled":
        assert time.monotonic() < deadline, f"still {status} 10 s after the client gave up"
        time.sleep(0.1)
