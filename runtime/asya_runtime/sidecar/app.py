"""The sidecar process: the receive loop, bounded concurrency, and the graceful shutdown on SIGTERM.

Receiving long-polls for up to ``min(10, free slots)`` messages, so a replica never holds more than it can start,
and only while it holds fewer than ``2 x concurrency`` messages, so stalled sends cannot pile up work in memory.
On SIGTERM (or SIGINT) the loop stops receiving: a pending long poll is woken and what it brings is requeued, within
``wait_time_seconds + RECEIVE_SLACK_S``; then what is in flight may finish within ``actorTimeout`` (calls still
running are cancelled and get ``CANCEL_WAIT_S`` to hand their messages back), pending sends and deletes get
``SHUTDOWN_FLUSH_S`` to flush, anything still held gets ``SHUTDOWN_FLUSH_S`` to be made visible again, the last spans
as long again, and the process exits 0. :attr:`SidecarConfig.shutdown_waits_s` lists these waits and
:attr:`SidecarConfig.shutdown_grace_s`, from which the pod's grace period is derived, is their sum.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import Any

from asya_runtime.config import CANCEL_WAIT_S, RECEIVE_SLACK_S, SHUTDOWN_FLUSH_S, SidecarConfig
from asya_runtime.sidecar import claimcheck, logs, wakeup
from asya_runtime.sidecar.actor import ActorProcessor, Slot
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.batching import DeleteBatcher, SendBatcher
from asya_runtime.sidecar.handler_client import HandlerClient, read_limit_bytes
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics, MetricsServer, QueueDepth, depth_queues
from asya_runtime.sidecar.sinks import S3_RETRY_SHARE_OF_VISIBILITY, SinkProcessor
from asya_runtime.sidecar.status_reports import REPORT_WITHIN_S, StatusReports, Ticket

#: Longest the receive loop sleeps while every slot is busy before it marks itself alive again.
LOOP_TICK_S = 5.0


#: Most messages a replica holds (received, not yet deleted), per unit of concurrency.
HELD_PER_SLOT = 2


def receive_room(*, concurrency: int, busy: int, held: int) -> int:
    """How many messages the receive loop may take now: free handler slots, capped by the room left to hold.

    A handler slot is released as soon as the handler answered, so calls can go on while outputs are still
    being sent; but if sends stall, messages that were called and not yet deleted pile up. Holding at most
    ``HELD_PER_SLOT x concurrency`` bounds that pile (and the memory and heartbeats it costs).
    """
    return min(concurrency - busy, HELD_PER_SLOT * concurrency - held)


class Sidecar:
    def __init__(self, config: SidecarConfig) -> None:
        self.config = config
        self.metrics = Metrics()
        self.metrics.actor_timeout.set(config.resiliency.actor_timeout)
        self.stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy = 0
        self._inflight: InFlight | None = None
        self._status: StatusReports | None = None
        #: Resolved when the receive loop, waiting for room, may receive again (see :meth:`_room_changed`).
        self._room: asyncio.Future[None] | None = None
        self._receive_batch = min(10, config.slots)
        #: What each ReceiveMessage asks SQS for besides the body; a sink that verifies senders also asks who sent it.
        self._system_attributes = [
            "ApproximateReceiveCount", "ApproximateFirstReceiveTimestamp", "SentTimestamp",
            *(["SenderId"] if config.verify_senders and config.mode != "actor" else []),
        ]
        # Read when scraped, not counted up and down per message.
        self.metrics.in_flight.set_function(lambda: len(self._tasks))

    def stop(self) -> None:
        if not self.stopping.is_set():
            logs.event("stopping: no more receives, finishing in-flight work", in_flight=len(self._tasks))
            self.stopping.set()

    async def run(self, *, handle_signals: bool = True) -> int:
        """Consume the queue until :meth:`stop` (SIGTERM/SIGINT unless ``handle_signals`` is False: a host of
        several sidecars in one process installs one handler that stops them all); 0 once drained."""
        if handle_signals:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, self.stop)
        async with BrokerClient(config=self.config, metrics=self.metrics) as broker:
            queue_url = await self._own_queue(broker)
            if queue_url is None:
                return 0
            visibility = await broker.visibility_timeout(queue_url)
            inflight = InFlight(broker=broker, queue_url=queue_url, visibility_s=visibility)
            inflight.on_leave = self._room_changed
            self._inflight = inflight
            busy = self._calls_running
            sends = SendBatcher(broker=broker, byte_limit=self.config.max_message_bytes, busy=busy)
            deletes = DeleteBatcher(broker=broker, byte_limit=None, busy=busy)
            handler = HandlerClient(
                socket_path=self.config.socket_path,
                read_limit=claimcheck.answer_limit_bytes(
                    self.config, default=read_limit_bytes(max_message_bytes=self.config.max_message_bytes)
                ),
                max_outputs=self.config.max_fanout,
            )
            if self.config.status_table:  # the status store (sidecar/status_reports.py); unset: not one request
                self._status = StatusReports(
                    config=self.config, broker=broker, metrics=self.metrics,
                    # a sink holds its message while it writes, as for S3; an actor's reports are background work
                    within_s=REPORT_WITHIN_S if self.config.mode == "actor"
                    else visibility * S3_RETRY_SHARE_OF_VISIBILITY,
                )
            if self.config.mode == "actor":
                self._actor: ActorProcessor | None = ActorProcessor(
                    config=self.config,
                    broker=broker,
                    inflight=inflight,
                    sends=sends,
                    deletes=deletes,
                    handler=handler,
                    metrics=self.metrics,
                    stopping=self.stopping,
                    status=self._status,
                )
                self._sink: SinkProcessor | None = None
            else:
                self._actor = None
                self._sink = SinkProcessor(
                    config=self.config, broker=broker, inflight=inflight, deletes=deletes, metrics=self.metrics,
                    status=self._status,
                )
            server = None
            if self.config.metrics_port:
                server = MetricsServer(
                    metrics=self.metrics,
                    host=self.config.metrics_host,
                    port=self.config.metrics_port,
                    stale_after_s=self.config.wait_time_seconds + 60,
                    queue_depth=QueueDepth(
                        metrics=self.metrics, call=broker.call,
                        queues=depth_queues(queue_url=queue_url, config=self.config),
                    ),
                )
                await server.start()
            heartbeat = asyncio.create_task(inflight.heartbeat())
            logs.event("started", queue_url=queue_url, visibility_s=visibility, concurrency=self.config.concurrency)
            try:
                await self._receive_loop(broker, inflight)
                await self._drain(inflight, sends, deletes)
            finally:
                heartbeat.cancel()
                handler.close()
                if server is not None:
                    await server.stop()
                if self._actor is not None and self._actor.tracer is not None:
                    await self._actor.tracer.close()  # the last spans
        logs.event("stopped")
        return 0

    def _calls_running(self) -> bool:
        """Whether entries will join the batchers soon: handler calls running (actors), writes under way (sinks)."""
        if self._actor is not None:
            return self._actor.calls_running > 0
        return self._sink is not None and self._sink.writing > 0

    async def _own_queue(self, broker: BrokerClient) -> str | None:
        """The actor's queue URL; waits (and logs) while the queue does not exist yet, e.g. mid-deploy."""
        delay = 1.0
        while not self.stopping.is_set():
            url = await broker.queue_url(self.config.actor)
            if url is not None:
                return url
            logs.warning("own queue does not exist yet; waiting", queue=self.config.queue_name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), timeout=delay)
            delay = min(delay * 2, 30.0)
        return None

    async def _receive_loop(self, broker: BrokerClient, inflight: InFlight) -> None:
        stop_wait = asyncio.create_task(self.stopping.wait())
        try:
            while not self.stopping.is_set():
                self.metrics.last_receive = time.monotonic()  # /healthz: the loop is turning
                free = receive_room(concurrency=self.config.slots, busy=self._busy, held=len(inflight))
                if not self._may_receive(free):
                    self._room = asyncio.get_running_loop().create_future()
                    waits: list[asyncio.Future[Any]] = [stop_wait, self._room]
                    # Wake up now and then even while a long call holds every slot, so /healthz stays green.
                    await asyncio.wait(waits, timeout=LOOP_TICK_S, return_when="FIRST_COMPLETED")
                    self._room = None
                    continue
                receive = asyncio.create_task(
                    self._receive(broker, inflight.queue_url, count=min(10, free), wait_s=self.config.wait_time_seconds)
                )
                await asyncio.wait([receive, stop_wait], return_when="FIRST_COMPLETED")
                self.metrics.last_receive = time.monotonic()
                if not receive.done():
                    await self._finish_last_poll(broker, inflight, receive)
                    break
                refusal = receive.exception()
                if refusal is not None:  # not an outage (those are retried inside the call): /healthz counts it
                    if self.metrics.receive_refused_since is None:
                        self.metrics.receive_refused_since = time.monotonic()
                    self.metrics.receive_refused_error = f"{type(refusal).__name__}: {refusal}"
                    logs.error("receive failed; retrying", error=repr(refusal))
                    await asyncio.sleep(1)
                    continue
                self.metrics.receive_refused_since = None
                raw, _ = receive.result()
                messages = [Received.from_sqs(m) for m in raw]
                for message in messages:
                    inflight.add(message)
                self.metrics.received.inc(len(messages))
                if self.stopping.is_set():
                    with contextlib.suppress(TimeoutError):  # within the last poll's share of the shutdown budget
                        await asyncio.wait_for(
                            inflight.requeue(messages), timeout=self.config.wait_time_seconds + RECEIVE_SLACK_S
                        )
                    break
                # with the status store on, the batch's tracked envelopes share one cancel check and one report
                batch = self._status.batch(len(messages)) if self._status is not None and self._actor else None
                for message in messages:
                    self._start(message, inflight, None if batch is None else batch.ticket())
        finally:
            stop_wait.cancel()

    async def _finish_last_poll(
        self, broker: BrokerClient, inflight: InFlight, receive: asyncio.Task[tuple[list[dict[str, Any]], bool]]
    ) -> None:
        """Stopping mid-poll: end the poll and hand back what it brings, within the first of
        :attr:`SidecarConfig.shutdown_waits_s` (``wait_time_seconds + RECEIVE_SLACK_S``), broker answering or not.

        Aborting the request would not stop the broker's side of the long poll: a message arriving meanwhile would
        be handed to a dead connection and stay invisible for a whole visibility timeout. So wake the poll up
        (sidecar/wakeup.py) and requeue what it brings; a poll still open at the bound is cancelled.
        """
        budget = self.config.wait_time_seconds + RECEIVE_SLACK_S
        try:
            await asyncio.wait_for(self._take_last_poll(broker, inflight, receive), timeout=budget)
        except TimeoutError:
            logs.warning("last poll not finished within the shutdown budget; giving up on it", budget_s=budget)
        finally:
            if not receive.done():
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive

    async def _take_last_poll(
        self, broker: BrokerClient, inflight: InFlight, receive: asyncio.Task[tuple[list[dict[str, Any]], bool]]
    ) -> None:
        woken = await self._wake(broker, inflight.queue_url)
        await asyncio.wait([receive])
        if receive.exception() is not None:
            logs.error("last receive failed", error=repr(receive.exception()))
            return
        raw, got_wakeup = receive.result()
        if woken and not got_wakeup:
            # Our wake-up went to another replica's poll, or ours had just ended: collect it (and requeue whatever
            # else comes) rather than leave it to wake a scaled-to-zero actor later.
            with contextlib.suppress(Exception):
                collected, _ = await self._receive(broker, inflight.queue_url, count=10, wait_s=wakeup.COLLECT_WAIT_S)
                raw += collected
        messages = [Received.from_sqs(m) for m in raw]
        for message in messages:
            inflight.add(message)
        self.metrics.received.inc(len(messages))
        await inflight.requeue(messages)

    async def _receive(
        self, broker: BrokerClient, queue_url: str, *, count: int, wait_s: int
    ) -> tuple[list[dict[str, Any]], bool]:
        """One ReceiveMessage: ``(work, whether a wake-up came)``; wake-up messages are deleted here, never held."""
        result = await broker.call(
            "receive_message",
            QueueUrl=queue_url,
            MaxNumberOfMessages=count,
            WaitTimeSeconds=wait_s,
            MessageSystemAttributeNames=self._system_attributes,
            MessageAttributeNames=[wakeup.ATTRIBUTE],
        )
        work, wakeups = wakeup.split(result.get("Messages", []))
        self.metrics.observe_receive(work)
        if wakeups:
            try:
                await wakeup.discard(broker, queue_url=queue_url, wakeups=wakeups)
            except Exception as exc:  # it comes back after the visibility timeout and is discarded then
                logs.warning("wake-up message not deleted", error=f"{type(exc).__name__}: {exc}")
        return work, bool(wakeups)

    async def _wake(self, broker: BrokerClient, queue_url: str) -> bool:
        """Send a wake-up message so the pending long poll returns now; False if it could not be sent."""
        try:
            await wakeup.send(broker, queue_url=queue_url)
        except Exception as exc:
            logs.warning("wake-up not sent; waiting for the long poll to end", error=f"{type(exc).__name__}: {exc}")
            return False
        return True

    def _start(self, message: Received, inflight: InFlight, ticket: Ticket | None = None) -> None:
        self._busy += 1
        task = asyncio.create_task(self._guarded(message, inflight, Slot(self._free_slot), ticket))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _guarded(self, message: Received, inflight: InFlight, slot: Slot, ticket: Ticket | None) -> None:
        """Process one message; a bug or an unforeseen error hands it back to SQS instead of holding it forever.

        Handed back, it is received again after a backoff and, if it keeps failing, error-ended once its receive
        count exceeds maxAttempts (``redelivered too often``) — never silently stuck or lost.
        """
        try:
            if self._actor is not None:
                await self._actor.process(message, slot, ticket)
            else:
                assert self._sink is not None
                await self._sink.process(message)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logs.error("processing failed; handing the message back", message_id=message.message_id, error=repr(exc))
            with contextlib.suppress(Exception):
                await inflight.retry_later(message)
        finally:
            slot.release()
            if ticket is not None:
                ticket.close()

    def _may_receive(self, free: int) -> bool:
        """Whether the receive loop may receive now, given ``free`` (:func:`receive_room`).

        With calls still running it waits until a whole batch is free: every receive, send and delete then carries
        up to 10 messages (measured: 0.95 instead of 1.6 SQS requests per envelope at concurrency 10, and 1.5x the
        throughput; docs/benchmarks.md).
        """
        return free > 0 and not (self._busy and free < self._receive_batch)

    def _room_changed(self) -> None:
        """A slot was freed or a held message left: wake the waiting receive loop, but only once it may receive
        (waking it for each of the ten calls of a batch cost more CPU than the calls' own bookkeeping)."""
        room, inflight = self._room, self._inflight
        if room is None or room.done() or inflight is None:
            return
        if self._may_receive(receive_room(concurrency=self.config.slots, busy=self._busy, held=len(inflight))):
            room.set_result(None)

    def _free_slot(self) -> None:
        self._busy -= 1
        self._room_changed()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)

    async def _drain(self, inflight: InFlight, sends: SendBatcher, deletes: DeleteBatcher) -> None:
        """Finish in-flight work within ``actorTimeout``, flush, and release whatever could not be finished — the
        waits after the last poll in :attr:`SidecarConfig.shutdown_waits_s`, each bounded by its constant."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=self.config.resiliency.actor_timeout)
            for task in pending:
                task.cancel()
            if pending:
                logs.warning("grace period over; releasing unfinished messages", count=len(pending))
                await asyncio.wait(pending, timeout=CANCEL_WAIT_S)
        with contextlib.suppress(TimeoutError):
            reports = [self._status.drain(timeout_s=SHUTDOWN_FLUSH_S)] if self._status is not None else []
            await asyncio.wait_for(asyncio.gather(sends.drain(), deletes.drain(), *reports), timeout=SHUTDOWN_FLUSH_S)
        sends.cancel()
        deletes.cancel()
        leftovers = inflight.held()
        if leftovers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(inflight.release(leftovers), timeout=SHUTDOWN_FLUSH_S)
