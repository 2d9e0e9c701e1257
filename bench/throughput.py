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
