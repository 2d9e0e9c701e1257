"""Burst throughput: how fast a contender drains a burst of envelopes, and what each envelope costs it.

The driver sends the whole burst to the first actor's queue (directly to the broker, not counted) while the
contender is already running, then polls the success sink's queue until every envelope has arrived. Over exactly
that window it reads the counting proxy (SQS requests the contender made) and the CPU the contender's processes
spent, and divides both by the burst size.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from asya_runtime.naming import SUCCESS_SINK
from bench.contenders import Contender, cpu_seconds
from bench.counting_proxy import CountingProxyProcess
from bench.driver import send_envelopes, wait_for_depth


@dataclass(frozen=True)
class BurstResult:
    envelopes: int
    seconds: float
    sqs_requests: int
    billed_requests: int
    by_action: dict[str, int]
    cpu_seconds: float

    @property
    def envelopes_per_s(self) -> float:
        return self.envelopes / self.seconds

    @property
    def requests_per_envelope(self) -> float:
        return self.sqs_requests / self.envelopes

    @property
    def billed_per_envelope(self) -> float:
        return self.billed_requests / self.envelopes

    @property
    def cpu_ms_per_envelope(self) -> float:
        return 1000 * self.cpu_seconds / self.envelopes


def measure_burst(
    *,
    sqs: Any,
    urls: dict[str, str],
    actors: list[str],
    contender: Contender,
    proxy: CountingProxyProcess,
    count: int,
    timeout_s: float = 240.0,
) -> BurstResult:
    """Send ``count`` envelopes through ``actors`` and time their arrival at the success sink's queue."""
    processes = contender.processes()
    proxy.reset()
    cpu_before = cpu_seconds(processes)
    started = time.monotonic()
    send_envelopes(sqs=sqs, queue_url=urls[actors[0]], route=actors, count=count, payload={"n": 0})
    finished = wait_for_depth(sqs=sqs, queue_url=urls[SUCCESS_SINK], count=count, timeout_s=timeout_s)
    cpu_after = cpu_seconds(processes)
    counts = proxy.counts()
    return BurstResult(
        envelopes=count,
        seconds=finished - started,
        sqs_requests=int(counts["sqs_requests"]),
        billed_requests=int(counts["billed_requests"]),
        by_action={k: int(v) for k, v in counts["by_action"].items()},
        cpu_seconds=cpu_after - cpu_before,
    )
