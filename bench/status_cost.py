"""Benchmark: what the status store adds to a burst, in requests and in dollars, against the same burst without it.

    .venv/bin/python -m bench.status_cost [--burst N] [--concurrency C]

A route ``a → b → c`` of identity actors plus the success sink, every sidecar at concurrency C (10: batches of ten),
on the embedded broker; the status table on moto's DynamoDB. The same burst of N envelopes runs twice, status off and
on (tracked: ``x-asya-tracked: "1"``, a ``pending`` item per envelope as the gateway writes it). SQS requests are
counted at the wire (:class:`bench.counting_proxy.CountingProxyProcess`, billed 64 KiB units); DynamoDB requests by
the sidecars' own ``asya_dynamodb_requests_total``; the gateway's part (one PutItem per submission, and the
SendMessage of the submission, which the burst's client makes here) is added by arithmetic and said so.

DynamoDB on demand bills request *units*, not requests: a write costs 1 WRU per KB of the larger of the item before
and after (an UpdateItem too, also when its condition fails), an eventually consistent read of an item up to 4 KB
0.5 RRU (per item of a BatchGetItem, rounded per item). The items' sizes are measured (DynamoDB's size rules over
the items the run left) and each write is priced at the final item's size (an upper bound: items only grow until
their end, apart from the FLY list). Prices (us-east-1): SQS $0.40 per million requests, DynamoDB $0.625 per
million WRU, $0.125 per million RRU. Prints one JSON line for the run without the store, then one per
``ASYA_STATUS_RUNNING`` value (``--running``: every hop, the first hop, none).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
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
from support.moto_server import MotoServer  # noqa: E402
from support.status_table import REGION, StatusTable, create_status_table  # noqa: E402

from asya_pulumi.local.broker import LocalBroker  # noqa: E402
from asya_runtime.envelope import new_envelope  # noqa: E402
from asya_runtime.status import TRACKED_HEADER  # noqa: E402
from bench.counting_proxy import CountingProxyProcess  # noqa: E402

ACTORS = ["a", "b", "c"]
SQS_USD_PER_M = 0.40
WRU_USD_PER_M = 0.625
RRU_USD_PER_M = 0.125
DYNAMODB_METRIC = re.compile(r'asya_dynamodb_requests_total\{api="(\w+)"\} ([0-9.]+)')
#: The issue's target: the status store adds at most this share to the SQS cost, at batch 10.
TARGET_SHARE = 0.25


def dynamodb_requests(mesh: MeshHarness) -> Counter[str]:
    calls: Counter[str] = Counter()
    for process in mesh.actors:
        for api, value in DYNAMODB_METRIC.findall(process.read_metrics()):
            calls[api] += int(float(value))
    return calls


def item_bytes(item: dict[str, Any]) -> int:
    """An item's size as DynamoDB counts it: each attribute's name plus its value (numbers ~1 byte per 2 digits
    plus 1; maps and lists 3 bytes plus 1 per element and their contents)."""
    return sum(len(name.encode()) + _value_bytes(value) for name, value in item.items())


def _value_bytes(value: dict[str, Any]) -> int:
    (kind, inner), = value.items()
    if kind == "S":
        return len(inner.encode())
    if kind == "N":
        return math.ceil(len(inner.lstrip("-").replace(".", "")) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + _value_bytes(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + _value_bytes(v) for v in inner)
    raise ValueError(kind)


def units(size: int, *, per: int) -> int:
    return max(1, math.ceil(size / per))


def run_burst(
    *, broker: LocalBroker, sqs: Any, s3: Any, workdir: Path, table: StatusTable | None, burst: int, concurrency: int,
    running: str = "every-hop",
) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    mesh = MeshHarness(broker=broker, sqs=sqs, s3=s3, workdir=workdir)
    status: dict[str, Any] = {}
    if table is not None:
        status = {"status_table": table.name, "dynamodb_endpoint": table.endpoint, "status_running": running}
    headers = {TRACKED_HEADER: "1"} if table else {}
    try:
        with CountingProxyProcess(upstream=broker.endpoint, workdir=str(workdir)) as proxy:
            mesh.standard(*ACTORS)
            mesh.create_bucket()
            common: dict[str, Any] = {"sqs_endpoint": proxy.url, "wait_time_seconds": 20, "concurrency": concurrency}
            mesh.start_actor("success-sink", handler=None, mode="success-sink", result_bucket=mesh.bucket,
                             **common, **status)
            for actor in ACTORS:
                mesh.start_actor(actor, handler="identity", **common, **status)
            mesh.send("a", new_envelope(route=ACTORS, payload={"key": "warm-up"}))
            wait_for(lambda: mesh.keys("succeeded"), timeout_s=60, what="the warm-up envelope")
            envelopes = [new_envelope(route=ACTORS, payload={"key": f"k{i}"}, headers=headers) for i in range(burst)]
            if table is not None:
                asyncio.run(_pending(table, [e.id for e in envelopes]))
            time.sleep(1.0)
            proxy.reset()
            before = dynamodb_requests(mesh)
            started = time.monotonic()
            mesh.send_many("a", envelopes)
            wait_for(lambda: len(mesh.keys("succeeded")) >= burst + 1, timeout_s=300, what=f"{burst} records",
                     interval_s=0.25)
            if table is not None:
                wait_for(lambda: _all_succeeded(table, [e.id for e in envelopes]), timeout_s=120,
                         what="every status item succeeded", interval_s=0.5)
            elapsed = time.monotonic() - started
            counts = proxy.counts()
            dynamo = dynamodb_requests(mesh) - before
    finally:
        mesh.close()
    result: dict[str, Any] = {
        "sqs_requests": counts["sqs_requests"],
        "sqs_billed": counts["billed_requests"],
        "sqs_by_action": counts["by_action"],
        "dynamodb_requests": dict(sorted(dynamo.items())),
        "seconds": round(elapsed, 2),
    }
    if table is not None:
        sizes = [item_bytes(i) for i in _items(table)]
        result["item_bytes"] = {"max": max(sizes), "mean": round(sum(sizes) / len(sizes))}
    return result


async def _pending(table: StatusTable, ids: list[str]) -> None:
    async with table.store() as store:
        for start in range(0, len(ids), 50):
            await asyncio.gather(*(store.create_pending(id=i, route="bench") for i in ids[start : start + 50]))


def _all_succeeded(table: StatusTable, ids: list[str]) -> bool:
    return sum(1 for item in _items(table) if item["status"]["S"] == "succeeded" and item["id"]["S"] in ids) >= len(ids)


def _items(table: StatusTable) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for page in table.client.get_paginator("scan").paginate(TableName=table.name):
        items += page.get("Items", [])
    return items


def price(*, off: dict[str, Any], on: dict[str, Any], burst: int) -> dict[str, Any]:
    """Per million envelopes: SQS (the mesh's own requests plus the submission's SendMessage), and what the status
    store adds (the sidecars' and sinks' requests as measured, plus the gateway's PutItem)."""
    item = on["item_bytes"]["max"]
    writes = on["dynamodb_requests"].get("update_item", 0) / burst
    batch_gets = on["dynamodb_requests"].get("batch_get_item", 0) / burst
    reads_per_envelope = len(ACTORS) * 0.5 * units(item, per=4096)  # each actor's check reads each id once
    wru = (writes + 1) * units(item, per=1024)  # + the gateway's PutItem
    sqs_off = off["sqs_billed"] / burst + 1  # + the submission's SendMessage
    sqs_on = on["sqs_billed"] / burst + 1
    usd_sqs = sqs_off * SQS_USD_PER_M
    usd_status = wru * WRU_USD_PER_M + reads_per_envelope * RRU_USD_PER_M + (sqs_on - sqs_off) * SQS_USD_PER_M
    floor_wru = 2 * units(item, per=1024)  # pending + the terminal write: the least a durable status can cost
    return {
        "per_envelope": {
            "sqs_billed_off": round(sqs_off, 3), "sqs_billed_on": round(sqs_on, 3),
            "dynamodb_update_item": round(writes, 3), "dynamodb_batch_get_item": round(batch_gets, 3),
            "wru": round(wru, 3), "rru": round(reads_per_envelope, 3),
        },
        "usd_per_million_envelopes": {
            "sqs_only": round(usd_sqs, 3),
            "status_store_adds": round(usd_status, 3),
            "ratio_over_sqs": round(usd_status / usd_sqs, 2),
            "target_adds_at_most": round(TARGET_SHARE * usd_sqs, 3),
            "floor_pending_plus_terminal_only": round(floor_wru * WRU_USD_PER_M, 3),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--burst", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument(
        "--running", nargs="+", default=["every-hop", "first-hop", "off"], help="ASYA_STATUS_RUNNING values to run"
    )
    args = parser.parse_args()
    with LocalBroker() as broker, MotoServer(region=REGION) as moto, tempfile.TemporaryDirectory() as tmp:
        sqs = boto3.client("sqs", **broker.client_kwargs())
        s3 = boto3.client("s3", **broker.client_kwargs())
        common = {"broker": broker, "sqs": sqs, "s3": s3, "burst": args.burst, "concurrency": args.concurrency}
        off = run_burst(workdir=Path(tmp) / "off", table=None, **common)
        print(json.dumps({"status": "off", "burst": args.burst, "concurrency": args.concurrency, **off}), flush=True)
        for running in args.running:
            table = create_status_table(endpoint=moto.url, namespace=f"bench-{running}")
            on = run_burst(workdir=Path(tmp) / running, table=table, running=running, **common)
            print(json.dumps({"status": "on", "running": running, **on, **price(off=off, on=on, burst=args.burst)}),
                  flush=True)


if __name__ == "__main__":
    main()
