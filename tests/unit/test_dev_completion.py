"""When is an ``asya dev`` run over? Attribution of final records to inputs, and two quiet polls (see results.py)."""

from __future__ import annotations

from typing import Any

from asya_pulumi.local.results import RunTracker
from asya_pulumi.records import FinalRecord, trace_id_of, traceparent_for, with_trace
from asya_runtime.envelope import child_id, new_envelope


def _record(envelope_id: str, *, parent_id: str | None = None, headers: dict[str, Any] | None = None,
            failed: bool = False) -> FinalRecord:
    status = "failed" if failed else "succeeded"
    body = {"id": envelope_id, "parent_id": parent_id, "headers": headers or {}, "route": {"prev": [], "curr": "x"}}
    return FinalRecord(key=f"{status}/{envelope_id}.json", envelope=body)


def test_the_trace_id_is_the_input_id_and_survives_in_headers():
    envelope = with_trace(new_envelope(route=["a"], payload={}))
    assert trace_id_of(envelope.headers) == envelope.id.replace("-", "")
    assert traceparent_for(envelope.id).startswith("00-") and len(traceparent_for(envelope.id)) == 55
    user_set = new_envelope(route=["a"], payload={}, headers={"traceparent": "00-" + "a" * 32 + "-" + "b" * 16 + "-01"})
    assert with_trace(user_set).headers == user_set.headers  # the sender's trace is kept


def test_records_are_attributed_by_id_parent_id_and_trace():
    plain, fanned, nested = (with_trace(new_envelope(route=["a", "b"], payload={"n": i})) for i in range(3))
    tracker = RunTracker(inputs=[plain, fanned, nested])
    child = child_id(parent_id=nested.id, actor="a", index=0)
    grandchild = child_id(parent_id=child, actor="b", index=1)  # its parent never reaches a sink
    taken = tracker.add([
        _record(plain.id, headers=plain.headers),
        _record(child_id(parent_id=fanned.id, actor="a", index=0), parent_id=fanned.id),
        _record(child_id(parent_id=fanned.id, actor="a", index=1), parent_id=fanned.id, failed=True),
        _record(grandchild, parent_id=child, headers=nested.headers),
        _record("someone-else", headers={"traceparent": traceparent_for("0" * 32)}),  # not this run's
    ])
    assert taken == 4
    assert tracker.finished_inputs == {plain.id, fanned.id, nested.id}
    assert tracker.owner[grandchild] == nested.id
    assert [tracker.owner[r.id] for r in tracker.ordered_records()] == [plain.id, fanned.id, fanned.id, nested.id]


def test_complete_needs_every_input_and_two_consecutive_quiet_polls():
    first, second = (with_trace(new_envelope(route=["a"], payload={})) for _ in range(2))
    tracker = RunTracker(inputs=[first, second])
    tracker.add([_record(first.id)])
    tracker.observe_queues(all_empty=True, new_records=0, now=1.0)
    tracker.observe_queues(all_empty=True, new_records=0, now=2.0)
    assert tracker.quiescent and not tracker.complete  # quiet, but `second` has no record: dead-lettered or lost
    assert tracker.missing_inputs() == [second]

    tracker.add([_record(second.id)])
    tracker.observe_queues(all_empty=True, new_records=1, now=3.0)  # a record arrived: not quiet
    assert not tracker.quiescent
    tracker.observe_queues(all_empty=True, new_records=0, now=4.0)
    assert not tracker.complete  # one quiet poll is not enough
    tracker.observe_queues(all_empty=False, new_records=0, now=5.0)  # a retry became visible: start over
    tracker.observe_queues(all_empty=True, new_records=0, now=6.0)
    tracker.observe_queues(all_empty=True, new_records=0, now=7.0)
    assert tracker.complete and tracker.quiet_since == 6.0
