"""The sidecar's side of the status store (docs/gateway.md, "Who writes what"), for tracked envelopes only.

An envelope is tracked when its headers hold ``x-asya-tracked: "1"``; with ``ASYA_STATUS_TABLE`` unset nothing here
exists and no request is made. Per received batch (:class:`Batch`), once every message of it was read:

* **one** BatchGetItem (``canceled_among``: the tracked envelopes' ids and parent ids, eventually consistent) says
  which are canceled; each tracked envelope waits for that answer before its handler call, and a canceled one (or
  the child of a canceled parent) is ended uncalled (``actor.py``). If the check fails the envelopes are called
  (logged, counted in ``asya_status_write_failures{kind="cancel check"}``): the store never stops the mesh;
* **one** ``running`` per envelope of the batch, sent together in the background right after (the handler call
  does not wait for it; a failure is logged and counted, never fails the envelope). ``ASYA_STATUS_RUNNING`` may
  limit it to the first hop or switch it off: each is a write unit per envelope, the store's main cost.

During a call, FLY events (:class:`FlyReporter`) are coalesced to at most one write per :data:`FLY_INTERVAL_S`
per envelope. After a fan-out the parent's item records ``fanout: {actor, count}`` before any child is sent (a
failure there hands the message back, as a failed send would). The sinks' terminal writes are :meth:`record_end`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope
from asya_runtime.naming import ERROR_SINK, SUCCESS_SINK
from asya_runtime.retention import DAY_S
from asya_runtime.sidecar import hops, logs, routing
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.status import TRACKED_HEADER, TRACKED_VALUE, FlyLog, RunningUpdate, StatusStore

#: Least time between two FLY writes of one envelope: a burst of tokens costs at most 4 writes a second.
FLY_INTERVAL_S = 0.25
#: How long a background report (running, FLY) may retry a transient DynamoDB failure before it is dropped.
REPORT_WITHIN_S = 10.0
#: The text of a sink's body that only a tracked envelope holds: untracked records are not parsed again.
_TRACKED_MARK = f'"{TRACKED_HEADER}"'


def is_tracked(envelope: Envelope) -> bool:
    return envelope.headers.get(TRACKED_HEADER) == TRACKED_VALUE


def seq_of(envelope: Envelope) -> int:
    """The envelope's hop count: the ``seq`` of what is written about it at this hop."""
    return hops.count(hops.history_of(envelope))


class StatusReports:
    """The status store as the sidecar uses it: every request counted in ``asya_dynamodb_requests{api}`` and
    retried while transient, for at most ``within_s``."""

    def __init__(self, *, config: SidecarConfig, broker: BrokerClient, metrics: Metrics, within_s: float) -> None:
        assert config.status_table, "status reports need ASYA_STATUS_TABLE"
        self.config = config
        self.metrics = metrics
        self._broker = broker
        self._within_s = within_s
        self.store = StatusStore(table=config.status_table, call=self._call,
                                 ttl_s=config.status_retention_days * DAY_S)
        self._background: set[asyncio.Task[None]] = set()

    async def _call(self, api: str, params: dict[str, Any]) -> dict[str, Any]:
        return await self._broker.call_dynamodb(api, params, within_s=self._within_s)

    def reports_running(self, update: RunningUpdate) -> bool:
        """Whether this hop writes ``running`` (``ASYA_STATUS_RUNNING``): every hop, the first only, or none."""
        mode = self.config.status_running
        return mode == "every-hop" or (mode == "first-hop" and update.seq == 0)

    def batch(self, size: int) -> Batch:
        """A received batch of ``size`` messages: each gets a :meth:`Batch.ticket`."""
        return Batch(self, size)

    def in_background(
        self, name: str, work: Any, *, timeout_s: float | None = REPORT_WITHIN_S + 5
    ) -> asyncio.Task[None]:
        """Run ``work`` (a coroutine) without waiting for it, for at most ``timeout_s`` (None: as long as it runs; its
        requests are bounded anyway); a failure is logged and counted under ``name``."""

        async def guarded() -> None:
            try:
                await asyncio.wait_for(work, timeout=timeout_s)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(name, exc)

        task = asyncio.create_task(guarded())
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    def failed(self, kind: str, exc: BaseException) -> None:
        self.metrics.labelled(self.metrics.status_write_failures, kind).inc()
        logs.warning("status report failed; the envelope goes on", kind=kind, error=f"{type(exc).__name__}: {exc}")

    async def drain(self, *, timeout_s: float) -> None:
        """Let the background reports finish, for at most ``timeout_s`` (a stopping sidecar)."""
        if self._background:
            await asyncio.wait(set(self._background), timeout=timeout_s)

    async def fanned_out(self, envelope: Envelope, *, attempt: int, count: int) -> None:
        """Record on the parent's item that it fanned out into ``count`` children at this actor (raises on failure:
        the caller hands the message back, so no child exists whose parent does not say so)."""
        update = RunningUpdate(
            id=envelope.id, actor=self.config.actor, attempt=attempt, seq=seq_of(envelope),
            parent_id=envelope.parent_id, fanout={"actor": self.config.actor, "count": count},
        )
        await self.store.report_running(updates=[update])

    def fly_reporter(self, envelope: Envelope, ticket: Ticket) -> FlyReporter:
        return FlyReporter(self, envelope_id=envelope.id, after=ticket.batch.running)

    async def record_end(self, *, mode: str, body: bytes, key: str, bucket: str) -> None:
        """A sink's terminal write for the record it just stored at ``key`` (none for an untracked envelope):
        ``succeeded`` with the payload (inline up to 32 KiB, else ``s3://{bucket}/{key}``), ``failed`` with the
        error, ``canceled`` for one the actors ended so. Raises when the write fails: the message stays queued."""
        if _TRACKED_MARK.encode() not in body:
            return
        record = json.loads(body)
        if not isinstance(record, dict) or (record.get("headers") or {}).get(TRACKED_HEADER) != TRACKED_VALUE:
            return
        status = record.get("status") or {}
        actor, parent_id = status.get("actor"), record.get("parent_id")  # the actor that ended it
        # A fan-in aggregate ends its fan-out parent too: the parent's record (the id its caller holds) would
        # otherwise stay `running` for good, its result under the aggregate's own id (docs/gateway.md).
        gathered = (record.get("fanin") or {}).get("parent_id")
        for envelope_id in (record["id"], *([gathered] if isinstance(gathered, str) and gathered else [])):
            await self._finish(mode=mode, record=record, envelope_id=envelope_id, actor=actor, parent_id=parent_id,
                               ref=f"s3://{bucket}/{key}")

    async def _finish(
        self, *, mode: str, record: dict[str, Any], envelope_id: str, actor: str | None, parent_id: str | None,
        ref: str,
    ) -> None:
        status = record.get("status") or {}
        if mode == SUCCESS_SINK:
            payload = json.dumps(record.get("payload"), ensure_ascii=False, separators=(",", ":"))
            await self.store.finish(
                id=envelope_id, status="succeeded", payload_json=payload, payload_ref=ref, actor=actor,
                parent_id=parent_id,
            )
            return
        assert mode == ERROR_SINK
        error = status.get("error") or {}
        summary = {name: error.get(name) for name in ("type", "message", "reason") if error.get(name) is not None}
        ended = "canceled" if summary.get("reason") == routing.CANCELED else "failed"
        await self.store.finish(id=envelope_id, status=ended, error=summary or None, actor=actor, parent_id=parent_id)

class Batch:
    """The tracked envelopes of one received batch: one cancel check and one running report for all of them,
    made once every message of the batch was read (or turned out to hold no envelope)."""

    def __init__(self, reports: StatusReports, size: int) -> None:
        self.reports = reports
        self._waiting = size
        self._tracked: dict[str, RunningUpdate] = {}
        self._parents: dict[str, str] = {}
        self._canceled: asyncio.Future[set[str]] = asyncio.get_running_loop().create_future()
        #: Done once the batch's running report was written (or failed): FLY writes come after it.
        self.running: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if size == 0:
            self._fire()

    def ticket(self) -> Ticket:
        return Ticket(self)

    def _arrived(self, envelope: Envelope | None, attempt: int) -> None:
        if envelope is not None and is_tracked(envelope):
            self._tracked[envelope.id] = RunningUpdate(
                id=envelope.id, actor=self.reports.config.actor, attempt=attempt, seq=seq_of(envelope),
                parent_id=envelope.parent_id,
            )
            if envelope.parent_id:
                self._parents[envelope.id] = envelope.parent_id
        self._waiting -= 1
        if self._waiting == 0:
            self._fire()

    def _fire(self) -> None:
        if not self._tracked:
            self._canceled.set_result(set())
            self.running.set_result(None)
            return
        self.reports.in_background("running", self._check_and_report())

    async def _check_and_report(self) -> None:
        try:
            try:
                canceled = await self.reports.store.canceled_among(ids=[*self._tracked, *self._parents.values()])
            except Exception as exc:
                self.reports.failed("cancel check", exc)
                canceled = set()
            self._canceled.set_result(canceled)
            updates = [
                u for i, u in self._tracked.items()
                if i not in canceled and self._parents.get(i) not in canceled and self.reports.reports_running(u)
            ]
            if updates:
                await self.reports.store.report_running(updates=updates)
        finally:
            if not self._canceled.done():
                self._canceled.set_result(set())
            self.running.set_result(None)

    async def canceled(self, envelope: Envelope) -> bool:
        """Whether ``envelope`` (or its parent) is canceled: waits for the batch's check if it is tracked."""
        if envelope.id not in self._tracked:
            return False
        found = await asyncio.shield(self._canceled)
        return envelope.id in found or self._parents.get(envelope.id) in found


class Ticket:
    """One message's place in its :class:`Batch`: :meth:`arrive` once read, :meth:`close` when done (a message
    that never arrived counts as holding no envelope, so the batch never waits for it)."""

    def __init__(self, batch: Batch) -> None:
        self.batch = batch
        self._arrived = False

    def arrive(self, envelope: Envelope | None, *, attempt: int = 1) -> None:
        if not self._arrived:
            self._arrived = True
            self.batch._arrived(envelope, attempt)

    def close(self) -> None:
        self.arrive(None)


class FlyReporter:
    """One call's FLY events to the store, coalesced: the first is written at once, the next ones together after
    :data:`FLY_INTERVAL_S`; ``progress`` is a numeric ``progress`` (0–100) of the latest event that has one."""

    def __init__(self, reports: StatusReports, *, envelope_id: str, after: asyncio.Future[None]) -> None:
        self._reports = reports
        self._id = envelope_id
        self._after = after
        self._pending: list[Any] = []
        self._progress: float | None = None
        self._log: FlyLog | None = None
        self._writer: asyncio.Task[None] | None = None
        self._ended = False  # the item is terminal (or gone): nothing more is written
        self.count = 0

    def __call__(self, value: Any) -> None:
        """One FLY event (from the handler client, while the call runs)."""
        self.count += 1
        if self._ended:
            return
        self._pending.append(value)
        progress = value.get("progress") if isinstance(value, dict) else None
        if isinstance(progress, (int, float)) and not isinstance(progress, bool) and 0 <= progress <= 100:
            self._progress = float(progress)
        if self._writer is None or self._writer.done():
            # a stream may go on for a whole long call: only each write is bounded (by the broker client's within_s)
            self._writer = self._reports.in_background("fly", self._write(), timeout_s=None)

    async def _write(self) -> None:
        await asyncio.shield(self._after)
        while self._pending or self._progress is not None:
            events, self._pending = self._pending, []
            progress, self._progress = self._progress, None
            self._log = await self._reports.store.report_fly(
                id=self._id, events=events, progress=progress, known=self._log
            )
            if self._log is None:
                self._ended, self._pending = True, []
                return
            await asyncio.sleep(FLY_INTERVAL_S)

    async def flushed(self, *, timeout_s: float) -> None:
        """Wait (at most ``timeout_s``) for the events so far to be written."""
        if self._writer is not None and not self._writer.done():
            await asyncio.wait([self._writer], timeout=timeout_s)

