"""The Mesh API over real HTTP: submit → the envelope on the first queue with a pending record; get, list, cancel,
idempotency; a terminal record's payload inline or from the result bucket; a fan-out parent's children."""

from __future__ import annotations

import json
import threading
import time
from datetime import datetime, timedelta
from typing import Any

from asya_runtime.envelope import child_id
from asya_runtime.status import RunningUpdate, StatusStore
from gateway.conftest import Gateway


def submit(gateway: Gateway, query: str, body: Any = None, **headers: str) -> str:
    with gateway.http() as http:
        answer = http.post(f"/api/v1/mesh/?{query}", json=body if body is not None else {}, headers=headers)
    assert answer.status_code == 201, answer.text
    envelope_id = answer.json()["id"]
    assert isinstance(envelope_id, str)
    return envelope_id


def get(gateway: Gateway, envelope_id: str) -> dict[str, Any]:
    with gateway.http() as http:
        answer = http.get(f"/api/v1/mesh/{envelope_id}")
    assert answer.status_code == 200, answer.text
    view: dict[str, Any] = answer.json()
    return view


def test_health_answers(gateway: Gateway) -> None:
    with gateway.http() as http:
        assert http.get("/health").json() == {"status": "ok"}


def test_a_submission_to_an_actor_is_sent_tracked_and_pending(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "actor=slow", {"payload": {"n": 1}, "headers": {"trace": "t-1"}, "timeout": 30})
    [envelope] = gateway.sent("slow")
    assert envelope["id"] == envelope_id
    assert envelope["route"] == {"prev": [], "curr": "slow", "next": []}
    assert envelope["payload"] == {"n": 1}
    assert envelope["headers"] == {"trace": "t-1", "x-asya-tracked": "1"}
    deadline = datetime.fromisoformat(envelope["status"]["deadline_at"])
    assert 25 < (deadline - datetime.now(deadline.tzinfo)).total_seconds() <= 30
    view = get(gateway, envelope_id)
    assert view["id"] == envelope_id and view["status"] == "pending"
    assert view["created_at"].endswith("Z") and view["updated_at"].endswith("Z")
    assert view["data"]["route"] == "slow"
    assert view["data"]["deadline_at"].endswith("Z")
    assert datetime.fromisoformat(view["data"]["deadline_at"]) - deadline < timedelta(milliseconds=1)
    assert gateway.table.item(envelope_id)["sent"] == {"BOOL": True}  # type: ignore[index]


def test_a_named_route_sends_its_whole_route(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "route=pipeline", {"payload": {"text": "hi"}})
    [envelope] = gateway.sent("prep")
    assert envelope["id"] == envelope_id
    assert envelope["route"] == {"prev": [], "curr": "prep", "next": ["done"]}
    assert get(gateway, envelope_id)["data"]["route"] == "pipeline"


def test_the_same_idempotency_key_gives_the_same_id_and_one_send(gateway: Gateway) -> None:
    first = submit(gateway, "actor=done", {"payload": {"x": 1}}, **{"Idempotency-Key": "order-17"})
    again = submit(gateway, "actor=done", {"payload": {"x": 1}}, **{"Idempotency-Key": "order-17"})
    other = submit(gateway, "actor=done", {"payload": {"x": 1}}, **{"Idempotency-Key": "order-18"})
    assert first == again != other
    sent = gateway.sent("done")
    assert sorted(e["id"] for e in sent) == sorted([first, other])


def test_a_key_whose_first_send_never_happened_is_sent_by_its_retry(gateway: Gateway) -> None:
    """A crash between storing `pending` and sending leaves `sent` false: the retry with the key sends it."""
    from asya_runtime.gateway.requests import submission_id

    key = "crashed-before-send"
    envelope_id = submission_id(namespace=gateway.config.namespace, idempotency_key=key)

    async def crashed(store: StatusStore) -> None:
        assert await store.create_pending(id=envelope_id, route="done", actor="done", idempotency_key=key)

    gateway.store(crashed)
    assert gateway.sent("done", wait_s=0.2) == []
    assert submit(gateway, "actor=done", {"payload": {}}, **{"Idempotency-Key": key}) == envelope_id
    assert [e["id"] for e in gateway.sent("done")] == [envelope_id]
    assert gateway.table.item(envelope_id)["sent"] == {"BOOL": True}  # type: ignore[index]


def test_running_then_succeeded_with_the_payload_inline(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "route=pipeline", {"payload": {"text": "a"}})

    async def run(store: StatusStore) -> None:
        await store.report_running(updates=[RunningUpdate(id=envelope_id, actor="prep", attempt=1, seq=0)])

    gateway.store(run)
    view = get(gateway, envelope_id)
    assert view["status"] == "running" and view["data"]["actor"] == "prep"

    async def finish(store: StatusStore) -> None:
        await store.finish(id=envelope_id, status="succeeded", payload_json=json.dumps({"text": "A"}), actor="done")

    gateway.store(finish)
    view = get(gateway, envelope_id)
    assert view["status"] == "succeeded"
    assert view["data"]["payload"] == {"text": "A"}


def test_a_large_final_payload_is_read_from_the_success_sink_record(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "actor=done", {"payload": {}})
    final = {"blob": "x" * 40_000}
    key = f"succeeded/{envelope_id}.json"
    gateway.s3.put_object(Bucket=gateway.bucket, Key=key, Body=json.dumps({"id": envelope_id, "payload": final}))

    async def finish(store: StatusStore) -> None:
        await store.finish(id=envelope_id, status="succeeded", payload_json=json.dumps(final),
                           payload_ref=f"s3://{gateway.bucket}/{key}")

    gateway.store(finish)
    view = get(gateway, envelope_id)
    assert view["data"]["payload_ref"] == f"s3://{gateway.bucket}/{key}"
    assert view["data"]["payload"] == final


def test_a_fanout_parent_lists_its_children_and_their_statuses(gateway: Gateway) -> None:
    parent = submit(gateway, "actor=prep", {"payload": {}})
    children = [child_id(parent_id=parent, actor="prep", index=i) for i in range(3)]

    async def fan_out(store: StatusStore) -> None:
        await store.report_running(updates=[
            RunningUpdate(id=parent, actor="prep", attempt=1, seq=0, fanout={"actor": "prep", "count": 3}),
            RunningUpdate(id=children[0], actor="done", attempt=1, seq=1, parent_id=parent),
        ])
        await store.finish(id=children[1], status="succeeded", payload_json="{}")

    gateway.store(fan_out)
    data = get(gateway, parent)["data"]
    assert data["children_total"] == 3
    assert [(c["id"], c["status"]) for c in data["children"]] == [
        (children[0], "running"), (children[1], "succeeded"), (children[2], "pending"),
    ]


def test_cancel_is_idempotent_and_a_finished_one_cannot_be(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "actor=slow", {"payload": {}})
    with gateway.http() as http:
        assert http.delete(f"/api/v1/mesh/{envelope_id}").status_code == 204
        assert http.delete(f"/api/v1/mesh/{envelope_id}").status_code == 204
        assert http.get(f"/api/v1/mesh/{envelope_id}").json()["status"] == "canceled"
        unknown = http.delete("/api/v1/mesh/00000000-0000-0000-0000-000000000000")
        assert unknown.status_code == 404 and "no envelope" in unknown.json()["error"]
    done = submit(gateway, "actor=done", {"payload": {}})
    gateway.store(lambda store: store.finish(id=done, status="succeeded", payload_json="{}"))
    with gateway.http() as http:
        refused = http.delete(f"/api/v1/mesh/{done}")
    assert refused.status_code == 409 and "already succeeded" in refused.json()["error"]
    assert get(gateway, done)["status"] == "succeeded"


def test_list_is_newest_first_filtered_and_paged(gateway: Gateway) -> None:
    ids = []
    for _ in range(3):
        ids.append(submit(gateway, "actor=slow", {"payload": {}}))
        time.sleep(0.01)  # created_at has milliseconds
    gateway.store(lambda store: store.cancel(id=ids[1]))
    with gateway.http() as http:
        everything = http.get("/api/v1/mesh/", params={"limit": 100}).json()
        canceled = http.get("/api/v1/mesh/", params={"status": "canceled", "limit": 100}).json()
        page = http.get("/api/v1/mesh/", params={"status": "pending", "limit": 1, "offset": 0}).json()
    listed = [m["id"] for m in everything["messages"]]
    assert everything["total"] >= 3 and listed.index(ids[2]) < listed.index(ids[1]) < listed.index(ids[0])
    assert ids[1] in [m["id"] for m in canceled["messages"]]
    assert all(m["status"] == "canceled" for m in canceled["messages"])
    assert [m["id"] for m in page["messages"]] == [ids[2]] and page["total"] >= 2
    assert set(everything["messages"][0]) == {"id", "status", "created_at", "updated_at", "data"}


def test_events_stream_current_first_keepalive_fly_and_ends_at_terminal(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "route=pipeline", {"payload": {"text": "s"}})

    def move_it() -> None:
        time.sleep(1.2)  # past the 0.5 s keepalive of the test gateway

        async def steps(store: StatusStore) -> None:
            await store.report_running(updates=[RunningUpdate(id=envelope_id, actor="prep", attempt=1, seq=0)])
            await asyncio_sleep(0.3)
            await store.report_fly(id=envelope_id, events=[{"step": "half", "progress": 50}], progress=50)
            await asyncio_sleep(0.3)
            await store.report_running(updates=[RunningUpdate(id=envelope_id, actor="done", attempt=1, seq=1)])
            await asyncio_sleep(0.3)
            await store.finish(id=envelope_id, status="succeeded", payload_json='{"text": "S"}', actor="done")

        gateway.store(steps)

    mover = threading.Thread(target=move_it)
    lines: list[str] = []
    with gateway.http() as http, http.stream("GET", f"/api/v1/mesh/{envelope_id}/events") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        mover.start()
        for line in stream.iter_lines():
            lines.append(line)
    mover.join()
    events = parse_sse(lines)
    kinds = [(kind, data.get("status") if kind == "status" else data) for kind, data in events if kind != "comment"]
    assert kinds[0] == ("status", "pending")
    assert ("fly", {"step": "half", "progress": 50}) in kinds
    statuses = [value for kind, value in kinds if kind == "status"]
    assert statuses == ["pending", "running", "running", "succeeded"]
    assert events[-1][0] == "status" and events[-1][1]["data"]["payload"] == {"text": "S"}
    assert ("comment", "keepalive") in events[: [e[0] for e in events].index("fly")]
    actors = [data["data"].get("actor") for kind, data in events if kind == "status"][1:3]
    assert actors == ["prep", "done"]


def test_events_of_a_finished_envelope_are_its_status_then_the_end(gateway: Gateway) -> None:
    envelope_id = submit(gateway, "actor=done", {"payload": {}})
    gateway.store(lambda store: store.finish(id=envelope_id, status="failed",
                                             error={"type": "E", "message": "boom", "reason": "RuntimeError"}))
    with gateway.http() as http, http.stream("GET", f"/api/v1/mesh/{envelope_id}/events") as stream:
        events = parse_sse(list(stream.iter_lines()))
    assert [(k, d["status"]) for k, d in events] == [("status", "failed")]
    assert events[0][1]["data"]["error"]["message"] == "boom"


async def asyncio_sleep(seconds: float) -> None:
    import asyncio

    await asyncio.sleep(seconds)


def parse_sse(lines: list[str]) -> list[tuple[str, Any]]:
    """``[(event, data)]`` of an SSE stream's lines; a comment is ``("comment", text)``."""
    events: list[tuple[str, Any]] = []
    kind, data = None, None
    for line in lines:
        if line.startswith(":"):
            events.append(("comment", line[1:].strip()))
        elif line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:"):
            data = json.loads(line.split(":", 1)[1])
        elif line == "" and kind is not None:
            events.append((kind, data))
            kind, data = None, None
    return events


def test_a_failed_send_is_503_and_the_record_says_so(gateway: Gateway) -> None:
    """Without a key the record is ended `failed` (`not sent`); with one it stays pending and unsent, and the retry
    sends it once the queue is there."""
    from asya_runtime.gateway.requests import submission_id
    from asya_runtime.naming import queue_name
    from gateway.conftest import ORPHAN

    with gateway.http() as http:
        plain = http.post(f"/api/v1/mesh/?actor={ORPHAN}", json={"payload": {}})
        keyed = http.post(f"/api/v1/mesh/?actor={ORPHAN}", json={"payload": {}}, headers={"Idempotency-Key": "k-503"})
    assert plain.status_code == keyed.status_code == 503
    assert "could not be sent" in plain.json()["error"] and "same Idempotency-Key" in keyed.json()["error"]
    failed = [m for m in gateway.store(lambda store: store.list(status="failed", limit=100)).records
              if m.error and m.error.get("reason") == "not sent"]
    assert failed and failed[0].actor == ORPHAN
    keyed_id = submission_id(namespace=gateway.config.namespace, idempotency_key="k-503")
    assert get(gateway, keyed_id)["status"] == "pending"
    assert gateway.table.item(keyed_id)["sent"] == {"BOOL": False}  # type: ignore[index]
    gateway.sqs.create_queue(QueueName=queue_name(namespace=gateway.config.namespace, actor=ORPHAN))
    assert submit(gateway, f"actor={ORPHAN}", {"payload": {}}, **{"Idempotency-Key": "k-503"}) == keyed_id
    assert [e["id"] for e in gateway.sent(ORPHAN)] == [keyed_id]
    assert gateway.table.item(keyed_id)["sent"] == {"BOOL": True}  # type: ignore[index]


def test_a_listing_shows_inline_payloads_and_leaves_references_unread(gateway: Gateway) -> None:
    small, large = submit(gateway, "actor=done", {}), submit(gateway, "actor=done", {})
    key = f"succeeded/{large}.json"

    async def finish(store: StatusStore) -> None:
        await store.finish(id=small, status="succeeded", payload_json='{"s": 1}')
        await store.finish(id=large, status="succeeded", payload_json=json.dumps({"b": "y" * 40_000}),
                           payload_ref=f"s3://{gateway.bucket}/{key}")

    gateway.store(finish)  # the large one's object was never written: a listing must not need it
    with gateway.http() as http:
        listed = {m["id"]: m for m in http.get("/api/v1/mesh/", params={"status": "succeeded", "limit": 100})
                  .json()["messages"]}
    assert listed[small]["data"]["payload"] == {"s": 1} and "result" not in listed[small]["data"]
    assert "payload" not in listed[large]["data"] and listed[large]["data"]["payload_ref"].endswith(key)
    assert "payload" not in get(gateway, large)["data"]  # gone from the bucket: the status still answers
    gateway.sent("done")


def test_concurrent_requests_with_one_key_send_once(gateway: Gateway) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def one(_: int) -> str:
        return submit(gateway, "actor=done", {"payload": {"c": 1}}, **{"Idempotency-Key": "burst-1"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(one, range(16)))
    assert len(ids) == 1
    assert [e["id"] for e in gateway.sent("done")].count(ids.pop()) == 1
