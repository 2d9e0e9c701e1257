"""Prometheus metrics and the ``/metrics`` + ``/healthz`` HTTP endpoint (aiohttp, which aiobotocore brings).

Queue depth has no per-message cost: :class:`QueueDepth` asks SQS (``GetQueueAttributes``, one request for the
actor's queue, one for its DLQ) only when ``/metrics`` is scraped, and at most once per ``min_interval_s``; with
nobody scraping it asks nothing. The age of the oldest waiting message is not an SQS queue attribute (only
CloudWatch has it), so :meth:`Metrics.observe_receive` derives it from the ``SentTimestamp`` of the messages each
receive already returns: the age of the oldest message of the last receive, 0 after an empty long poll.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from asya_runtime.config import SidecarConfig
from asya_runtime.naming import dlq_name


class Metrics:
    """Every metric the sidecar exports, in a private registry (so tests and several sidecars never collide)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.received = Counter("asya_messages_received", "Messages received from the actor's queue.", registry=r)
        self.succeeded = Counter(
            "asya_messages_succeeded", "Messages whose outputs were all sent on (or persisted, in a sink).", registry=r
        )
        self.retried = Counter("asya_messages_retried", "Failed attempts sent back for another try.", registry=r)
        self.failed = Counter(
            "asya_messages_failed", "Messages ended in the error sink, by reason.", ["reason"], registry=r
        )
        self.error_ended = Counter(
            "asya_messages_dead_lettered",
            "Envelopes sent to the error sink (the mesh's dead letter path), fan-out children included.",
            registry=r,
        )
        self.outputs = Counter(
            "asya_envelopes_sent", "Envelopes sent to a queue, by destination actor.", ["to"], registry=r
        )
        self.in_flight = Gauge("asya_messages_in_flight", "Messages received and not yet deleted.", registry=r)
        self.handler_seconds = Histogram(
            "asya_handler_duration_seconds",
            "Wall time of handler calls.",
            ["outcome"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
            registry=r,
        )
        self.sqs_requests = Counter("asya_sqs_requests", "Requests made to SQS, by API.", ["api"], registry=r)
        self.s3_requests = Counter("asya_s3_requests", "Requests made to S3, by API.", ["api"], registry=r)
        self.iam_requests = Counter(
            "asya_iam_requests", "Requests made to IAM (sinks that verify senders), by API.", ["api"], registry=r
        )
        self.dynamodb_requests = Counter(
            "asya_dynamodb_requests", "Requests made to DynamoDB (the status store), by API.", ["api"], registry=r
        )
        self.status_write_failures = Counter(
            "asya_status_write_failures",
            "Status reports (running, FLY, the cancel check) that failed; the envelope went on regardless.",
            ["kind"], registry=r,
        )
        self.rate_limit_wait = Histogram(
            "asya_rate_limit_wait_seconds",
            "How long calls waited for a token of the actor's rate limit (spec.rateLimit only).",
            buckets=(0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
            registry=r,
        )
        self.rate_limit_store_failures = Counter(
            "asya_rate_limit_store_failures",
            "Rate-limit takes that failed (the store unreachable or refusing); the calls waited and it was retried.",
            registry=r,
        )
        self.broker_errors = Counter(
            "asya_broker_errors", "Broker calls that failed and were retried, by API.", ["api"], registry=r
        )
        self.sink_write_failures = Counter(
            "asya_sink_write_failures", "Sink PutObject failures (the message stays queued).", registry=r
        )
        self.heartbeat_failures = Counter(
            "asya_heartbeat_failures", "Visibility heartbeat ticks that failed (the next tick tries again).", registry=r
        )
        self.actor_timeout = Gauge(
            "asya_actor_timeout_seconds", "The actor's actorTimeout: what handler latency is measured against.",
            registry=r,
        )
        self.queue_messages = Gauge(
            "asya_queue_messages",
            "Messages in the actor's queue or its DLQ (queue main|dlq), by state (visible|in_flight|delayed), "
            "as GetQueueAttributes reported at the last refresh.",
            ["queue", "state"],
            registry=r,
        )
        self.oldest_message_age = Gauge(
            "asya_queue_oldest_message_age_seconds",
            "Age (now - SentTimestamp) of the oldest message the last receive returned; 0 after an empty receive.",
            registry=r,
        )
        self.queue_depth_failures = Counter(
            "asya_queue_depth_failures", "Queue depth refreshes that failed (the gauges keep their last value).",
            registry=r,
        )
        self.last_receive = time.monotonic()
        #: Since when every receive has been refused (an error that is not an outage: access denied, a signature
        #: the broker rejects, the queue deleted), and the last refusal; None while receives succeed.
        self.receive_refused_since: float | None = None
        self.receive_refused_error = ""
        self._children: dict[tuple[int, str], Any] = {}

    def labelled(self, metric: Any, value: str) -> Any:
        """``metric.labels(value)``, kept: looking a labelled child up anew costs more than the increment itself,
        and the hot path increments a few per message."""
        key = (id(metric), value)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(value)
        return child

    def observe_receive(self, messages: Iterable[Mapping[str, Any]], *, now_s: float | None = None) -> None:
        """Set the oldest-message age from one receive's messages (their ``Attributes.SentTimestamp``, epoch ms)."""
        now = time.time() if now_s is None else now_s
        sent = [int(m["Attributes"]["SentTimestamp"]) for m in messages if "SentTimestamp" in m.get("Attributes", {})]
        self.oldest_message_age.set(max(0.0, now - min(sent) / 1000) if sent else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)


#: SQS queue attribute → the ``state`` label of ``asya_queue_messages``.
QUEUE_STATES = {
    "ApproximateNumberOfMessages": "visible",
    "ApproximateNumberOfMessagesNotVisible": "in_flight",
    "ApproximateNumberOfMessagesDelayed": "delayed",
}
#: Default least interval between two refreshes (each costs one request per queue); a faster scraper sees cached values.
QUEUE_DEPTH_INTERVAL_S = 30.0
#: A refresh that takes longer is abandoned (the scrape answers with the last values; the scraper must not wait).
QUEUE_DEPTH_TIMEOUT_S = 5.0
SqsCall = Callable[..., Awaitable[dict[str, Any]]]


def depth_queues(*, queue_url: str, config: SidecarConfig) -> dict[str, str]:
    """``{"main": queue URL, "dlq": DLQ URL}``: the DLQ's URL is the queue's with its name swapped for
    ``naming.dlq_name`` (no request). A URL of another shape (an unusual endpoint) gives the main queue only: the
    DLQ depth is missing from the metrics, which never stops the sidecar."""
    base, _, name = queue_url.rpartition("/")
    if name != config.queue_name:
        return {"main": queue_url}
    return {"main": queue_url, "dlq": f"{base}/{dlq_name(namespace=config.namespace, actor=config.actor)}"}


class QueueDepth:
    """Refreshes ``asya_queue_messages`` for ``queues`` (label → URL, e.g. main and dlq) when asked, at most once
    per ``min_interval_s``; ``call`` is the broker's counted SQS call (``BrokerClient.call``), so the requests show
    in ``asya_sqs_requests_total{api="get_queue_attributes"}``. A failure (no such queue, access denied, a broker
    outage past ``timeout_s``) is counted and leaves the last values in place: it never fails a scrape."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        call: SqsCall,
        queues: Mapping[str, str],
        min_interval_s: float = QUEUE_DEPTH_INTERVAL_S,
        timeout_s: float = QUEUE_DEPTH_TIMEOUT_S,
    ) -> None:
        self.metrics = metrics
        self.call = call
        self.queues = dict(queues)
        self.min_interval_s = min_interval_s
        self.timeout_s = timeout_s
        self._last: float | None = None
        self._lock = asyncio.Lock()

    async def refresh(self) -> None:
        async with self._lock:  # two scrapers at once ask SQS once
            if self._last is not None and time.monotonic() - self._last < self.min_interval_s:
                return
            self._last = time.monotonic()
            # Both queues at once: a scrape waits at most timeout_s, even while SQS is unreachable.
            await asyncio.gather(*(self._refresh_one(label=label, url=url) for label, url in self.queues.items()))

    async def _refresh_one(self, *, label: str, url: str) -> None:
        try:
            result = await asyncio.wait_for(
                self.call("get_queue_attributes", QueueUrl=url, AttributeNames=list(QUEUE_STATES)),
                timeout=self.timeout_s,
            )
        except Exception:
            self.metrics.queue_depth_failures.inc()
            return
        attributes = result.get("Attributes", {})
        for attribute, state in QUEUE_STATES.items():
            if attribute in attributes:
                self.metrics.queue_messages.labels(queue=label, state=state).set(int(attributes[attribute]))


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz``: 200 while the receive loop has run recently and its receives are not
    being refused; 503 once either has lasted ``stale_after_s``."""

    def __init__(
        self,
        *,
        metrics: Metrics,
        port: int,
        stale_after_s: float,
        host: str,
        queue_depth: QueueDepth | None = None,
    ) -> None:
        self.metrics = metrics
        self.host = host
        self.port = port
        self.stale_after_s = stale_after_s
        self.queue_depth = queue_depth
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        if self.queue_depth is not None:
            await self.queue_depth.refresh()
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        now = time.monotonic()
        age = now - self.metrics.last_receive
        body: dict[str, object] = {"receive_loop_idle_s": round(age, 1)}
        refused_s = 0.0
        if self.metrics.receive_refused_since is not None:
            refused_s = now - self.metrics.receive_refused_since
            body.update(receive_refused_s=round(refused_s, 1), error=self.metrics.receive_refused_error)
        ok = age <= self.stale_after_s and refused_s <= self.stale_after_s
        return web.json_response({"ok": ok, **body}, status=200 if ok else 503)
