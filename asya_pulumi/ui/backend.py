"""What the page's JSON API answers, from one mesh's queues and bucket: the graph, records, a trace, a replay.

The UI reads nothing itself: queue depths come from :class:`~asya_pulumi.ops.mesh_queues.MeshQueues` (what
``asya status`` shows), final records, traces and replays from :mod:`asya_pulumi.ops` (what ``asya trace`` and
``asya replay`` use), so the page and the CLI always agree. The same code serves ``asya dev``'s embedded broker and
a deployed mesh on AWS: only the clients differ.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from asya_pulumi.errors import AsyaError
from asya_pulumi.ops import queues, records, replay, trace
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.ops.records import RecordQuery
from asya_pulumi.records import FinalRecord
from asya_pulumi.ui.graph import Activity, ActorLoad, activity_of, mesh_graph
from asya_pulumi.ui.inflight import InFlightReader, no_store

#: Final records the graph's error rates are computed from (the most recent ones).
ACTIVITY_RECORDS = 200
#: How often the graph reads those records again, at most (seconds).
ACTIVITY_EVERY_S = 10.0
#: Rows of one search, by default and at most.
DEFAULT_ROWS, MAX_ROWS = 50, 500
#: A trace shows the final payloads of at most this many of its records (a large fan-out has thousands).
MAX_PAYLOADS = 20


@dataclass
class UiBackend:
    """One mesh, as the page sees it. ``routes`` are the declared routes (empty without ``--mesh``); ``bucket`` the
    result bucket (None: found by :func:`asya_pulumi.ops.records.find_bucket` on first use)."""

    queues: MeshQueues
    s3: Any
    bucket: str | None = None
    routes: Mapping[str, Sequence[str]] = field(default_factory=dict)
    declared_actors: Sequence[str] = ()
    #: The mesh's status store (a mesh with a front door): the envelopes in flight. None: final records only.
    status: InFlightReader | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _cached: tuple[float, Activity, str | None] | None = field(default=None, init=False, repr=False)

    @property
    def namespace(self) -> str:
        return self.queues.namespace

    def result_bucket(self) -> str:
        if self.bucket is None:
            self.bucket = records.find_bucket(s3=self.s3, namespace=self.namespace)
        return self.bucket

    def graph(self) -> dict[str, Any]:
        """Actors (found from queues, plus declared ones), their live depths and recent error rates, edges.

        Without a result bucket yet (a mesh that never finished an envelope) the graph still shows the queues, and
        says why there are no error rates.
        """
        counted = queues.depths(self.queues)
        loads = {
            d.actor: ActorLoad(waiting=d.waiting, in_flight=d.in_flight, delayed=d.delayed, dlq=d.dead_lettered)
            for d in counted
        }
        activity, problem = self._activity()
        names = list(dict.fromkeys([*self.declared_actors, *loads]))
        graph = mesh_graph(
            namespace=self.namespace, actors=names, routes=self.routes, loads=loads, activity=activity,
        )
        return graph | {"queues_found": len(loads), "records_problem": problem}

    def _activity(self) -> tuple[Activity, str | None]:
        """Error rates and observed hops from the recent records, read again at most every
        :data:`ACTIVITY_EVERY_S` (the page polls every 3 s; depths are cheap, reading 200 records is not); a
        bucket that cannot be read leaves them empty, with the reason, instead of failing the whole graph."""
        with self._lock:
            if self._cached is None or time.monotonic() - self._cached[0] >= ACTIVITY_EVERY_S:
                try:
                    found: tuple[Activity, str | None] = (
                        activity_of(self.recent_records(limit=ACTIVITY_RECORDS)), None
                    )
                except (AsyaError, ClientError, BotoCoreError) as exc:
                    found = (Activity(), " ".join(str(exc).split()))
                self._cached = (time.monotonic(), *found)
            return self._cached[1], self._cached[2]

    def recent_records(self, *, limit: int) -> list[FinalRecord]:
        """The ``limit`` most recently written final records."""
        return records.find_records(s3=self.s3, bucket=self.result_bucket(), query=RecordQuery(limit=limit))

    def records(self, query: Mapping[str, str]) -> dict[str, Any]:
        """One page of the final records matching the page's search, newest first, and how many match in all.

        By id: its own record, or its fan-out descendants'. Otherwise by status, actor (failed at, or visited by a
        success), error type and when the sink wrote it (``since``/``until``: an ISO time, UTC unless it names a
        zone, or a duration ago like ``30m``, as ``asya replay --since`` takes). ``offset``/``limit`` page through
        them server-side (:func:`asya_pulumi.ops.records.search_page`: only the page's records are read when no
        actor or error type is asked for).
        """
        limit = _limit(query.get("limit"))
        offset = _offset(query.get("offset"))
        bucket = self.result_bucket()
        now = time.time()
        since = records.parse_time(query["since"], now=now) if query.get("since", "").strip() else None
        until = records.parse_time(query["until"], now=now) if query.get("until", "").strip() else None
        envelope_id = query.get("id", "").strip()
        if envelope_id:
            own = records.records_of(s3=self.s3, bucket=bucket, envelope_id=envelope_id)
            found = [f for f in records.read_found(s3=self.s3, bucket=bucket, keys=[r.key for r in own])
                     if records.within(f.written, since=since, until=until)]  # with write times
            page = records.Page(found=found[offset : offset + limit], total=len(found), offset=offset)
        else:
            wanted = RecordQuery(
                status=query.get("status") or None, actor=query.get("actor") or None,
                error_type=query.get("error_type") or None, since=since, until=until, limit=limit,
            )
            page = records.search_page(s3=self.s3, bucket=bucket, query=wanted, offset=offset)
        return {"records": [f.to_json() for f in page.found], "total": page.total, "offset": page.offset,
                "limit": limit, "since": since, "until": until}

    def in_flight(self, query: Mapping[str, str]) -> dict[str, Any]:
        """The envelopes not finished yet (pending, running, paused) with their actor and attempt, from the status
        store; without one, says so (the page then shows final records only). A store that cannot be read answers
        its reason, as an unreadable bucket does for the graph."""
        if self.status is None:
            return no_store("this mesh has no status store (a mesh with a front door has one: docs/gateway.md)",
                            configured=False)
        try:
            return self.status.list(limit=_limit(query.get("limit")))
        except (ClientError, BotoCoreError) as exc:
            return no_store(" ".join(str(exc).split()), configured=True)

    def trace(self, envelope_id: str) -> dict[str, Any]:
        """One envelope's trace (:func:`asya_pulumi.ops.trace.trace`: a branch per final record, replays followed,
        an unfinished envelope located), with each branch's final payload for the page to show."""
        bucket = self.result_bucket()
        found = trace.trace(s3=self.s3, bucket=bucket, envelope_id=envelope_id, queues=self.queues).to_json()
        branches = found["branches"][:MAX_PAYLOADS]
        stored = records.read_records(s3=self.s3, bucket=bucket, keys=[b["record"] for b in branches])
        payloads = {r.key: r.envelope.get("payload") for r in stored}
        for branch in branches:
            if branch["record"] in payloads:
                branch["payload"] = payloads[branch["record"]]
        return found

    def replay(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """Plan (``dry_run``, the default) or send a replay of error records: those of ``ids``, else those failed
        at ``failed_at`` with ``error_type``; each into ``to`` or the actor that failed it; with ``payload`` (one
        envelope only, :func:`asya_pulumi.ops.replay.with_payload`) that payload instead of the record's.

        Sending plans again rather than trusting the page's copy: what is sent is what the bucket says now, and
        :mod:`asya_pulumi.ops.replay`'s markers keep an envelope from being replayed twice. Both answers list
        every envelope with its new id, its target and (to send) the payload it carries, so the page shows
        exactly what will be, or was, sent.
        """
        ids = request.get("ids") or []
        if not isinstance(ids, list) or not all(isinstance(i, str) and i for i in ids):
            raise ValueError("'ids' must be a list of envelope ids")
        wanted = RecordQuery(
            ids=tuple(ids), actor=_text(request, "failed_at"), error_type=_text(request, "error_type"), limit=MAX_ROWS,
        )
        if not ids and wanted.actor is None and wanted.error_type is None:
            raise ValueError("say what to replay: 'ids', or 'failed_at' / 'error_type'")
        bucket = self.result_bucket()
        plan = replay.plan_records(s3=self.s3, bucket=bucket, queues=self.queues, query=wanted, to=_text(request, "to"))
        if "payload" in request:
            plan = replay.with_payload(plan, payload=request["payload"])
        items = [_replay_item(item) for item in plan.items]
        if request.get("dry_run", True) is not False:
            summary = f"{len(plan.to_send)} envelope(s) would be sent again, {len(plan.skipped)} skipped"
            return {"dry_run": True, "summary": summary, "items": items, "to_send": len(plan.to_send)}
        result = replay.send(plan, s3=self.s3, bucket=bucket, queues=self.queues)
        summary = f"sent {len(result.sent)}" + (f", refused {len(result.refused)}" if result.refused else "")
        return {"dry_run": False, "summary": summary, "sent": len(result.sent), "items": items,
                "sent_items": [_replay_item(item) for item in result.sent],
                "refused": [{"id": item.original_id, "reason": reason} for item, reason in result.refused]}


def _replay_item(item: replay.ReplayItem) -> dict[str, Any]:
    """One envelope of a replay as the dialog lists it: original id, new id, target, why skipped, the payload."""
    data: dict[str, Any] = {"id": item.original_id, "replay_id": item.replay_id, "actor": item.to,
                            "error_type": item.error_type, "reason": item.skipped}
    if item.envelope is not None:
        data["payload"] = item.envelope.payload
    return data


def _offset(value: str | None) -> int:
    if not value:
        return 0
    if not value.isdigit():
        raise ValueError(f"offset {value!r}: a number of rows to skip (0 or more)")
    return int(value)


def _limit(value: str | None) -> int:
    if not value:
        return DEFAULT_ROWS
    if not value.isdigit() or not 1 <= int(value) <= MAX_ROWS:
        raise ValueError(f"limit {value!r}: a number of rows in 1..{MAX_ROWS}")
    return int(value)


def _text(request: Mapping[str, Any], name: str) -> str | None:
    value = request.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name!r} must be a string")
    return value or None
