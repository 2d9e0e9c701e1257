"""Run every benchmark of issue 5 and print the table and the ratios: ``.venv/bin/python -m bench``.

Then issue 22's dynamic-batching table (bench/batching.py), unless ``--batching-burst 0``.

For each contender (the sidecar mesh, then the hand-written loop) a fresh broker is started, with a counting proxy
in front of it that only the contender talks to. In each: idle per-hop latency on the empty pipeline, then a burst.
Afterwards the idle cost of the mesh (zero replicas, one idle replica) against one more fresh broker. Ends with the
ratios sidecar ÷ loop against the targets and the cost per million envelopes; ``--json`` also writes all numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asya_pulumi.local.broker import LocalBroker, default_broker_kind
from bench import batching
from bench.contenders import Contender, LoopContender, MeshContender
from bench.counting_proxy import CountingProxyProcess
from bench.driver import create_pipeline_queues, identity_mesh, sqs_client
from bench.idle_cost import IdleCost, measure_idle_cost
from bench.latency import LatencyResult, measure_latency
from bench.report import machine_summary, render_report
from bench.throughput import BurstResult, measure_burst, median_burst

ACTORS = ["a", "b", "c"]


def wait_until_polling(*, proxy: CountingProxyProcess, pollers: int, timeout_s: float = 60.0) -> None:
    """Block until the contender has made ``pollers`` receive calls: every actor is up and consuming."""
    deadline = time.monotonic() + timeout_s
    while proxy.counts()["by_action"].get("ReceiveMessage", 0) < pollers:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the contender did not start polling within {timeout_s:.0f} s: {proxy.counts()}")
        time.sleep(0.1)


def run_contender(
    *, contender: Contender, burst: int, samples: int, workdir: str
) -> tuple[LatencyResult | None, BurstResult]:
    """Latency (unless ``samples`` is 0), then the burst, for one contender against its own freshly started broker."""
    with LocalBroker() as broker, CountingProxyProcess(upstream=broker.endpoint, workdir=workdir) as proxy:
        sqs = sqs_client(broker.endpoint)
        namespace = f"bench-{contender.name}"
        urls = create_pipeline_queues(sqs=sqs, mesh=identity_mesh(namespace=namespace, actors=ACTORS))
        contender.start(endpoint=proxy.url, namespace=namespace, actors=ACTORS)
        try:
            wait_until_polling(proxy=proxy, pollers=len(ACTORS))
            latency = measure_latency(sqs=sqs, urls=urls, actors=ACTORS, samples=samples) if samples else None
            result = measure_burst(sqs=sqs, urls=urls, actors=ACTORS, contender=contender, proxy=proxy, count=burst)
        finally:
            contender.stop()
    return latency, result


def main() -> None:
    parser = argparse.ArgumentParser(description="asya benchmarks (issue 5)")
    parser.add_argument("--burst", type=int, default=2000, help="envelopes in the throughput burst")
    parser.add_argument("--samples", type=int, default=100, help="single envelopes for the latency percentiles")
    parser.add_argument(
        "--concurrency", type=int, default=10, help="ASYA_CONCURRENCY of each sidecar (10: the default without gpu)"
    )
    parser.add_argument(
        "--one-burst",
        type=int,
        default=300,
        help="envelopes of the extra burst at concurrency 1 (a GPU actor's default): its requests per envelope",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="bursts per contender, taken in turns, each on a fresh broker; the table shows each figure's median",
    )
    parser.add_argument("--idle-window", type=float, default=60.0, help="seconds the idle cost is observed")
    parser.add_argument(
        "--batching-burst", type=int, default=2000,
        help="envelopes of the dynamic-batching burst (bench/batching.py; unbatched: a quarter); 0 skips it",
    )
    parser.add_argument("--json", help="also write every number to this file")
    args = parser.parse_args()

    started = time.monotonic()
    machine_before = machine_summary()
    print(f"==> machine: {machine_before}")
    broker = default_broker_kind()  # every fresh broker below is of this kind (ASYA_BROKER picks it)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="asya-bench-") as workdir:
        # The contenders take turns, so a spell of load on the shared machine hits one round of each, not one
        # contender; latency is sampled in the first round only.
        for round_number in range(1, args.rounds + 1):
            for contender in (
                MeshContender(log_dir=workdir, concurrency=args.concurrency),
                LoopContender(log_dir=workdir),
            ):
                samples = args.samples if round_number == 1 else 0
                measured = f"latency ({samples} samples), " if samples else ""
                print(
                    f"==> {contender.name}, round {round_number} of {args.rounds}: fresh {broker}, "
                    f"{measured}burst of {args.burst}"
                )
                latency, burst = run_contender(contender=contender, burst=args.burst, samples=samples, workdir=workdir)
                entry = results.setdefault(contender.name, {"latency": latency, "rounds": []})
                entry["rounds"].append(burst)
        for name in ("sidecar", "loop"):
            results[name]["burst"] = median_burst(results[name]["rounds"])
        print(f"==> sidecar at concurrency 1 (a GPU actor's default): fresh {broker}, burst of {args.one_burst}")
        _, one = run_contender(
            contender=MeshContender(log_dir=workdir, concurrency=1), burst=args.one_burst, samples=0, workdir=workdir
        )
        results["sidecar, concurrency 1"] = {"latency": None, "burst": one}
        print(f"==> idle cost: fresh {broker}, {args.idle_window:.0f} s windows")
        idle: IdleCost = measure_idle_cost(window_s=args.idle_window, workdir=workdir, concurrency=args.concurrency)
        batch_runs = []
        if args.batching_burst:
            batch_runs = batching.run_all(burst=args.batching_burst, light=100, gap_s=0.1, max_size=16, max_wait="50ms")
    elapsed = time.monotonic() - started
    print(render_report(results=results, idle=idle, elapsed_s=elapsed, concurrency=args.concurrency))
    if batch_runs:
        print("\ndynamic batching, GPU-shaped handler (25 ms per call + 1 ms per item) at concurrency 1:")
        print(batching.render_table(batch_runs))
    print(f"machine at the start: {machine_before}\nmachine at the end:   {machine_summary()}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            everything = {"broker": broker, "results": _as_json(results), "idle": asdict(idle), "elapsed_s": elapsed,
                          "batching": [asdict(run) for run in batch_runs]}
            json.dump(everything, f, indent=2)


def _as_json(results: dict[str, Any]) -> dict[str, Any]:
    """Raw samples and counters plus the derived figures the table prints."""
    out = {}
    for name, r in results.items():
        latency, burst = r["latency"], r["burst"]
        derived = {
            "envelopes_per_s": burst.envelopes_per_s,
            "requests_per_envelope": burst.requests_per_envelope,
            "billed_per_envelope": burst.billed_per_envelope,
            "cpu_ms_per_envelope": burst.cpu_ms_per_envelope,
            "cpu_ms_per_envelope_by_kind": {kind: burst.cpu_ms_per_envelope_of(kind) for kind in burst.cpu_by_kind},
            "per_hop_p50_ms": latency.p50_ms if latency else None,
            "per_hop_p99_ms": latency.p99_ms if latency else None,
        }
        out[name] = {
            "derived": derived,
            "latency": asdict(latency) if latency else None,
            "burst": asdict(burst),
            "rounds": [asdict(b) for b in r.get("rounds", [burst])],
        }
    return out


if __name__ == "__main__":
    main()
