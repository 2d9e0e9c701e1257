"""Idle per-hop latency: single envelopes, one at a time at a low rate, through an otherwise empty pipeline.

Each sample is the time from the driver sending an envelope to the first actor's queue until the driver's own
long-poll takes it off the success sink's queue. Per hop = end to end ÷ number of actors; the driver's two queue
transits (in and out) are spread over the hops, the same for every contender.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from asya_runtime.naming import SUCCESS_SINK
from bench.driver import receive_one, send_envelopes


@dataclass(frozen=True)
class LatencyResult:
    hops: int
    end_to_end_s: list[float]

    def per_hop_ms(self, quantile: float) -> float:
        ordered = sorted(self.end_to_end_s)
        index = min(len(ordered) - 1, max(0, round(quantile * (len(ordered) - 1))))
        return 1000 * ordered[index] / self.hops

    @property
    def p50_ms(self) -> float:
        return 1000 * statistics.median(self.end_to_end_s) / self.hops

    @property
    def p99_ms(self) -> float:
        return self.per_hop_ms(0.99)


def measure_latency(
    *, sqs: Any, urls: dict[str, str], actors: list[str], samples: int, warmup: int = 3, gap_s: float = 0.1
) -> LatencyResult:
    """Send ``warmup + samples`` single envelopes, one after the other has arrived, ``gap_s`` apart."""
    times: list[float] = []
    for i in range(warmup + samples):
        started = time.monotonic()
        send_envelopes(sqs=sqs, queue_url=urls[actors[0]], route=actors, count=1, payload={"n": i})
        arrival = receive_one(sqs=sqs, queue_url=urls[SUCCESS_SINK], timeout_s=60)
        if i >= warmup:
            times.append(arrival.at - started)
        time.sleep(gap_s)
    return LatencyResult(hops=len(actors), end_to_end_s=times)
