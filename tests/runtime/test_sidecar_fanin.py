"""Fan-in on the embedded broker, with real sidecar and handler server processes: one call per fan-out parent with
its children's payloads in emission order, whatever duplicates, kills and replicas; an error-ended child as an error
item; a parent with a missing child ends in an error record naming it (runtime/asya_runtime/sidecar/fanin.py)."""

from __future__ import annotations

import json
import signal
import time
from typing import Any

from support.mesh import AWS_ENV, SUPPORT_DIR, MeshHarness, wait_for

from asya_pulumi.testing import ActorProcess, HandlerSettings
from asya_runtime.envelope import Envelope, child_id, fanin_id, new_envelope
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar import routing
from asya_runtime.sidecar.fanin import ERROR_ITEM_FIELD, FANIN_TIMEOUT


def fanned_out(*, n: int, key: str = "p", route: tuple[str, ...] = ("join",)) -> tuple[Envelope, list[Envelope]]:
    """A parent at actor ``split`` and the ``n`` children it emits, made by the sidecar's own routing."""
    parent = new_envelope(route=["split", *route], payload={"key": key})
    outputs = routing.next_hops(source=parent, outputs=[{"payload": {"key": key, "i": i}} for i in range(n)])
    return parent, [hop.envelope for hop in outputs]


def gather_calls(mesh: MeshHarness) -> list[dict[str, Any]]:
    return [call for call in mesh.calls() if call.get("key") == "gather"]


def state_keys(mesh: MeshHarness, parent: Envelope) -> list[str]:
    listing = mesh.s3.list_objects_v2(Bucket=mesh.bucket, Prefix=f"fanin/join/{parent.id}/")
    return [item["Key"] for item in listing.get("Contents", [])]


def start_join(mesh: MeshHarness, *, timeout: str = "30s", **overrides: Any) -> ActorProcess:
    return mesh.start_actor("join", handler="gather", result_bucket=mesh.bucket, fanin_timeout=timeout, **overrides)


def test_children_carry_their_parent_index_and_total() -> None:
    parent, children = fanned_out(n=3)
    assert [(c.parent_id, c.fanout.index, c.fanout.total) for c in children if c.fanout] == [
        (parent.id, 0, 3), (parent.id, 1, 3), (parent.id, 2, 3)
    ]
    body = json.loads(children[1].to_json())
    assert body["fanout"] == {"index": 1, "total": 3}  # no "outer": the parent was no child itself
    assert "fanout" not in json.loads(parent.to_json()) and "fanin" not in json.loads(parent.to_json())
    [grandchild, _] = [hop.envelope for hop in routing.next_hops(source=children[1].model_copy(
        update={"route": children[1].route.model_copy(update={"curr": "split2"})}), outputs=[{}, {}])]
    assert grandchild.fanout is not None and grandchild.fanout.outer == {
        "parent_id": parent.id, "fanout": {"index": 1, "total": 3}
    }


def test_one_call_per_parent_with_the_payloads_in_emission_order(mesh: MeshHarness) -> None:
    mesh.standard("split", "join")
    mesh.create_bucket()
    mesh.start_actor("split", handler="fan_out")
    start_join(mesh)
    parent = new_envelope(route=["split", "join"], payload={"key": "p", "n": 12})
    mesh.send("split", parent)

    [aggregate] = mesh.take("success-sink", 1)

    expected = [{"key": "p", "i": i} for i in range(12)]
    assert aggregate["payload"] == {"items": expected}
    assert aggregate["id"] == fanin_id(parent_id=parent.id, actor="join")
    assert aggregate["parent_id"] is None and "fanout" not in aggregate  # the parent's own place: none
    assert aggregate["fanin"]["parent_id"] == parent.id and aggregate["fanin"]["total"] == 12
    assert aggregate["route"]["prev"] == ["split", "join"]
    [call] = gather_calls(mesh)
    assert call["items"] == expected
    mesh.assert_quiet("success-sink", "error-sink", "join")
    assert len(gather_calls(mesh)) == 1


def test_children_arriving_in_reverse_are_handed_over_in_emission_order(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    start_join(mesh, concurrency=1)
    _, children = fanned_out(n=4)
    for child in reversed(children):
        mesh.send("join", child)

    [aggregate] = mesh.take("success-sink", 1)

    assert [item["i"] for item in aggregate["payload"]["items"]] == [0, 1, 2, 3]


def test_a_duplicated_child_still_gives_one_call(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    start_join(mesh)
    parent, children = fanned_out(n=3)
    mesh.send_many("join", [children[0], children[1], children[1], children[0]])  # an upstream sent them twice
    wait_for(lambda: len(state_keys(mesh, parent)) >= 3, timeout_s=30, what="two records and open.json")
    mesh.send("join", children[2])

    [aggregate] = mesh.take("success-sink", 1)
    mesh.send("join", children[1])  # and once more after the parent was finished: dropped

    assert [item["i"] for item in aggregate["payload"]["items"]] == [0, 1, 2]
    mesh.assert_quiet("success-sink", "error-sink", wait_s=3)
    assert len(gather_calls(mesh)) == 1
    assert mesh.depth("join") <= 1  # at most the parent's timer is left, and it ends at its next tick


def test_a_killed_aggregator_sidecar_loses_nothing_and_calls_once(mesh: MeshHarness) -> None:
    mesh.create_queue("join", visibility_s=3)
    mesh.create_sink_queues()
    mesh.create_bucket()
    join = start_join(mesh)
    parent, children = fanned_out(n=5)
    mesh.send_many("join", children[:2])
    wait_for(lambda: len(state_keys(mesh, parent)) >= 3, timeout_s=30, what="two children recorded")

    join.signal_sidecar(signal.SIGKILL)
    join.wait_sidecar(timeout_s=10)
    mesh.send_many("join", children[2:4])  # arriving while no sidecar runs
    join.start_sidecar()
    mesh.send("join", children[4])

    [aggregate] = mesh.take("success-sink", 1)

    assert [item["i"] for item in aggregate["payload"]["items"]] == [0, 1, 2, 3, 4]
    mesh.assert_quiet("success-sink", "error-sink", wait_s=3)
    assert len(gather_calls(mesh)) == 1


def test_a_claim_holder_that_died_is_taken_over_by_its_own_redelivery_only(mesh: MeshHarness) -> None:
    """The replica that claimed the parent died before calling: its message comes back (same MessageId) and that
    delivery, and no other message of the same child, makes the one call."""
    mesh.create_queue("join", visibility_s=2)
    mesh.create_sink_queues()
    mesh.create_bucket()
    join = start_join(mesh)
    parent, children = fanned_out(n=3)
    mesh.send_many("join", children[:2])
    wait_for(lambda: len(state_keys(mesh, parent)) >= 3, timeout_s=30, what="two children recorded")
    join.stop_sidecar()

    # The replica that dies: it receives the last child, records it and claims the parent, then nothing more.
    mesh.send("join", children[2])
    url = mesh.queue_url("join")
    [held] = mesh.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=5)["Messages"]
    prefix = f"fanin/join/{parent.id}/"
    record = {"id": children[2].id, "payload": children[2].payload}
    mesh.s3.put_object(Bucket=mesh.bucket, Key=f"{prefix}000002.json", Body=json.dumps(record).encode())
    claim = {"holder": held["MessageId"], "kind": "call"}
    mesh.s3.put_object(Bucket=mesh.bucket, Key=f"{prefix}claim.json", Body=json.dumps(claim).encode(), IfNoneMatch="*")
    mesh.send("join", children[2])  # a duplicate of the same child (another message): it must not call
    join.start_sidecar()

    [aggregate] = mesh.take("success-sink", 1)  # after the held message's visibility ran out

    assert [item["i"] for item in aggregate["payload"]["items"]] == [0, 1, 2]
    mesh.assert_quiet("success-sink", "error-sink", wait_s=3)
    assert len(gather_calls(mesh)) == 1


def _replica(mesh: MeshHarness, name: str) -> ActorProcess:
    """A second process of actor ``join`` (its own socket, metrics port and log directory)."""
    settings = HandlerSettings(
        handler="sidecar_handlers.gather", language="python", search_path=(str(SUPPORT_DIR),),
        env={"ASYA_TEST_CALLS": str(mesh.calls_path)},
    )
    config = mesh.config("join", result_bucket=mesh.bucket, fanin_timeout="30s",
                         socket_path=str(mesh.workdir / f"{name}.sock"))
    process = ActorProcess(config=config, handler=settings, workdir=mesh.workdir / name, aws_env=AWS_ENV)
    mesh.actors.append(process)
    return process.start()


def test_two_aggregator_replicas_call_once_per_parent(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    start_join(mesh)
    _replica(mesh, "join-2")
    families = [fanned_out(n=8, key=f"p{k}") for k in range(3)]
    mixed = [child for index in range(8) for _, children in families for child in (children[index],)]
    mesh.send_many("join", mixed + mixed[::3])  # every third child twice, so replicas race on the same parent

    aggregates = mesh.take("success-sink", 3)

    by_parent = {a["fanin"]["parent_id"]: a for a in aggregates}
    assert set(by_parent) == {parent.id for parent, _ in families}
    for parent, _ in families:
        assert [item["i"] for item in by_parent[parent.id]["payload"]["items"]] == list(range(8))
    mesh.assert_quiet("success-sink", "error-sink", wait_s=3)
    calls = gather_calls(mesh)
    assert sorted(call["items"][0]["key"] for call in calls) == ["p0", "p1", "p2"]  # one call each
    assert len({call["pid"] for call in calls}) >= 1


def test_a_missing_child_gives_an_error_record_naming_its_index(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    start_join(mesh, timeout="3s")
    parent, children = fanned_out(n=4)
    started = time.monotonic()
    mesh.send_many("join", [children[0], children[1], children[3]])

    [record] = mesh.take("error-sink", 1, timeout_s=30)

    assert time.monotonic() - started >= 3
    error = record["status"]["error"]
    assert error["reason"] == FANIN_TIMEOUT and error["type"] == "FanInTimeout"
    assert "children [2]" in error["message"] and parent.id in error["message"]
    assert record["fanin"]["missing"] == [2]
    assert record["id"] == fanin_id(parent_id=parent.id, actor="join")
    assert [None if item is None else item["i"] for item in record["payload"]] == [0, 1, None, 3]
    mesh.send("join", children[2])  # too late: dropped, never called
    mesh.assert_quiet("success-sink", "error-sink", wait_s=3)
    assert gather_calls(mesh) == []


def test_an_error_ended_child_is_an_error_item_well_before_the_timeout(mesh: MeshHarness) -> None:
    once = Resiliency.model_validate({"policies": {"default": {"maxAttempts": 1}}})
    mesh.standard("split", "work", "join", resiliency=once, sinks=True)
    mesh.start_actor("split", handler="fan_out", resiliency=once)
    mesh.start_actor("work", handler="fail_on", resiliency=once, handler_env={"ASYA_TEST_FAIL_ON": "[1]"})
    start_join(mesh, timeout="20s", resiliency=once)
    parent = new_envelope(route=["split", "work", "join"], payload={"key": "p", "n": 3})
    started = time.monotonic()
    mesh.send("split", parent)

    aggregate_id = fanin_id(parent_id=parent.id, actor="join")
    records = wait_for(lambda: mesh.records("succeeded").get(aggregate_id), timeout_s=30, what="the aggregate")

    assert time.monotonic() - started < 15
    first, failed, last = records["payload"]["items"]
    assert first == {"key": "p", "i": 0} and last == {"key": "p", "i": 2}
    error = failed[ERROR_ITEM_FIELD]
    assert error["index"] == 1 and error["id"] == child_id(parent_id=parent.id, actor="split", index=1)
    assert error["type"] == "ValueError" and "refusing child 1" in error["message"]
    assert records["fanin"]["errors"] == [1]
    assert len(gather_calls(mesh)) == 1


def test_an_envelope_that_was_not_fanned_out_is_a_group_of_one(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    start_join(mesh)
    alone = new_envelope(route=["join"], payload={"key": "solo"})
    mesh.send("join", alone)

    [aggregate] = mesh.take("success-sink", 1)

    assert aggregate["id"] == alone.id and aggregate["payload"] == {"items": [{"key": "solo"}]}


def test_a_failed_aggregate_call_is_retried_as_the_aggregate(mesh: MeshHarness) -> None:
    fast = Resiliency.model_validate({"policies": {"default": {"maxAttempts": 3, "initialInterval": "100ms",
                                                               "jitter": False}}})
    mesh.create_queue("join", resiliency=fast)
    mesh.create_sink_queues()
    mesh.create_bucket()
    mesh.start_actor("join", handler="gather_failing_once", result_bucket=mesh.bucket, fanin_timeout="30s",
                     resiliency=fast, handler_env={"ASYA_TEST_FLAG": str(mesh.workdir / "failed-once")})
    parent, children = fanned_out(n=3)
    mesh.send_many("join", children)

    [aggregate] = mesh.take("success-sink", 1)

    assert [item["i"] for item in aggregate["payload"]["items"]] == [0, 1, 2]  # not a list of one list
    calls = gather_calls(mesh)
    assert len(calls) == 2 and calls[0]["items"] == calls[1]["items"]
    assert aggregate["id"] == fanin_id(parent_id=parent.id, actor="join")


def test_the_embedded_broker_decides_conditional_writes_like_s3(s3: Any) -> None:
    """What the claim rests on: of many concurrent ``If-None-Match: *`` writers of one key exactly one wins (the
    others get 412 PreconditionFailed or 409 ConditionalRequestConflict), and ``If-Match`` compares the ETag."""
    from concurrent.futures import ThreadPoolExecutor

    from botocore.exceptions import ClientError

    bucket = "asya-conditional-" + str(int(time.time() * 1000))
    s3.create_bucket(Bucket=bucket)

    def create(writer: int) -> str:
        try:
            s3.put_object(Bucket=bucket, Key="claim.json", Body=str(writer).encode(), IfNoneMatch="*")
            return "won"
        except ClientError as exc:
            return str(exc.response["Error"]["Code"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(create, range(32)))
    assert outcomes.count("won") == 1
    assert set(outcomes) - {"won"} <= {"PreconditionFailed", "ConditionalRequestConflict"}
    current = s3.get_object(Bucket=bucket, Key="claim.json")
    assert int(current["Body"].read()) == outcomes.index("won")
    try:
        s3.put_object(Bucket=bucket, Key="claim.json", Body=b"x", IfMatch='"0000"')
        raise AssertionError("If-Match with a wrong ETag was accepted")
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "PreconditionFailed"
    s3.put_object(Bucket=bucket, Key="claim.json", Body=b"y", IfMatch=current["ETag"])
    assert s3.get_object(Bucket=bucket, Key="claim.json")["Body"].read() == b"y"


def test_a_node_handler_gathers_too(mesh: MeshHarness) -> None:
    mesh.standard("join")
    mesh.create_bucket()
    mesh.start_actor("join", handler="gather", node=True, result_bucket=mesh.bucket, fanin_timeout="30s")
    _, children = fanned_out(n=3)
    mesh.send_many("join", children[::-1])

    [aggregate] = mesh.take("success-sink", 1)

    assert aggregate["payload"] == {"items": [{"key": "p", "i": i} for i in range(3)], "runtime": "node"}
    assert len(gather_calls(mesh)) == 1


def test_nested_fan_outs_gather_inside_out(mesh: MeshHarness) -> None:
    """split → split2 (each child fans out again) → join (gathers each child's children) → join2 (gathers the
    joins): the inner aggregate takes its parent's place among the outer children."""
    mesh.standard("split2", "join", "join2")
    mesh.create_bucket()
    mesh.start_actor("split2", handler="fan_out_twice")
    start_join(mesh)
    mesh.start_actor("join2", handler="gather", result_bucket=mesh.bucket, fanin_timeout="30s")
    parent, children = fanned_out(n=3, route=("split2", "join", "join2"))
    mesh.send_many("split2", children)

    [aggregate] = mesh.take("success-sink", 1)

    outer = aggregate["payload"]["items"]  # one item per outer child: join's answer for it
    assert [[item["j"] for item in inner["items"]] for inner in outer] == [[0, 1], [0, 1], [0, 1]]
    assert [[item["i"] for item in inner["items"]] for inner in outer] == [[0, 0], [1, 1], [2, 2]]
    assert aggregate["id"] == fanin_id(parent_id=parent.id, actor="join2") and aggregate["parent_id"] is None
    assert len(gather_calls(mesh)) == 4  # three inner parents, one outer
