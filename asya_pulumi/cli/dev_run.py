"""The waiting part of ``asya dev``: poll queues and the bucket, show progress, decide when the run is over.

The decision itself lives in :class:`~asya_pulumi.local.results.RunTracker` (see that module for why attribution
plus two quiet polls is a correct end condition with fan-out). This loop also stops early, as a failure, when a
process crash-loops (a handler that cannot even import would otherwise leave the run waiting for its timeout).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from asya_pulumi.cli.mesh_queues import MeshQueues, QueueDepth
from asya_pulumi.cli.progress import ActorRow, ProgressView, Snapshot
from asya_pulumi.local.queues import QueueSettings
from asya_pulumi.local.results import FinalRecord, ResultCollector, RunTracker
from asya_pulumi.local.supervisor import Supervisor
from asya_runtime.envelope import Envelope

POLL_INTERVAL_S = 0.3


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced: the final records (input order), inputs without any, and why the run stopped early."""

    inputs: Sequence[Envelope]
    records: list[FinalRecord]
    missing: list[Envelope]
    problems: list[str]

    @property
    def failed_records(self) -> list[FinalRecord]:
        return [r for r in self.records if not r.succeeded]

    @property
    def succeeded(self) -> bool:
        return not self.problems and not self.missing and not self.failed_records


def watch_run(
    *,
    queues: MeshQueues,
    collector: ResultCollector,
    supervisor: Supervisor,
    settings: Sequence[QueueSettings],
    urls: Mapping[str, str],
    inputs: Sequence[Envelope],
    replicas: Mapping[str, int],
    timeout_s: float,
) -> RunOutcome:
    """Poll until the run is complete, the mesh is quiet with inputs unaccounted for, a crash loop, or timeout."""
    tracker = RunTracker(inputs=inputs)
    actors = [s.actor for s in settings]
    queue_urls = [urls[a] for a in actors]
    dlq_urls = [queues.url(s.dlq_name) for s in settings]
    started = time.monotonic()
    problems: list[str] = []
    with ProgressView() as view:
        while True:
            depths = queues.depths(queue_urls)
            dead = queues.depths(dlq_urls)
            taken = tracker.add(collector.poll())  # after the depths: a record written meanwhile is still counted
            tracker.observe_queues(all_empty=all(d.total == 0 for d in depths), new_records=taken)
            elapsed = time.monotonic() - started
            view.update(_snapshot(tracker, actors, depths, dead, replicas, supervisor.restarts(), elapsed))
            if tracker.complete or tracker.quiescent:
                break
            problems = supervisor.crash_loops()
            if problems:
                break
            if elapsed > timeout_s:
                problems = [f"timed out after {timeout_s:g} s with work still queued (see `asya status`)"]
                break
            time.sleep(POLL_INTERVAL_S)
    dead_lettered = {a: d.visible for a, d in zip(actors, dead, strict=True) if d.visible}
    if dead_lettered and tracker.missing_inputs():
        problems.append("dead-lettered: " + ", ".join(f"{a}: {n}" for a, n in dead_lettered.items()))
    return RunOutcome(
        inputs=inputs, records=tracker.ordered_records(), missing=tracker.missing_inputs(), problems=problems
    )


def _snapshot(
    tracker: RunTracker,
    actors: list[str],
    depths: list[QueueDepth],
    dead: list[QueueDepth],
    replicas: Mapping[str, int],
    restarts: Mapping[str, int],
    elapsed_s: float,
) -> Snapshot:
    done = dict.fromkeys(actors, 0)
    failed = dict.fromkeys(actors, 0)
    for record in tracker.records.values():
        route = record.envelope.get("route") or {}
        for actor in route.get("prev") or []:
            if actor in done:
                done[actor] += 1
        if record.succeeded:
            curr = route.get("curr")
            if curr in done:  # a sink counts the records it stored
                done[curr] += 1
        elif record.error.get("actor") in failed:
            failed[record.error["actor"]] += 1
    rows = [
        ActorRow(
            actor=actor, replicas=replicas.get(actor, 1), waiting=d.visible, in_flight=d.in_flight, delayed=d.delayed,
            dead_lettered=q.visible, done=done[actor], failed=failed[actor], restarts=restarts.get(actor, 0),
        )
        for actor, d, q in zip(actors, depths, dead, strict=True)
    ]
    ok = sum(1 for r in tracker.records.values() if r.succeeded)
    return Snapshot(
        rows=rows, inputs_total=len(tracker.inputs), inputs_finished=len(tracker.finished_inputs),
        records_ok=ok, records_failed=len(tracker.records) - ok, elapsed_s=elapsed_s,
    )
