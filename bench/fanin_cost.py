"""Benchmark: what fan-in adds per child, in requests and bytes, against the same children passing a plain actor.

    .venv/bin/python -m bench.fanin_cost [--parents P] [--children K] [--pad BYTES]

Route ``split → join`` on the embedded broker: ``split`` fans each of P parents out into K children (``fan_out``,
each child ``{"key", "i"}`` plus ``--pad`` bytes), then ``join`` either passes every child on (``identity``, no
``fanIn``: the baseline) or gathers them (``gather`` with ``fanIn: {timeout: 10s}``: one aggregate per parent). Both
sidecars at concurrency 10. SQS requests are counted at the wire (:class:`bench.counting_proxy.CountingProxyProcess`,
billed 64 KiB units), from the first child sent to the last timer gone; S3 requests by the join sidecar's own
``asya_s3_requests_total``; S3 bytes written and read from the state objects the run left (every object under
``fanin/`` is written once, every child record read once; nothing else is read unless a message is redelivered).
The envelope's own growth is measured on a child's body with and without its ``fanout`` field.
Prices (us-east-1): SQS $0.40 per million requests, S3 PUT/LIST $5.00 and GET $0.40 per million.
Prints one JSON line per run, then one with the difference per child.
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
from asya_runtime.envelope import new_envelope  # noqa: E402
from asya_runtime.sidecar import routing  # noqa: E402
from bench.counting_proxy import CountingProxyProcess  # noqa: E402

S3_METRIC = re.compile(r'asya_s3_requests_total\{api="(\w+)"\} ([0-9.]+)')
SQS_USD_PER_M = 0.40
S3_WRITE_USD_PER_M = 5.00  # PUT, COPY, POST, LIST
S3_READ_USD_PER_M = 0.40  # GET
TIMEOUT = "10s"


def s3_requests(process: Any) -> Counter[str]:
    calls: Counter[str] = Counter()
    for api, value in S3_METRIC.findall(process.read_metrics()):
        calls[api] += int(float(value))
    return calls


def run(
    *, broker: LocalBroker, sqs: Any, s3: Any, workdir: Path, fanin: bool, parents: int, children: int, pad: int
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=workdir)
    try:
        with CountingProxyProcess(upstream=broker.endpoint, workdir=str(workdir)) as proxy:
            mesh.standard("split", "join")
            mesh.create_bucket()
            common: dict[str, Any] = {"sqs_endpoint": proxy.url, "wait_time_seconds": 20, "concurrency": 10,
                                      "max_fanout": max(children, 2)}
            mesh.start_actor("split", handler="fan_out", **common)
            join_settings = {"fanin_timeout": TIMEOUT} if fanin else {}
            join = mesh.start_actor("join", handler="gather" if fanin else "identity", result_bucket=mesh.bucket,
                                    **common, **join_settings)
            # Warm-up: one parent of two children, its outputs taken off the queue, its timer gone.
            mesh.send("split", new_envelope(route=["split", "join"], payload={"key": "warm-up", "n": 2}))
            mesh.take("success-sink", 1 if fanin else 2)
            wait_for(lambda: mesh.depth("join") == 0, timeout_s=120, what="the warm-up's timer gone", interval_s=0.5)
            time.sleep(1.0)
            proxy.reset()
            before = s3_requests(join)
            started = time.monotonic()
            for index in range(parents):
                payload = {"key": f"p{index}" + "x" * pad, "n": children}  # every child carries the key
                mesh.send("split", new_envelope(route=["split", "join"], payload=payload))
            expected = parents if fanin else parents * children
            wait_for(lambda: mesh.depth("success-sink") >= expected, timeout_s=300, what=f"{expected} outputs",
                     interval_s=0.25)
            elapsed = time.monotonic() - started
            wait_for(lambda: mesh.depth("join") == 0 and mesh.depth("split") == 0, timeout_s=120,
                     what="the timers gone", interval_s=0.5)
            time.sleep(1.0)  # the last deletes flushed
            counts = proxy.counts()
            s3_calls = s3_requests(join) - before
            written, read = _state_bytes(mesh, exclude="warm-up") if fanin else (0, 0)
    finally:
        mesh.close()
    return {
        "fanin": fanin,
        "parents": parents,
        "children_per_parent": children,
        "sqs_requests": counts["sqs_requests"],
        "sqs_billed": counts["billed_requests"],
        "sqs_by_action": counts["by_action"],
        "s3_requests": dict(sorted(s3_calls.items())),
        "s3_bytes_written": written,
        "s3_bytes_read": read,
        "seconds_to_last_output": round(elapsed, 2),
    }


def _state_bytes(mesh: MeshHarness, *, exclude: str) -> tuple[int, int]:
    """``(bytes of every object under fanin/, bytes of the child records among them)``: all written once; the
    child records read once when the aggregate is made. The parent whose payload key is ``exclude`` is left out."""
    written = read = 0
    skip = {item["Key"].split("/")[2] for item in mesh.s3.list_objects_v2(Bucket=mesh.bucket, Prefix="fanin/")
            .get("Contents", []) if exclude.encode() in mesh.s3.get_object(Bucket=mesh.bucket, Key=item["Key"])
            ["Body"].read()}
    for page in mesh.s3.get_paginator("list_objects_v2").paginate(Bucket=mesh.bucket, Prefix="fanin/"):
        for item in page.get("Contents", []):
            if item["Key"].split("/")[2] in skip:
                continue
            written += item["Size"]
            if item["Key"].rsplit("/", 1)[-1].removesuffix(".json").isdigit():
                read += item["Size"]
    return written, read


def envelope_growth(*, children: int) -> int:
    """Bytes a child's body gains from its ``fanout`` field (index and total)."""
    parent = new_envelope(route=["split", "join"], payload={"key": "p"})
    outputs = routing.next_hops(source=parent, outputs=[{"payload": {"key": "p", "i": i}} for i in range(children)])
    child = outputs[-1].envelope
    return len(child.to_json()) - len(child.model_copy(update={"fanout": None}).to_json())


def per_child(*, off: dict[str, Any], on: dict[str, Any]) -> dict[str, Any]:
    count = on["parents"] * on["children_per_parent"]
    s3 = Counter(on["s3_requests"])
    writes = s3["put_object"] + s3["list_objects_v2"]
    reads = s3["get_object"]
    sqs_delta = (on["sqs_billed"] - off["sqs_billed"]) / count
    usd = writes * S3_WRITE_USD_PER_M + reads * S3_READ_USD_PER_M
    return {
        "per_child": {
            "sqs_billed_delta": round(sqs_delta, 3),
            "s3_requests": {api: round(n / count, 3) for api, n in sorted(s3.items())},
            "s3_bytes_written": round(on["s3_bytes_written"] / count, 1),
            "s3_bytes_read": round(on["s3_bytes_read"] / count, 1),
            "envelope_bytes_added": envelope_growth(children=on["children_per_parent"]),
        },
        "usd_per_million_children": {
            "s3": round(usd / count, 3),
            "sqs_delta": round(sqs_delta * SQS_USD_PER_M, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parents", type=int, default=20)
    parser.add_argument("--children", type=int, default=10)
    parser.add_argument("--pad", type=int, default=0, help="bytes added to every child's payload")
    args = parser.parse_args()
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        sqs = boto3.client("sqs", **broker.client_kwargs())
        s3 = boto3.client("s3", **broker.client_kwargs())
        common = {"broker": broker, "sqs": sqs, "s3": s3, "parents": args.parents, "children": args.children,
                  "pad": args.pad}
        off = run(workdir=Path(tmp) / "off", fanin=False, **common)
        print(json.dumps(off), flush=True)
        on = run(workdir=Path(tmp) / "on", fanin=True, **common)
        print(json.dumps(on), flush=True)
        print(json.dumps(per_child(off=off, on=on)), flush=True)


if __name__ == "__main__":
    main()
