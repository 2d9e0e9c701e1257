"""Benchmark: dynamic batching (``spec.batch``) for a GPU-shaped handler at concurrency 1.

    .venv/bin/python -m bench.batching [--burst N] [--light N] [--max-size 16]

One actor on the embedded broker, a real sidecar and handler server (:mod:`bench.gpu_shaped`: 25 ms per call
plus 1 ms per item), unbatched and then with ``batch: {maxSize: 16}``:

* **burst** — ``--burst`` envelopes sent as fast as the driver can; envelopes/s from the first send to the last
  arrival in the success sink's queue, and each envelope's latency (its sink message's SentTimestamp minus the
  time it was sent: under a burst, mostly time spent queued);
* **light load** — ``--light`` envelopes, one every ``--gap-ms`` (far under either capacity): p50/p99 latency,
  where batching could only add its wait.

bench/__main__.py runs the same and prints the table; the numbers are in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import boto3
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.mesh import AWS_ENV, MeshHarness  # noqa: E402

from asya_pulumi.local.broker import LocalBroker  # noqa: E402
from asya_pulumi.testing import ActorProcess, HandlerSettings  # noqa: E402
from asya_runtime.envelope import new_envelope  # noqa: E402
from bench.contenders import cpu_seconds  # noqa: E402
from bench.driver import CREDENTIALS, queue_depth  # noqa: E402

ACTOR = "gpu"


@dataclass
class Run:
    """One contender's figures."""

    label: str
    max_size: int  # 0: unbatched
    burst_envelopes: int
    envelopes_per_s: float
    burst_p50_ms: float
    burst_p99_ms: float
    cpu_ms_per_envelope: float
    light_envelopes: int
    light_p50_ms: float
    light_p99_ms: float


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start_actor(mesh: MeshHarness, *, max_size: int, max_wait: str) -> ActorProcess:
    batch = {"batch_max_size": max_size, "batch_max_wait": max_wait} if max_size else {}
    handler = "bench.gpu_shaped.score_batch" if max_size else "bench.gpu_shaped.score"
    process = ActorProcess(
        config=mesh.config(ACTOR, concurrency=1, wait_time_seconds=20, metrics_port=0, **batch),
        handler=HandlerSettings(handler=handler, search_path=(str(REPO),)),
        workdir=mesh.workdir / f"{ACTOR}-{max_size}",
        aws_env=AWS_ENV,
    )
    mesh.actors.append(process)
    return process.start()


def _send(mesh: MeshHarness, count: int) -> None:
    url = mesh.queue_url(ACTOR)
    for start in range(0, count, 10):
        chunk = [new_envelope(route=[ACTOR], payload={"t": time.time()}) for _ in range(min(10, count - start))]
        entries = [{"Id": str(i), "MessageBody": e.to_json()} for i, e in enumerate(chunk)]
        mesh.sqs.send_message_batch(QueueUrl=url, Entries=entries)


def _drain_latencies(mesh: MeshHarness, count: int, *, timeout_s: float) -> tuple[list[float], float]:
    """Take ``count`` envelopes off the success sink's queue: their latencies (ms) and the last one's arrival
    (epoch seconds, the broker's SentTimestamp)."""
    url = mesh.queue_url("success-sink")
    latencies: list[float] = []
    last = 0.0
    deadline = time.monotonic() + timeout_s
    while len(latencies) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {len(latencies)} of {count} envelopes arrived within {timeout_s:.0f} s")
        got = mesh.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1, MessageSystemAttributeNames=["SentTimestamp"]
        ).get("Messages", [])
        for message in got:
            arrived = int(message["Attributes"]["SentTimestamp"]) / 1000
            latencies.append((arrived - json.loads(message["Body"])["payload"]["t"]) * 1000)
            last = max(last, arrived)
        if got:
            mesh.sqs.delete_message_batch(
                QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)]
            )
    return latencies, last


def measure(
    *, broker: LocalBroker, workdir: Path, max_size: int, max_wait: str, burst: int, light: int, gap_s: float
) -> Run:
    sqs = boto3.client("sqs", endpoint_url=broker.endpoint, **CREDENTIALS)
    s3 = boto3.client("s3", endpoint_url=broker.endpoint, **CREDENTIALS)
    mesh = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=workdir)
    try:
        mesh.standard(ACTOR)
        actor = _start_actor(mesh, max_size=max_size, max_wait=max_wait)
        _send(mesh, 3)  # warm-up: queue URLs known, connections open
        _drain_latencies(mesh, 3, timeout_s=60)
        processes = [psutil.Process(pid) for pid in actor.supervisor.pids()]
        cpu_before = cpu_seconds(processes)
        started = time.time()
        _send(mesh, burst)
        burst_latencies, last = _drain_latencies(mesh, burst, timeout_s=600)
        cpu = cpu_seconds(processes) - cpu_before
        rate = burst / (last - started)
        light_latencies: list[float] = []
        for _ in range(light):
            _send(mesh, 1)
            light_latencies += _drain_latencies(mesh, 1, timeout_s=60)[0]
            time.sleep(gap_s)
        assert queue_depth(sqs=sqs, queue_url=mesh.queue_url(ACTOR)) == 0
    finally:
        mesh.close()
    return Run(
        label=f"batched (maxSize {max_size}, maxWait {max_wait})" if max_size else "unbatched",
        max_size=max_size,
        burst_envelopes=burst,
        envelopes_per_s=round(rate, 1),
        burst_p50_ms=round(statistics.median(burst_latencies), 1),
        burst_p99_ms=round(_percentile(burst_latencies, 0.99), 1),
        cpu_ms_per_envelope=round(cpu * 1000 / burst, 3),
        light_envelopes=light,
        light_p50_ms=round(statistics.median(light_latencies), 1),
        light_p99_ms=round(_percentile(light_latencies, 0.99), 1),
    )


def run_all(*, burst: int, light: int, gap_s: float, max_size: int, max_wait: str) -> list[Run]:
    """Unbatched, then batched, each on a fresh embedded broker."""
    runs = []
    with tempfile.TemporaryDirectory(prefix="asya-bench-batch-") as workdir:
        for size in (0, max_size):
            # the unbatched actor drains ~38/s: its burst is a quarter of the batched one's, for the same wall time
            count = burst if size else max(50, burst // 4)
            print(f"==> batching: {'unbatched' if not size else f'maxSize {size}'}, burst of {count}, "
                  f"{light} light-load envelopes", flush=True)
            with LocalBroker() as broker:
                runs.append(measure(broker=broker, workdir=Path(workdir) / str(size), max_size=size,
                                    max_wait=max_wait, burst=count, light=light, gap_s=gap_s))
    return runs


def render_table(runs: list[Run]) -> str:
    base, batched = runs[0], runs[-1]
    rows = [
        "| contender | burst | envelopes/s | burst p50 / p99 ms | CPU ms / envelope | light-load p50 / p99 ms |",
        "|---|---|---|---|---|---|",
    ]
    for r in runs:
        rows.append(f"| {r.label} | {r.burst_envelopes} | {r.envelopes_per_s} | {r.burst_p50_ms} / {r.burst_p99_ms} "
                    f"| {r.cpu_ms_per_envelope} | {r.light_p50_ms} / {r.light_p99_ms} |")
    speedup = batched.envelopes_per_s / base.envelopes_per_s
    light = batched.light_p99_ms / base.light_p99_ms
    rows.append("")
    rows.append(f"throughput batched / unbatched: {speedup:.1f}x (target >= 8x: {'met' if speedup >= 8 else 'MISSED'})")
    rows.append(f"light-load p99 batched / unbatched: {light:.2f}x (target <= 2x: {'met' if light <= 2 else 'MISSED'})")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description="dynamic batching: GPU-shaped handler, batched vs unbatched")
    parser.add_argument("--burst", type=int, default=2000, help="envelopes of the batched burst (unbatched: 1/4)")
    parser.add_argument("--light", type=int, default=100, help="envelopes sent one at a time (light load)")
    parser.add_argument("--gap-ms", type=float, default=100.0, help="pause between light-load envelopes")
    parser.add_argument("--max-size", type=int, default=16)
    parser.add_argument("--max-wait", default="50ms")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    runs = run_all(burst=args.burst, light=args.light, gap_s=args.gap_ms / 1000, max_size=args.max_size,
                   max_wait=args.max_wait)
    print(render_table(runs))
    if args.json:
        Path(args.json).write_text(json.dumps([asdict(r) for r in runs], indent=2))


if __name__ == "__main__":
    main()
