"""When the sidecar's batch collector (sidecar/handler_batch.py) sends a batch: its real client against a real
Python handler server, with envelopes joining in known event-loop turns."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.handler_servers import ServerProcess, make_envelope, server_kind

from asya_runtime.sidecar.answer import HandlerAnswer
from asya_runtime.sidecar.handler_batch import JOIN_GAP_S, BatchCollector
from asya_runtime.sidecar.handler_client import HandlerClient

HANDLERS_DIR = Path(__file__).resolve().parent / "handlers"


@pytest.fixture
def server() -> Iterator[ServerProcess]:
    process = ServerProcess(
        server_kind("python", python_module="py_handlers", js_file="js_handlers.js"), "batch_sizes",
        handlers_dir=HANDLERS_DIR,
    )
    yield process.start().wait_ready()
    process.close()


def _collector(server: ServerProcess, *, max_size: int, max_wait_s: float) -> BatchCollector:
    client = HandlerClient(socket_path=server.socket_path, read_limit=2**24, max_outputs=100)
    return BatchCollector(client=client, max_size=max_size, max_wait_s=max_wait_s, concurrency=1)


async def _call(collector: BatchCollector, key: str) -> HandlerAnswer:
    envelope = json.dumps(make_envelope({"key": key}))
    return await collector.call(envelope_json=envelope, budget=lambda: 30.0, connect_wait_s=5)


def _sizes(answers: list[HandlerAnswer]) -> list[int]:
    return [answer.outputs[0]["payload"]["n"] for answer in answers]


def test_envelopes_joining_together_go_as_one_batch_cut_at_max_size(server: ServerProcess) -> None:
    async def scenario() -> list[HandlerAnswer]:
        collector = _collector(server, max_size=4, max_wait_s=1.0)
        return await asyncio.gather(*(_call(collector, f"k{i}") for i in range(10)))

    answers = asyncio.run(scenario())
    assert [a.outputs[0]["payload"]["key"] for a in answers] == [f"k{i}" for i in range(10)]  # each its own result
    assert _sizes(answers) == [4] * 4 + [4] * 4 + [2] * 2


def test_max_wait_zero_never_waits_to_fill_a_batch(server: ServerProcess) -> None:
    """The first envelope goes alone at once; the rest, arriving while the handler is busy, go together."""
    async def scenario() -> list[HandlerAnswer]:
        collector = _collector(server, max_size=16, max_wait_s=0.0)
        return await asyncio.gather(*(_call(collector, f"k{i}") for i in range(10)))

    assert _sizes(asyncio.run(scenario())) == [1] + [9] * 9


def test_envelopes_further_apart_than_the_join_gap_do_not_wait_for_max_wait(server: ServerProcess) -> None:
    """maxWait 5 s, envelopes 10 ms apart on an idle handler: each goes on its own within ms, not after 5 s."""
    async def scenario() -> tuple[list[HandlerAnswer], float]:
        collector = _collector(server, max_size=16, max_wait_s=5.0)
        loop = asyncio.get_running_loop()
        started = loop.time()
        calls = []
        for i in range(5):
            calls.append(asyncio.create_task(_call(collector, f"k{i}")))
            await asyncio.sleep(5 * JOIN_GAP_S)
        answers = await asyncio.gather(*calls)
        return answers, loop.time() - started

    answers, took = asyncio.run(scenario())
    assert took < 2.0 and max(_sizes(answers)) <= 2  # (2: a loaded machine may run a call late)


def test_a_trickle_faster_than_the_join_gap_does_not_hold_a_batch_past_max_wait(server: ServerProcess) -> None:
    """Envelopes joining every ~0.5 ms for 1 s keep a batch filling (no 2 ms gap) — but only until maxWait (0.2 s):
    the first batch is answered while the trickle still runs, partial (a loaded machine may open gaps and send
    sooner, never later)."""
    async def scenario() -> tuple[float, float, list[int]]:
        collector = _collector(server, max_size=256, max_wait_s=0.2)
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_done: list[float] = []
        calls = []
        while loop.time() < started + 1.0 and len(calls) < 2000:
            calls.append(asyncio.create_task(_call(collector, "k")))
            if len(calls) == 1:
                calls[0].add_done_callback(lambda _: first_done.append(loop.time() - started))
            await asyncio.sleep(0.0005)
        ended = loop.time() - started
        answers = await asyncio.gather(*calls)
        return first_done[0], ended, _sizes(answers)

    first_done, ended, sizes = asyncio.run(scenario())
    assert first_done < min(ended, 0.2 + 0.5), (first_done, ended)
    assert sizes[0] < 256 and len(set(sizes)) >= 2, sizes
