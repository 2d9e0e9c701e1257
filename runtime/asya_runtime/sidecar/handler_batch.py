"""Dynamic batching: up to ``batch_max_size`` envelopes per handler call, in one ``call_batch`` frame.

Each message still goes through :class:`~asya_runtime.sidecar.actor.ActorProcessor` on its own (read, claim-check
fetch, refusals, then its answer: sent on, retried, dead-lettered or error-ended by its own policy and attempt
count). Only the call is shared: :meth:`BatchCollector.call` takes the place of
:meth:`HandlerClient.call <asya_runtime.sidecar.handler_client.HandlerClient.call>` and resolves to this
envelope's own answer, an item of the batch's answer (docs/protocol.md, ``call_batch``).

When a batch goes to the handler, once one of the ``concurrency`` handler slots is free:

- at once when it holds ``batch_max_size`` envelopes;
- once no envelope joined it for :data:`JOIN_GAP_S` — waiting longer only helps while envelopes keep coming (a
  receive of 10 joins within one event-loop turn), and a lone envelope on a quiet queue then pays about 2 ms, not
  ``maxWait``;
- at the latest ``batch_max_wait`` after its first envelope joined.

While every handler slot is busy the next batch fills (the sidecar holds two batches per slot,
:attr:`SidecarConfig.slots`), so under load batches are full without any wait.

A whole call that produced no answer (timed out, the server crashed or went away, an answer over the read limit)
fails every envelope of the batch with that error, and each is then retried or ended by its own policy; so does an
answer that breaks the contract (not one result per envelope). A retried envelope (``status.attempt`` above 1) is
called in a batch of its own, ahead of the filling batch: retries are individual, so one poison envelope that
fails whole calls costs each batch-mate one attempt, not all of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import Envelope
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.answer import HandlerAnswer
from asya_runtime.sidecar.handler_client import HandlerCallError, HandlerClient, holds_lone_surrogate

#: A batch with a free handler slot goes once no envelope joined it for this long (see the module docstring).
JOIN_GAP_S = 0.002


@dataclass(eq=False)
class _Item:
    envelope_json: str
    budget: Callable[[], float]
    connect_wait_s: float
    joined: float
    future: asyncio.Future[HandlerAnswer] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class BatchCollector:
    """Collects the envelopes of concurrent :meth:`call`\\ s into batches, at most ``concurrency`` calls at once."""

    def __init__(self, *, client: HandlerClient, max_size: int, max_wait_s: float, concurrency: int) -> None:
        self.client = client
        self.max_size = max_size
        self.max_wait_s = max_wait_s
        self.concurrency = concurrency
        self.running = 0
        self._pending: list[_Item] = []
        #: Retried envelopes, each called in a batch of its own (:meth:`caller`), before the pending batch.
        self._alone: list[_Item] = []
        self._timer: asyncio.TimerHandle | None = None
        self._calls: set[asyncio.Task[None]] = set()

    def caller(self, envelope: Envelope) -> Callable[..., Awaitable[HandlerAnswer]]:
        """How to call the handler for ``envelope``: in the batch it joins, or — an envelope this actor retries
        (``status.attempt`` above 1) — in a batch of its own, so that a batch-mate that makes the whole call fail
        (a poison input, a crash) can cost it one attempt at most: its retry runs alone."""
        return self.call_alone if envelope.status.attempt > 1 else self.call

    async def call(
        self, *, envelope_json: str, budget: Callable[[], float], connect_wait_s: float,
        on_fly: Callable[[Any], None] | None = None,
    ) -> HandlerAnswer:
        """This envelope's answer from the batch it joins (``on_fly`` is not used: a batched call's FLY events are
        counted and dropped). Raises what :meth:`HandlerClient.call` raises when the whole call had no answer."""
        return await self._join(self._pending, envelope_json=envelope_json, budget=budget,
                                connect_wait_s=connect_wait_s)

    async def call_alone(
        self, *, envelope_json: str, budget: Callable[[], float], connect_wait_s: float,
        on_fly: Callable[[Any], None] | None = None,
    ) -> HandlerAnswer:
        """As :meth:`call`, in a batch of one (the handler still receives a list)."""
        return await self._join(self._alone, envelope_json=envelope_json, budget=budget, connect_wait_s=connect_wait_s)

    async def _join(
        self, queue: list[_Item], *, envelope_json: str, budget: Callable[[], float], connect_wait_s: float
    ) -> HandlerAnswer:
        loop = asyncio.get_running_loop()
        item = _Item(envelope_json=envelope_json, budget=budget, connect_wait_s=connect_wait_s, joined=loop.time())
        queue.append(item)
        self._consider()
        try:
            return await item.future
        finally:
            if item in queue:  # cancelled before its batch went (a stopping sidecar): leave it out
                queue.remove(item)

    def _consider(self) -> None:
        """Start every batch that may go now; otherwise arm the timer for the earliest moment one may."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        loop = asyncio.get_running_loop()
        while self._alone and self.running < self.concurrency:
            self._start([self._alone.pop(0)])
        while self._pending and self.running < self.concurrency:
            now = loop.time()
            first, last = self._pending[0].joined, self._pending[-1].joined
            if len(self._pending) < self.max_size and now - last < JOIN_GAP_S and now - first < self.max_wait_s:
                self._timer = loop.call_later(min(last + JOIN_GAP_S, first + self.max_wait_s) - now, self._consider)
                return
            batch, self._pending = self._pending[: self.max_size], self._pending[self.max_size :]
            self._start(batch)

    def _start(self, batch: list[_Item]) -> None:
        self.running += 1
        task = asyncio.create_task(self._run(batch))
        self._calls.add(task)
        task.add_done_callback(self._calls.discard)

    async def _run(self, batch: list[_Item]) -> None:
        try:
            answers = await self._call(batch)
        except HandlerCallError as exc:
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(_copy(exc))
        except BaseException as exc:  # a bug here, or cancelled: each envelope's own processing hands it back
            for item in batch:
                if not item.future.done():
                    item.future.set_exception(RuntimeError(f"batch call failed: {type(exc).__name__}: {exc}"))
            if isinstance(exc, asyncio.CancelledError):
                raise
        else:
            for item, answer in zip(batch, answers, strict=True):
                if not item.future.done():
                    item.future.set_result(answer)
        finally:
            self.running -= 1
            self._consider()

    async def _call(self, batch: list[_Item]) -> list[HandlerAnswer]:
        """One ``call_batch``: its timeout is the longest budget among the batch's envelopes (a tight deadline of one
        envelope does not time out the others' call)."""
        conn = await self.client.connection(wait_s=max(item.connect_wait_s for item in batch))
        timeout_s = max(item.budget() for item in batch)
        frame = (
            f'{{"op":"call_batch","timeout_s":{round(max(timeout_s, 0.001), 3)!r},"envelopes":['
            + ",".join(item.envelope_json for item in batch)
            + "]}\n"
        )
        answer = await self.client.exchange(conn, frame, timeout_s=timeout_s)
        if isinstance(answer, HandlerAnswer):
            return [answer] * len(batch)
        return self._answers(answer, count=len(batch))

    def _answers(self, answer: dict[str, Any], *, count: int) -> list[HandlerAnswer]:
        """Each envelope's answer: its item of ``results``, or the whole frame's error for every one."""
        if not answer.get("ok"):
            whole = HandlerAnswer.from_wire(answer)
            return [whole] * count
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != count:
            got = f"{len(results)} results" if isinstance(results, list) else f"'results' {type(results).__name__}"
            whole = HandlerAnswer.violation(
                f"the handler server's call_batch answer does not follow the protocol: {got} for {count} envelopes"
            )
            return [whole] * count
        return [self._item_answer(result) for result in results]

    def _item_answer(self, result: object) -> HandlerAnswer:
        if not isinstance(result, dict):
            return HandlerAnswer.violation(f"a call_batch result is {type(result).__name__}, not an object")
        outputs = result.get("outputs")
        if result.get("ok") and isinstance(outputs, list):
            if len(outputs) > self.client.max_outputs:
                return HandlerAnswer.no_answer(self.client.fan_out_too_large(len(outputs)))
            if holds_lone_surrogate(outputs):
                return HandlerAnswer.violation(
                    "the handler's result holds a lone UTF-16 surrogate (half of a character outside the BMP), "
                    "which no message body can hold; keep such characters whole"
                )
        return HandlerAnswer.from_wire(result)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.client.close()


def collector(*, config: SidecarConfig, handler: HandlerClient) -> BatchCollector | None:
    """The actor's collector when it batches (``ASYA_BATCH_MAX_SIZE`` set, 1 included), else None. It has its own
    connections, whose read limit is ``batch_max_size`` single answers."""
    if not config.batch_max_size:
        return None
    client = HandlerClient(
        socket_path=handler.socket_path,
        read_limit=handler.read_limit * config.batch_max_size,
        max_outputs=handler.max_outputs,
    )
    logs.event("batching", max_size=config.batch_max_size, max_wait_s=config.batch_max_wait)
    return BatchCollector(
        client=client, max_size=config.batch_max_size, max_wait_s=config.batch_max_wait,
        concurrency=config.concurrency,
    )


def _copy(exc: HandlerCallError) -> HandlerCallError:
    """A fresh instance for each envelope (one exception raised in many tasks would share one traceback)."""
    with contextlib.suppress(Exception):
        return type(exc)(str(exc))
    return exc
