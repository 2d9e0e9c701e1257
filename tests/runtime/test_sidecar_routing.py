"""The sidecar's happy paths: pass-through, route advancing, fan-out, dynamic routes, headers, `none`."""

from __future__ import annotations

from support.mesh import MeshHarness

from asya_runtime.envelope import child_id, new_envelope

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def test_envelope_passes_through_two_actors_to_the_success_sink(mesh: MeshHarness) -> None:
    mesh.standard("first", "second", sinks=True)
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("second", handler="identity")
    envelope = new_envelope(route=["first", "second"], payload={"key": "a"}, headers={"traceparent": TRACEPARENT})
    mesh.send("first", envelope)

    record = mesh.wait_records("succeeded", 1)[envelope.id]

    assert record["payload"] == {"key": "a"}
    assert record["route"] == {"prev": ["first", "second"], "curr": "success-sink", "next": []}
    assert record["headers"] == {"traceparent": TRACEPARENT}
    assert record["status"]["attempt"] == 1 and record["status"]["error"] is None
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    assert [c["key"] for c in mesh.calls()] == ["a", "a"]


def test_fan_out_children_get_deterministic_ids_parent_id_and_the_headers(mesh: MeshHarness) -> None:
    mesh.standard("split")
    mesh.start_actor("split", handler="fan_out")
    parent = new_envelope(route=["split"], payload={"key": "p", "n": 3}, headers={"traceparent": TRACEPARENT})
    mesh.send("split", parent)

    children = {c["id"]: c for c in mesh.take("success-sink", 3)}

    expected = {child_id(parent_id=parent.id, actor="split", index=i): i for i in range(3)}
    assert set(children) == set(expected)
    for cid, index in expected.items():
        assert children[cid]["parent_id"] == parent.id
        assert children[cid]["payload"] == {"key": "p", "i": index}
        assert children[cid]["headers"] == {"traceparent": TRACEPARENT}
        assert children[cid]["route"] == {"prev": ["split"], "curr": "success-sink", "next": []}
    mesh.assert_quiet("success-sink", "error-sink", "split")


def test_a_dynamic_route_and_header_set_by_the_handler_are_followed(mesh: MeshHarness) -> None:
    mesh.standard("judge", "store", "discard")
    mesh.start_actor("judge", handler="route_to")
    envelope = new_envelope(
        route=["judge", "discard"], payload={"key": "j", "next": ["store"]}, headers={"traceparent": TRACEPARENT}
    )
    mesh.send("judge", envelope)

    [forwarded] = mesh.take("store", 1)

    assert forwarded["id"] == envelope.id and forwarded["parent_id"] is None
    assert forwarded["route"] == {"prev": ["judge"], "curr": "store", "next": []}
    assert forwarded["headers"] == {"traceparent": TRACEPARENT, "x-routed-by": "route_to"}
    mesh.assert_quiet("discard", "error-sink")


def test_a_handler_returning_none_ends_the_envelope_unchanged_in_the_success_sink(mesh: MeshHarness) -> None:
    mesh.standard("last", "never")
    mesh.start_actor("last", handler="end_here")
    envelope = new_envelope(route=["last", "never"], payload={"key": "n"}, headers={"traceparent": TRACEPARENT})
    mesh.send("last", envelope)

    [record] = mesh.take("success-sink", 1)

    hop = record.pop("hops")
    status, sent = record.pop("status"), envelope.model_dump(mode="json")
    assert record == {key: value for key, value in sent.items() if key != "status"}
    assert (status["phase"], status["actor"]) == ("succeeded", "last")
    assert status["created_at"] == sent["status"]["created_at"]
    assert status["updated_at"] >= status["created_at"], "upstream's lifecycle stamp; the rest is unchanged"
    assert [(h["actor"], h["outcome"]) for h in hop] == [("last", "ok")]
    mesh.assert_quiet("never", "error-sink")


def test_routing_to_an_actor_without_a_queue_error_ends_with_reason_unknown_actor(mesh: MeshHarness) -> None:
    mesh.standard("first")
    mesh.start_actor("first", handler="identity")
    envelope = new_envelope(route=["first", "ghost"], payload={"key": "u"}, headers={"traceparent": TRACEPARENT})
    mesh.send("first", envelope)

    [record] = mesh.take("error-sink", 1)

    error = record["status"]["error"]
    assert error["reason"] == "unknown actor" and error["type"] == "UnknownActor" and error["actor"] == "first"
    assert "'ghost'" in error["message"] and mesh.queue("ghost") in error["message"]
    assert record["id"] == envelope.id and record["headers"] == {"traceparent": TRACEPARENT}
    assert record["route"]["curr"] == "ghost" and record["payload"] == {"key": "u"}
    mesh.assert_quiet("success-sink", "first")


def test_the_sidecar_drives_the_nodejs_handler_server_the_same_way(mesh: MeshHarness) -> None:
    mesh.standard("split", "sum")
    mesh.start_actor("split", handler="fan_out", node=True)
    parent = new_envelope(
        route=["split"], payload={"key": "js", "n": 2, "next": ["sum"]}, headers={"traceparent": TRACEPARENT}
    )
    mesh.send("split", parent)

    children = {c["id"]: c for c in mesh.take("sum", 2)}

    for index in range(2):
        child = children[child_id(parent_id=parent.id, actor="split", index=index)]
        assert child["parent_id"] == parent.id and child["payload"] == {"key": "js", "i": index}
        assert child["headers"] == {"traceparent": TRACEPARENT, "x-index": index}
        assert child["route"] == {"prev": ["split"], "curr": "sum", "next": []}
    mesh.assert_quiet("success-sink", "error-sink", "split", wait_s=1)
