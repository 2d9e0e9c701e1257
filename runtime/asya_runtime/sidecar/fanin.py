"""Fan-in: an actor with ``fanIn`` is called once per fan-out parent, with its children's payloads in emission order.

The children arrive one message each, on any replica, any number of times. What they have in common lives in the
mesh's bucket, under ``fanin/{actor}/{parent_id}/`` (why S3 and not the status store: docs/sidecar.md, *Fan-in*):

* ``{index:06d}.json``: one per child, ``{"id", "payload"}`` (or ``{"id", "error"}`` for one that error-ended),
  written without a condition: a redelivered child writes the same object again.
* ``open.json``: created once (``If-None-Match: *``) by the first child; it names that child's SQS message, which
  sends the parent's *timer* (a message to this actor's own queue, delayed) before it is deleted.
* ``claim.json``: created once (``If-None-Match: *``) by the one message that finishes the parent: the child whose
  listing finds every index present (``kind: call``), or a timer (``call`` once the error sink accounts for the
  rest, ``timeout`` when the deadline passed first).

**Exactly one call.** Each child writes its record, then lists the prefix (S3 lists are strongly consistent, so of
two last children at least one sees both). Only the claim's *holder* goes on; every other message is deleted, as
the holder's message stays in flight until the aggregate has been called and sent. A holder that dies is not lost:
SQS delivers its message again (the same MessageId), and a message that finds a claim naming its own MessageId
takes the work over. A child that arrives after the claim (a duplicate, a late one) is deleted, never called
again. What remains is the window every actor has: a sidecar killed *during* the handler's call calls it again on
the redelivery (the aggregate's id is deterministic, so downstream the repeat overwrites, never adds).

**Error-ended children** never reach this actor: they go to the error sink, which keeps them at
``failed/{child id}.json``. The timer looks there for each missing index (one list and, when found, one get) and
writes what it finds as that child's record, so the parent completes with an error item in that place:
``{"asya_error": {...}}`` (:data:`ERROR_ITEM_FIELD`). The timer ticks every tenth of the timeout (at least 1 s,
at most SQS's 900 s delay), so an error-ended child holds its parent up by about that much, not the whole timeout.

**Timeout.** When the timeout has passed since the first child arrived and indexes are still missing, the timer
claims the parent (``timeout``) and sends one error record: reason ``fan-in timeout``, naming the missing indexes,
its payload the items that did arrive (``null`` in the missing places). Children arriving after that are deleted.

**The aggregate** continues along the route as a new envelope: id :func:`~asya_runtime.envelope.fanin_id` (derived
from the parent's), ``parent_id``/``fanout`` of the parent's own place (nested fan-out), route, headers and hop
history of the child or timer that finished it, and ``fanin`` (parent, total, error indexes). An envelope that was
not fanned out (a parent that emitted one output keeps its own id) is called at once as a group of one.

The state stays in the bucket after the call (a late duplicate must still find the claim); the mesh's lifecycle rule
expires ``fanin/``. The S3 requests themselves are :mod:`asya_runtime.sidecar.fanin_state`'s.
"""

from __future__ import annotations

import math
import time
from typing import Any, Protocol

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope, FanIn, FanOut, child_id, fanin_id
from asya_runtime.sidecar import logs, routing
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.fanin_state import CLAIM, OPEN, FanInState
from asya_runtime.sidecar.inflight import Received
from asya_runtime.sidecar.outputs import Outputs
from asya_runtime.sidecar.routing import Outgoing

__all__ = ["ERROR_ITEM_FIELD", "FANIN_TIMEOUT", "FanInGatherer"]

#: The one key of an error item: the error-ended child's ``status.error`` plus its ``id`` and ``index``.
ERROR_ITEM_FIELD = "asya_error"
#: Error-sink reason of a parent whose children did not all arrive within the timeout.
FANIN_TIMEOUT = "fan-in timeout"
#: Timer ticks per timeout, and their bounds: SQS delays a message by whole seconds, at most 900.
TICKS_PER_TIMEOUT = 10
MIN_TICK_S = 1
MAX_DELAY_S = 900
#: Share of the queue's visibility timeout one S3 request may spend retrying transient errors (as claim-check's).
S3_RETRY_SHARE_OF_VISIBILITY = 0.5


class _Busy(Protocol):
    """Whose ``calls_running`` the send and delete batchers read to decide whether to linger for a fuller batch."""

    calls_running: int


class FanInGatherer:
    """The fan-in actor's step before the handler call (:meth:`gather`); all its I/O is S3 and its own queue.

    While it gathers, it counts as a running call of ``busy`` (the actor): the deletes of the children it records
    then linger for a batch of ten, as they do behind handler calls, instead of going one request each.
    """

    def __init__(self, *, config: SidecarConfig, broker: BrokerClient, outputs: Outputs, busy: _Busy) -> None:
        if not config.result_bucket or config.fanin_timeout is None:
            raise ValueError("a fan-in actor (ASYA_FANIN_TIMEOUT) keeps its state in the mesh's bucket: set "
                             "ASYA_RESULT_BUCKET")
        self.config = config
        self.broker = broker
        self.outputs = outputs
        self.busy = busy
        self.timeout_s = config.fanin_timeout
        self.state = FanInState(
            broker=broker, bucket=config.result_bucket, actor=config.actor,
            within_s=max(outputs.inflight.visibility_s * S3_RETRY_SHARE_OF_VISIBILITY, 1.0),
        )

    async def gather(self, message: Received, envelope: Envelope, body: str) -> tuple[Envelope, str] | None:
        """``(the envelope to call the handler with, its JSON)``, or None when ``message`` was dealt with here
        (recorded and deleted, re-armed, timed out, or handed back to SQS after an S3 failure)."""
        marker = envelope.fanin
        self.busy.calls_running += 1
        try:
            if marker is not None and marker.at == len(envelope.route.prev):
                if marker.timer_deadline is None:
                    return envelope, body  # an aggregate back for another attempt: it was gathered already
                aggregate = await self._tick(message, envelope, marker)
            elif envelope.parent_id is None or envelope.fanout is None:
                aggregate = self._alone(envelope)
            else:
                aggregate = await self._arrive(message, envelope)
        except Exception as exc:
            logs.error("fan-in state not reachable; the message stays queued for another try",
                       message_id=message.message_id, id=envelope.id, error=f"{type(exc).__name__}: {exc}")
            await self.outputs.inflight.retry_later(message)
            return None
        finally:
            self.busy.calls_running -= 1
            if self.busy.calls_running == 0:
                self.outputs.deletes.poke()
                self.outputs.sends.poke()
        return None if aggregate is None else (aggregate, aggregate.to_json())

    # -- the three kinds of message ----------------------------------------------------------------------------------

    def _alone(self, envelope: Envelope) -> Envelope:
        """An envelope that was not fanned out (its parent emitted only it): a group of one, called at once."""
        marker = FanIn(parent_id=envelope.id, total=1, at=len(envelope.route.prev))
        return envelope.model_copy(update={"payload": [envelope.payload], "fanin": marker})

    async def _arrive(self, message: Received, child: Envelope) -> Envelope | None:
        """Record one child; open the parent (and send its timer) if it is the first, claim it if it is the last."""
        assert child.parent_id is not None and child.fanout is not None
        parent, index, total = child.parent_id, child.fanout.index, child.fanout.total
        prefix = self.state.prefix(parent)
        await self.state.put(self.state.record_key(prefix, index), {"id": child.id, "payload": child.payload})
        listing = await self.state.list(prefix)
        deadline = time.time() + self.timeout_s
        # Of the children that see no open.json, only the one with the lowest index present tries to create it, so
        # a wave of first children costs one conditional write, not one each. Someone always does: the lowest index
        # of a wave sees itself as the lowest (a lower one would see itself so, and open).
        opener = OPEN not in listing.control and index == min(listing.indexes, default=index)
        opened = await self.state.hold(prefix + OPEN, message, exists=not opener, deadline=deadline)
        if opened is not None:
            await self._arm(child, total=total, deadline=float(opened["deadline"]))
        if len(listing.indexes) >= total:
            claim = await self.state.hold(prefix + CLAIM, message, exists=CLAIM in listing.control, kind="call")
            if claim is not None:
                return await self._settle(message, child, claim=claim, total=total)
        elif CLAIM in listing.control:  # a straggler after a timeout: the parent has its error record
            logs.warning("fan-in child arrived after its parent was finished; dropped", id=child.id, parent=parent)
        await self.outputs.finish(message, [])
        return None

    async def _tick(self, message: Received, timer: Envelope, marker: FanIn) -> Envelope | None:
        """The parent's timer: look for error-ended children, then call, time out, or tick again."""
        assert timer.parent_id is not None and marker.timer_deadline is not None
        prefix = self.state.prefix(timer.parent_id)
        listing = await self.state.list(prefix)
        kind: str | None = None
        missing: list[int] = []
        if CLAIM not in listing.control:
            missing = [i for i in range(marker.total) if i not in listing.indexes]
            missing = await self._account_errors(prefix, timer, missing, by=marker.timer_by)
            left_s = marker.timer_deadline - time.time()
            if missing and left_s > 0:
                tick = min(max(self.timeout_s / TICKS_PER_TIMEOUT, MIN_TICK_S), left_s, MAX_DELAY_S)
                again = Outgoing(to=self.config.actor, envelope=timer, retry=True)
                await self.outputs.finish(message, [again], delay_seconds=max(MIN_TICK_S, math.ceil(tick)))
                return None
            kind = "timeout" if missing else "call"
        claim = await self.state.hold(
            prefix + CLAIM, message, exists=kind is None, kind=kind or "call", missing=missing
        )
        if claim is None:  # someone else finishes this parent (or did): the timer's work is over
            await self.outputs.finish(message, [])
            return None
        return await self._settle(message, timer, claim=claim, total=marker.total)

    async def _settle(
        self, message: Received, trigger: Envelope, *, claim: dict[str, Any], total: int
    ) -> Envelope | None:
        """The holder's part: the aggregate to call (``call``), or the timeout's error record sent (``timeout``)."""
        assert trigger.parent_id is not None
        records = await self.state.records(self.state.prefix(trigger.parent_id), total)
        items: list[Any] = []
        errors: list[int] = []
        missing: list[int] = []
        for index in range(total):
            record = records.get(index)
            if record is None:
                missing.append(index)
                items.append(None)
            elif "error" in record:
                errors.append(index)
                items.append({ERROR_ITEM_FIELD: {**record["error"], "id": record.get("id"), "index": index}})
            else:
                items.append(record.get("payload"))
        if claim.get("kind") == "timeout":  # what was missing when the claim was made: a redelivery says the same
            missing = [int(index) for index in claim.get("missing", missing)]
            items = [None if index in missing else item for index, item in enumerate(items)]
        aggregate = self._aggregate(trigger, total=total, items=items, errors=errors, missing=missing)
        if not missing:
            logs.event("fan-in complete", id=aggregate.id, parent=trigger.parent_id, total=total, errors=len(errors))
            return aggregate
        text = (f"fan-in: children {missing} of fan-out parent {trigger.parent_id} ({total} children) did not arrive "
                f"within {self.timeout_s:g}s of the first (error-ended children count as arrived)")
        logs.warning("error-ending envelope", id=aggregate.id, reason=FANIN_TIMEOUT, missing=missing)
        ended = routing.error_record(envelope=aggregate, actor=self.config.actor, reason=FANIN_TIMEOUT,
                                      type_name="FanInTimeout", message=text)
        await self.outputs.finish(message, [ended])
        return None

    # -- pieces ------------------------------------------------------------------------------------------------------

    def _aggregate(
        self, trigger: Envelope, *, total: int, items: list[Any], errors: list[int], missing: list[int]
    ) -> Envelope:
        """The new envelope that carries the gathered items on (see the module docstring)."""
        assert trigger.parent_id is not None
        outer = (trigger.fanout.outer if trigger.fanout is not None else None) or {}
        outer_place = outer.get("fanout")
        marker = FanIn(parent_id=trigger.parent_id, total=total, errors=errors, missing=missing,
                       at=len(trigger.route.prev))
        return trigger.model_copy(update={
            "id": fanin_id(parent_id=trigger.parent_id, actor=self.config.actor),
            "parent_id": outer.get("parent_id"),
            "fanout": FanOut.model_validate(outer_place) if outer_place else None,
            "payload": items,
            "fanin": marker,
        })

    async def _arm(self, child: Envelope, *, total: int, deadline: float) -> None:
        """Send the parent's timer to this actor's queue: a copy of ``child`` (route, headers) that says when."""
        assert child.parent_id is not None
        by = next((actor for actor in reversed(child.route.prev) if child.fanout is not None
                   and child_id(parent_id=child.parent_id, actor=actor, index=child.fanout.index) == child.id), None)
        marker = FanIn(parent_id=child.parent_id, total=total, at=len(child.route.prev), timer_deadline=deadline,
                       timer_by=by)
        timer = child.model_copy(update={
            "id": fanin_id(parent_id=child.parent_id, actor=f"{self.config.actor}.timer"),
            "payload": None,
            "fanin": marker,
        })
        tick = min(max(self.timeout_s / TICKS_PER_TIMEOUT, MIN_TICK_S), self.timeout_s, MAX_DELAY_S)
        await self.outputs.sends.submit(queue_url=self.outputs.inflight.queue_url, body=timer.to_json(),
                                        delay_seconds=max(MIN_TICK_S, math.ceil(tick)))

    async def _account_errors(self, prefix: str, timer: Envelope, missing: list[int], *, by: str | None) -> list[int]:
        """Of the ``missing`` indexes, those the error sink has no record of; the others are recorded as errors."""
        if not missing or by is None:
            return missing
        assert timer.parent_id is not None
        ids = {index: child_id(parent_id=timer.parent_id, actor=by, index=index) for index in missing}
        errors = await self.state.errors_of(ids)
        for index, error in errors.items():
            await self.state.put(self.state.record_key(prefix, index), {"id": ids[index], "error": error})
        return [index for index in missing if index not in errors]
