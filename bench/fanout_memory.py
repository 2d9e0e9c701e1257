"""Benchmark: the sidecar's peak resident memory for one handler call that fans out to N children.

    .venv/bin/python -m bench.fanout_memory [--children 1 10000 100000]

One actor (``concurrency`` 1, ``maxFanOut`` = the largest N, offloading on as in a pod, so a 100,000-child answer
of ~9 MB is read rather than refused as ``result too large``) on the embedded broker, its children going to the
success sink's queue (no sink running). Each case is a fresh sidecar; its peak RSS (``VmHWM``) is read once every
child is queued, and printed with the memory limit the pod would render (asya_pulumi/objects/pod.py). Prints one
JSON line per case. Not a test: the figures sized ``SIDECAR_MEMORY_PER_OUTPUT_KIB`` (docs/sidecar.md, *Fan-out
bounds*).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.mesh import MeshHarness, peak_rss_mib, wait_for  # noqa: E402

from asya_pulumi.local.broker import LocalBroker  # noqa: E402
from asya_pulumi.objects.pod import sidecar_memory_limit_mib  # noqa: E402
from asya_runtime.envelope import new_envelope  # noqa: E402


def run_case(*, broker: LocalBroker, sqs: Any, s3: Any, workdir: Path, children: int, cap: int) -> dict[str, Any]:
    mesh = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=workdir)
    try:
        mesh.standard("split")
        mesh.create_bucket()  # offloading on, as in a pod: the answer may be up to 256 MiB, not 5 MiB
        actor = mesh.start_actor(
            "split", handler="fan_out", max_fanout=cap, concurrency=1, result_bucket=mesh.bucket
        )
        actor.wait_handler_ready()
        pid = actor.sidecar_pid
        assert pid is not None
        idle = peak_rss_mib(pid)
        started = time.monotonic()
        mesh.send("split", new_envelope(route=["split"], payload={"key": "p", "n": children}))
        wait_for(
            lambda: mesh.depth("success-sink") >= children and mesh.depth("split") == 0,
            timeout_s=600,
            what=f"{children} children queued",
            interval_s=0.5,
        )
        config = actor.config
        limit = sidecar_memory_limit_mib(
            concurrency=config.concurrency, max_fanout=config.max_fanout, max_message_bytes=config.max_message_bytes
        )
        return {
            "children": children,
            "peak_rss_mib": peak_rss_mib(pid),
            "idle_rss_mib": idle,
            "rendered_limit_mib": limit,
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        mesh.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--children", type=int, nargs="+", default=[1, 10_000, 100_000])
    args = parser.parse_args(argv)
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        sqs = boto3.client("sqs", **broker.client_kwargs())
        s3 = boto3.client("s3", **broker.client_kwargs())
        for index, children in enumerate(args.children):
            result = run_case(
                broker=broker, sqs=sqs, s3=s3, workdir=Path(tmp) / str(index), children=children,
                cap=max(args.children),
            )
            print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
