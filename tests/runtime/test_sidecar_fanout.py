"""Fan-out bounds on the embedded broker: a call over ``ASYA_MAX_FANOUT`` is error-ended with a reason naming the
count and the limit and none of its children is sent; a fan-out at the cap goes through; a 10,000-child fan-out
stays under the sidecar's rendered memory limit (its peak RSS is printed: run with ``-s`` to see it)."""

from __future__ import annotations

from support.mesh import MeshHarness, peak_rss_mib, wait_for

from asya_pulumi.objects.pod import sidecar_memory_limit_mib
from asya_runtime.envelope import child_id, new_envelope
from asya_runtime.sidecar.routing import FAN_OUT_TOO_LARGE


def test_a_fan_out_over_the_cap_is_error_ended_and_none_of_it_is_sent(mesh: MeshHarness) -> None:
    mesh.standard("split", "next")
    mesh.start_actor("split", handler="fan_out", max_fanout=5)
    parent = new_envelope(route=["split", "next"], payload={"key": "p", "n": 6})
    mesh.send("split", parent)

    [record] = mesh.take("error-sink", 1)

    assert record["id"] == parent.id
    error = record["status"]["error"]
    assert error["reason"] == FAN_OUT_TOO_LARGE and error["type"] == "FanOutTooLarge"
    assert "6 outputs" in error["message"] and "limit of 5" in error["message"]
    assert record["payload"] == {"key": "p", "n": 6}  # the parent's, for a redrive after raising the cap
    assert len(mesh.calls()) == 1  # not retryable: the handler would emit as many again
    mesh.assert_quiet("next", "success-sink", "split", "error-sink")


def test_a_fan_out_at_the_cap_goes_through(mesh: MeshHarness) -> None:
    mesh.standard("split")
    mesh.start_actor("split", handler="fan_out", max_fanout=5)
    parent = new_envelope(route=["split"], payload={"key": "p", "n": 5})
    mesh.send("split", parent)

    children = {c["id"] for c in mesh.take("success-sink", 5)}

    assert children == {child_id(parent_id=parent.id, actor="split", index=i) for i in range(5)}
    mesh.assert_quiet("success-sink", "error-sink", "split")


def test_a_fan_out_of_ten_thousand_stays_under_the_rendered_memory_limit(mesh: MeshHarness) -> None:
    count = 10_000
    mesh.standard("split")
    actor = mesh.start_actor("split", handler="fan_out", max_fanout=count, concurrency=1)
    mesh.send("split", new_envelope(route=["split"], payload={"key": "p", "n": count}))

    wait_for(
        lambda: mesh.depth("success-sink") >= count and mesh.depth("split") == 0,
        timeout_s=180,
        what=f"{count} children in the success sink",
        interval_s=0.5,
    )

    assert actor.sidecar_pid is not None
    peak = peak_rss_mib(actor.sidecar_pid)
    limit = sidecar_memory_limit_mib(
        concurrency=actor.config.concurrency,
        max_fanout=actor.config.max_fanout,
        max_message_bytes=actor.config.max_message_bytes,
    )
    print(f"\nsidecar peak RSS for a {count}-child fan-out: {peak} MiB (rendered limit {limit} MiB)")
    assert peak < limit  # generous: measured at about 89 MiB against 256 MiB
