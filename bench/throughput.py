"""Burst throughput: how fast a contender drains a burst of envelopes, and what each envelope costs it.

The driver sends the whole burst to the first actor's queue (directly to the broker, not counted) while the
contender is already running, then polls the success sink's queue until every envelope has arrived. Over exactly
that window it reads the counting proxy (SQS requests the contender made) and the CPU the contender's processes
spent, and divides both by the burst size.
"""

from __future__ import annotations

import statistics
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
    #: The same CPU seconds split by process kind (``handler server``, or the contender's own processes).
    cpu_by_kind: dict[str, float]

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

    def cpu_ms_per_envelope_of(self, kind: str) -> float:
        return 1000 * self.cpu_by_kind.get(kind, 0.0) / self.envelopes


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
    kinds = {kind: [p for p in processes if process_kind(p) == kind] for kind in KINDS}
    proxy.reset()
    cpu_before = cpu_seconds(processes)
    kind_before = {kind: cpu_seconds(members) for kind, members in kinds.items()}
    started = time.monotonic()
    send_envelopes(sqs=sqs, queue_url=urls[actors[0]], route=actors, count=count, payload={"n": 0})
    finished = wait_for_depth(sqs=sqs, queue_url=urls[SUCCESS_SINK], count=count, timeout_s=timeout_s)
    cpu_after = cpu_seconds(processes)
    kind_after = {kind: cpu_seconds(members) for kind, members in kinds.items()}
    counts = proxy.counts()
    return BurstResult(
        envelopes=count,
        seconds=finished - started,
        sqs_requests=int(counts["sqs_requests"]),
        billed_requests=int(counts["billed_requests"]),
        by_action={k: int(v) for k, v in counts["by_action"].items()},
        cpu_seconds=cpu_after - cpu_before,
        cpu_by_kind={kind: kind_after[kind] - kind_before[kind] for kind in kinds if kinds[kind]},
    )


def median_burst(bursts: list[BurstResult]) -> BurstResult:
    """The median of each figure over several bursts of one contender (rounds of the same size).

    Each figure is the median on its own (CPU, time, requests), so one round slowed down by the shared machine
    moves none of them; ``by_action`` is the one of the round whose request count is the median.
    """
    if len({b.envelopes for b in bursts}) != 1:
        raise ValueError("rounds of different sizes")

    def median(values: list[float]) -> float:
        return float(statistics.median(values))

    by_requests = sorted(bursts, key=lambda b: b.sqs_requests)
    kinds = {kind for b in bursts for kind in b.cpu_by_kind}
    return BurstResult(
        envelopes=bursts[0].envelopes,
        seconds=median([b.seconds for b in bursts]),
        sqs_requests=round(median([b.sqs_requests for b in bursts])),
        billed_requests=round(median([b.billed_requests for b in bursts])),
        by_action=by_requests[(len(bursts) - 1) // 2].by_action,
        cpu_seconds=median([b.cpu_seconds for b in bursts]),
        cpu_by_kind={kind: median([b.cpu_by_kind.get(kind, 0.0) for b in bursts]) for kind in kinds},
    )


#: How the CPU of a contender is split: its handler servers, and everything else it runs (sidecars, loops).
HANDLER_SERVER = "handler server"
OWN = "own processes"
KINDS = (HANDLER_SERVER, OWN)


def process_kind(process: Any) -> str:
    """:data:`HANDLER_SERVER` for a handler server process, else :data:`OWN`."""
    try:
        return HANDLER_SERVER if "handler_server" in " ".join(process.cmdline()) else OWN
    except Exception:  # gone meanwhile: counted as its contender's own (it has no CPU left to count anyway)
        return OWN
