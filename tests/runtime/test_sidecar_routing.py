"""The sidecar's happy paths: pass-through, route advancing, fan-out, dynamic routes, headers, `none`."""

from __future__ import annotations

from support.mesh import MeshHarness

from asya_runtime.envelope import new_envelope

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_envelope_passes_through_two_actors_to_the_success_sink(mesh: MeshHarness) -> None:
    mesh.standard("first", "second")
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("second", handler="identity")
    envelope = new_envelope(route=["first", "second"], payload={"key": "a"}, headers={"traceparent": TRACEPARENT})
    mesh.send("first", envelope)

    record = mesh.wait_records("succeeded", 1)[envelope.id]

    assert record["payload"] == {"key": "a"}
    assert record["route"] == {"prev": ["first", "second"], "curr": "success-sink", "next": []}
    assert record["headers"] == {"traceparent": TRACEPARENT}
    assert record["status"]["attempt"] == 1 and record["status"]["error"] is None
    assert mesh.versions(f"succeeded/{envelope.id}.json") == 1
    assert [c["key"] for c in mesh.calls()] == ["a", "a"]
