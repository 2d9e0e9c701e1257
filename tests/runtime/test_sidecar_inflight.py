"""What the sidecar holds: the visibility heartbeat outlives failed ticks, and held messages are bounded.

The heartbeat is driven directly (a real BrokerClient against the shared LocalStack): making its
ChangeMessageVisibilityBatch fail non-transiently from a running sidecar process is impractical.
"""

from __future__ import annotations

import asyncio
import time

import pytest
from support.mesh import AWS_ENV, MeshHarness

from asya_runtime.sidecar.app import receive_room
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.inflight import InFlight, Received
from asya_runtime.sidecar.metrics import Metrics


def test_the_heartbeat_logs_and_counts_a_failed_tick_and_keeps_beating(
    mesh: MeshHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    url = mesh.create_queue("held", visibility_s=3)  # received now, visible again at +3 s unless extended
    mesh.sqs.send_message(QueueUrl=url, MessageBody="{}")
    [raw] = mesh.sqs.receive_message(QueueUrl=url, AttributeNames=["All"], WaitTimeSeconds=5)["Messages"]
    message = Received.from_sqs(raw)

    async def scenario() -> tuple[float, float, bool]:
        metrics = Metrics()
        async with BrokerClient(config=mesh.config("held"), metrics=metrics) as broker:
            inflight = InFlight(broker=broker, queue_url=url + "-gone", visibility_s=1)  # every tick: no such queue
            inflight.add(message)
            beating = asyncio.create_task(inflight.heartbeat())
            deadline = time.monotonic() + 20
            while metrics.heartbeat_failures._value.get() < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
            failed = metrics.heartbeat_failures._value.get()
            inflight.queue_url = url  # the queue is back: the same task goes on extending the message
            await asyncio.sleep(2.5)  # past the queue's 3 s since the receive, 2.5 x the heartbeat's 1 s
            alive = not beating.done()
            beating.cancel()
            return failed, metrics.heartbeat_failures._value.get() - failed, alive

    failed, failed_after, alive = asyncio.run(scenario())

    assert failed >= 3 and alive
    assert failed_after <= 1  # at most the tick already under way when the URL changed
    # Still held: had the heartbeat died at the first failure, the message would be visible again by now.
    assert not mesh.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0).get("Messages")


def test_the_receive_room_is_capped_by_held_messages_not_only_by_free_slots() -> None:
    # Free slots alone would allow 4 more; 7 held (calls done, sends stalled) leave room for 1.
    assert receive_room(concurrency=4, busy=0, held=7) == 1
    assert receive_room(concurrency=4, busy=0, held=8) == 0
    assert receive_room(concurrency=4, busy=0, held=12) < 0
    assert receive_room(concurrency=4, busy=3, held=3) == 1  # free slots bind when sends keep up
    assert receive_room(concurrency=1, busy=0, held=0) == 1
