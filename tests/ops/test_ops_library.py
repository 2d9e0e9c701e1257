"""The ops library (asya_pulumi/ops) against the real local broker: records, trace, replay.

Records are written straight into a test namespace's bucket the way the sinks write them (``{status}/{id}.json``),
so each case sets up exactly the mesh state it needs in milliseconds; the path through real sidecars is covered by
tests/runtime/test_sidecar_hops.py and tests/e2e/test_trace_replay.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from support.mesh import MeshHarness

from asya_pulumi.cli.main import main
from asya_pulumi.ops import replay
from asya_pulumi.ops.errors import OpsError
from asya_pulumi.ops.mesh_queues import MeshQueues
from asya_pulumi.ops.records import (
    RecordQuery,
    activity,
    find_bucket,
    find_records,
    parse_time,
    records_of,
    search,
)
from asya_pulumi.ops.trace import steps_of, trace
from asya_pulumi.records import traceparent_for
from asya_pulumi.spec.limits import result_bucket_prefix
from asya_runtime.envelope import new_envelope

T0 = 1_764_500_000.0


def _hop(actor: str, attempt: int, outcome: str, start: float, **extra: Any) -> dict[str, Any]:
    return {"actor": actor, "attempt": attempt, "start": start, "end": start + 0.25, "outcome": outcome,
            "replica": "r1", **extra}


def _failed(envelope_id: str, *, actor: str = "b", kind: str = "ValueError", **fields: Any) -> dict[str, Any]:
    envelope = new_envelope(route=["a", actor, "c"], payload={"n": envelope_id}, envelope_id=envelope_id)
    data = envelope.model_dump(mode="json")
    data["route"] = {"prev": ["a"], "curr": actor, "next": ["c"]}
    data["status"].update(attempt=2, max_attempts=2, error={
        "type": kind, "message": f"no {envelope_id}", "reason": "retries exhausted",
        "traceback": f"Traceback (most recent call last):\n{kind}: no {envelope_id}\n", "actor": actor})
    data["hops"] = [_hop("a", 1, "ok", T0), _hop(actor, 1, "retry", T0 + 1, error=kind),
                    _hop(actor, 2, "error", T0 + 2, error=kind)]
    return {**data, **fields}


def _succeeded(envelope_id: str, **fields: Any) -> dict[str, Any]:
    data = new_envelope(route=["a"], payload={}, envelope_id=envelope_id).model_dump(mode="json")
    data["route"] = {"prev": ["a", "b"], "curr": "success-sink", "next": []}
    data["hops"] = [_hop("a", 1, "ok", T0), _hop("b", 1, "ok", T0 + 1)]
    return {**data, **fields}


def _put(mesh: MeshHarness, status: str, record: dict[str, Any]) -> None:
    mesh.s3.put_object(Bucket=mesh.bucket, Key=f"{status}/{record['id']}.json", Body=json.dumps(record).encode())


@pytest.fixture
def meshed(mesh: MeshHarness) -> MeshHarness:
    """Queues for actors a, b, c and the sinks, and the bucket; no process runs."""
    for actor in ("a", "b", "c"):
        mesh.create_queue(actor)
    mesh.create_sink_queues()
    mesh.create_bucket()
    return mesh


def _queues(mesh: MeshHarness) -> MeshQueues:
    return MeshQueues(sqs=mesh.sqs, namespace=mesh.namespace)


# -- records --------------------------------------------------------------------------------------------------------


def test_the_bucket_is_found_by_the_local_name_the_aws_name_or_given(meshed: MeshHarness) -> None:
    assert find_bucket(s3=meshed.s3, namespace=meshed.namespace) == meshed.bucket
    assert find_bucket(s3=meshed.s3, namespace=meshed.namespace, bucket="given") == "given"
    other = "o" + meshed.namespace[1:]
    aws_name = result_bucket_prefix(namespace=other) + "2" * 26
    meshed.s3.create_bucket(Bucket=aws_name)
    meshed.s3.create_bucket(Bucket=result_bucket_prefix(namespace=other) + "x")  # not Pulumi's shape: ignored
    assert find_bucket(s3=meshed.s3, namespace=other) == aws_name
    with pytest.raises(OpsError, match="pass --bucket NAME"):
        find_bucket(s3=meshed.s3, namespace="n" + meshed.namespace[1:])


def test_records_are_filtered_by_actor_error_type_id_status_and_time(meshed: MeshHarness) -> None:
    _put(meshed, "failed", _failed("f1", actor="b", kind="ValueError"))
    _put(meshed, "failed", _failed("f2", actor="b", kind="KeyError"))
    _put(meshed, "failed", _failed("f3", actor="c", kind="ValueError"))
    _put(meshed, "succeeded", _succeeded("s1"))
    s3, bucket = meshed.s3, meshed.bucket

    def ids(**query: Any) -> list[str]:
        return sorted(r.id for r in find_records(s3=s3, bucket=bucket, query=RecordQuery(**query)))

    assert ids() == ["f1", "f2", "f3", "s1"]
    assert ids(status="failed", actor="b") == ["f1", "f2"]
    assert ids(actor="b") == ["f1", "f2", "s1"]  # a success counts for every actor it visited
    assert ids(error_type="ValueError") == ["f1", "f3"]
    assert ids(actor="b", error_type="ValueError") == ["f1"]
    assert ids(ids=("f3", "s1", "nope")) == ["f3", "s1"]
    assert ids(since=time.time() + 3600) == []
    assert ids(until=time.time() - 3600) == []
    assert len(ids(limit=2)) == 2
    assert ids(ids=("f1",), since=time.time() + 3600) == []  # the time window applies to looked-up ids too

    [row] = [f.to_json() for f in search(s3=s3, bucket=bucket, query=RecordQuery(ids=("f2",)))]
    assert abs(row["written"] - time.time()) < 120
    assert {k: row[k] for k in ("id", "status", "failed_actor", "error_type", "route", "hops", "started", "ended")} == {
        "id": "f2", "status": "failed", "failed_actor": "b", "error_type": "KeyError", "route": ["a", "b"],
        "hops": 3, "started": T0, "ended": T0 + 2.25,
    }


def test_a_fan_out_parent_without_a_record_is_found_through_its_childrens_parent_id_and_trace(
    meshed: MeshHarness,
) -> None:
    root = "7d3b0e52-2f39-4f0f-9d8d-0a0e6c1b9f10"
    trace_header = {"traceparent": traceparent_for(root)}
    _put(meshed, "succeeded", _succeeded("child-1", parent_id=root))
    _put(meshed, "failed", _failed("child-2", parent_id=root))
    _put(meshed, "succeeded", _succeeded("grandchild", parent_id="unrecorded-child", headers=trace_header))
    _put(meshed, "succeeded", _succeeded("stranger", parent_id="someone-else"))

    found = records_of(s3=meshed.s3, bucket=meshed.bucket, envelope_id=root)

    assert sorted(r.id for r in found) == ["child-1", "child-2", "grandchild"]
    traced = trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id=root)
    assert traced.state == "partly failed" and len(traced.branches) == 3

    queues = _queues(meshed)
    plan = replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=queues, query=RecordQuery(ids=("child-2",)))
    replay.send(plan, s3=meshed.s3, bucket=meshed.bucket, queues=queues)
    [sent] = meshed.take("b", 1)
    _put(meshed, "succeeded", _succeeded(sent["id"], parent_id=root, replay_of="child-2"))
    traced = trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id=root)
    assert traced.state == "replayed"  # the failed child's replay succeeded
    assert sorted(b.envelope_id for b in traced.branches) == sorted(["child-1", "child-2", "grandchild", sent["id"]])


def test_times_are_a_duration_ago_or_iso_8601_and_anything_else_names_both_forms() -> None:
    assert parse_time("2h", now=10_000.0) == 10_000.0 - 7200
    assert parse_time("2026-11-30T08:00:00", now=0) == parse_time("2026-11-30T08:00:00+00:00", now=0)
    with pytest.raises(OpsError, match="neither a duration ago"):
        parse_time("yesterday", now=0)


# -- trace ----------------------------------------------------------------------------------------------------------


def test_a_failed_record_traces_to_its_hops_with_the_error_on_the_last_step(meshed: MeshHarness) -> None:
    _put(meshed, "failed", _failed("f1"))

    found = trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id="f1", queues=_queues(meshed))

    assert found.state == "failed" and found.location is None
    [branch] = found.branches
    assert [(s.actor, s.attempt, s.outcome) for s in branch.steps] == [("a", 1, "ok"), ("b", 1, "retry"),
                                                                        ("b", 2, "error")]
    assert [s.waited_s for s in branch.steps] == [None, 0.75, 0.75]
    assert branch.steps[1].error_type == "ValueError" and branch.steps[1].error is None
    assert branch.steps[2].error is not None and "Traceback" in branch.steps[2].error["traceback"]
    assert json.loads(json.dumps(found.to_json()))["branches"][0]["steps"][2]["duration_s"] == 0.25


def test_a_summary_entry_and_a_record_without_history_become_steps() -> None:
    from asya_pulumi.records import FinalRecord

    folded = _succeeded("s")
    folded["hops"] = [{"summary": True, "count": 7, "start": T0, "end": T0 + 5, "outcomes": {"ok": 7}},
                      _hop("z", 1, "ok", T0 + 6)]
    steps = steps_of(FinalRecord(key="succeeded/s.json", envelope=folded))
    assert steps[0].folded == 7 and steps[0].outcome == "7 ok" and steps[1].waited_s == 1.0
    bare = _failed("f")
    del bare["hops"]
    [only] = steps_of(FinalRecord(key="failed/f.json", envelope=bare))
    assert only.actor == "b" and only.outcome == "error" and only.error is not None


def test_an_envelope_in_a_queue_is_reported_in_flight_without_costing_it_a_delivery(meshed: MeshHarness) -> None:
    envelope = new_envelope(route=["b"], payload={})
    meshed.send("b", envelope)

    found = trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id=envelope.id, queues=_queues(meshed))

    assert found.state == "in flight" and found.location is not None
    assert [d.actor for d in found.location.busy] == ["b"] and found.location.dlq is None
    [message] = meshed.sqs.receive_message(QueueUrl=meshed.queue_url("b"), AttributeNames=["All"])["Messages"]
    assert message["Attributes"]["ApproximateReceiveCount"] == "1"  # trace did not receive it


def test_an_envelope_in_a_dlq_is_found_there_and_left_in_place(meshed: MeshHarness) -> None:
    envelope = new_envelope(route=["b"], payload={})
    dlq = meshed.sqs.get_queue_url(QueueName=meshed.queue("b") + "_dlq")["QueueUrl"]
    meshed.sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps({"poison": True}))
    meshed.sqs.send_message(QueueUrl=dlq, MessageBody=envelope.to_json())

    found = trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id=envelope.id, queues=_queues(meshed))

    assert found.state == "dead-lettered" and found.location is not None and found.location.dlq == "b"
    visible = meshed.sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert len(visible) == 2  # both released at once, not hidden for the look's visibility timeout


def test_an_unknown_id_is_not_found(meshed: MeshHarness) -> None:
    assert trace(s3=meshed.s3, bucket=meshed.bucket, envelope_id="nobody", queues=_queues(meshed)).state == (
        "not found"
    )


# -- replay ---------------------------------------------------------------------------------------------------------


def test_a_replay_resets_attempts_keeps_the_rest_and_is_recorded_once(meshed: MeshHarness) -> None:
    _put(meshed, "failed", _failed("f1", headers={"traceparent": traceparent_for("f1"), "x": 1}))
    queues = _queues(meshed)
    query = RecordQuery(actor="b")

    plan = replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=queues, query=query)
    result = replay.send(plan, s3=meshed.s3, bucket=meshed.bucket, queues=queues)

    assert [item.original_id for item in result.sent] == ["f1"] and not result.refused
    [sent] = meshed.take("b", 1)
    assert sent["id"] == replay.replay_id("f1") and sent["replay_of"] == "f1"
    fresh = {key: sent["status"].pop(key) for key in ("created_at", "updated_at")}
    assert all(fresh.values())  # a new envelope: stamped now, like any other (docs/asya-compat.md)
    assert sent["status"] == {"attempt": 1, "max_attempts": None, "deadline_at": None, "error": None,
                              "first_attempt_at": None, "phase": "pending", "actor": "b", "reason": None}
    assert sent["route"] == {"prev": ["a"], "curr": "b", "next": ["c"]}
    assert sent["headers"]["x"] == 1 and sent["payload"] == {"n": "f1"} and len(sent["hops"]) == 3
    marker = replay.read_marker(s3=meshed.s3, bucket=meshed.bucket, original_id="f1")
    assert marker is not None and marker.replay_id == sent["id"] and marker.to == "b"

    again = replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=queues, query=query)
    assert again.to_send == [] and again.skipped[0].skipped == f"already replayed as {sent['id']}"

    _put(meshed, "failed", _failed("f2"))
    _put(meshed, "failed", _failed("f3"))
    limited = replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=queues,
                                  query=RecordQuery(actor="b", limit=1))
    assert len(limited.to_send) == 1 and limited.to_send[0].original_id in ("f2", "f3")  # f1 does not use it up


def test_records_that_cannot_be_replayed_are_skipped_with_the_reason(meshed: MeshHarness) -> None:
    _put(meshed, "failed", _failed("cut", payload={"truncated": True, "bytes": 2_000_000}))
    _put(meshed, "failed", {"id": "raw", "raw_body": "{not json", "reason": "malformed envelope"})
    _put(meshed, "failed", _failed("ghostly", actor="ghost"))
    plan = replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=_queues(meshed),
                               query=RecordQuery(status="failed"))
    reasons = {item.original_id: item.skipped for item in plan.items}
    assert "payload was dropped" in str(reasons["cut"])
    assert "no envelope" in str(reasons["raw"])
    assert "does not exist" in str(reasons["ghostly"])
    with pytest.raises(OpsError, match="reserved for the mesh's built-in sink"):
        replay.plan_records(s3=meshed.s3, bucket=meshed.bucket, queues=_queues(meshed), query=RecordQuery(),
                            to="success-sink")


def test_dlq_messages_are_replayed_and_removed_and_a_dry_run_gives_them_back(meshed: MeshHarness) -> None:
    queues = _queues(meshed)
    dlq = queues.dlq_url("b")
    tired = new_envelope(route=["b", "c"], payload={"k": 1})
    tired = tired.model_copy(update={"status": tired.status.model_copy(update={"attempt": 3})})
    meshed.sqs.send_message(QueueUrl=dlq, MessageBody=tired.to_json())
    meshed.sqs.send_message(QueueUrl=dlq, MessageBody="not an envelope")

    dry = replay.plan_dlq(s3=meshed.s3, bucket=meshed.bucket, queues=queues, actor="b")
    assert [i.original_id for i in dry.to_send] == [tired.id] and len(dry.skipped) == 1
    replay.release(dry, queues=queues)
    assert queues.depth(dlq).visible == 2

    plan = replay.plan_dlq(s3=meshed.s3, bucket=meshed.bucket, queues=queues, actor="b", ids=[tired.id])
    result = replay.send(plan, s3=meshed.s3, bucket=meshed.bucket, queues=queues)

    assert [i.original_id for i in result.sent] == [tired.id]
    [sent] = meshed.take("b", 1)
    assert sent["replay_of"] == tired.id and sent["status"]["attempt"] == 1
    time.sleep(0.2)
    assert queues.depth(dlq).visible == 1  # the replayed one is gone; the other one stays, visible again


def test_replay_refuses_an_unfiltered_run_and_dlq_with_error_filters(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "--namespace", "x"]) == 2
    assert "say which failures to replay" in capsys.readouterr().err
    assert main(["replay", "--from-dlq", "b", "--error-type", "ValueError", "--namespace", "x"]) == 2
    assert "--from-dlq takes DLQ messages, which carry no error" in capsys.readouterr().err


def test_the_commands_find_a_dead_lettered_envelope_and_replay_it_from_the_dlq(
    meshed: MeshHarness, capsys: pytest.CaptureFixture[str]
) -> None:
    where = ["--sqs-endpoint", meshed.broker.endpoint, "--namespace", meshed.namespace]
    envelope = new_envelope(route=["b"], payload={"k": 1})
    meshed.sqs.send_message(QueueUrl=_queues(meshed).dlq_url("b"), MessageBody=envelope.to_json())

    assert main(["trace", envelope.id, *where]) == 1
    text = capsys.readouterr().out
    assert f"envelope {envelope.id}: dead-lettered" in text
    assert f"asya replay --from-dlq b --id {envelope.id}" in text

    assert main(["replay", "--from-dlq", "b", "--dry-run", "--json", *where]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert planned["dry_run"] is True and [i["original_id"] for i in planned["send"]] == [envelope.id]

    assert main(["replay", "--from-dlq", "b", "--id", envelope.id, *where]) == 0
    assert "sent 1 replay(s)" in capsys.readouterr().out
    [sent] = meshed.take("b", 1)
    assert sent["replay_of"] == envelope.id


def test_activity_counts_each_attempt_once_even_when_fan_out_copied_it(meshed: MeshHarness) -> None:
    _put(meshed, "failed", _failed("f1"))  # a ok; b retry, b error
    shared = _hop("a", 1, "ok", T0 + 10)
    _put(meshed, "succeeded", _succeeded("s1", hops=[shared, _hop("b", 1, "ok", T0 + 11)]))
    _put(meshed, "succeeded", _succeeded("s2", hops=[shared, _hop("b", 1, "ok", T0 + 12)]))

    counts = activity(s3=meshed.s3, bucket=meshed.bucket, since=T0 - 1)

    assert counts["a"].to_json() == {"attempts": 2, "retries": 0, "errors": 0, "error_rate": 0.0}
    assert counts["b"].to_json() == {"attempts": 4, "retries": 1, "errors": 1, "error_rate": 0.25}
    assert activity(s3=meshed.s3, bucket=meshed.bucket, since=T0 + 11.5)["b"].attempts == 1  # only s2's b ended since
