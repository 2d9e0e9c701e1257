"""Prometheus metrics and the ``/metrics`` + ``/healthz`` HTTP endpoint (aiohttp, which aiobotocore brings)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest


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
        self.broker_errors = Counter(
            "asya_broker_errors", "Broker calls that failed and were retried, by API.", ["api"], registry=r
        )
        self.sink_write_failures = Counter(
            "asya_sink_write_failures", "Sink PutObject failures (the message stays queued).", registry=r
        )
        self.heartbeat_failures = Counter(
            "asya_heartbeat_failures", "Visibility heartbeat ticks that failed (the next tick tries again).", registry=r
        )
        self.last_receive = time.monotonic()
        self._children: dict[tuple[int, str], Any] = {}

    def labelled(self, metric: Any, value: str) -> Any:
        """``metric.labels(value)``, kept: looking a labelled child up anew costs more than the increment itself,
        and the hot path increments a few per message."""
        key = (id(metric), value)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(value)
        return child

    def render(self) -> bytes:
        return generate_latest(self.registry)


class MetricsServer:
    """Serves ``/metrics`` and ``/healthz`` (200 while the receive loop has run recently, else 503)."""

    def __init__(self, *, metrics: Metrics, port: int, stale_after_s: float) -> None:
        self.metrics = metrics
        self.port = port
        self.stale_after_s = stale_after_s
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "0.0.0.0", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _metrics(self, _request: web.Request) -> web.Response:
        return web.Response(body=self.metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, _request: web.Request) -> web.Response:
        age = time.monotonic() - self.metrics.last_receive
        if age > self.stale_after_s:
            return web.json_response({"ok": False, "receive_loop_idle_s": round(age, 1)}, status=503)
        return web.json_response({"ok": True, "receive_loop_idle_s": round(age, 1)})
