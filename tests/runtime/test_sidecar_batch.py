"""Dynamic batching (``spec.batch``) end to end: a real sidecar and handler server on the embedded broker.

The handler (tests/support/sidecar_handlers.py's ``batch_echo``) records one line per call with the keys it was
given, so each test sees exactly how envelopes were grouped and how often each was called.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from typing import Any

from support.mesh import MeshHarness, wait_for

from asya_runtime.envelope import new_envelope
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar.claimcheck import offload_with

QUICK_RETRY = {"maxAttempts": 2, "initialInterval": "200ms", "jitter": False}
RESILIENCY = Resiliency.model_validate({"actorTimeout": "30s", "policies": {"default": QUICK_RETRY}})


def _start(mesh: MeshHarness, *, max_size: int, max_wait: str = "50ms", node: bool = False, **overrides: Any) -> None:
    mesh.standard("gpu", "next", resiliency=RESILIENCY)
    mesh.start_actor(
        "gpu", handler="batch_echo", node=node, resiliency=RESILIENCY, concurrency=1,
        batch_max_size=max_size, batch_max_wait=max_wait, **overrides,
    )


def _calls(mesh: MeshHarness) -> list[list[str]]:
    return [call["keys"] for call in mesh.calls()]


def test_envelopes_waiting_for_a_busy_handler_go_in_batches_of_max_size(mesh: MeshHarness) -> None:
    _start(mesh, max_size=4)
    mesh.send("gpu", new_envelope(route=["gpu"], payload={"key": "first", "sleep_s": 1.0}))
    wait_for(lambda: _calls(mesh) == [["first"]], timeout_s=30, what="the first call")
    mesh.send_many("gpu", [new_envelope(route=["gpu"], payload={"key": f"k{i}"}) for i in range(8)])

    records = mesh.take("success-sink", 9)

    calls = _calls(mesh)
    assert [len(keys) for keys in calls] == [1, 4, 4], calls  # filled while the handler was busy, then full
    assert sorted(k for keys in calls[1:] for k in keys) == sorted(f"k{i}" for i in range(8))
    assert Counter(r["payload"]["batch_size"] for r in records) == {1: 1, 4: 8}
    mesh.assert_quiet("success-sink", "error-sink", "gpu")


def test_a_partial_batch_goes_without_waiting_for_max_size_or_max_wait(mesh: MeshHarness) -> None:
    """Three envelopes on a quiet queue: the batch goes once no more join (2 ms), not after maxWait (5 s)."""
    _start(mesh, max_size=16, max_wait="5s")
    wait_for(lambda: mesh.depth("gpu") == 0, timeout_s=30, what="the sidecar to start")
    time.sleep(1.0)
    sent = time.monotonic()
    mesh.send_many("gpu", [new_envelope(route=["gpu"], payload={"key": f"k{i}"}) for i in range(3)])

    mesh.take("success-sink", 3)

    assert time.monotonic() - sent < 4.0
    assert sum(len(keys) for keys in _calls(mesh)) == 3 and all(len(keys) < 16 for keys in _calls(mesh))


def test_one_items_failure_retries_that_item_alone_and_the_others_succeed_once(mesh: MeshHarness) -> None:
    _start(mesh, max_size=8)
    envelopes = [
        new_envelope(route=["gpu"], payload={"key": "flaky", "fail_once": True}),
        new_envelope(route=["gpu"], payload={"key": "good"}),
        new_envelope(route=["gpu"], payload={"key": "doomed", "fail": True}),
        new_envelope(route=["gpu"], payload={"key": "quiet", "end": True}),
        new_envelope(route=["gpu"], payload={"key": "routed", "route": "next"}),
    ]
    mesh.send_many("gpu", envelopes)

    successes = {r["payload"]["key"]: r for r in mesh.take("success-sink", 3)}
    [error] = mesh.take("error-sink", 1)
    [routed] = mesh.take("next", 1)

    assert set(successes) == {"flaky", "good", "quiet"}
    assert "batch_size" not in successes["quiet"]["payload"]  # None: the envelope unchanged to the success sink
    assert error["payload"]["key"] == "doomed" and error["status"]["error"]["type"] == "ValueError"
    assert error["status"]["attempt"] == 2 and error["status"]["error"]["reason"] == "retries exhausted"
    assert routed["route"]["curr"] == "next" and routed["headers"]["x-batched"] >= 1
    called = Counter(k for keys in _calls(mesh) for k in keys)
    assert called == {"flaky": 2, "good": 1, "doomed": 2, "quiet": 1, "routed": 1}
    assert ["flaky"] in _calls(mesh) and ["doomed"] in _calls(mesh)  # the retries ran alone
    mesh.assert_quiet("success-sink", "error-sink", "gpu")


def test_a_handler_killed_mid_batch_retries_every_envelope_and_loses_none(mesh: MeshHarness) -> None:
    _start(mesh, max_size=4)
    keys = [f"k{i}" for i in range(4)]
    mesh.send_many("gpu", [new_envelope(route=["gpu"], payload={"key": k, "sleep_s": 1.5}) for k in keys])
    wait_for(lambda: sum(len(c) for c in _calls(mesh)) == 4, timeout_s=30, what="the batch's call")
    first_pid = mesh.calls()[0]["pid"]

    mesh.actors[0].kill_handler(signal.SIGKILL)
    records = mesh.take("success-sink", 4)

    assert sorted(r["payload"]["key"] for r in records) == keys
    calls = _calls(mesh)
    assert sorted(calls[0]) == keys and sorted(k for [k] in calls[1:]) == keys  # then each retried alone
    assert mesh.calls()[-1]["pid"] != first_pid  # the retries ran in the restarted server
    assert mesh.actors[0].handler_exit_codes == [-signal.SIGKILL]
    mesh.assert_quiet("success-sink", "error-sink", "gpu")


def test_a_poison_envelope_that_fails_the_whole_call_costs_its_batch_mates_one_attempt(mesh: MeshHarness) -> None:
    _start(mesh, max_size=8)
    good = [f"good{i}" for i in range(3)]
    mesh.send_many("gpu", [
        *(new_envelope(route=["gpu"], payload={"key": k}) for k in good),
        new_envelope(route=["gpu"], payload={"key": "poison", "poison": True}),
    ])

    successes = mesh.take("success-sink", 3)
    [error] = mesh.take("error-sink", 1)

    assert sorted(r["payload"]["key"] for r in successes) == good
    assert error["payload"]["key"] == "poison" and error["status"]["error"]["type"] == "RuntimeError"
    calls = _calls(mesh)
    assert sorted(calls[0]) == sorted([*good, "poison"])  # the batch that failed whole
    assert sorted(k for [k] in calls[1:]) == sorted([*good, "poison"])  # then one attempt each, alone
    mesh.assert_quiet("success-sink", "error-sink", "gpu")


def test_an_offloaded_envelope_in_a_batch_is_fetched_for_its_own_item(mesh: MeshHarness) -> None:
    mesh.create_bucket()
    _start(mesh, max_size=8, result_bucket=mesh.bucket)
    big = new_envelope(route=["gpu"], payload={"key": "big", "pad": "x" * 600_000})
    small = new_envelope(route=["gpu"], payload={"key": "small"})
    reference = offload_with(mesh.s3, bucket=mesh.bucket, envelope=big)
    mesh.sqs.send_message_batch(QueueUrl=mesh.queue_url("gpu"), Entries=[
        {"Id": "0", "MessageBody": reference}, {"Id": "1", "MessageBody": small.to_json()},
    ])

    mesh.take("success-sink", 2, timeout_s=60)  # the big one travels on as a reference again

    assert sorted(k for keys in _calls(mesh) for k in keys) == ["big", "small"]  # the handler saw both payloads
    mesh.assert_quiet("success-sink", "error-sink", "gpu")


def test_the_node_handler_server_batches_with_per_item_errors(mesh: MeshHarness) -> None:
    _start(mesh, max_size=8, node=True)
    mesh.send_many("gpu", [
        new_envelope(route=["gpu"], payload={"key": "a"}),
        new_envelope(route=["gpu"], payload={"key": "b", "fail": True}),
        new_envelope(route=["gpu"], payload={"key": "c"}),
    ])

    successes = mesh.take("success-sink", 2)
    [error] = mesh.take("error-sink", 1)

    assert sorted(r["payload"]["key"] for r in successes) == ["a", "c"]
    assert error["payload"]["key"] == "b" and error["status"]["error"]["type"] == "RangeError"
    assert Counter(k for keys in _calls(mesh) for k in keys) == {"a": 1, "b": 2, "c": 1}
    mesh.assert_quiet("success-sink", "error-sink", "gpu")
