"""Final records in the result bucket, and deciding when every input of a run has finished.

The sinks persist each final envelope under ``{status}/{id}.json`` (the record type and the prefixes:
:mod:`asya_pulumi.records`). :class:`ResultCollector` lists the bucket and
reads only keys that are new (or rewritten) since the run began, so a namespace reused across runs does not leak
old results into a new one.

When is an input finished? Fan-out makes the number of final records per input unknown in advance (a chunker may
yield 3 chunks or 300), so counting records cannot decide it. Two facts together can:

1. **Attribution.** Every final record is traced back to the input it descends from: by its own id (no fan-out),
   by ``parent_id`` (one level of fan-out), or — for deeper fan-out, whose intermediate envelopes never reach a sink
   and so never show up as records — by the W3C ``traceparent`` header, whose trace-id the CLI sets to the input's
   id and every hop preserves (headers are never dropped, contract 1). An input with no record yet is not finished.
2. **Quiescence.** A sidecar sends an envelope's outputs *before* deleting it, and a retry is sent (delayed) before
   the failed message is deleted, so while any descendant of any input is still to be processed, some queue of the
   mesh counts it as visible, in flight or delayed. When every queue (sinks included) reads zero on two consecutive
   polls, with no new record arriving in between, no further record can appear: the run is complete.

Two polls, not one, because SQS's counters are approximate on AWS (eventually consistent); on the local broker they
are exact and the second poll costs one interval. An envelope that ends in a DLQ (SQS gave up: crash loops) reaches
no sink; it shows up as an input with no record once the mesh is quiet, and the run reports it as failed.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from asya_pulumi.records import ERROR_PREFIX, SUCCESS_PREFIX, FinalRecord, trace_id_of
from asya_runtime.envelope import Envelope


def sink_writes(logs: Iterable[str]) -> Counter[str]:
    """How many times the sinks stored each key, counted from their logs' ``persisted`` events.

    A sink logs one such event right after S3 accepted a PutObject (line-flushed), so this counts writes exactly,
    duplicates included, also on a broker without bucket versioning (fauxqs). ``logs`` are the texts of sink logs;
    lines of other processes are ignored.
    """
    keys: Counter[str] = Counter()
    for text in logs:
        for line in text.splitlines():
            if '"persisted"' in line:
                try:
                    keys[str(json.loads(line).get("key", ""))] += 1
                except ValueError:
                    continue  # the last line of a sink killed mid-write
    return keys


class ResultCollector:
    """Reads the final records that appear in ``bucket`` after construction."""

    def __init__(self, *, s3: Any, bucket: str) -> None:
        self.s3 = s3
        self.bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="asya-results")
        self._seen: dict[str, str] = self._list()  # key -> ETag; what was there before the run is not ours

    def _list(self) -> dict[str, str]:
        found: dict[str, str] = {}
        for prefix in (SUCCESS_PREFIX, ERROR_PREFIX):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix + "/")
            for page in pages:
                found.update({obj["Key"]: obj["ETag"] for obj in page.get("Contents", [])})
        return found

    def new_keys(self) -> list[str]:
        """Keys written (or rewritten) since the last call: one listing, no object reads (cheap to poll)."""
        listed = self._list()
        changed = [key for key, etag in listed.items() if self._seen.get(key) != etag]
        self._seen.update({key: listed[key] for key in changed})
        return changed

    def read(self, keys: Sequence[str]) -> list[FinalRecord]:
        """The records stored under ``keys``, read concurrently."""
        if not keys:
            return []
        return list(self._pool.map(self._read, keys))

    def poll(self) -> list[FinalRecord]:
        """Every record written (or rewritten) since the last call."""
        return self.read(self.new_keys())

    def _read(self, key: str) -> FinalRecord:
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return FinalRecord(key=key, envelope=json.loads(body))


@dataclass
class RunTracker:
    """Which input each final record belongs to, and whether the run can be complete."""

    inputs: Sequence[Envelope]
    records: dict[str, FinalRecord] = field(default_factory=dict)  # by envelope id; a rewrite replaces
    owner: dict[str, str] = field(default_factory=dict)  # record id -> input id
    quiet_polls: int = 0
    quiet_since: float | None = None  # when the current run of quiet polls began (the mesh was idle by then)

    def __post_init__(self) -> None:
        self._input_ids = {e.id for e in self.inputs}
        self._by_trace: dict[str, str] = {}
        for envelope in self.inputs:
            trace = trace_id_of(envelope.headers)
            if trace is not None:
                self._by_trace.setdefault(trace, envelope.id)

    def add(self, records: Iterable[FinalRecord]) -> int:
        """Take new records that belong to this run's inputs; returns how many were taken."""
        taken = 0
        for record in records:
            root = self._root_of(record)
            if root is not None:
                self.records[record.id] = record
                self.owner[record.id] = root
                taken += 1
        return taken

    def _root_of(self, record: FinalRecord) -> str | None:
        if record.id in self._input_ids:
            return record.id
        if record.parent_id in self._input_ids:
            return record.parent_id
        return self._by_trace.get(record.trace_id or "")

    def observe_queues(self, *, all_empty: bool, new_records: int, now: float) -> None:
        """Count consecutive polls on which every queue was empty and no record arrived."""
        if all_empty and new_records == 0:
            self.quiet_polls += 1
            self.quiet_since = now if self.quiet_since is None else self.quiet_since
        else:
            self.quiet_polls, self.quiet_since = 0, None

    @property
    def finished_inputs(self) -> set[str]:
        """Inputs with at least one final record (complete only once :attr:`complete` is True)."""
        return set(self.owner.values())

    @property
    def complete(self) -> bool:
        """Every input has a record and the mesh has been quiet for two consecutive polls."""
        return self.quiet_polls >= 2 and self.finished_inputs >= self._input_ids

    @property
    def quiescent(self) -> bool:
        """Nothing can still produce a record (used to stop waiting for inputs that ended in a DLQ)."""
        return self.quiet_polls >= 2

    def missing_inputs(self) -> list[Envelope]:
        done = self.finished_inputs
        return [e for e in self.inputs if e.id not in done]

    def ordered_records(self) -> list[FinalRecord]:
        """Records in input order (an input's fan-out children by id), for a stable results file."""
        position = {e.id: i for i, e in enumerate(self.inputs)}
        return sorted(self.records.values(), key=lambda r: (position[self.owner[r.id]], r.id != self.owner[r.id], r.id))
