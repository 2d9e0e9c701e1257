"""Hop history (runtime/asya_runtime/sidecar/hops.py): every finished attempt leaves one entry in the envelope.

The sidecar tests run the real sidecars and handler servers against the shared local broker and read what the
sinks stored; the bounding rules are checked on the pure functions too, where every fold is cheap to enumerate.
"""

from __future__ import annotations

import itertools
import json
import time

import pytest
from support.mesh import MeshHarness

from asya_runtime.envelope import child_id, new_envelope
from asya_runtime.resiliency import Resiliency
from asya_runtime.sidecar import hops


def _path(record: dict) -> list[tuple[str, int, str]]:  # type: ignore[type-arg]
    return [(h["actor"], h["attempt"], h["outcome"]) for h in record["hops"]]


def test_three_actors_leave_three_timed_entries_in_order(mesh: MeshHarness) -> None:
    mesh.standard("a", "b", "c", sinks=True)
    for actor in ("a", "b", "c"):
        mesh.start_actor(actor, handler="slow")
    before = time.time()
    envelope = new_envelope(route=["a", "b", "c"], payload={"key": "h", "sleep_s": 0.05})
    mesh.send("a", envelope)

    record = mesh.wait_records("succeeded", 1)[envelope.id]
    after = time.time()

    assert _path(record) == [("a", 1, "ok"), ("b", 1, "ok"), ("c", 1, "ok")]
    entries = record["hops"]
    for entry in entries:
        assert before <= entry["start"] <= entry["end"] <= after, entry
        assert entry["end"] - entry["start"] >= 0.05 - 0.002, entry  # the handler's sleep is inside the hop
        assert entry["start"] == round(entry["start"], 3) and entry["replica"]
    for earlier, later in itertools.pairwise(entries):
        assert earlier["end"] <= later["start"]
    assert len({e["replica"] for e in entries}) == 3  # three processes, three names


def test_a_retried_then_failed_envelope_shows_each_attempt_and_its_error(mesh: MeshHarness) -> None:
    resiliency = Resiliency.model_validate(
        {"policies": {"default": {"maxAttempts": 2, "initialInterval": "50ms", "jitter": False}}}
    )
    mesh.standard("first", sinks=True)
    mesh.standard("flaky", resiliency=resiliency)
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("flaky", handler="fail", resiliency=resiliency)
    envelope = new_envelope(route=["first", "flaky"], payload={"key": "r"})
    mesh.send("first", envelope)

    record = mesh.wait_records("failed", 1)[envelope.id]

    assert _path(record) == [("first", 1, "ok"), ("flaky", 1, "retry"), ("flaky", 2, "error")]
    retry, final = record["hops"][1:]
    assert retry["error"] == final["error"] == "ValueError" and "error" not in record["hops"][0]
    assert final["start"] - retry["end"] >= 0.05 - 0.002  # the backoff lies between the two attempts
    error = record["status"]["error"]
    assert error["type"] == "ValueError" and "refusing r" in error["message"] and "ValueError" in error["traceback"]


def test_fan_out_children_carry_the_parents_history_as_their_prefix(mesh: MeshHarness) -> None:
    mesh.standard("first", "split", sinks=True)
    mesh.start_actor("first", handler="identity")
    mesh.start_actor("split", handler="fan_out")
    parent = new_envelope(route=["first", "split"], payload={"key": "p", "n": 3})
    mesh.send("first", parent)

    records = mesh.wait_records("succeeded", 3)

    children = [child_id(parent_id=parent.id, actor="split", index=i) for i in range(3)]
    assert sorted(records) == sorted(children)
    first_hops = {json.dumps(records[c]["hops"][0], sort_keys=True) for c in children}
    assert len(first_hops) == 1  # one parent entry, copied into every child
    split_hops = {json.dumps(records[c]["hops"][1], sort_keys=True) for c in children}
    assert len(split_hops) == 1  # one attempt of `split` produced all three
    for cid in children:
        assert records[cid]["parent_id"] == parent.id
        assert _path(records[cid]) == [("first", 1, "ok"), ("split", 1, "ok")]


def test_a_route_longer_than_the_cap_folds_the_oldest_hops_into_one_summary(mesh: MeshHarness) -> None:
    extra = 6
    total = hops.MAX_HOPS + extra
    mesh.standard("loop", sinks=True)
    mesh.start_actor("loop", handler="identity")
    envelope = new_envelope(route=["loop"] * total, payload={"key": "l"})
    mesh.send("loop", envelope)

    record = mesh.wait_records("succeeded", 1, timeout_s=120)[envelope.id]

    entries = record["hops"]
    assert len(entries) == hops.MAX_HOPS
    head, rest = entries[0], entries[1:]
    assert head["summary"] is True and head["count"] == extra + 1 and head["outcomes"] == {"ok": extra + 1}
    assert head["start"] <= head["end"] <= rest[0]["start"]
    assert all(not e.get("summary") and e["actor"] == "loop" for e in rest)
    assert len(record["route"]["prev"]) == total  # the route itself is not bounded; only its history is


def _entry(index: int, outcome: str = "ok") -> dict:  # type: ignore[type-arg]
    return hops.entry(actor=f"x{index}", attempt=1, start=float(index), end=index + 0.5, outcome=outcome)


def test_appending_past_the_cap_keeps_the_newest_entries_and_counts_every_folded_one() -> None:
    history: list[dict] = []  # type: ignore[type-arg]
    for index in range(10):
        before = list(history)
        history = hops.appended(history, _entry(index, "retry" if index % 3 == 0 else "ok"), cap=4)
        assert history[: len(before)] == before or history[0].get("summary")  # never edits in place
        assert len(history) == min(index + 1, 4)
    assert [e["actor"] for e in history[1:]] == ["x7", "x8", "x9"]
    assert history[0] == {
        "summary": True,
        "count": 7,
        "start": 0.0,
        "end": 6.5,
        "outcomes": {"retry": 3, "ok": 4},  # x0, x3, x6 were retries
    }


def test_the_parents_list_is_never_changed_by_a_childs_append() -> None:
    parent = [_entry(0), _entry(1)]
    snapshot = json.dumps(parent)
    child = hops.appended(parent, _entry(2), cap=2)
    assert json.dumps(parent) == snapshot and child[0]["summary"] and child[1]["actor"] == "x2"


def test_a_cap_below_two_is_refused_naming_the_minimum() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        hops.appended([], _entry(0), cap=1)


def test_the_replica_is_the_pod_name_on_kubernetes_and_host_pid_elsewhere() -> None:
    assert hops.replica_name(environ={"HOSTNAME": "ocr-6d4f-abcde", "KUBERNETES_SERVICE_HOST": "10.0.0.1"}) == (
        "ocr-6d4f-abcde"
    )
    assert hops.replica_name(environ={"HOSTNAME": "laptop"}).startswith("laptop:")
