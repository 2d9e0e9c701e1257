"""Burst rate of ``asya dev``: N envelopes through a 3-actor pipeline on each embedded broker (not a timed test).

    .venv/bin/python -m bench.dev_burst                       # 2,000 envelopes, fauxqs then LocalStack
    .venv/bin/python -m bench.dev_burst --broker fauxqs --replicas 2 --concurrency 20
    .venv/bin/python -m bench.dev_burst --persistence          # fauxqs with its state file, then in memory

It writes a throwaway pipeline (three pass-through Python actors a → b → c, each with the given ``concurrency``),
then runs the real ``asya dev`` command on it once per broker (``--broker``), each run starting its own server,
sending every envelope at once and waiting until each has its final record in the bucket. The rate is final records
per second from the first send to the moment the mesh was idle with every record stored (``asya dev`` prints it);
process start-up is not counted, since it happens once per session, not per envelope. Target: ≥ 200 envelopes/s on
the 2-core machine with the default broker; the LocalStack run, right after it on the same machine, is the baseline
that chose it.

``--persistence`` measures what the embedded broker's durability costs: the same burst against a fauxqs that writes
through to its SQLite state file (what ``asya dev`` runs) and against one in memory, each started here and passed to
``asya dev`` as ``--sqs-endpoint``, with the broker's own CPU time per envelope beside the rate.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from asya_pulumi.local.broker import BROKER_KINDS, LocalBroker

TARGET_PER_S = 200.0
_FINISHED = re.compile(r"mesh idle ([\d.]+) s after the first send .*; records read back by ([\d.]+) s")

_MESH = """apiVersion: asya.sh/v1alpha1
kind: ActorMesh
metadata: {{name: {namespace}}}
spec:
  routes: {{burst: [a, b, c]}}
"""
_ACTOR = """apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {{name: {name}}}
spec:
  image: bench:local
  handler: steps.step_{name}
  concurrency: {concurrency}
  resiliency: {{actorTimeout: 30s}}
"""
_HANDLERS = '''"""Pass-through steps: each records that it ran, so the final record proves the whole route was taken."""


def step_a(payload):
    return {**payload, "a": True}


def step_b(payload):
    return {**payload, "b": True}


def step_c(payload):
    return {**payload, "c": True}
'''


def write_pipeline(directory: Path, *, concurrency: int) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "mesh.yaml").write_text(_MESH.format(namespace="burst"))
    for name in "abc":
        (directory / f"{name}.yaml").write_text(_ACTOR.format(name=name, concurrency=concurrency))
    (directory / "steps.py").write_text(_HANDLERS)


def write_inputs(path: Path, *, count: int) -> None:
    with path.open("w") as out:
        for i in range(count):
            out.write(json.dumps({"route": "burst", "payload": {"n": i}}) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    every = ", ".join(BROKER_KINDS)
    parser.add_argument("--broker", action="append", choices=BROKER_KINDS, help=f"broker(s) to run (default: {every})")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per actor (and per sink)")
    parser.add_argument("--concurrency", type=int, default=10, help="spec.concurrency of each actor")
    parser.add_argument("--sink-replicas", type=int, default=None, help="success-sink replicas (default: --replicas)")
    parser.add_argument("--sqs-endpoint", help="use a running broker instead of an embedded one")
    parser.add_argument("--persistence", action="store_true", help="fauxqs with its state file, then in memory")
    args = parser.parse_args()

    print(
        f"dev burst: {args.messages} envelopes through a→b→c, replicas={args.replicas}, "
        f"concurrency={args.concurrency}, sink replicas={args.sink_replicas or args.replicas}, "
        f"cpus={os.cpu_count()}, load(1m) at start={os.getloadavg()[0]:.1f}"
    )
    if args.persistence:
        return compare_persistence(args)
    brokers = [None] if args.sqs_endpoint else (args.broker or list(BROKER_KINDS))
    rates: dict[str, float] = {}
    for broker in brokers:
        rate = run_once(args, broker=broker)
        if rate is None:
            return 1
        rates[broker or args.sqs_endpoint] = rate
    if len(rates) > 1:
        (first, first_rate), *others = rates.items()
        for name, rate in others:
            print(f"  {first} ÷ {name}: {first_rate / rate:.2f}x the burst rate")
    return 0


def compare_persistence(args: argparse.Namespace) -> int:
    """The burst against a persisting fauxqs, then an in-memory one; rate and broker CPU per envelope of each."""
    rates: dict[str, float] = {}
    for persist in (True, False):
        label = "state file" if persist else "in memory"
        with LocalBroker(kind="fauxqs", persist=persist) as broker:
            assert broker.pid is not None
            server = psutil.Process(broker.pid)
            cpu_before = sum(server.cpu_times()[:2])
            args.sqs_endpoint = broker.endpoint
            rate = run_once(args, broker=None)
            cpu_ms = (sum(server.cpu_times()[:2]) - cpu_before) * 1000 / args.messages
            files = broker.state_file.parent.glob("fauxqs.db*") if broker.state_file else []
            size = sum(p.stat().st_size for p in files)
        if rate is None:
            return 1
        rates[label] = rate
        print(f"  fauxqs, {label}: broker CPU {cpu_ms:.2f} ms per envelope; state file {size / 2**20:.1f} MiB")
    print(f"  state file ÷ in memory: {rates['state file'] / rates['in memory']:.2f}x the burst rate")
    return 0


def run_once(args: argparse.Namespace, *, broker: str | None) -> float | None:
    """One ``asya dev`` run of the burst; prints its line and returns envelopes/s (None if the run failed)."""
    with tempfile.TemporaryDirectory(prefix="asya-burst-") as tmp:
        work = Path(tmp)
        write_pipeline(work / "pipeline", concurrency=args.concurrency)
        write_inputs(work / "in.jsonl", count=args.messages)
        asya = str(Path(sys.executable).parent / "asya")
        command = [
            asya, "dev", str(work / "pipeline"), "--input", str(work / "in.jsonl"),
            "--results", str(work / "results.jsonl"), "--logs", str(work / "logs"),
            "--replicas", str(args.replicas), "--replicas", f"success-sink={args.sink_replicas or args.replicas}",
        ]
        if broker is None:
            command += ["--sqs-endpoint", args.sqs_endpoint, "--namespace", f"burst-{os.getpid()}"]
        else:
            command += ["--broker", broker]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        wall = time.monotonic() - started
        results = work / "results.jsonl"
        records = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []

    label = broker or args.sqs_endpoint
    match = _FINISHED.search(done.stdout)
    complete = [r for r in records if r["payload"].get("c") and r["route"]["prev"] == ["a", "b", "c"]]
    if done.returncode != 0 or match is None or len(complete) != args.messages:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        print(f"FAILED on {label}: exit {done.returncode}, {len(complete)}/{args.messages} complete records")
        return None
    seconds = float(match.group(1))
    rate = args.messages / seconds
    verdict = "met" if rate >= TARGET_PER_S else "NOT met"
    print(
        f"  {label:<10} send→all final records {seconds:6.2f} s = {rate:4.0f} envelopes/s "
        f"(target ≥ {TARGET_PER_S:.0f}: {verdict}); all read back into --results by {float(match.group(2)):.2f} s; "
        f"whole command incl. broker and process start-up {wall:.1f} s"
    )
    return rate


if __name__ == "__main__":
    sys.exit(main())
