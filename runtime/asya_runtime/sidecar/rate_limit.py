"""Mesh-wide rate limit (``spec.rateLimit``): at most ``perSecond`` handler calls start per second across every
replica of an actor, ``burst`` of them at once after a quiet spell (docs/sidecar.md, "Rate limit").

**The bucket** is a token bucket kept as one number, its *theoretical arrival time* ``tat`` (GCRA, the generic cell
rate algorithm): the moment the bucket would be full again. With interval ``I = 1/perSecond`` and window
``W = burst * I``, taking ``n`` tokens at ``now`` moves ``tat`` to ``max(tat, now) + n*I``, and the k-th of them
(k = 1..n) may be used from ``max(tat, now) + k*I - W`` on (now or later). :class:`TokenBucket` is that arithmetic.

**Shared** through the mesh's status table (item ``rate-limit/{actor}``: ``/`` is in no envelope id) with one
conditional ``UpdateItem`` per take, whatever the other replicas do meanwhile, and no read first:

* the bucket is in debt (``tat >= now``, the case whenever the limit binds): ``SET tat = tat + :cost`` if
  ``tat BETWEEN :now AND :latest`` — DynamoDB adds atomically, so concurrent replicas never hand out one token
  twice, and ``:latest`` bounds how far ahead a take may reserve (:data:`RESERVE_AHEAD_S`);
* the bucket is full (``tat < now``, or no item yet): ``SET tat = :now + :cost`` if ``attribute_not_exists(tat) OR
  tat < :now``.

The sidecar tries the form the last ``tat`` it saw calls for; a failed condition returns the item as it is
(``ReturnValuesOnConditionCheckFailure``), so the next try is the right form, or a sleep until the reservation fits:
never a read. The tokens a take reserves are handed to the calls waiting at that moment, each at its own time, so a
sidecar's calls keep the spacing too; the calls that arrive while a take is on the wire share the next one. A
reserved token whose call never starts (the sidecar stops first) is simply not used: the limit errs low, never high.
Replicas' clocks (NTP on every EKS node, skew well under a millisecond) are the one shared time.

**Unreachable store**: the calls wait — their messages held, their visibility extended by the heartbeat — and the
take is retried with backoff (logged once per outage, counted in ``asya_rate_limit_store_failures_total``): an
envelope is never failed or called over the limit for it. A stopping sidecar stops waiting at once and requeues what
waited (``actor.py``'s stopping check), as it does for any message it has not called.

Without ``ASYA_STATUS_TABLE`` (``asya dev`` without ``--gateway``) the bucket lives in this process: the limit holds
per replica only, and the sidecar says so when it starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.aws import BACKOFF_FIRST_S, BACKOFF_MAX_S, BrokerClient, error_code
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.status.schema import KEY, TTL_ATTRIBUTE, rate_limit_key

#: Longest a take may reserve ahead: a reserved token is used at most this long after it was taken (plus the
#: burst window). While the reservations of all replicas stay within it, every take lands at the first try (one
#: UpdateItem per take); past it, takes wait and race for each freed token. It holds no message longer (the calls
#: wait for their tokens either way); what it costs is the reserved tokens of a replica that dies (the limit errs
#: low for up to this long) and how long a newly started replica queues behind the others' reservations.
RESERVE_AHEAD_S = 5.0
#: How long one take may retry a transient DynamoDB failure inside the broker client before it backs off here.
TAKE_WITHIN_S = 5.0
#: A bucket item nobody touched for this long is deleted by the table's TTL (a removed actor leaves nothing behind).
BUCKET_TTL_S = 24 * 3600
#: The item attribute that holds the bucket's theoretical arrival time (epoch seconds).
TAT_ATTRIBUTE = "tat"
_CONDITION_FAILED = "ConditionalCheckFailedException"


def bucket_key(actor: str) -> str:
    """The status-table item of ``actor``'s bucket (an envelope id never holds ``/``: no collision)."""
    return rate_limit_key(actor)


@dataclass(frozen=True)
class TokenBucket:
    """The token bucket's arithmetic (GCRA): what a take of ``count`` tokens does to ``tat``, and when each of its
    tokens may be used."""

    per_second: float
    burst: int

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second

    @property
    def window(self) -> float:
        """How far ``tat`` may run ahead of now with a token still free: ``burst`` intervals."""
        return self.burst * self.interval

    def fitting(self, *, tat: float, now: float, ahead_s: float = RESERVE_AHEAD_S) -> int:
        """How many tokens a take at ``now`` may reserve when the bucket's ``tat`` is as given (0: none yet): from a
        full bucket (``tat <= now``) ``burst`` now and ``ahead_s`` worth more, never fewer than one."""
        base = max(tat, now)
        return max(0, math.floor((now + ahead_s + self.window - base) / self.interval + 1e-9))

    def ready_at(self, *, tat: float, now: float, count: int = 1, ahead_s: float = RESERVE_AHEAD_S) -> float:
        """When a take of ``count`` tokens fits (``now`` if it fits already)."""
        return max(now, max(tat, now) + count * self.interval - self.window - ahead_s)

    def starts(self, *, base: float, count: int) -> list[float]:
        """When each of ``count`` tokens taken from ``base`` (``max(tat, now)`` at the take) may be used."""
        return [base + (k + 1) * self.interval - self.window for k in range(count)]


class BucketStore(Protocol):
    """Where a bucket's ``tat`` lives: :meth:`take` reserves ``count`` tokens and returns when each may be used,
    or None when the take did not fit and the caller should wait until ``retry_at`` (set then)."""

    retry_at: float

    async def take(self, count: int, *, now: float) -> list[float] | None: ...


class LocalBucket:
    """The bucket in this process (no status table): the limit holds per replica."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.tat = 0.0
        self.retry_at = 0.0

    async def take(self, count: int, *, now: float) -> list[float] | None:
        fits = min(count, self.bucket.fitting(tat=self.tat, now=now))
        if fits == 0:
            self.retry_at = self.bucket.ready_at(tat=self.tat, now=now)
            return None
        base = max(self.tat, now)
        self.tat = base + fits * self.bucket.interval
        return self.bucket.starts(base=base, count=fits)


class SharedBucket:
    """The bucket as one item of the mesh's status table, taken with conditional ``UpdateItem`` (module docstring).

    ``call(api, params)`` sends one DynamoDB request (the broker client's, counted and retried while transient)."""

    def __init__(
        self, *, bucket: TokenBucket, table: str, actor: str,
        call: Callable[[str, dict[str, Any]], Any],
    ) -> None:
        self.bucket = bucket
        self._table = table
        self._key = {KEY: {"S": bucket_key(actor)}}
        self._call = call
        #: The last ``tat`` the table told us (None: nothing known yet, try the full-bucket form).
        self.known_tat: float | None = None
        self.retry_at = 0.0

    async def take(self, count: int, *, now: float) -> list[float] | None:
        bucket = self.bucket
        known = self.known_tat if self.known_tat is not None else 0.0
        in_debt = known >= now
        count = min(count, bucket.fitting(tat=known, now=now))  # >= 1 from a full bucket
        if count == 0:
            self.retry_at = bucket.ready_at(tat=known, now=now)
            return None
        cost = count * bucket.interval
        values = {":now": _number(now), ":expires": _number(int(now + BUCKET_TTL_S))}
        if in_debt:  # add to whatever tat is now, if it still leaves the reservation within reach
            update = "SET #t = #t + :cost, #e = :expires"
            condition = "#t BETWEEN :now AND :latest"
            values[":cost"] = _number(cost)
            values[":latest"] = _number(now + RESERVE_AHEAD_S + bucket.window - cost)
        else:  # a full bucket: tat starts again from now
            update = "SET #t = :fresh, #e = :expires"
            condition = "attribute_not_exists(#t) OR #t < :now"
            values[":fresh"] = _number(now + cost)
        try:
            answer = await self._call("update_item", {
                "TableName": self._table, "Key": self._key, "UpdateExpression": update,
                "ConditionExpression": condition,
                "ExpressionAttributeNames": {"#t": TAT_ATTRIBUTE, "#e": TTL_ATTRIBUTE},
                "ExpressionAttributeValues": values, "ReturnValues": "UPDATED_NEW",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
            })
        except ClientError as exc:
            if error_code(exc) != _CONDITION_FAILED:
                raise
            self._learn(exc.response.get("Item"), now=now, flip=in_debt)
            return None
        tat = float(answer["Attributes"][TAT_ATTRIBUTE]["N"])
        self.known_tat = tat
        return bucket.starts(base=tat - cost, count=count)

    def _learn(self, item: dict[str, Any] | None, *, now: float, flip: bool) -> None:
        """A condition failed: the item as it is says which form fits and whether to wait first."""
        tat_value = (item or {}).get(TAT_ATTRIBUTE)
        if tat_value is not None:
            self.known_tat = float(tat_value["N"])
        else:  # no item answered (or a store that does not return it): try the other form
            self.known_tat = None if flip else now + self.bucket.interval
        known = self.known_tat
        self.retry_at = now if known is None else self.bucket.ready_at(tat=known, now=now)


class RateLimiter:
    """Admits handler calls at the bucket's pace; :meth:`admit` is the one call ``actor.py`` makes."""

    def __init__(self, *, store: BucketStore, stopping: asyncio.Event, metrics: Metrics) -> None:
        self.store = store
        self._stopping = stopping
        self._metrics = metrics
        self._waiting: deque[asyncio.Future[float]] = deque()
        self._taker: asyncio.Task[None] | None = None
        self._outage_since: float | None = None

    async def admit(self) -> None:
        """Return once this call may start (at once when the sidecar is stopping: the caller requeues then)."""
        if self._stopping.is_set():
            return
        waited_from = time.monotonic()
        ticket: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self._waiting.append(ticket)
        if self._taker is None or self._taker.done():
            self._taker = asyncio.create_task(self._take_for_waiting())
        try:
            start_at = await ticket
        finally:
            if not ticket.done():
                ticket.cancel()  # this call was cancelled while waiting: the taker skips its ticket
        delay = start_at - time.time()
        if delay > 0:
            await self._sleep(delay)
        self._metrics.rate_limit_wait.observe(time.monotonic() - waited_from)

    async def _take_for_waiting(self) -> None:
        """Take tokens for every call waiting, one take at a time, until none waits (or the sidecar stops)."""
        backoff = BACKOFF_FIRST_S
        try:
            while self._pending() and not self._stopping.is_set():
                try:
                    starts = await self.store.take(self._pending(), now=time.time())
                except Exception as exc:  # the store unreachable or refusing: the calls wait, never fail
                    self._store_failed(exc)
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, BACKOFF_MAX_S)
                    continue
                backoff = BACKOFF_FIRST_S
                self._store_back()
                if starts is None:
                    await self._sleep(self.store.retry_at - time.time())
                    continue
                for start in starts:
                    ticket = self._next_ticket()
                    if ticket is None:
                        break  # a waiter left meanwhile: the token goes unused (the limit errs low)
                    ticket.set_result(start)
        finally:
            while self._waiting:  # stopping (or cancelled): let every waiter go; actor.py requeues them
                ticket = self._waiting.popleft()
                if not ticket.done():
                    ticket.set_result(0.0)

    def _pending(self) -> int:
        while self._waiting and self._waiting[0].done():
            self._waiting.popleft()
        return sum(1 for ticket in self._waiting if not ticket.done())

    def _next_ticket(self) -> asyncio.Future[float] | None:
        while self._waiting:
            ticket = self._waiting.popleft()
            if not ticket.done():
                return ticket
        return None

    async def _sleep(self, seconds: float) -> None:
        """Sleep ``seconds``, or less if the sidecar starts stopping."""
        if seconds <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    def _store_failed(self, exc: BaseException) -> None:
        self._metrics.rate_limit_store_failures.inc()
        if self._outage_since is None:
            self._outage_since = time.monotonic()
            logs.warning("rate limit store unreachable; calls wait for it", error=f"{type(exc).__name__}: {exc}")

    def _store_back(self) -> None:
        if self._outage_since is not None:
            logs.event("rate limit store reachable again", outage_s=round(time.monotonic() - self._outage_since, 2))
            self._outage_since = None


def rate_limiter(
    *, config: SidecarConfig, broker: BrokerClient, metrics: Metrics, stopping: asyncio.Event
) -> RateLimiter | None:
    """The actor's limiter; None without ``ASYA_RATE_LIMIT_PER_SECOND`` (then nothing here runs)."""
    if config.rate_limit_per_second is None:
        return None
    bucket = TokenBucket(per_second=config.rate_limit_per_second, burst=config.rate_limit_burst)
    store: BucketStore
    table = config.status_table
    if table:
        async def call(api: str, params: dict[str, Any]) -> dict[str, Any]:
            return await broker.call_dynamodb(api, params, within_s=TAKE_WITHIN_S)

        store = SharedBucket(bucket=bucket, table=table, actor=config.actor, call=call)
    else:
        logs.warning("ASYA_STATUS_TABLE is unset: the rate limit holds for this replica only",
                     per_second=bucket.per_second, burst=bucket.burst)
        store = LocalBucket(bucket)
    return RateLimiter(store=store, stopping=stopping, metrics=metrics)


def _number(value: float) -> dict[str, str]:
    """A DynamoDB number, to the microsecond (more digits than a clock shared across machines means)."""
    return {"N": f"{value:.6f}"}
