"""asya_pulumi.testing (ActorProcess): one actor's process pair, the runtime tests' stand-in for a pod."""

from __future__ import annotations

import signal

from support.mesh import MeshHarness, wait_for

from asya_runtime.envelope import new_envelope


def test_restarts_on_demand_and_on_crash_and_the_sidecar_follows(mesh: MeshHarness) -> None:
    mesh.standard("worker")
    actor = mesh.start_actor("worker", handler="identity")

    actor.restart_handler()
    actor.wait_handler_ready(timeout_s=30)
    actor.kill_handler(signal.SIGKILL)
    wait_for(lambda: actor.handler_starts == 3, timeout_s=30, what="the supervisor restarting the killed server")
    actor.wait_handler_ready(timeout_s=30)
    mesh.send("worker", new_envelope(route=["worker"], payload={"key": "after"}))

    [record] = mesh.take("success-sink", 1)
    assert record["payload"] == {"key": "after"}
    assert actor.handler_exit_codes == [-signal.SIGKILL]  # the requested restart is not counted as a crash
    assert actor.stop() == 0
