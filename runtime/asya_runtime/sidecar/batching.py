"""Batched sends and deletes: SQS bills per request, so entries are grouped up to 10 per request.

A batch is flushed as soon as it is full (10 entries, or the byte limit for sends); otherwise after
``idle_linger_s`` (about a millisecond: enough for the entries that the same burst of finished work produces to
join) when no handler call is running, so nothing else could join and waiting would only add latency; and after
``busy_linger_s`` at most while handler calls are still running and will add entries soon.
Each entry carries a future that resolves once SQS accepted it; ``Failed`` entries are retried alone (a few
times, with backoff) and the rest of their batch is not sent twice.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asya_runtime.sidecar import logs
from asya_runtime.sidecar.aws import BrokerClient

SQS_BATCH_MAX = 10
#: Longest a batch waits for more entries while handler calls are running (they will add some soon). 10 ms split
#: batches whose calls finished more than 10 ms apart on a loaded 2-core machine (1.07 requests per envelope
#: against 0.90 for whole batches); 30 ms kept every batch whole in the benchmarks (docs/benchmarks.md). An idle
#: hop never waits for it: with no call running the idle linger applies.
BUSY_LINGER_S = 0.030
#: How long a batch waits when no handler call is running: only for the rest of the current burst of work.
IDLE_LINGER_S = 0.001
#: Extra tries for an entry SQS answered as Failed (the request itself succeeded) before giving up on it.
FAILED_ENTRY_RETRIES = 4


class EntryRejected(RuntimeError):
    """SQS refused one entry of a batch for good (its code and message are in the text)."""


@dataclass
class _Entry:
    fields: dict[str, Any]
    size: int
    future: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())
    tries: int = 0


class _Batcher:
    api = ""

    def __init__(
        self,
        *,
        broker: BrokerClient,
        byte_limit: int | None,
        busy: Callable[[], bool],
        busy_linger_s: float = BUSY_LINGER_S,
        idle_linger_s: float = IDLE_LINGER_S,
    ):
        self.broker = broker
        self.byte_limit = byte_limit
        self.busy = busy
        self.busy_linger_s = busy_linger_s
        self.idle_linger_s = idle_linger_s
        self._pending: dict[str, list[_Entry]] = {}
        self._pending_bytes: dict[str, int] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._flushing: set[asyncio.Task[None]] = set()

    def _enqueue(self, queue_url: str, fields: dict[str, Any], size: int) -> asyncio.Future[None]:
        """Add one entry; the future resolves once SQS accepted it (no task per entry: a future is cheaper)."""
        entry = _Entry(fields=fields, size=size)
        self._add(queue_url, entry)
        return entry.future

    async def _submit(self, queue_url: str, fields: dict[str, Any], size: int) -> None:
        await self._enqueue(queue_url, fields, size)

    def _add(self, queue_url: str, entry: _Entry) -> None:
        pending = self._pending.setdefault(queue_url, [])
        pending_bytes = self._pending_bytes.get(queue_url, 0)
        if pending and self.byte_limit and pending_bytes + entry.size > self.byte_limit:
            self._flush(queue_url)
            pending, pending_bytes = self._pending.setdefault(queue_url, []), 0
        pending.append(entry)
        self._pending_bytes[queue_url] = pending_bytes + entry.size
        if len(pending) >= SQS_BATCH_MAX:
            self._flush(queue_url)
        else:
            self._schedule(queue_url, self.busy_linger_s if self.busy() else self.idle_linger_s)

    def _schedule(self, queue_url: str, delay_s: float) -> None:
        timer = self._timers.get(queue_url)
        loop = asyncio.get_running_loop()
        if timer is not None and timer.when() <= loop.time() + delay_s:
            return
        if timer is not None:
            timer.cancel()
        self._timers[queue_url] = loop.call_later(delay_s, self._flush, queue_url)

    def poke(self) -> None:
        """The last running handler call finished: what is pending goes out after the short idle linger."""
        for queue_url in list(self._pending):
            self._schedule(queue_url, self.idle_linger_s)

    def flush_all(self) -> None:
        for queue_url in list(self._pending):
            self._flush(queue_url)

    def _flush(self, queue_url: str) -> None:
        timer = self._timers.pop(queue_url, None)
        if timer is not None:
            timer.cancel()
        entries = self._pending.pop(queue_url, [])
        self._pending_bytes.pop(queue_url, None)
        if entries:
            task = asyncio.get_running_loop().create_task(self._send(queue_url, entries))
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def _send(self, queue_url: str, entries: list[_Entry]) -> None:
        try:
            result = await self.broker.call(
                self.api,
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), **e.fields} for i, e in enumerate(entries)],
            )
        except Exception as exc:  # not transient (those are retried inside call): every entry fails
            for entry in entries:
                if not entry.future.done():
                    entry.future.set_exception(exc)
            return
        for ok in result.get("Successful", []):
            entry = entries[int(ok["Id"])]
            if not entry.future.done():
                entry.future.set_result(None)
        for failed in result.get("Failed", []):
            self._on_failed(queue_url, entries[int(failed["Id"])], failed)

    def _on_failed(self, queue_url: str, entry: _Entry, failed: dict[str, Any]) -> None:
        text = f"{self.api} entry failed: {failed.get('Code')}: {failed.get('Message', '')}"
        entry.tries += 1
        if failed.get("SenderFault") or entry.tries > FAILED_ENTRY_RETRIES:
            if not entry.future.done():
                entry.future.set_exception(EntryRejected(text))
            return
        logs.warning("batch entry failed, retrying it", api=self.api, code=failed.get("Code"), tries=entry.tries)
        asyncio.get_running_loop().call_later(0.1 * 2**entry.tries, self._add, queue_url, entry)

    async def drain(self) -> None:
        """Flush what is pending and wait for every request in progress (shutdown)."""
        self.flush_all()
        while self._flushing:
            await asyncio.gather(*self._flushing, return_exceptions=True)
            self.flush_all()

    def cancel(self) -> None:
        for task in list(self._flushing):
            task.cancel()
        for timer in self._timers.values():
            timer.cancel()
        for entries in self._pending.values():
            for entry in entries:
                if not entry.future.done():
                    entry.future.cancel()
        self._pending.clear()
        self._pending_bytes.clear()


class SendBatcher(_Batcher):
    """SendMessageBatch per destination queue; ``send`` returns once SQS accepted the message."""

    api = "send_message_batch"

    def submit(self, *, queue_url: str, body: str, delay_seconds: int = 0) -> asyncio.Future[None]:
        """Queue one message for sending; the future resolves once SQS accepted it (or fails with why not)."""
        fields: dict[str, Any] = {"MessageBody": body}
        if delay_seconds:
            fields["DelaySeconds"] = delay_seconds
        return self._enqueue(queue_url, fields, len(body) if body.isascii() else len(body.encode()))

    async def send(self, *, queue_url: str, body: str, delay_seconds: int = 0) -> None:
        await self.submit(queue_url=queue_url, body=body, delay_seconds=delay_seconds)


class DeleteBatcher(_Batcher):
    """DeleteMessageBatch on the actor's own queue; ``delete`` returns once the message is gone."""

    api = "delete_message_batch"

    async def delete(self, *, queue_url: str, receipt_handle: str) -> None:
        try:
            await self._submit(queue_url, {"ReceiptHandle": receipt_handle}, 0)
        except EntryRejected as exc:  # e.g. the receipt handle expired: SQS redelivers, the next try dedupes by id
            logs.warning("delete refused", error=str(exc))
