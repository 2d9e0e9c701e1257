"""The status store: one DynamoDB item per tracked envelope, written by the gateway, the sidecars and the sinks.

Every write is one conditional request, so the item only ever moves forward however late or twice a write comes
(SQS delivers at least once, and sidecars report in the background):

* ``rank`` (0 pending, 1 running, 2 paused, 3 terminal) never goes back to below 3 once there, and a terminal state
  never overwrites another (a cancel and a success racing: the first wins);
* ``seq`` (the envelope's hop count) never goes back: a late ``running`` from an earlier hop loses to a later one.

A write whose condition fails is no error — it is the ordering doing its job — so the methods answer whether they
wrote. Requests go through ``call(api, params)`` (botocore's snake_case operation name and the API's parameters, as
:class:`~asya_runtime.sidecar.aws_json.AwsJsonClient` takes them): the sidecar passes its broker client's, which
counts and retries them; :func:`asya_runtime.status.client.open_store` makes one for the gateway and ``asya dev``.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

from botocore.exceptions import ClientError

from asya_runtime.status import schema
from asya_runtime.status.codec import decode, encode_item
from asya_runtime.status.expression import Expression as _Expression
from asya_runtime.status.expression import condition_failed, fly_text
from asya_runtime.status.record import FlyLog, RunningUpdate, StatusPage, StatusRecord

Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]
_List = list  # the method ``list`` shadows the builtin in the class body

#: BatchGetItem's most keys per request.
BATCH_GET_MAX = 100
#: Rounds of BatchGetItem for the keys DynamoDB left unprocessed (throttled) before giving up.
UNPROCESSED_ROUNDS = 8
LIST_LIMIT_MAX = 1000
#: How long a gateway's claim to send an envelope (:meth:`StatusStore.claim_send`) excludes every other replica:
#: longer than a send can take (the gateway's SQS client gives up within ~40 s), so a slow send is never doubled.
SEND_LEASE_S = 60


class StatusStore:
    """The status table ``table`` over ``call``; items live ``ttl_s`` after their last write."""

    def __init__(
        self, *, table: str, call: Call, ttl_s: int = schema.DEFAULT_TTL_S, clock: Callable[[], float] = time.time
    ) -> None:
        if ttl_s <= 0:
            raise ValueError(f"ttl_s is {ttl_s}; give the seconds a status item lives after its last write (> 0)")
        self.table = table
        self._call = call
        self.ttl_s = ttl_s
        self._clock = clock

    # -- the table -------------------------------------------------------------------------------------------------

    async def create_table(self) -> bool:
        """Create the table (:func:`~asya_runtime.status.schema.table_definition`) and switch its TTL on; False
        when it existed already (then nothing is changed)."""
        try:
            await self._call("create_table", schema.table_definition(table_name=self.table))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceInUseException":
                return False
            raise
        await self._call(
            "update_time_to_live", {"TableName": self.table, "TimeToLiveSpecification": schema.time_to_live()}
        )
        return True

    # -- writes ----------------------------------------------------------------------------------------------------

    async def create_pending(
        self,
        *,
        id: str,
        route: str,
        actor: str | None = None,
        deadline_at: str | None = None,
        idempotency_key: str | None = None,
        created_at: str | None = None,
        send_claim: str | None = None,
        send_lease_s: int | None = None,
    ) -> bool:
        """The gateway's ``pending`` at submission; False when an item with this id exists (a repeated submission
        with the same ``Idempotency-Key``: the id derives from it, so the first one's item stands). With
        ``send_claim``, the creator holds the send lease (:meth:`claim_send`) for ``send_lease_s`` from now."""
        now = created_at or schema.iso_timestamp()
        lease: dict[str, Any] = {}
        if send_claim is not None:
            lease = {"send_claim": send_claim, "send_until": int(self._clock()) + (send_lease_s or SEND_LEASE_S)}
        item = {
            schema.KEY: id, "status": "pending", "rank": schema.RANKS["pending"], "seq": 0, "route": route,
            "created_at": now, "updated_at": now, "sent": False, schema.TTL_ATTRIBUTE: self._expires_at(), **lease,
            **{k: v for k, v in (("actor", actor), ("deadline_at", deadline_at),
                                 ("idempotency_key", idempotency_key)) if v is not None},
        }
        expression = _Expression()
        try:
            await self._call("put_item", {
                "TableName": self.table, "Item": encode_item(item),
                "ConditionExpression": f"attribute_not_exists({expression.name(schema.KEY)})", **expression.params(),
            })
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    async def claim_send(self, *, id: str, claim: str, lease_s: int = SEND_LEASE_S) -> bool:
        """Take the right to send the envelope to its first queue for ``lease_s``: one conditional write, so of any
        number of gateway replicas asking at once exactly one gets True. It is granted while the envelope is not
        sent and not terminal, and nobody holds an unexpired lease — a holder that crashed between its write and its
        send loses it when it expires, and a retry sends then (the submission is never lost)."""
        expression = _Expression()
        until = expression.name("send_until")
        values = {"send_claim": claim, "send_until": int(self._clock()) + lease_s}
        condition = (
            f"{expression.name('sent')} = {expression.value('unsent', False)} AND "
            f"{expression.name('rank')} < {expression.value('terminal', schema.TERMINAL_RANK)} AND "
            f"(attribute_not_exists({until}) OR {until} < {expression.value('now', int(self._clock()))})"
        )
        return await self._update(id, f"SET {', '.join(expression.assign(values))}", condition, expression)

    async def release_send(self, *, id: str, claim: str) -> bool:
        """Give back the send lease ``claim`` holds (its send failed): a retry may send at once, not after the lease."""
        expression = _Expression()
        condition = (
            f"{expression.name('send_claim')} = {expression.value('claim', claim)} AND "
            f"{expression.name('sent')} = {expression.value('unsent', False)}"
        )
        return await self._update(id, f"REMOVE {expression.name('send_until')}", condition, expression)

    async def mark_sent(self, *, id: str) -> bool:
        """Record that the gateway's send to the first queue succeeded; False when there is no such item."""
        expression = _Expression()
        return await self._update(
            id, f"SET {expression.assign({'sent': True})[0]}",
            f"attribute_exists({expression.name(schema.KEY)})", expression,
        )

    async def report_running(self, *, updates: Sequence[RunningUpdate]) -> int:
        """Each envelope's ``running`` (sent concurrently: DynamoDB has no batch of conditional updates); how many
        were written. One loses, silently, when its item is terminal or at a later hop (``seq``); an item that does
        not exist yet (a fan-out child) is created. A request that fails otherwise raises once all are done."""
        results = await asyncio.gather(*(self._running(update) for update in updates), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return sum(1 for result in results if result is True)

    async def _running(self, update: RunningUpdate) -> bool:
        expression = _Expression()
        values: dict[str, Any] = {
            "status": "running", "rank": schema.RANKS["running"], "seq": update.seq, "actor": update.actor,
            "attempt": update.attempt, "updated_at": schema.iso_timestamp(), schema.TTL_ATTRIBUTE: self._expires_at(),
        }
        if update.fanout is not None:
            values["fanout"] = update.fanout
        sets = expression.assign(values)
        sets.append(self._if_absent(expression, "created_at", values["updated_at"]))
        if update.parent_id is not None:
            sets.append(self._if_absent(expression, "parent_id", update.parent_id))
        rank, seq = expression.name("rank"), expression.name("seq")
        condition = (
            f"attribute_not_exists({expression.name(schema.KEY)}) OR "
            f"({rank} < {expression.value('terminal', schema.TERMINAL_RANK)} AND {seq} <= :seq)"
        )
        return await self._update(update.id, "SET " + ", ".join(sets), condition, expression)

    async def report_fly(
        self, *, id: str, events: Sequence[Any], progress: float | None = None, known: FlyLog | None = None
    ) -> FlyLog | None:
        """Append FLY ``events`` (values; each kept as JSON text of at most 1 KiB) to the item's last 20, count them
        in ``fly_seq`` and set ``progress`` (a number 0–100) when given. None when the item is terminal or absent.

        DynamoDB cannot append to a list and cut its head in one expression, so a hop's writes go in two ways:
        ``known`` (what the hop's previous write returned) lets the next one write the whole last-20 list at once,
        conditional on nobody else having appended since (``fly_seq``); without it, or when someone did, the events
        are appended and the list is cut in a second write only if it grew past 20.
        """
        texts = [fly_text(event) for event in events]
        if not texts and progress is None:
            return known
        if known is not None:
            written = await self._fly_replace(id, texts, progress=progress, known=known)
            if written is not None:
                return written
        return await self._fly_append(id, texts, progress=progress)

    async def _fly_replace(self, id: str, texts: _List[str], *, progress: float | None, known: FlyLog) -> FlyLog | None:
        log = FlyLog(events=tuple((*known.events, *texts)[-schema.FLY_KEEP :]), seq=known.seq + len(texts))
        expression = _Expression()
        values: dict[str, Any] = {"fly": _List(log.events), "fly_seq": log.seq, "updated_at": schema.iso_timestamp()}
        if progress is not None:
            values["progress"] = progress
        condition = (
            f"{expression.name('rank')} < {expression.value('terminal', schema.TERMINAL_RANK)} AND "
            f"{expression.name('fly_seq')} = {expression.value('known_seq', known.seq)}"
        )
        written = await self._update(id, "SET " + ", ".join(expression.assign(values)), condition, expression)
        return log if written else None

    async def _fly_append(self, id: str, texts: _List[str], *, progress: float | None) -> FlyLog | None:
        expression = _Expression()
        fly, fly_seq = expression.name("fly"), expression.name("fly_seq")
        sets = [
            f"{fly} = list_append(if_not_exists({fly}, {expression.value('empty', [])}), "
            f"{expression.value('events', texts)})",
            f"{fly_seq} = if_not_exists({fly_seq}, {expression.value('zero', 0)}) + "
            f"{expression.value('n', len(texts))}",
            *expression.assign({"updated_at": schema.iso_timestamp()}),
        ]
        if progress is not None:
            sets += expression.assign({"progress": progress})
        condition = f"{expression.name('rank')} < {expression.value('terminal', schema.TERMINAL_RANK)}"
        try:
            answer = await self._call("update_item", {
                "TableName": self.table, "Key": self._key(id), "UpdateExpression": "SET " + ", ".join(sets),
                "ConditionExpression": condition, "ReturnValues": "UPDATED_NEW", **expression.params(),
            })
        except ClientError as exc:
            if condition_failed(exc):
                return None
            raise
        attributes = answer.get("Attributes", {})
        events = tuple(decode(attributes["fly"])) if "fly" in attributes else ()
        log = FlyLog(events=events, seq=int(decode(attributes["fly_seq"])) if "fly_seq" in attributes else 0)
        if len(log.events) <= schema.FLY_KEEP:
            return log
        trimmed = await self._fly_replace(id, [], progress=None, known=log)  # cut the head: back to the last 20
        return trimmed or FlyLog(events=log.events[-schema.FLY_KEEP :], seq=log.seq)

    async def finish(
        self,
        *,
        id: str,
        status: str,
        payload_json: str | None = None,
        payload_ref: str | None = None,
        error: dict[str, Any] | None = None,
        actor: str | None = None,
        parent_id: str | None = None,
    ) -> bool:
        """The terminal state: ``succeeded`` with the payload (inline when its JSON text is at most 32 KiB, else
        ``payload_ref``, which must then be given), ``failed`` with ``error`` (``{type, message, reason}``), or
        ``canceled``. False when the item is terminal already: a terminal state is never overwritten. An item that
        does not exist yet (a fan-out child that went straight to a sink) is created, with ``parent_id``."""
        if status not in schema.TERMINAL:
            raise ValueError(f"finish() takes a terminal status ({', '.join(sorted(schema.TERMINAL))}), not {status!r}")
        now = schema.iso_timestamp()
        values: dict[str, Any] = {
            "status": status, "rank": schema.TERMINAL_RANK, "updated_at": now, schema.TTL_ATTRIBUTE: self._expires_at(),
        }
        if payload_json is not None and len(payload_json.encode()) <= schema.INLINE_PAYLOAD_MAX_BYTES:
            values["payload"] = payload_json
        elif payload_ref is not None:
            values["payload_ref"] = payload_ref
        elif payload_json is not None:
            raise ValueError(
                f"the payload of {id} is {len(payload_json.encode())} bytes, over the "
                f"{schema.INLINE_PAYLOAD_MAX_BYTES} kept inline; give payload_ref (where the sink stored it)"
            )
        if error is not None:
            values["error"] = error
        if actor is not None:
            values["actor"] = actor
        expression = _Expression()
        sets = [*expression.assign(values), self._if_absent(expression, "created_at", now)]
        if parent_id is not None:
            sets.append(self._if_absent(expression, "parent_id", parent_id))
        condition = (
            f"attribute_not_exists({expression.name(schema.KEY)}) OR "
            f"{expression.name('rank')} < {expression.value('terminal', schema.TERMINAL_RANK)}"
        )
        return await self._update(id, "SET " + ", ".join(sets), condition, expression)

    async def cancel(self, *, id: str) -> str | None:
        """``canceled`` unless the item is terminal; the status it has afterwards (``canceled``, or the terminal one
        it had), or None when there is no such item."""
        expression = _Expression()
        values = {"status": "canceled", "rank": schema.TERMINAL_RANK, "updated_at": schema.iso_timestamp(),
                  schema.TTL_ATTRIBUTE: self._expires_at()}
        condition = f"{expression.name('rank')} < {expression.value('terminal', schema.TERMINAL_RANK)}"
        if await self._update(id, "SET " + ", ".join(expression.assign(values)), condition, expression):
            return "canceled"
        record = await self.get(id=id)
        return None if record is None else record.status

    # -- reads -----------------------------------------------------------------------------------------------------

    async def get(self, *, id: str) -> StatusRecord | None:
        """The item (strongly consistent), or None."""
        answer = await self._call("get_item", {"TableName": self.table, "Key": self._key(id), "ConsistentRead": True})
        item = answer.get("Item")
        return None if item is None else StatusRecord.from_item(item)

    async def get_many(self, *, ids: Iterable[str], consistent: bool = True) -> dict[str, StatusRecord]:
        """The items of ``ids`` that exist, by id (BatchGetItem, 100 keys a request, unprocessed keys asked again)."""
        items = await self._batch_get(ids, consistent=consistent)
        return {record.id: record for record in map(StatusRecord.from_item, items)}

    async def canceled_among(self, *, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are canceled: the sidecar's one check per received batch, eventually consistent (half
        the read units) and reading the id and status only."""
        expression = _Expression()
        projection = f"{expression.name(schema.KEY)}, {expression.name('status')}"
        items = await self._batch_get(
            ids, consistent=False, extra={"ProjectionExpression": projection, **expression.params()}
        )
        return {decode(item[schema.KEY]) for item in items if decode(item.get("status", {"NULL": True})) == "canceled"}

    async def list(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> StatusPage:
        """Records newest first (``created_at``), ``limit`` of them after ``offset``, and how many there are in all;
        one status, or every one (the ``by_status`` index is per status, so all statuses merge one query each)."""
        if status is not None and status not in schema.RANKS:
            raise ValueError(f"status {status!r} is none of {', '.join(schema.STATUSES)}")
        if not 1 <= limit <= LIST_LIMIT_MAX:
            raise ValueError(f"limit is {limit}; give 1 to {LIST_LIMIT_MAX}")
        if offset < 0:
            raise ValueError(f"offset is {offset}; give 0 or more")
        statuses = schema.STATUSES if status is None else (status,)
        keys = await asyncio.gather(*(self._newest(s, count=offset + limit) for s in statuses))
        totals = await asyncio.gather(*(self._count(s) for s in statuses))
        merged = heapq.merge(*keys, reverse=True)
        wanted = [key_id for _, key_id in _List(merged)[offset : offset + limit]]
        records = await self.get_many(ids=wanted)
        return StatusPage(records=[records[i] for i in wanted if i in records], total=sum(totals))

    # -- helpers ---------------------------------------------------------------------------------------------------

    async def _newest(self, status: str, *, count: int) -> _List[tuple[str, str]]:
        """Up to ``count`` ``(created_at, id)`` of ``status``, newest first, from the index."""
        found: _List[tuple[str, str]] = []
        params = self._index_query(status)
        while len(found) < count:
            answer = await self._call("query", {**params, "ScanIndexForward": False, "Limit": count - len(found)})
            found += [(decode(i["created_at"]), decode(i[schema.KEY])) for i in answer.get("Items", [])]
            if "LastEvaluatedKey" not in answer:
                break
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]
        return found

    async def _count(self, status: str) -> int:
        total, params = 0, self._index_query(status)
        while True:
            answer = await self._call("query", {**params, "Select": "COUNT"})
            total += int(answer.get("Count", 0))
            if "LastEvaluatedKey" not in answer:
                return total
            params["ExclusiveStartKey"] = answer["LastEvaluatedKey"]

    def _index_query(self, status: str) -> dict[str, Any]:
        expression = _Expression()
        return {
            "TableName": self.table, "IndexName": schema.BY_STATUS_INDEX,
            "KeyConditionExpression": f"{expression.name('status')} = {expression.value('status', status)}",
            **expression.params(),
        }

    async def _batch_get(
        self, ids: Iterable[str], *, consistent: bool, extra: dict[str, Any] | None = None
    ) -> _List[dict[str, Any]]:
        unique = _List(dict.fromkeys(ids))
        found: _List[dict[str, Any]] = []
        for start in range(0, len(unique), BATCH_GET_MAX):
            request = {"Keys": [self._key(i) for i in unique[start : start + BATCH_GET_MAX]],
                       "ConsistentRead": consistent, **(extra or {})}
            for round_ in range(UNPROCESSED_ROUNDS):
                answer = await self._call("batch_get_item", {"RequestItems": {self.table: request}})
                found += answer.get("Responses", {}).get(self.table, [])
                left = answer.get("UnprocessedKeys", {}).get(self.table)
                if not left or not left.get("Keys"):
                    break
                request = left
                await asyncio.sleep(min(0.05 * 2**round_, 1.0))
            else:
                raise RuntimeError(
                    f"DynamoDB left {len(request['Keys'])} keys of {self.table} unprocessed {UNPROCESSED_ROUNDS} times "
                    f"(throttled): try again later"
                )
        return found

    async def _update(self, id: str, update: str, condition: str, expression: _Expression) -> bool:
        try:
            await self._call("update_item", {
                "TableName": self.table, "Key": self._key(id), "UpdateExpression": update,
                "ConditionExpression": condition, **expression.params(),
            })
        except ClientError as exc:
            if condition_failed(exc):
                return False
            raise
        return True

    @staticmethod
    def _if_absent(expression: _Expression, attribute: str, value: Any) -> str:
        name = expression.name(attribute)
        return f"{name} = if_not_exists({name}, {expression.value(attribute, value)})"

    @staticmethod
    def _key(id: str) -> dict[str, Any]:
        return {schema.KEY: {"S": id}}

    def _expires_at(self) -> int:
        return int(self._clock()) + self.ttl_s
