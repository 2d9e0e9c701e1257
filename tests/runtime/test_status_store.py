"""The status store against a real DynamoDB API (moto's server over HTTP): conditional writes keep every item moving
forward whatever order the writes come in, reads batch and page, and the table is the one the schema defines."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from support.status_table import StatusTable

from asya_runtime.status import (
    INLINE_PAYLOAD_MAX_BYTES,
    RunningUpdate,
    StatusStore,
    iso_timestamp,
    status_table_name,
    table_definition,
)
from asya_runtime.status.schema import FLY_KEEP

Scenario = Callable[[StatusStore], Awaitable[Any]]


def run(table: StatusTable, scenario: Scenario) -> Any:
    async def main() -> Any:
        async with table.store() as store:
            return await scenario(store)

    return asyncio.run(main())


def running(id: str, *, seq: int, actor: str = "a", **extra: Any) -> RunningUpdate:
    return RunningUpdate(id=id, actor=actor, attempt=1, seq=seq, **extra)


def test_the_table_is_named_per_mesh_and_defined_once() -> None:
    assert status_table_name("prod") == "asya-prod_status"
    definition = table_definition(table_name="asya-prod_status")
    (index,) = definition["GlobalSecondaryIndexes"]
    assert index["IndexName"] == "by_status" and index["Projection"] == {"ProjectionType": "KEYS_ONLY"}
    assert [k["AttributeName"] for k in index["KeySchema"]] == ["status", "created_at"]
    assert definition["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_the_created_table_has_the_index_and_ttl(status_table: StatusTable) -> None:
    described = status_table.client.describe_table(TableName=status_table.name)["Table"]
    assert [i["IndexName"] for i in described["GlobalSecondaryIndexes"]] == ["by_status"]
    ttl = status_table.client.describe_time_to_live(TableName=status_table.name)["TimeToLiveDescription"]
    assert ttl == {"AttributeName": "expires_at", "TimeToLiveStatus": "ENABLED"}


def test_create_pending_is_idempotent(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[bool, bool, Any]:
        first = await store.create_pending(id="e1", route="r", idempotency_key="k1")
        second = await store.create_pending(id="e1", route="other")
        return first, second, await store.get(id="e1")

    first, second, record = run(status_table, scenario)
    assert (first, second) == (True, False)
    assert record.status == "pending" and record.route == "r" and record.idempotency_key == "k1"
    assert record.created_at.endswith("Z") and len(record.created_at) == len("2026-12-07T21:04:05.123Z")
    assert record.expires_at is not None and not record.sent


def test_a_late_running_never_overwrites_a_terminal_state(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[int, int, bool, Any]:
        await store.create_pending(id="e1", route="r")
        before = await store.report_running(updates=[running("e1", seq=0)])
        await store.finish(id="e1", status="succeeded", payload_json='{"x": 1}')
        late = await store.report_running(updates=[running("e1", seq=5, actor="b")])
        again = await store.finish(id="e1", status="failed", error={"type": "E", "message": "m", "reason": "r"})
        return before, late, again, await store.get(id="e1")

    before, late, again, record = run(status_table, scenario)
    assert (before, late, again) == (1, 0, False)
    assert record.status == "succeeded" and record.actor == "a" and record.error is None
    assert json.loads(record.payload) == {"x": 1}


def test_an_earlier_hop_never_overwrites_a_later_one(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[int, int, Any]:
        await store.create_pending(id="e1", route="r")
        later = await store.report_running(updates=[running("e1", seq=2, actor="c")])
        earlier = await store.report_running(updates=[running("e1", seq=1, actor="b")])
        return later, earlier, await store.get(id="e1")

    later, earlier, record = run(status_table, scenario)
    assert (later, earlier) == (1, 0)
    assert (record.status, record.actor, record.seq) == ("running", "c", 2)


def test_a_batch_of_running_writes_each_and_creates_fanout_children(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[int, Any, Any]:
        await store.create_pending(id="p", route="r")
        written = await store.report_running(updates=[
            running("p", seq=1, fanout={"actor": "split", "count": 2}),
            running("p-c0", seq=2, parent_id="p"),
            running("p-c1", seq=2, parent_id="p"),
        ])
        return written, await store.get(id="p"), await store.get_many(ids=["p-c0", "p-c1", "nope"])

    written, parent, children = run(status_table, scenario)
    assert written == 3
    assert parent.fanout == {"actor": "split", "count": 2}
    assert sorted(children) == ["p-c0", "p-c1"]
    assert {c.parent_id for c in children.values()} == {"p"} and all(c.created_at for c in children.values())


def test_cancel_unless_terminal_and_unknown_ids_are_told_apart(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[Any, ...]:
        await store.create_pending(id="a", route="r")
        await store.create_pending(id="b", route="r")
        await store.finish(id="b", status="succeeded", payload_json="1")
        canceled = await store.cancel(id="a")
        finished = await store.finish(id="a", status="succeeded", payload_json="2")
        return canceled, finished, await store.cancel(id="b"), await store.cancel(id="missing"), \
            await store.canceled_among(ids=["a", "b", "missing", "a"])

    canceled, finished, terminal, missing, among = run(status_table, scenario)
    assert (canceled, finished, terminal, missing) == ("canceled", False, "succeeded", None)
    assert among == {"a"}


def test_a_large_payload_is_kept_by_reference(status_table: StatusTable) -> None:
    big = json.dumps("x" * INLINE_PAYLOAD_MAX_BYTES)

    async def scenario(store: StatusStore) -> tuple[Any, Exception | None]:
        await store.finish(id="e", status="succeeded", payload_json=big, payload_ref="s3://b/succeeded/e.json")
        try:
            await store.finish(id="f", status="succeeded", payload_json=big)
        except ValueError as exc:
            return await store.get(id="e"), exc
        return await store.get(id="e"), None

    record, refused = run(status_table, scenario)
    assert record.payload is None and record.payload_ref == "s3://b/succeeded/e.json"
    assert refused is not None and "payload_ref" in str(refused)


def test_fly_events_keep_the_last_twenty_and_the_progress(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[Any, Any, Any]:
        await store.create_pending(id="e", route="r")
        await store.report_running(updates=[running("e", seq=0)])
        log = await store.report_fly(id="e", events=[{"i": i} for i in range(15)], progress=10)
        log = await store.report_fly(id="e", events=[{"i": i} for i in range(15, 30)], progress=55.5, known=log)
        # a second writer (the next hop) appends without knowing the list: the head is cut back to 20
        other = await store.report_fly(id="e", events=[{"i": 30}], progress=None)
        await store.finish(id="e", status="canceled")
        after = await store.report_fly(id="e", events=[{"i": 99}], progress=90)
        return other, after, await store.get(id="e")

    other, after, record = run(status_table, scenario)
    assert after is None
    assert record.fly_seq == 31 and other.seq == 31
    assert [e["i"] for e in record.fly_events()] == list(range(31 - FLY_KEEP, 31))
    assert record.progress == 55.5
    api = record.to_api()
    assert api["status"] == "canceled" and api["data"]["progress"] == 55.5 and len(api["data"]["fly"]) == FLY_KEEP


def test_an_oversized_fly_event_is_kept_as_a_note(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> Any:
        await store.create_pending(id="e", route="r")
        await store.report_fly(id="e", events=["y" * 5000])
        return await store.get(id="e")

    record = run(status_table, scenario)
    assert record.fly_events() == [{"truncated": True, "bytes": 5002}]


def test_list_is_newest_first_per_status_or_all(status_table: StatusTable) -> None:
    async def scenario(store: StatusStore) -> tuple[Any, ...]:
        for i in range(7):
            await store.create_pending(id=f"e{i}", route="r", created_at=f"2026-12-07T20:00:0{i}.000Z")
        for i in (1, 4):
            await store.finish(id=f"e{i}", status="failed", error={"type": "E", "message": "m", "reason": "x"})
        everything = await store.list(limit=3, offset=1)
        failed = await store.list(status="failed")
        return everything, failed

    everything, failed = run(status_table, scenario)
    assert [r.id for r in everything.records] == ["e5", "e4", "e3"] and everything.total == 7
    assert [r.id for r in failed.records] == ["e4", "e1"] and failed.total == 2


def test_get_many_asks_in_batches_of_a_hundred(status_table: StatusTable) -> None:
    ids = [f"e{i:03d}" for i in range(230)]

    async def scenario(store: StatusStore) -> Any:
        await asyncio.gather(*(store.create_pending(id=i, route="r") for i in ids))
        return await store.get_many(ids=[*ids, "missing"])

    assert sorted(run(status_table, scenario)) == ids


@pytest.mark.parametrize(("kwargs", "problem"), [
    ({"status": "done"}, "status 'done'"), ({"limit": 0}, "limit is 0"), ({"offset": -1}, "offset is -1"),
])
def test_a_bad_listing_is_refused_with_the_fix(status_table: StatusTable, kwargs: Any, problem: str) -> None:
    async def scenario(store: StatusStore) -> Any:
        return await store.list(**kwargs)

    with pytest.raises(ValueError, match=problem):
        run(status_table, scenario)


def test_timestamps_are_iso_utc_with_milliseconds() -> None:
    import datetime

    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=datetime.UTC)
    assert iso_timestamp(moment) == "2026-01-02T03:04:05.678Z"


def test_the_send_lease_goes_to_one_holder_at_a_time(status_table: StatusTable) -> None:
    """``claim_send``: the creator holds the lease; nobody else gets it while it lasts, anybody once it was given
    back; never once the envelope was sent or ended. A record written without a lease is claimable at once."""

    async def scenario(store: StatusStore) -> list[bool]:
        await store.create_pending(id="k1", route="r", send_claim="first")
        await store.create_pending(id="k2", route="r")  # an older record: no lease
        await store.create_pending(id="k3", route="r", send_claim="first")
        await store.cancel(id="k3")
        return [
            await store.claim_send(id="k1", claim="second"),   # held by the creator
            await store.release_send(id="k1", claim="second"),  # not the holder: nothing given back
            await store.release_send(id="k1", claim="first"),
            await store.claim_send(id="k1", claim="second"),   # given back: taken
            await store.claim_send(id="k1", claim="third"),    # held again
            await store.mark_sent(id="k1"),
            await store.claim_send(id="k1", claim="fourth"),   # sent: nobody sends again
            await store.claim_send(id="k2", claim="any"),
            await store.claim_send(id="k3", claim="any"),      # canceled before it was sent
        ]

    assert run(status_table, scenario) == [False, False, True, True, False, True, False, True, False]
    item = status_table.item("k1")
    assert item is not None and item["send_claim"] == {"S": "second"}


def test_a_lease_that_ran_out_can_be_taken(status_table: StatusTable) -> None:
    now = [1_000_000.0]

    async def scenario(store: StatusStore) -> list[bool]:
        clocked = StatusStore(table=store.table, call=store._call, clock=lambda: now[0])
        await clocked.create_pending(id="c1", route="r", send_claim="crashed", send_lease_s=60)
        before = await clocked.claim_send(id="c1", claim="retry")
        now[0] += 61
        return [before, await clocked.claim_send(id="c1", claim="retry")]

    assert run(status_table, scenario) == [False, True]
