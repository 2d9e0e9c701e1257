"""The sidecar's queue metrics against a real SQS-compatible server: depth of its queue and DLQ from
GetQueueAttributes (asked only when /metrics is scraped, at most once per interval), the age of the oldest message
from the receives it makes anyway, and its actorTimeout. docs/observability.md builds the dashboard and alerts on them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from support.mesh import MeshHarness, wait_for

from asya_pulumi.testing import ActorProcess
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.naming import dlq_name
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar.metrics import Metrics, QueueDepth, depth_queues

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _scrape(actor: ActorProcess) -> Samples | None:
    """The sidecar's samples, or None while its metrics server is not listening yet."""
    try:
        return _samples(actor.read_metrics())
    except OSError:
        return None


def _run(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run on a loop of its own: ``asyncio.run`` would leave the thread without a current loop, which Pulumi's mocks
    (tests/infra, possibly next in the same process) need."""
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.close()


def _depth(samples: Samples, *, queue: str, state: str) -> float | None:
    return samples.get(("asya_queue_messages", (("queue", queue), ("state", state))))


def _attribute_requests(samples: Samples) -> float:
    return samples.get(("asya_sqs_requests_total", (("api", "get_queue_attributes"),)), 0.0)


def test_queue_and_dlq_depth_oldest_age_and_timeout_are_exported(mesh: MeshHarness) -> None:
    mesh.standard("worker", resiliency=Resiliency(actor_timeout=42))
    dlq = mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor="worker"))["QueueUrl"]
    for i in range(2):
        mesh.sqs.send_message(QueueUrl=dlq, MessageBody=f"poison {i}")
    mesh.send_many("worker", [new_envelope(route=["worker"], payload={"sleep_s": 4}) for _ in range(2)])
    queued_at = time.time()
    time.sleep(3)
    actor = mesh.start_actor("worker", handler="slow", concurrency=1, resiliency=Resiliency(actor_timeout=42))

    def first_received() -> Samples | None:
        samples = _scrape(actor)
        return samples if samples and samples.get(("asya_messages_received_total", ())) == 1 else None

    # One slot, a 4 s call: the loop makes no other receive meanwhile, so the gauge shows that first receive.
    samples = wait_for(first_received, timeout_s=30, what="the first receive in /metrics")
    age = samples[("asya_queue_oldest_message_age_seconds", ())]
    assert 3 <= age <= time.time() - queued_at + 1, age
    assert samples[("asya_actor_timeout_seconds", ())] == 42
    assert _depth(samples, queue="dlq", state="visible") == 2
    main = [_depth(samples, queue="main", state=s) for s in ("visible", "in_flight", "delayed")]
    assert None not in main and sum(v for v in main if v is not None) == 2  # one waiting, one being handled
    assert samples[("asya_queue_depth_failures_total", ())] == 0

    # A second scrape within the interval asks SQS nothing: the depth costs requests per scrape interval, never
    # per message.
    asked = _attribute_requests(samples)
    assert asked == 3  # the visibility timeout at start, then one refresh: the queue and the DLQ
    again = _samples(actor.read_metrics())
    assert _attribute_requests(again) == asked

    def drained() -> Samples | None:
        samples = _samples(actor.read_metrics())
        done = samples.get(("asya_messages_succeeded_total", ())) == 2
        return samples if done and samples[("asya_queue_oldest_message_age_seconds", ())] == 0 else None

    # Both handled, then an empty long poll: nothing is waiting, the oldest age is 0 again.
    wait_for(drained, timeout_s=40, what="both envelopes done and an empty receive")


def test_a_missing_dlq_is_counted_and_never_fails_the_scrape(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    mesh.sqs.delete_queue(
        QueueUrl=mesh.sqs.get_queue_url(QueueName=dlq_name(namespace=mesh.namespace, actor="worker"))["QueueUrl"]
    )
    actor = mesh.start_actor("worker", handler="identity")
    samples = wait_for(lambda: _scrape(actor), timeout_s=30, what="/metrics answering")
    assert samples[("asya_queue_depth_failures_total", ())] == 1
    assert _depth(samples, queue="dlq", state="visible") is None
    assert _depth(samples, queue="main", state="visible") == 0


def test_an_unreachable_broker_costs_a_scrape_one_timeout_not_one_per_queue() -> None:
    metrics = Metrics()
    calls: list[str] = []

    async def hang(api: str, **kwargs: Any) -> dict[str, Any]:
        calls.append(kwargs["QueueUrl"])
        await asyncio.sleep(60)
        return {}

    depth = QueueDepth(metrics=metrics, call=hang, queues={"main": "q", "dlq": "q_dlq"}, timeout_s=0.5)
    started = time.monotonic()
    _run(depth.refresh())
    assert time.monotonic() - started < 1.5  # both asked at once, both given up after 0.5 s
    assert sorted(calls) == ["q", "q_dlq"]
    _run(depth.refresh())  # within the interval: cached, nothing asked
    assert len(calls) == 2
    assert _samples(metrics.render().decode())[("asya_queue_depth_failures_total", ())] == 2


def test_the_oldest_age_is_that_of_the_oldest_message_received() -> None:
    metrics = Metrics()
    sent = [{"Attributes": {"SentTimestamp": str(ms)}} for ms in (1_000_000, 990_000, 1_005_000)]
    metrics.observe_receive(sent, now_s=1_010.0)
    assert _samples(metrics.render().decode())[("asya_queue_oldest_message_age_seconds", ())] == 20.0
    metrics.observe_receive([], now_s=1_020.0)
    assert _samples(metrics.render().decode())[("asya_queue_oldest_message_age_seconds", ())] == 0.0


def test_the_dlq_url_is_derived_from_the_queue_url_by_the_naming_rules() -> None:
    config = SidecarConfig(actor="judge", namespace="ml")
    url = "https://sqs.eu-west-1.amazonaws.com/123456789012/asya-ml_judge"
    assert depth_queues(queue_url=url, config=config) == {
        "main": url, "dlq": "https://sqs.eu-west-1.amazonaws.com/123456789012/asya-ml_judge_dlq"
    }
    odd = "http://localhost:4566/queue/asya-ml_judge/"
    assert depth_queues(queue_url=odd, config=config) == {"main": odd}  # no guess: the DLQ depth is left out
