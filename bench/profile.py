"""Where a contender's CPU goes during the burst: py-spy samples of every process, summed up by function and area.

    .venv/bin/python -m bench.profile --burst 2000 --out out/profile

Runs the same burst as the benchmark (fresh broker, counting proxy) with ``py-spy record`` attached to each of the
contender's processes, writes each process's collapsed stacks to ``--out`` (flame-graph input), and prints
(1) the share of samples per *area* (botocore/aiobotocore request handling, pydantic, JSON, logging, asyncio,
aiohttp, the handler protocol) and (2) the functions with the most inclusive samples. Read the shares within one
process kind, not across contenders: py-spy also samples a thread that holds the GIL while it waits for a core, so
on a small machine the contender with more processes (the mesh runs twice the loop's) collects samples that are not
CPU time (docs/benchmarks.md, sections 5 and 8; for CPU per process, psutil is the measure). Profiling slows the
run; take the numbers of ``python -m bench`` for throughput and CPU, and these for where the time goes.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

from asya_pulumi.local.broker import LocalBroker
from bench.__main__ import ACTORS, wait_until_polling
from bench.contenders import Contender, LoopContender, MeshContender
from bench.counting_proxy import CountingProxyProcess
from bench.driver import create_pipeline_queues, identity_mesh, sqs_client
from bench.throughput import measure_burst

PY_SPY = Path(sys.executable).with_name("py-spy")
#: Areas, first match wins: a path fragment of the frame's file (or the function name) → the area's name.
AREAS = [
    ("handler_server.py", "handler server (user side)"),
    ("handler_client.py", "sidecar: handler protocol client"),
    ("logs.py", "sidecar: JSON logs"),
    ("/logging/", "logging"),
    ("pydantic", "pydantic (envelope models)"),
    ("aws_json.py", "lean SQS client (build, sign, parse)"),
    ("sigv4.py", "lean SQS client (build, sign, parse)"),
    ("botocore", "botocore/aiobotocore (request build, sign, parse)"),
    ("aiohttp", "aiohttp (HTTP transport)"),
    ("/json/", "json"),
    ("asyncio", "asyncio event loop"),
]


def area_of(frames: list[str]) -> str:
    """The outermost area on a sample's stack below the event loop: what the loop was busy running."""
    for frame in frames:
        for fragment, area in AREAS:
            if fragment in frame and fragment != "asyncio":
                return area
    return "asyncio event loop" if any("asyncio" in f for f in frames) else "other"


def summarize(collapsed: dict[str, Counter[str]], *, top: int = 20) -> str:
    """Shares by area and top functions by inclusive samples, for each contender process kind."""
    lines = []
    for name, stacks in collapsed.items():
        total = sum(stacks.values())
        if not total:
            continue
        by_area: Counter[str] = Counter()
        inclusive: Counter[str] = Counter()
        for stack_text, count in stacks.items():
            frames = stack_text.split(";")[1:]  # the first entry is the process
            by_area[area_of(frames)] += count
            for frame in set(frames):
                inclusive[frame] += count
        lines.append(f"== {name}: {total} samples")
        lines += [f"  {100 * n / total:5.1f}%  {area}" for area, n in by_area.most_common()]
        lines.append("  top functions (inclusive):")
        lines += [f"  {100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    return "\n".join(lines)


def profile_burst(*, contender: Contender, burst: int, out_dir: Path, workdir: str) -> dict[str, Counter[str]]:
    """Run one burst with py-spy attached to every process of ``contender``; collapsed stacks per process kind."""
    with LocalBroker() as broker, CountingProxyProcess(upstream=broker.endpoint, workdir=workdir) as proxy:
        sqs = sqs_client(broker.endpoint)
        namespace = f"prof-{contender.name}"
        urls = create_pipeline_queues(sqs=sqs, mesh=identity_mesh(namespace=namespace, actors=ACTORS))
        contender.start(endpoint=proxy.url, namespace=namespace, actors=ACTORS)
        spies: list[tuple[str, Path, subprocess.Popen[bytes]]] = []
        try:
            wait_until_polling(proxy=proxy, pollers=len(ACTORS))
            for process in contender.processes():
                kind = "handler server" if "handler_server" in " ".join(process.cmdline()) else contender.name
                path = out_dir / f"{contender.name}-{process.pid}.collapsed"
                command = [str(PY_SPY), "record", "--gil", "--format", "raw", "--rate", "250", "-o", str(path)]
                spies.append((kind, path, subprocess.Popen([*command, "-p", str(process.pid)])))
            result = measure_burst(sqs=sqs, urls=urls, actors=ACTORS, contender=contender, proxy=proxy, count=burst)
            print(
                f"{contender.name}: {result.envelopes_per_s:.0f} envelopes/s under the profiler, "
                f"{result.requests_per_envelope:.3f} SQS requests per envelope {result.by_action}"
            )
        finally:
            for _, _, spy in spies:
                spy.send_signal(signal.SIGINT)
            for _, _, spy in spies:
                spy.wait(timeout=60)
            contender.stop()
    collapsed: dict[str, Counter[str]] = {}
    for kind, path, _ in spies:
        stacks = collapsed.setdefault(f"{contender.name} / {kind}", Counter())
        if path.exists():
            for line in path.read_text().splitlines():
                stack, _, count = line.rpartition(" ")
                if stack:
                    stacks[stack] += int(count)
    return collapsed


def main() -> None:
    parser = argparse.ArgumentParser(description="profile the benchmark's contenders with py-spy")
    parser.add_argument("--burst", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--out", default="out/profile", help="directory for the collapsed stacks")
    args = parser.parse_args()
    if not PY_SPY.exists():
        raise SystemExit(f"py-spy not found at {PY_SPY}; run scripts/setup (it is in requirements/dev.in)")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    collapsed: dict[str, Counter[str]] = {}
    with tempfile.TemporaryDirectory(prefix="asya-profile-") as workdir:
        contenders: list[Contender] = [
            MeshContender(log_dir=workdir, concurrency=args.concurrency),
            LoopContender(log_dir=workdir),
            LoopContender(log_dir=workdir, client="lean"),
        ]
        for contender in contenders:
            collapsed.update(profile_burst(contender=contender, burst=args.burst, out_dir=out_dir, workdir=workdir))
    report = summarize(collapsed)
    (out_dir / "summary.txt").write_text(report + "\n")
    print(report)
    print(f"collapsed stacks and summary.txt in {os.path.abspath(out_dir)}")


if __name__ == "__main__":
    main()
