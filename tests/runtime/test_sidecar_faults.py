"""Faults: a handler killed or hung mid-message, a broker outage, a long handler on a short visibility, SIGTERM.

Each test asserts the outcome is recorded once, and that no handler call ran more often than the fault requires.
"""

from __future__ import annotations

import collections
import json
import re
import signal
import time

from support.mesh import MeshHarness, wait_for
from support.tcp_proxy import TcpProxy

from asya_runtime.envelope import new_envelope
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar import wakeup

TRACEPARENT = "00-33333333333333333333333333333333-4444444444444444-01"
#: What a ReceiveMessage request carries (the JSON protocol's X-Amz-Target), for TcpProxy.waiting.
RECEIVE = b"AmazonSQS.ReceiveMessage"
SEND = b"AmazonSQS.SendMessage\r"  # not SendMessageBatch
QUICK_RETRY = {"maxAttempts": 3, "initialInterval": "200ms", "jitter": False}


def test_a_handler_killed_mid_message_is_restarted_and_the_message_completes_once(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate({"actorTimeout": "30s", "policies": {"default": QUICK_RETRY}})
    mesh.standard("worker", resiliency=resiliency)
    actor = mesh.start_actor("worker", handler="slow", resiliency=resiliency)
    envelope = new_envelope(
        route=["worker"], payload={"key": "k", "sleep_s": 1.5}, headers={"traceparent": TRACEPARENT}
    )
    mesh.send("worker", envelope)
    wait_for(lambda: len(mesh.calls()) == 1, timeout_s=30, what="the first handler call")

    actor.kill_handler(signal.SIGKILL)
    [record] = mesh.take("success-sink", 1)

    assert record["id"] == envelope.id and record["headers"] == {"traceparent": TRACEPARENT}
    calls = mesh.calls()
    assert len(calls) == 2 and calls[0]["pid"] != calls[1]["pid"]  # once killed, once in the restarted server
    assert actor.handler_exit_codes == [-signal.SIGKILL]
    mesh.assert_quiet("success-sink", "error-sink", "worker")


def test_a_hung_handler_times_out_is_retried_then_error_ended_and_the_next_message_runs(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {"actorTimeout": "1s", "policies": {"default": {**QUICK_RETRY, "maxAttempts": 2}}}
    )
    mesh.standard("worker", resiliency=resiliency)
    actor = mesh.start_actor("worker", handler="hang_if_asked", resiliency=resiliency)
    hung = new_envelope(route=["worker"], payload={"key": "hang", "hang": True}, headers={"traceparent": TRACEPARENT})
    mesh.send("worker", hung)
    wait_for(lambda: len(mesh.calls()) == 1, timeout_s=30, what="the first handler call")
    fine = new_envelope(route=["worker"], payload={"key": "fine"})
    mesh.send("worker", fine)

    [failed] = mesh.take("error-sink", 1, timeout_s=90)
    [succeeded] = mesh.take("success-sink", 1, timeout_s=60)

    error = failed["status"]["error"]
    assert failed["id"] == hung.id and failed["headers"] == {"traceparent": TRACEPARENT}
    assert error["type"] == "ActorTimeout" and error["reason"] == "retries exhausted"
    assert failed["status"]["attempt"] == 2
    assert succeeded["id"] == fine.id
    counts = collections.Counter(c["key"] for c in mesh.calls())
    assert counts == {"hang": 2, "fine": 1}
    wait_for(lambda: actor.handler_exit_codes.count(70) == 2, timeout_s=30, what="two hung exits (status 70)")


def test_heartbeats_keep_a_long_call_invisible_on_a_short_visibility_queue(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate({"actorTimeout": "60s"})
    mesh.standard(resiliency=resiliency)
    mesh.create_queue("gpu", resiliency=resiliency, visibility_s=2)
    actor = mesh.start_actor("gpu", handler="slow", resiliency=resiliency)
    # The premise: the sidecar works with the queue's 2 s window (the default, 90 s, would need no heartbeat).
    wait_for(lambda: '"visibility_s": 2,' in actor.logs(), timeout_s=30, what="the sidecar reading the 2 s visibility")
    envelope = new_envelope(route=["gpu"], payload={"key": "long", "sleep_s": 6})
    mesh.send("gpu", envelope)

    [record] = mesh.take("success-sink", 1)

    assert record["id"] == envelope.id
    mesh.assert_quiet("success-sink", "error-sink", "gpu", wait_s=3)
    assert len(mesh.calls()) == 1  # never delivered twice, though the call outlived the visibility 3 times over
    # ... because the heartbeat ran: one visibility change per 2/3 s of the 6 s call (the only such requests here).
    metrics = actor.read_metrics()
    beats = re.search(r'^asya_sqs_requests_total\{api="change_message_visibility_batch"\} (\S+)', metrics, re.MULTILINE)
    assert beats is not None and float(beats.group(1)) >= 3, metrics


def test_a_broker_outage_mid_stream_loses_nothing_and_records_each_envelope_once(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate({"actorTimeout": "10s"})
    mesh.standard(resiliency=resiliency, sinks=True)
    # A short visibility so that a receive cut mid-response (messages taken, answer lost) comes back quickly.
    mesh.create_queue("worker", resiliency=resiliency, visibility_s=5)
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        actor = mesh.start_actor(
            "worker", handler="slow", resiliency=resiliency, concurrency=2, sqs_endpoint=proxy.endpoint
        )
        envelopes = [new_envelope(route=["worker"], payload={"key": f"m{i}", "sleep_s": 0.05}) for i in range(60)]
        mesh.send_many("worker", envelopes)
        wait_for(lambda: len(mesh.calls()) >= 10, timeout_s=60, what="10 handler calls before the outage")
        at_cut = len(mesh.calls())
        proxy.cut()
        assert proxy.dropped > 0, "the cut met no open connection: no outage for the sidecar"
        wait_for(lambda: "broker unreachable" in actor.logs(), timeout_s=30, what="the sidecar noticing the outage")
        time.sleep(2)  # an outage of a few seconds, not a blip
        proxy.restore()

        records = mesh.wait_records("succeeded", len(envelopes), timeout_s=120)

        assert set(records) == {e.id for e in envelopes}
        assert at_cut < len(envelopes), "the cut came after the stream: nothing was at risk"
        wait_for(lambda: "broker reachable again" in actor.logs(), timeout_s=10, what="the recovery log line")
        metrics = actor.read_metrics()
        assert re.search(r'^asya_broker_errors_total\{api="\w+"\} [1-9]', metrics, re.MULTILINE), metrics
        assert actor.stop() == 0
    mesh.assert_quiet("error-sink", wait_s=1)


def test_sigterm_mid_batch_finishes_in_flight_work_releases_nothing_twice_and_exits_0(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate({"actorTimeout": "20s"})
    mesh.standard("worker", resiliency=resiliency)
    actor = mesh.start_actor("worker", handler="slow", resiliency=resiliency, concurrency=4)
    envelopes = [new_envelope(route=["worker"], payload={"key": f"s{i}", "sleep_s": 0.6}) for i in range(10)]
    mesh.send_many("worker", envelopes)
    wait_for(lambda: len(mesh.calls()) >= 2, timeout_s=30, what="calls in flight")

    actor.signal_sidecar(signal.SIGTERM)
    assert actor.wait_sidecar(timeout_s=40) == 0
    finished = mesh.take("success-sink", len(mesh.calls()), timeout_s=10)
    assert 2 <= len(finished) < len(envelopes)

    actor.start_sidecar()  # a new replica picks up the rest
    rest = mesh.take("success-sink", len(envelopes) - len(finished), timeout_s=90)

    ids = [r["id"] for r in finished + rest]
    assert sorted(ids) == sorted(e.id for e in envelopes)
    assert collections.Counter(c["key"] for c in mesh.calls()) == {f"s{i}": 1 for i in range(10)}
    mesh.assert_quiet("success-sink", "error-sink", "worker")


def test_a_message_the_final_poll_brings_is_requeued_without_losing_its_only_attempt(mesh: MeshHarness) -> None:
    """SIGTERM while a long poll's answer, carrying a message, is on its way: the stopping sidecar must requeue
    that message as a fresh copy (an unstarted message handed back by a release would count as its one attempt).

    The proxy makes the timing certain: it holds every answer, so the poll open at the broker takes the message
    sent next while the sidecar still waits; SIGTERM comes then, and only then does the answer reach the sidecar.
    """
    resiliency = Resiliency.model_validate({"policies": {"default": {"maxAttempts": 1}}})
    mesh.standard("worker", resiliency=resiliency)
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        actor = mesh.start_actor(
            "worker", handler="identity", resiliency=resiliency, wait_time_seconds=20, sqs_endpoint=proxy.endpoint
        )
        wait_for(lambda: "started" in actor.logs(), timeout_s=30, what="the sidecar polling")
        proxy.hold()
        # A poll open now (or answered since the hold, empty) hands the sidecar nothing before the release.
        wait_for(lambda: proxy.waiting(RECEIVE), timeout_s=30, what="a long poll whose answer the proxy holds")
        envelope = new_envelope(route=["worker"], payload={"key": "late"})
        mesh.send("worker", envelope)  # straight to the broker: the open poll takes it, its answer waits
        wait_for(lambda: queue_counts(mesh, "worker") == (0, 1), timeout_s=10, what="the open poll taking it")

        actor.signal_sidecar(signal.SIGTERM)
        # The stopping sidecar, its poll unanswered, sends its wake-up (sidecar/wakeup.py); that answer waits too.
        wait_for(lambda: proxy.waiting(SEND), timeout_s=10, what="the stopping sidecar's wake-up")
        proxy.release()
        assert actor.wait_sidecar(timeout_s=40) == 0

        assert mesh.calls() == []
        requeued = [line for line in actor.logs().splitlines() if "requeued unstarted messages" in line]
        assert len(requeued) == 1 and json.loads(requeued[0])["count"] == 1, actor.logs()
        assert visible_depth(mesh, "worker") == 1  # a fresh copy, visible at once; the original deleted

        actor.start_sidecar()  # the next replica runs it: a release would have made this its second delivery
        [done] = mesh.take("success-sink", 1, timeout_s=60)
        assert done["id"] == envelope.id and [c["key"] for c in mesh.calls()] == ["late"]
        assert done["status"]["attempt"] == 1
        mesh.assert_quiet("error-sink", "worker", wait_s=1)
        assert actor.stop() == 0  # while the proxy still forwards its wake-up


def visible_depth(mesh: MeshHarness, actor: str) -> int:
    """Visible messages in ``actor``'s queue, asserting that none is held invisible."""
    visible, invisible = queue_counts(mesh, actor)
    assert invisible == 0, (visible, invisible)
    return visible


def queue_counts(mesh: MeshHarness, actor: str) -> tuple[int, int]:
    """``(visible, received and invisible)`` messages of ``actor``'s queue."""
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attrs = mesh.sqs.get_queue_attributes(QueueUrl=mesh.queue_url(actor), AttributeNames=names)["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_a_sigterm_on_a_quiet_queue_ends_the_long_poll_at_once(mesh: MeshHarness) -> None:
    """A pod's 20 s long poll does not hold up scale-in: the wake-up message returns it, and none is left behind."""
    mesh.standard("idle")
    actor = mesh.start_actor("idle", handler="identity", wait_time_seconds=20)
    wait_for(lambda: "started" in actor.logs(), timeout_s=30, what="the sidecar polling")
    time.sleep(0.5)  # the first long poll is open

    started = time.monotonic()
    actor.signal_sidecar(signal.SIGTERM)
    assert actor.wait_sidecar(timeout_s=25) == 0
    elapsed = time.monotonic() - started

    assert elapsed < 3, f"the sidecar took {elapsed:.1f} s to stop on a quiet queue"
    assert mesh.depth("idle") == 0  # its wake-up message was consumed, not left to wake the actor later
    assert mesh.calls() == []


def test_a_running_replica_discards_another_replicas_wake_up(mesh: MeshHarness) -> None:
    mesh.standard("busy")
    mesh.start_actor("busy", handler="identity")
    url = mesh.queue_url("busy")
    mesh.sqs.send_message(
        QueueUrl=url, MessageBody="{}",
        MessageAttributes={wakeup.ATTRIBUTE: {"DataType": "String", "StringValue": wakeup.WAKEUP}},
    )
    envelope = new_envelope(route=["busy"], payload={"key": "after"})
    mesh.send("busy", envelope)

    [done] = mesh.take("success-sink", 1)

    assert done["id"] == envelope.id and [c["key"] for c in mesh.calls()] == ["after"]
    wait_for(lambda: mesh.depth("busy") == 0, timeout_s=10, what="the wake-up message deleted")
    mesh.assert_quiet("error-sink", wait_s=1)


def test_a_drain_whose_every_wait_runs_to_its_bound_fits_the_pods_grace_period(mesh: MeshHarness) -> None:
    """The worst case of a stopping sidecar, timed for real: SIGTERM mid-poll with the broker unreachable, so the
    wake-up never lands, the calls in flight outlive the wait for them, and neither the flush nor the release of
    what is held can finish. Each wait then runs to its bound (``SidecarConfig.shutdown_waits_s``); the whole
    drain must still end inside ``shutdown_grace_s``, hence inside the pod's ``terminationGracePeriodSeconds``."""
    from asya_pulumi.objects.pod import termination_grace_seconds

    resiliency = Resiliency.model_validate({"actorTimeout": "3s", "policies": {"default": QUICK_RETRY}})
    mesh.standard("worker", resiliency=resiliency)
    envelopes = [new_envelope(route=["worker"], payload={"key": f"h{i}", "sleep_s": 30}) for i in range(10)]
    mesh.send_many("worker", envelopes)
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        # 20 slots: with 10 calls running, 10 are free, so the receive loop keeps a long poll open meanwhile.
        actor = mesh.start_actor(
            "worker", handler="slow", resiliency=resiliency, concurrency=20, wait_time_seconds=2,
            sqs_endpoint=proxy.endpoint,
        )
        # The handler server runs one call at a time; the sidecar holds all ten as calls in flight.
        wait_for(lambda: mesh.calls(), timeout_s=30, what="the first call")
        time.sleep(0.5)
        config = mesh.config("worker", resiliency=resiliency, concurrency=20, wait_time_seconds=2)
        proxy.cut()
        assert proxy.dropped > 0, "the cut met no open connection: the broker was not cut off"
        started = time.monotonic()
        actor.signal_sidecar(signal.SIGTERM)
        assert actor.wait_sidecar(timeout_s=config.shutdown_grace_s + 30) == 0
        drained = time.monotonic() - started

    waits = config.shutdown_waits_s
    print(f"drain {drained:.1f} s; waits {waits}; shutdown_grace_s {config.shutdown_grace_s}")
    # Every wait but the last spans' (no tracer here) ran to its bound: this drain is the worst case ...
    assert drained >= sum(waits.values()) - waits["last spans"] - 2
    # ... it would have outlived the old budget (long poll + actorTimeout + one flush) by far ...
    assert drained > config.wait_time_seconds + resiliency.actor_timeout + 5 + 10
    # ... and it fits the budget the pod's grace period is derived from.
    assert drained <= config.shutdown_grace_s < termination_grace_seconds(config)
