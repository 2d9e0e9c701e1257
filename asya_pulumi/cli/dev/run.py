"""The waiting part of ``asya dev``: poll queues and the bucket, show progress, decide when the run is over.

The decision itself lives in :class:`~asya_pulumi.local.results.RunTracker` (see that module for why attribution
plus two quiet polls is a correct end condition with fan-out). This loop also stops early, as a failure, when a
process crash-loops (a handler that cannot even import would otherwise leave the run waiting for its timeout).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from botocore.exceptions import ConnectionError as BrokerConnectionError
from botocore.exceptions import HTTPClientError

from asya_pulumi.cli.progress import ActorRow, ProgressView, Snapshot
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.local.queues import MeshQueue
from asya_pulumi.local.results import ResultCollector, RunTracker
from asya_pulumi.ops.mesh_queues import MeshQueues, QueueDepth
from asya_pulumi.records import SUCCESS_PREFIX, FinalRecord
from asya_runtime.envelope import Envelope

POLL_INTERVAL_S = 0.5
#: While work is queued, read at most this many new records per poll: reading bodies competes with the sinks for
#: the broker's CPU. Counts come from the (cheap) listing; the rest of the bodies are read once the mesh is idle.
READS_PER_BUSY_POLL = 10
#: DLQ depths change rarely; read them every this many polls.
DLQ_EVERY = 4
#: While work is queued, list the bucket at most this often: a listing of thousands of keys costs the broker and
#: this process real CPU, which a burst needs more. Once the queues are empty, every poll lists.
LIST_WHILE_BUSY_S = 3.0
#: A poll that cannot reach the broker is skipped (the embedded one answers again ~1 s after it dies, restarted from
#: its state file); only this long without an answer ends the run.
UNREACHABLE_LIMIT_S = 30.0
#: What botocore raises, after its own retries, for a broker that refuses or drops connections.
_UNREACHABLE = (BrokerConnectionError, HTTPClientError)


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced: the final records (input order), inputs without any, and why the run stopped early."""

    inputs: Sequence[Envelope]
    records: list[FinalRecord]
    missing: list[Envelope]
    problems: list[str]
    elapsed_s: float = 0.0  # from the first send until the run was known to be over (all records read)
    mesh_s: float = 0.0  # from the first send until the mesh was idle: every final record stored
    owners: Mapping[str, str] = field(default_factory=dict)  # record id -> id of the input it descends from

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
    settings: Sequence[MeshQueue],
    urls: Mapping[str, str],
    inputs: Sequence[Envelope],
    replicas: Mapping[str, int],
    timeout_s: float,
    sent_at: float | None = None,
) -> RunOutcome:
    """Poll until the run is complete, the mesh is quiet with inputs unaccounted for, a crash loop, or timeout.

    A poll the broker does not answer (refused or dropped connections after botocore's retries: the embedded broker
    is being restarted) observes nothing and is tried again; :data:`UNREACHABLE_LIMIT_S` of those end the run.
    """
    tracker = RunTracker(inputs=inputs)
    actors = [s.actor for s in settings]
    queue_urls = [urls[a] for a in actors]
    dlq_urls = [queues.url(s.dlq_name) for s in settings]
    started = time.monotonic() if sent_at is None else sent_at
    problems: list[str] = []
    unread: list[str] = []
    keys = KeyCounts()
    dead = [QueueDepth(visible=0, in_flight=0, delayed=0) for _ in dlq_urls]  # until the first poll reads them
    listed_at = 0.0
    unreachable_since: float | None = None
    with ProgressView() as view:
        for poll in itertools.count(1):
            polled_at = time.monotonic()  # the moment the depths describe (reads below may take a while)
            try:
                depths = queues.depths(queue_urls)
                if (poll - 1) % DLQ_EVERY == 0:
                    dead = queues.depths(dlq_urls)
                busy = any(d.total for d in depths)
                new_keys: list[str] = []
                if not busy or time.monotonic() - listed_at >= LIST_WHILE_BUSY_S:
                    new_keys = collector.new_keys()  # after the depths: a record stored meanwhile is still seen
                    listed_at = time.monotonic()
                keys.add(new_keys)
                unread += new_keys
                batch, rest = (unread[:READS_PER_BUSY_POLL], unread[READS_PER_BUSY_POLL:]) if busy else (unread, [])
                tracker.add(collector.read(batch))
                unread = rest
            except _UNREACHABLE as exc:  # the broker is restarting (or gone): this poll saw nothing
                unreachable_since = unreachable_since or polled_at
                if polled_at - unreachable_since > UNREACHABLE_LIMIT_S:
                    problems = [f"the broker has been unreachable for {UNREACHABLE_LIMIT_S:g} s ({exc})"]
                    break
                time.sleep(POLL_INTERVAL_S)
                continue
            unreachable_since = None
            tracker.observe_queues(all_empty=not busy, new_records=len(new_keys), now=polled_at)
            elapsed = time.monotonic() - started
            view.update(_snapshot(tracker, keys, actors, depths, dead, replicas, supervisor.restarts(), elapsed))
            if tracker.quiescent and not unread:
                break
            problems = supervisor.crash_loops()
            if problems:
                break
            if elapsed > timeout_s:
                problems = [f"timed out after {timeout_s:g} s with work still queued (see `asya status`)"]
                break
            time.sleep(POLL_INTERVAL_S)
    if unreachable_since is None:
        dead = queues.depths(dlq_urls)
    dead_lettered = {a: d.visible for a, d in zip(actors, dead, strict=True) if d.visible}
    if dead_lettered and tracker.missing_inputs():
        problems.append("dead-lettered: " + ", ".join(f"{a}: {n}" for a, n in dead_lettered.items()))
    return RunOutcome(
        inputs=inputs,
        records=tracker.ordered_records(),
        missing=tracker.missing_inputs(),
        problems=problems,
        elapsed_s=time.monotonic() - started,
        mesh_s=(tracker.quiet_since or time.monotonic()) - started,
        owners=dict(tracker.owner),
    )


class KeyCounts:
    """Final records counted from the bucket listing alone (no reads): live totals for the progress view."""

    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.ids: set[str] = set()  # `{status}/{id}.json` names its envelope: inputs without fan-out show here

    def add(self, keys: list[str]) -> None:
        for key in keys:
            self.ids.add(key.rsplit("/", 1)[-1].removesuffix(".json"))
            if key.startswith(SUCCESS_PREFIX + "/"):
                self.ok += 1
            else:
                self.failed += 1


def _snapshot(
    tracker: RunTracker,
    keys: KeyCounts,
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
    return Snapshot(
        rows=rows,
        inputs_total=len(tracker.inputs),
        inputs_finished=len(tracker.finished_inputs | (keys.ids & {e.id for e in tracker.inputs})),
        records_ok=keys.ok, records_failed=keys.failed, elapsed_s=elapsed_s,
    )
