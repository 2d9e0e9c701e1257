"""Benchmark: what a large envelope costs through three identity actors and the success sink, inline or offloaded.

    .venv/bin/python -m bench.claimcheck [--envelopes N]

Every sidecar (actors and sink) talks SQS through one :class:`bench.counting_proxy.CountingProxyProcess`, so SQS
requests are counted at the wire (by action, and billed 64 KiB units); S3 calls are the sidecars' own
``asya_s3_requests_total``.
Bytes moved through S3 are the ``bytes`` of the sidecars' ``offloaded`` log events (each object is written once
and read once). Prints one JSON line per case. Not a test (counts vary a little with idle long polls).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import boto3

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from support.mesh import MeshHarness, wait_for  # noqa: E402

from asya_pulumi.local.broker import LocalBroker  # noqa: E402
from asya_runtime.config import DEFAULT_OFFLOAD_THRESHOLD_BYTES, OFFLOAD_PREFIX  # noqa: E402
from asya_runtime.envelope import new_envelope  # noqa: E402
from asya_runtime.sidecar.claimcheck import offload_with  # noqa: E402
from bench.counting_proxy import CountingProxyProcess  # noqa: E402

S3_METRIC = re.compile(r'asya_s3_requests_total\{api="(\w+)"\} ([0-9.]+)')
#: (label, payload bytes, ASYA_OFFLOAD_THRESHOLD_BYTES; None = the default)
CASES = [
    ("300 KB inline (under the threshold)", 300_000, None),
    ("900 KB inline (offloading off)", 900_000, 0),
    ("900 KB offloaded (default threshold)", 900_000, None),
    ("5 MB offloaded", 5_000_000, None),
]


def s3_requests(mesh: MeshHarness) -> Counter[str]:
    """S3 calls so far, by API, summed over every sidecar of ``mesh`` (their ``asya_s3_requests_total``)."""
    calls: Counter[str] = Counter()
    for process in mesh.actors:
        for api, value in S3_METRIC.findall(process.read_metrics()):
            calls[api] += int(float(value))
    return calls


def run_case(
    *, broker: LocalBroker, sqs: Any, s3: Any, workdir: Path, size: int, threshold: int | None, count: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=workdir)
    try:
        with CountingProxyProcess(upstream=broker.endpoint, workdir=str(workdir)) as proxy:
            mesh.standard("a", "b", "c")
            mesh.create_bucket()
            # S3 direct: the counting proxy does not pass S3's `Expect: 100-continue` uploads; S3 calls are counted
            # by the sidecars themselves (asya_s3_requests_total).
            common: dict[str, Any] = {"sqs_endpoint": proxy.url, "wait_time_seconds": 20}
            mesh.start_actor("success-sink", handler=None, mode="success-sink", result_bucket=mesh.bucket, **common)
            extra = {} if threshold is None else {"offload_threshold_bytes": threshold}
            for actor in ("a", "b", "c"):
                mesh.start_actor(actor, handler="identity", result_bucket=mesh.bucket, **common, **extra)
            mesh.send("a", new_envelope(route=["a", "b", "c"], payload={"key": "warm-up"}))
            wait_for(lambda: mesh.keys("succeeded"), timeout_s=60, what="the warm-up envelope")  # queue URLs known
            proxy.reset()
            before = s3_requests(mesh)
            started = time.monotonic()
            client_bytes = 0
            for index in range(count):  # one at a time: the price of one large envelope, not of a batch
                envelope = new_envelope(route=["a", "b", "c"], payload={"key": f"k{index}", "pad": "x" * size})
                # The client's own requests go to the broker directly (not counted); it offloads as a sidecar would.
                if threshold == 0 or size <= DEFAULT_OFFLOAD_THRESHOLD_BYTES:
                    mesh.send("a", envelope)
                else:
                    mesh.send("a", offload_with(s3, bucket=mesh.bucket, envelope=envelope))
                    client_bytes += len(envelope.to_json().encode())
                try:
                    done = index + 2  # the warm-up's record, and this one's
                    wait_for(lambda n=done: len(mesh.keys("succeeded")) >= n, timeout_s=120, what=f"envelope {index}")
                    wait_for(lambda: not mesh.keys(OFFLOAD_PREFIX), timeout_s=60, what="the objects to be deleted")
                except AssertionError:
                    for process in mesh.actors:
                        print(process.logs()[-2000:], file=sys.stderr)
                    raise
            elapsed = time.monotonic() - started
            counts = proxy.counts()
            s3_calls = s3_requests(mesh) - before
        uploaded = sum(
            json.loads(line).get("bytes", 0)
            for process in mesh.actors
            for line in process.logs().splitlines()
            if '"event": "offloaded"' in line
        )
    finally:
        mesh.close()
    by_action = counts["by_action"]
    return {
        "sqs_requests_per_envelope": round(counts["sqs_requests"] / count, 2),
        "sqs_billed_per_envelope": round(counts["billed_requests"] / count, 2),
        "s3_requests_per_envelope": {api: round(n / count, 2) for api, n in sorted(s3_calls.items())},
        # Each object is written once and read once; the client's own upload is read by the first actor.
        "s3_bytes_up_per_envelope": round(uploaded / count),
        "s3_bytes_down_per_envelope": round((uploaded + client_bytes) / count),
        "by_action": by_action,
        "seconds_per_envelope": round(elapsed / count, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envelopes", type=int, default=5)
    args = parser.parse_args()
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        sqs = boto3.client("sqs", **broker.client_kwargs())
        s3 = boto3.client("s3", **broker.client_kwargs())
        for index, (label, size, threshold) in enumerate(CASES):
            result = run_case(
                broker=broker, sqs=sqs, s3=s3, workdir=Path(tmp) / str(index), size=size, threshold=threshold,
                count=args.envelopes,
            )
            print(json.dumps({"case": label, **result}), flush=True)


if __name__ == "__main__":
    main()
