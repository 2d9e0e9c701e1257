"""Burst rate of ``asya dev``: N envelopes through a 3-actor pipeline on the embedded broker (not a timed test).

    .venv/bin/python -m bench.dev_burst                       # 2,000 envelopes, 1 replica per actor
    .venv/bin/python -m bench.dev_burst --replicas 2 --concurrency 20

It writes a throwaway pipeline (three pass-through Python actors a → b → c, each with the given ``concurrency``),
then runs the real ``asya dev`` command on it, which starts its own LocalStack, sends every envelope at once and
waits until each has its final record in the bucket. The rate is final records per second from the first send to
the moment ``asya dev`` knew the run was complete (it prints both); process start-up is not counted, since it
happens once per session, not per envelope. Target: ≥ 200 envelopes/s on the 2-core machine.
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
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--replicas", type=int, default=1, help="replicas per actor (and per sink)")
    parser.add_argument("--concurrency", type=int, default=10, help="spec.concurrency of each actor")
    parser.add_argument("--sink-replicas", type=int, default=None, help="success-sink replicas (default: --replicas)")
    parser.add_argument("--sqs-endpoint", help="use a running broker instead of the embedded one")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="asya-burst-") as tmp:
        work = Path(tmp)
        write_pipeline(work / "pipeline", concurrency=args.concurrency)
        write_inputs(work / "in.jsonl", count=args.messages)
        asya = str(Path(sys.executable).parent / "asya")
        command = [
            asya,
            "dev",
            str(work / "pipeline"),
            "--input",
            str(work / "in.jsonl"),
            "--results",
            str(work / "results.jsonl"),
            "--replicas",
            str(args.replicas),
            "--replicas",
            f"success-sink={args.sink_replicas or args.replicas}",
            "--logs",
            str(work / "logs"),
        ]
        if args.sqs_endpoint:
            command += ["--sqs-endpoint", args.sqs_endpoint, "--namespace", f"burst-{os.getpid()}"]
        started = time.monotonic()
        done = subprocess.run(command, capture_output=True, text=True, timeout=900)
        wall = time.monotonic() - started
        records = (
            [json.loads(line) for line in (work / "results.jsonl").read_text().splitlines()]
            if (work / "results.jsonl").exists()
            else []
        )

    match = _FINISHED.search(done.stdout)
    complete = [r for r in records if r["payload"].get("c") and r["route"]["prev"] == ["a", "b", "c"]]
    if done.returncode != 0 or match is None or len(complete) != args.messages:
        print(done.stdout[-3000:], done.stderr[-3000:], sep="\n")
        print(f"FAILED: exit {done.returncode}, {len(complete)}/{args.messages} complete records")
        return 1
    seconds = float(match.group(1))
    rate = args.messages / seconds
    load = os.getloadavg()[0]
    print(
        f"dev burst: {args.messages} envelopes through a→b→c, replicas={args.replicas}, "
        f"concurrency={args.concurrency}, sink replicas={args.sink_replicas or args.replicas}, "
        f"cpus={os.cpu_count()}, load(1m)={load:.1f}"
    )
    print(
        f"  send→all final records: {seconds:.2f} s = {rate:.0f} envelopes/s "
        f"(target ≥ {TARGET_PER_S:.0f}: {'met' if rate >= TARGET_PER_S else 'NOT met'})"
    )
    print(
        f"  send→all {args.messages} records read back into --results: {float(match.group(2)):.2f} s; "
        f"whole command incl. broker and process start-up: {wall:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
