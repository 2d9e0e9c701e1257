"""Final records in a mesh's result bucket: find the bucket, list and filter records, find one envelope's.

The sinks store each final envelope under ``{status}/{id}.json`` (``succeeded``/``failed``; the prefixes and
:class:`~asya_pulumi.records.FinalRecord` come from :mod:`asya_pulumi.records`, which reads the runtime's own
prefix table). What a listing alone tells — key, hence id and status, and when the record was written — costs
one ``ListObjectsV2`` per 1,000 records; anything about the envelope (its actor, error, hops) needs a read of the
record, done concurrently. Listing order in S3 is by key (by id), not by time, so "recent" means listing the
prefix and sorting: fine for a local mesh and for buckets of up to some hundred thousand records (the mesh's
bucket has a retention rule); narrow by ``status`` to list one prefix only.

Records written by anything else (``offload/`` claim-check objects, ``replays/`` markers) are never listed here.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from botocore.exceptions import ClientError

from asya_pulumi.ops.errors import OpsError
from asya_pulumi.records import (
    ERROR_PREFIX,
    SUCCESS_PREFIX,
    FinalRecord,
    result_bucket_name,
    trace_id_of,
    traceparent_for,
)
from asya_pulumi.spec.limits import BUCKET_UNIQUE_SUFFIX_LENGTH, result_bucket_prefix
from asya_runtime.durations import parse_duration

Status = Literal["succeeded", "failed"]
#: The two statuses and the key prefix each is stored under.
PREFIXES: dict[str, str] = {"succeeded": SUCCESS_PREFIX, "failed": ERROR_PREFIX}
#: Records read at once (GetObject calls in flight).
READ_WORKERS = 16


@dataclass(frozen=True)
class Listed:
    """One record as a bucket listing shows it, without reading it."""

    key: str
    status: str
    id: str
    #: When the sink wrote it (epoch seconds; None if the server did not say).
    written: float | None
    size: int


def find_bucket(*, s3: Any, namespace: str, bucket: str | None = None) -> str:
    """The result bucket of mesh ``namespace``: ``bucket`` when given, else ``asya dev``'s ``asya-{ns}-results``
    if it exists, else the one bucket named like ``ActorMesh`` names it (``asya-{ns}-results-`` plus Pulumi's
    26-digit suffix). No bucket, or more than one, is an :class:`OpsError` that says to pass ``--bucket``."""
    if bucket:
        return bucket
    local = result_bucket_name(namespace=namespace)
    try:
        s3.head_bucket(Bucket=local)
        return local
    except ClientError:
        pass
    prefix = result_bucket_prefix(namespace=namespace)
    shape = re.compile(re.escape(prefix) + rf"\d{{{BUCKET_UNIQUE_SUFFIX_LENGTH}}}$")
    names = [b["Name"] for b in s3.list_buckets().get("Buckets", []) if shape.match(b["Name"])]
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise OpsError(
            f"no result bucket found for mesh {namespace!r} (looked for {local!r} and {prefix}<digits>); "
            f"check --namespace and the endpoint, or pass --bucket NAME (the stack output bucketName)"
        )
    raise OpsError(f"several result buckets match mesh {namespace!r} ({', '.join(names)}); pass --bucket NAME")


def parse_time(text: str, *, now: float) -> float:
    """Epoch seconds of a ``--since``/``--until`` value: an ISO 8601 time (UTC unless it names a zone) or a
    duration ago (``30m``, ``2h``, ``1h30m``; see :mod:`asya_runtime.durations`)."""
    try:
        return now - parse_duration(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise OpsError(
            f"time {text!r} is neither a duration ago ('30m', '2h') nor an ISO 8601 time ('2026-11-30T08:00')"
        ) from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _written(value: Any) -> float | None:
    """``LastModified`` as epoch seconds: a datetime (a default boto3 client) or text (the CLI's clients keep
    timestamps as text, see :func:`asya_pulumi.cli.aws.s3_client`)."""
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str) and value:
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            try:
                from email.utils import parsedate_to_datetime

                moment = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                return None
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return None


def within(moment: float | None, *, since: float | None, until: float | None) -> bool:
    """True when ``moment`` lies in ``[since, until]`` (an unknown moment is in every window)."""
    if moment is None:
        return True
    return (since is None or moment >= since) and (until is None or moment <= until)


def list_records(
    *,
    s3: Any,
    bucket: str,
    status: str | None = None,
    since: float | None = None,
    until: float | None = None,
) -> list[Listed]:
    """Records of ``status`` (both when None) written in ``[since, until]``, newest first; no record is read."""
    if status is not None and status not in PREFIXES:
        raise OpsError(f"status {status!r} is not one of {', '.join(PREFIXES)}")
    found: list[Listed] = []
    for name in [status] if status else list(PREFIXES):
        prefix = PREFIXES[name] + "/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if not key.endswith(".json"):
                    continue
                written = _written(item.get("LastModified"))
                if not within(written, since=since, until=until):
                    continue
                found.append(
                    Listed(key=key, status=name, id=key[len(prefix) : -len(".json")], written=written,
                           size=int(item.get("Size", 0)))
                )
    found.sort(key=lambda item: (item.written or 0.0, item.key), reverse=True)
    return found


@dataclass(frozen=True)
class Found:
    """A record read from the bucket, with when the sink wrote it (epoch seconds; None if the server did not say)."""

    record: FinalRecord
    written: float | None

    def to_json(self) -> dict[str, Any]:
        """One row for a list of records (the web UI's search results): who, where, what error, how long."""
        record = self.record
        steps = [h for h in hops_of(record) if not h.get("summary")]
        route = record.envelope.get("route") or {}
        return {
            "id": record.id,
            "status": status_of(record),
            "key": record.key,
            "written": self.written,
            "parent_id": record.parent_id,
            "replay_of": record.envelope.get("replay_of"),
            "route": [*(route.get("prev") or []), *([route["curr"]] if route.get("curr") else [])],
            "failed_actor": failed_actor(record),
            "error_type": error_type(record),
            "error_message": str(record.error.get("message", ""))[:200] or None,
            "hops": len(hops_of(record)),
            "started": steps[0].get("start") if steps else None,
            "ended": steps[-1].get("end") if steps else None,
        }


def read_found(*, s3: Any, bucket: str, keys: Sequence[str]) -> list[Found]:
    """The records under ``keys`` with their write times, read concurrently, in the order of ``keys``; a key
    deleted meanwhile is left out."""
    if not keys:
        return []
    with ThreadPoolExecutor(max_workers=min(READ_WORKERS, len(keys)), thread_name_prefix="asya-ops") as pool:
        found = list(pool.map(lambda key: _read(s3, bucket, key), keys))
    return [f for f in found if f is not None]


def read_records(*, s3: Any, bucket: str, keys: Sequence[str]) -> list[FinalRecord]:
    """The records under ``keys``, read concurrently, in the order of ``keys``; a key deleted meanwhile is left out."""
    return [f.record for f in read_found(s3=s3, bucket=bucket, keys=keys)]


def _read(s3: Any, bucket: str, key: str) -> Found | None:
    try:
        answer = s3.get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise
    body = answer["Body"].read()
    try:
        data = json.loads(body)
    except ValueError:
        data = {"raw_body": body.decode(errors="replace")}
    record = FinalRecord(key=key, envelope=data if isinstance(data, dict) else {"raw_body": data})
    return Found(record=record, written=_written(answer.get("LastModified")))


# -- what a record says ----------------------------------------------------------------------------------------------


def status_of(record: FinalRecord) -> str:
    return "succeeded" if record.succeeded else "failed"


def failed_actor(record: FinalRecord) -> str | None:
    """The actor whose attempt ended the envelope in the error sink (``status.error.actor``); None for successes."""
    if record.succeeded:
        return None
    actor = record.error.get("actor")
    return str(actor) if actor else None


def error_type(record: FinalRecord) -> str | None:
    """The error's type name (``status.error.type``); for a body the sink could not read as an envelope, its
    reason."""
    if record.succeeded:
        return None
    if "raw_body" in record.envelope and "route" not in record.envelope:
        return "MalformedEnvelope"
    kind = record.error.get("type")
    return str(kind) if kind else None


def hops_of(record: FinalRecord) -> list[dict[str, Any]]:
    """The record's hop history (``hops``), entries that are not objects left out."""
    value = record.envelope.get("hops")
    return [h for h in value if isinstance(h, dict)] if isinstance(value, list) else []


def visited(record: FinalRecord) -> list[str]:
    """Actors the envelope passed through, in order (``route.prev``, plus ``route.curr`` for a failed record)."""
    route = record.envelope.get("route") or {}
    actors = [str(a) for a in route.get("prev") or []]
    if not record.succeeded and route.get("curr"):
        actors.append(str(route["curr"]))
    return actors


@dataclass(frozen=True)
class RecordQuery:
    """Which records to find; every field left at its default matches everything.

    ``actor``: for failed records the actor that failed them, for successes any actor the envelope visited.
    ``error_type``: ``status.error.type`` (failed records only). ``since``/``until``: when the sink wrote the
    record (epoch seconds). ``ids``: these envelope ids only. ``limit``: at most this many, newest first.
    """

    status: str | None = None
    actor: str | None = None
    error_type: str | None = None
    since: float | None = None
    until: float | None = None
    ids: tuple[str, ...] = ()
    limit: int | None = None

    def matches(self, record: FinalRecord) -> bool:
        if self.error_type is not None and error_type(record) != self.error_type:
            return False
        if self.actor is not None:
            where = [failed_actor(record)] if not record.succeeded else visited(record)
            if self.actor not in where:
                return False
        return True


def search(*, s3: Any, bucket: str, query: RecordQuery) -> list[Found]:
    """Records matching ``query`` with their write times, newest first.

    With ``ids``, each id is looked up directly (one GET per status and id, no listing); otherwise the listing is
    filtered by status and time, then the records are read and filtered by actor and error type.
    """
    status = "failed" if query.error_type is not None and query.status is None else query.status
    if query.ids:
        names = [status] if status else list(PREFIXES)
        keys = [f"{PREFIXES[name]}/{envelope_id}.json" for envelope_id in query.ids for name in names]
        found = [f for f in read_found(s3=s3, bucket=bucket, keys=keys)
                 if within(f.written, since=query.since, until=query.until)]
        found.sort(key=lambda f: f.written or 0.0, reverse=True)
    else:
        listed = list_records(s3=s3, bucket=bucket, status=status, since=query.since, until=query.until)
        needs_read = query.actor is not None or query.error_type is not None
        if not needs_read and query.limit is not None:
            listed = listed[: query.limit]
        found = read_found(s3=s3, bucket=bucket, keys=[item.key for item in listed])
    matching = [f for f in found if query.matches(f.record)]
    return matching[: query.limit] if query.limit is not None else matching


@dataclass(frozen=True)
class Page:
    """One page of a search: the records at ``offset`` (newest first) and how many match in all (``total``)."""

    found: list[Found]
    total: int
    offset: int


def search_page(*, s3: Any, bucket: str, query: RecordQuery, offset: int) -> Page:
    """Records ``offset .. offset + query.limit`` of those ``query`` matches, newest first, with the total count.

    Why not :func:`search` and slice: a listing alone already gives the count and the order, so without an actor or
    error-type filter only the page's records are read (a page of 50 costs 50 GETs however large the bucket). With
    those filters every listed record in the time window must be read to know whether it matches, so the window
    (``since``/``until``) is what keeps such a search cheap.
    """
    if query.ids:
        matching = search(s3=s3, bucket=bucket, query=dataclasses.replace(query, limit=None))
        end = None if query.limit is None else offset + query.limit
        return Page(found=matching[offset:end], total=len(matching), offset=offset)
    status = "failed" if query.error_type is not None and query.status is None else query.status
    listed = list_records(s3=s3, bucket=bucket, status=status, since=query.since, until=query.until)
    end = None if query.limit is None else offset + query.limit
    if query.actor is None and query.error_type is None:
        return Page(found=read_found(s3=s3, bucket=bucket, keys=[i.key for i in listed[offset:end]]),
                    total=len(listed), offset=offset)
    matching = [f for f in read_found(s3=s3, bucket=bucket, keys=[i.key for i in listed]) if query.matches(f.record)]
    return Page(found=matching[offset:end], total=len(matching), offset=offset)


def find_records(*, s3: Any, bucket: str, query: RecordQuery) -> list[FinalRecord]:
    """Records matching ``query``, newest first (:func:`search` without the write times)."""
    return [f.record for f in search(s3=s3, bucket=bucket, query=query)]


def records_of(*, s3: Any, bucket: str, envelope_id: str) -> list[FinalRecord]:
    """Every final record of envelope ``envelope_id``: its own (one GET per status), or — when it has none,
    because it fanned out — its fan-out descendants.

    Descendants are found in one pass over the bucket: records whose ``parent_id`` chain leads to the id, and
    records whose W3C trace-id is the one ``asya dev``/``asya send`` root at an input's id (so grandchildren, whose
    parents never reached a sink, are found too). The pass reads every record: seconds on a local mesh, a minute or
    more on a bucket of a hundred thousand records.
    """
    own = read_records(s3=s3, bucket=bucket, keys=[f"{prefix}/{envelope_id}.json" for prefix in PREFIXES.values()])
    if own:
        return own
    everything = read_records(s3=s3, bucket=bucket, keys=[item.key for item in list_records(s3=s3, bucket=bucket)])
    return descendants(everything, root=envelope_id)


def descendants(records: Iterable[FinalRecord], *, root: str) -> list[FinalRecord]:
    """The records among ``records`` that descend from envelope ``root`` (by ``parent_id`` chain or trace-id),
    ordered by id."""
    pool = list(records)
    trace = trace_id_of({"traceparent": traceparent_for(root)})
    family = {root}
    found: dict[str, FinalRecord] = {r.id: r for r in pool if trace is not None and r.trace_id == trace}
    family.update(found)
    grew = True
    while grew:
        grew = False
        for record in pool:
            if record.id not in found and record.parent_id in family:
                found[record.id] = record
                family.add(record.id)
                grew = True
    found.pop(root, None)
    return [found[key] for key in sorted(found)]


@dataclass
class Activity:
    """What one actor's attempts came to, counted from the hop histories of final records (``asya ui``'s error
    rate): every finished attempt, and how many of them were retried or ended in the error sink."""

    attempts: int = 0
    retries: int = 0
    errors: int = 0

    @property
    def error_rate(self) -> float:
        """Share of attempts that error-ended their envelope (0.0 with no attempts)."""
        return self.errors / self.attempts if self.attempts else 0.0

    def to_json(self) -> dict[str, Any]:
        return {"attempts": self.attempts, "retries": self.retries, "errors": self.errors,
                "error_rate": round(self.error_rate, 4)}


def activity(*, s3: Any, bucket: str, since: float) -> dict[str, Activity]:
    """Per actor, the attempts that finished since ``since`` (epoch seconds), from the records written since then.

    An entry copied into several records (fan-out children, replays) counts once. Only envelopes that reached a
    sink are counted (an envelope still in flight has no record yet), and every record written in the window is
    read: cheap on a local mesh, proportional to the traffic on AWS.
    """
    counts: dict[str, Activity] = {}
    seen: set[tuple[Any, ...]] = set()  # fan-out children and replays carry copies of the same earlier entries
    for found in search(s3=s3, bucket=bucket, query=RecordQuery(since=since)):
        for entry in hops_of(found.record):
            end = entry.get("end")
            if entry.get("summary") or not isinstance(end, (int, float)) or end < since:
                continue
            identity = (entry.get("actor"), entry.get("attempt"), entry.get("start"), end, entry.get("replica"))
            if identity in seen:
                continue
            seen.add(identity)
            tally = counts.setdefault(str(entry.get("actor")), Activity())
            tally.attempts += 1
            tally.retries += entry.get("outcome") == "retry"
            tally.errors += entry.get("outcome") == "error"
    return counts
