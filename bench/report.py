"""The benchmark's printed table: per-contender numbers, the ratios sidecar ÷ each loop against targets, and cost."""

from __future__ import annotations

import os
from typing import Any

from bench.idle_cost import IdleCost
from bench.latency import LatencyResult
from bench.throughput import HANDLER_SERVER, BurstResult

#: SQS standard queues, per million requests after the free tier; every 64 KiB chunk of a payload is one request.
USD_PER_MILLION_REQUESTS = 0.40
#: Targets (issue 5, tightened by issue 11): requests and CPU as a multiple of the loop's, throughput as a share of
#: the loop's, latency as milliseconds over the loop's.
MAX_REQUESTS_RATIO = 1.05
MAX_CPU_RATIO = 1.3
MIN_THROUGHPUT_RATIO = 0.8
MAX_P50_EXTRA_MS = 5.0
#: Issue 22: the sidecar's CPU per envelope against the same loop on the sidecar's own lean SQS client.
MAX_CPU_RATIO_LEAN = 1.5
#: The loop contenders, in the table's order (the lean one only when the run had it).
LOOPS = ("loop", "lean-loop")


def machine_summary() -> str:
    """CPU count and model, memory, and the 1/5/15-minute load averages (how busy the machine was)."""
    model = "unknown CPU"
    memory_gib = 0.0
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), model)
        with open("/proc/meminfo") as f:
            memory_gib = int(next(line.split()[1] for line in f if line.startswith("MemTotal"))) / 2**20
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), {memory_gib:.1f} GiB memory, load average {load}"


def usd_per_million_envelopes(billed_requests_per_envelope: float) -> float:
    """Each envelope costs its billed requests; a million envelopes cost a million times that."""
    return billed_requests_per_envelope * USD_PER_MILLION_REQUESTS


def render_report(*, results: dict[str, dict[str, Any]], idle: IdleCost, elapsed_s: float, concurrency: int) -> str:
    mesh: BurstResult = results["sidecar"]["burst"]
    mesh_lat: LatencyResult = results["sidecar"]["latency"]
    loops = [name for name in LOOPS if name in results]
    bursts: list[BurstResult] = [mesh, *(results[name]["burst"] for name in loops)]
    latencies: list[LatencyResult] = [mesh_lat, *(results[name]["latency"] for name in loops)]
    loop: BurstResult = results["loop"]["burst"]
    loop_lat: LatencyResult = results["loop"]["latency"]
    lines = [
        "",
        f"3-actor identity pipeline, burst of {mesh.envelopes}; sidecar ASYA_CONCURRENCY={concurrency}"
        + (f"; median of {n} rounds" if (n := len(results["sidecar"].get("rounds", []))) > 1 else ""),
        f"{'':34}" + "".join(f"{name:>12}" for name in ("sidecar", *loops)),
    ]
    rows = [
        ("envelopes/s (burst)", [f"{b.envelopes_per_s:.0f}" for b in bursts]),
        ("burst drained in (s)", [f"{b.seconds:.2f}" for b in bursts]),
        ("SQS requests / envelope", [f"{b.requests_per_envelope:.3f}" for b in bursts]),
        ("billed requests / envelope", [f"{b.billed_per_envelope:.3f}" for b in bursts]),
        ("client CPU ms / envelope", [f"{b.cpu_ms_per_envelope:.2f}" for b in bursts]),
        ("  of which handler servers", [f"{mesh.cpu_ms_per_envelope_of(HANDLER_SERVER):.2f}", *("-" for _ in loops)]),
        ("idle per-hop latency p50 (ms)", [f"{lat.p50_ms:.1f}" for lat in latencies]),
        ("idle per-hop latency p99 (ms)", [f"{lat.p99_ms:.1f}" for lat in latencies]),
        ("USD per million envelopes", [f"{usd_per_million_envelopes(b.billed_per_envelope):.3f}" for b in bursts]),
    ]
    lines += [f"{name:34}" + "".join(f"{cell:>12}" for cell in cells) for name, cells in rows]
    lines += ["", "requests by action (burst window):"]
    for name, result in zip(("sidecar", *loops), bursts, strict=True):
        actions = ", ".join(f"{k} {v}" for k, v in sorted(result.by_action.items()))
        lines.append(f"  {name:9} {actions}")
    req_ratio = mesh.requests_per_envelope / loop.requests_per_envelope
    cpu_ratio = mesh.cpu_ms_per_envelope / loop.cpu_ms_per_envelope
    p50_extra = mesh_lat.p50_ms - loop_lat.p50_ms
    throughput_ratio = mesh.envelopes_per_s / loop.envelopes_per_s
    one: BurstResult | None = results.get("sidecar, concurrency 1", {}).get("burst")
    if one is not None:
        actions = ", ".join(f"{k} {v}" for k, v in sorted(one.by_action.items()))
        lines += [
            "",
            "SQS requests / envelope by default concurrency (three hops):",
            f"  concurrency {concurrency:<3} (without gpu)  {mesh.requests_per_envelope:6.3f}  (the burst above)",
            f"  concurrency 1   (gpu)          {one.requests_per_envelope:6.3f}  (burst of {one.envelopes}: {actions};"
            f" {one.envelopes_per_s:.0f} envelopes/s)",
        ]
    for name in loops:
        rounds = list(zip(results["sidecar"].get("rounds", []), results[name].get("rounds", []), strict=True))
        if len(rounds) > 1:
            lines += [
                "",
                f"each round, sidecar ÷ {name} ({len(rounds)} rounds in turns; the table and the ratios below are "
                "medians):",
                "  client CPU / envelope  "
                + "  ".join(f"{m.cpu_ms_per_envelope / lp.cpu_ms_per_envelope:.2f}x" for m, lp in rounds),
                "  envelopes/s            "
                + "  ".join(f"{m.envelopes_per_s / lp.envelopes_per_s:.2f}x" for m, lp in rounds),
            ]
    lines += [
        "",
        "ratios sidecar ÷ loop (target):",
        _verdict(
            "SQS requests / envelope", f"{req_ratio:.3f}x", f"<= {MAX_REQUESTS_RATIO}x", req_ratio <= MAX_REQUESTS_RATIO
        ),
        _verdict("client CPU / envelope", f"{cpu_ratio:.2f}x", f"<= {MAX_CPU_RATIO}x", cpu_ratio <= MAX_CPU_RATIO),
        _verdict(
            "idle per-hop p50",
            f"{p50_extra:+.1f} ms",
            f"<= loop + {MAX_P50_EXTRA_MS:.0f} ms",
            p50_extra <= MAX_P50_EXTRA_MS,
        ),
        _verdict(
            "envelopes/s",
            f"{throughput_ratio:.2f}x",
            f">= {MIN_THROUGHPUT_RATIO}x",
            throughput_ratio >= MIN_THROUGHPUT_RATIO,
        ),
    ]
    if "lean-loop" in results:
        lean: BurstResult = results["lean-loop"]["burst"]
        lean_lat: LatencyResult = results["lean-loop"]["latency"]
        lean_cpu = mesh.cpu_ms_per_envelope / lean.cpu_ms_per_envelope
        own_cpu = (mesh.cpu_ms_per_envelope - mesh.cpu_ms_per_envelope_of(HANDLER_SERVER)) / lean.cpu_ms_per_envelope
        lines += [
            "",
            "ratios sidecar ÷ lean-loop (the same loop on the sidecar's own SQS client; target):",
            _verdict(
                "SQS requests / envelope", f"{mesh.requests_per_envelope / lean.requests_per_envelope:.3f}x",
                f"<= {MAX_REQUESTS_RATIO}x", mesh.requests_per_envelope / lean.requests_per_envelope
                <= MAX_REQUESTS_RATIO,
            ),
            _verdict("client CPU / envelope", f"{lean_cpu:.2f}x", f"<= {MAX_CPU_RATIO_LEAN}x",
                     lean_cpu <= MAX_CPU_RATIO_LEAN),
            _verdict("  sidecars only", f"{own_cpu:.2f}x", "(handler servers left out)", None),
            _verdict("idle per-hop p50", f"{mesh_lat.p50_ms - lean_lat.p50_ms:+.1f} ms", "", None),
            _verdict("envelopes/s", f"{mesh.envelopes_per_s / lean.envelopes_per_s:.2f}x", "", None),
        ]
    lines += ["", "idle cost (SQS requests per minute made by the mesh):"]
    for observation in idle.observations:
        actions = ", ".join(f"{k} {v}" for k, v in sorted(observation.by_action.items())) or "none"
        lines.append(
            f"  {observation.label:44} {observation.requests_per_minute:6.1f}/min"
            f"  ({actions} in {observation.window_s:.0f} s)"
        )
    lines += ["", f"total benchmark time {elapsed_s:.0f} s"]
    return "\n".join(lines)


def _verdict(name: str, value: str, target: str, ok: bool | None) -> str:
    mark = "" if ok is None else ("MET" if ok else "MISSED")
    return f"  {name:28}{value:>12}  {target:20}{mark}".rstrip()
