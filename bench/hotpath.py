"""Per-message CPU of the sidecar's actor path with the broker taken out: what the sidecar itself adds.

    .venv/bin/python -m bench.hotpath [--messages 3000] [--profile]

Runs the real :class:`~asya_runtime.sidecar.actor.ActorProcessor` against the real handler server (identity
handler, concurrency 10, over its Unix socket) with an in-memory broker that accepts every batch at once, feeding it
the same envelopes as ``python -m bench`` in batches of ten, and prints the CPU per message of this process (the
sidecar's side: parse, call, next hops, outputs, batching) and of the handler server (psutil). No SQS request is
made, so the botocore cost that both contenders of ``python -m bench`` share is left out and what remains is the
sidecar's own per-message work. ``--profile`` adds a cProfile (CPU time) of the sidecar's side; its own overhead
inflates the totals several times, so read it for shares, not for microseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from asya_pulumi.local.plan import handler_argv
from asya_runtime.config import DEFAULT_MAX_FANOUT, SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.handler_server import HandlerServerConfig
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.actor import ActorProcessor, Slot
from asya_runtime.sidecar.batching import DeleteBatcher, SendBatcher
from asya_runtime.sidecar.handler_client import HandlerClient
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCH = 10
WARMUP = 50


class AcceptingBroker:
    """Stands in for SQS: every batch request succeeds for every entry; every actor has a queue."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    async def call(self, api: str, **kwargs: Any) -> dict[str, Any]:
        await asyncio.sleep(0)  # a request yields to the loop, as a real one does
        return {"Successful": [{"Id": entry["Id"]} for entry in kwargs.get("Entries", [])]}

    async def queue_url(self, actor: str) -> str:
        return f"http://broker/{actor}"

    def known_queue_url(self, actor: str) -> str:
        return f"http://broker/{actor}"


async def drive(*, socket_path: str, bodies: list[str], server: psutil.Process, profile: bool) -> str:
    """Process ``bodies`` in batches of ten; the CPU per message of this process and of the handler server."""
    config = SidecarConfig(actor="a", namespace="bench", concurrency=BATCH, socket_path=socket_path, result_bucket="b")
    metrics = Metrics()
    broker: Any = AcceptingBroker(metrics)
    inflight = InFlight(broker=broker, queue_url="http://broker/a", visibility_s=30)
    running: list[ActorProcessor] = []

    def busy() -> bool:
        return bool(running) and running[0].calls_running > 0

    sends = SendBatcher(broker=broker, byte_limit=config.max_message_bytes, busy=busy)
    deletes = DeleteBatcher(broker=broker, byte_limit=None, busy=busy)
    handler = HandlerClient(socket_path=socket_path, read_limit=16 * 1024 * 1024, max_outputs=DEFAULT_MAX_FANOUT)
    processor = ActorProcessor(
        config=config,
        broker=broker,
        inflight=inflight,
        sends=sends,
        deletes=deletes,
        handler=handler,
        metrics=metrics,
        stopping=asyncio.Event(),
    )
    running.append(processor)

    async def batch(chunk: list[str], offset: int) -> None:
        tasks = []
        for i, body in enumerate(chunk):
            message = Received(message_id=str(offset + i), receipt_handle=f"r{offset + i}", body=body, receive_count=1)
            inflight.add(message)
            tasks.append(asyncio.create_task(processor.process(message, Slot(lambda: None))))
        await asyncio.gather(*tasks)

    await batch(bodies[:WARMUP], 0)
    if metrics.succeeded._value.get() != WARMUP:  # every message must take the success path, or this measures another
        raise SystemExit(f"only {metrics.succeeded._value.get():.0f} of {WARMUP} warm-up messages succeeded")
    profiler = cProfile.Profile(time.process_time) if profile else None
    server_before, cpu_before = server.cpu_times(), time.process_time()
    if profiler:
        profiler.enable()
    for start in range(WARMUP, len(bodies), BATCH):
        await batch(bodies[start : start + BATCH], start)
    if profiler:
        profiler.disable()
    cpu, server_after = time.process_time() - cpu_before, server.cpu_times()
    handler.close()
    measured = len(bodies) - WARMUP
    server_cpu = (server_after.user + server_after.system) - (server_before.user + server_before.system)
    report = (
        f"{measured} messages: sidecar side {1e6 * cpu / measured:.0f} us of CPU per message, "
        f"handler server {1e6 * server_cpu / measured:.0f} us"
    )
    if profiler:
        stats = pstats.Stats(profiler)
        stats.sort_stats("cumulative").print_stats(40)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description="the sidecar's own per-message CPU, without a broker")
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of the sidecar's side")
    args = parser.parse_args()
    logs.configure(actor="a", namespace="bench", mode="actor")
    bodies = [new_envelope(route=["a", "b", "c"], payload={"n": 0}).to_json() for _ in range(WARMUP + args.messages)]
    with tempfile.TemporaryDirectory(prefix="asya-hotpath-") as workdir:
        socket_path = os.path.join(workdir, "handler.sock")
        settings = HandlerServerConfig(
            handler="bench.identity.handle", socket_path=socket_path, concurrency=BATCH, search_path=(str(REPO_ROOT),)
        )
        server = subprocess.Popen(
            handler_argv("python"), env={**os.environ, **settings.to_env()}, stderr=subprocess.DEVNULL
        )
        try:
            deadline = time.monotonic() + 30
            while not os.path.exists(socket_path):
                if time.monotonic() > deadline or server.poll() is not None:
                    raise SystemExit("the handler server did not start")
                time.sleep(0.05)
            print(
                asyncio.run(
                    drive(
                        socket_path=socket_path, bodies=bodies, server=psutil.Process(server.pid), profile=args.profile
                    )
                )
            )
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
