"""Would one ``call_batch`` frame per received batch save an ordinary actor CPU? The frames' own cost, measured.

    .venv/bin/python -m bench.frame_lever [--envelopes 5000]

The sidecar's real :class:`HandlerClient` against a real Python handler server with a handler that does nothing
(:mod:`bench.gpu_shaped` ``echo`` / ``echo_batch``): ten calls at a time, one ``call`` frame per envelope (what an
actor at concurrency 10 does today), against one ``call_batch`` frame per ten envelopes. CPU of both processes
(this one is the sidecar's side) per envelope. The difference bounds what the lever could save per envelope.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from asya_runtime.handler_server import HandlerServerConfig
from asya_runtime.sidecar.handler_batch import BatchCollector
from asya_runtime.sidecar.handler_client import HandlerClient

REPO = Path(__file__).resolve().parent.parent
SERVER = REPO / "runtime" / "asya_runtime" / "handler_server.py"
ENVELOPE = (
    '{"id":"6a1f0c1e-2b1d-4c7e-9a55-0d2c1f1b9e10","route":{"prev":[],"curr":"a","next":["b"]},'
    '"headers":{},"status":{"phase":"pending","attempt":1},"payload":{"key":"k","text":"' + "x" * 200 + '"}}'
)


def _server(handler: str, socket_path: str, concurrency: int) -> subprocess.Popen[bytes]:
    env = {**os.environ, **HandlerServerConfig(handler=handler, socket_path=socket_path, concurrency=concurrency,
                                               search_path=(str(REPO),)).to_env()}
    process = subprocess.Popen([sys.executable, str(SERVER)], env=env, stderr=subprocess.DEVNULL)
    while not os.path.exists(socket_path):
        time.sleep(0.01)
    return process


async def _singles(client: HandlerClient, count: int) -> None:
    async def worker(n: int) -> None:
        for _ in range(n):
            await client.call(envelope_json=ENVELOPE, budget=lambda: 30.0, connect_wait_s=5)

    await asyncio.gather(*(worker(count // 10) for _ in range(10)))


async def _batches(collector: BatchCollector, count: int) -> None:
    for _ in range(count // 10):
        await asyncio.gather(*(
            collector.call(envelope_json=ENVELOPE, budget=lambda: 30.0, connect_wait_s=5) for _ in range(10)
        ))


def measure(kind: str, count: int) -> float:
    """CPU ms per envelope, client + server."""
    with tempfile.TemporaryDirectory() as directory:
        socket_path = f"{directory}/h.sock"
        batched = kind == "call_batch"
        server = _server("bench.gpu_shaped.echo_batch" if batched else "bench.gpu_shaped.echo", socket_path,
                         1 if batched else 10)
        watched = psutil.Process(server.pid)

        async def session() -> float:
            client = HandlerClient(socket_path=socket_path, read_limit=64 * 2**20, max_outputs=10_000)
            collector = BatchCollector(client=client, max_size=10, max_wait_s=0.05, concurrency=1)

            async def run(n: int) -> None:
                await (_batches(collector, n) if batched else _singles(client, n))

            await run(200)  # warm-up
            before = time.process_time() + sum(watched.cpu_times()[:2])
            await run(count)
            spent = time.process_time() + sum(watched.cpu_times()[:2]) - before
            client.close()
            return spent

        try:
            spent = asyncio.run(session())
        finally:
            server.terminate()
            server.wait()
    return spent * 1000 / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    figures: dict[str, list[float]] = {"call": [], "call_batch": []}
    for _ in range(args.rounds):
        for kind in figures:
            figures[kind].append(measure(kind, args.envelopes))
    for kind, values in figures.items():
        print(f"{kind:>10}: CPU ms / envelope (sidecar side + handler server), rounds: "
              + ", ".join(f"{v:.3f}" for v in values) + f"; median {sorted(values)[len(values) // 2]:.3f}")


if __name__ == "__main__":
    main()
