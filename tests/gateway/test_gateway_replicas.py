"""Two gateway replicas on one mesh and one status table: the same ``Idempotency-Key`` at both at once creates one
envelope and sends it once (the store's send lease, asya_runtime/gateway/submit.py), and a replica that crashed
between its write and its send loses nothing.

Real processes on a real HTTP port each, the session's broker, moto's DynamoDB server (one request at a time, so its
conditional writes are atomic as DynamoDB's: asya_pulumi/local/dynamodb_server.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from support.moto_server import MotoServer
from support.status_table import create_status_table

from asya_pulumi.local.broker import LocalBroker
from asya_runtime.gateway.requests import submission_id
from asya_runtime.status import StatusStore
from gateway.conftest import Gateway, running_gateway

KEYS = 25
#: Requests per key, half to each replica, all in flight at once.
REQUESTS_PER_KEY = 6


@pytest.fixture(scope="module")
def replicas(
    broker: LocalBroker, sqs: Any, s3: Any, dynamodb_server: MotoServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Gateway, Gateway]]:
    table = create_status_table(endpoint=dynamodb_server.url, namespace=f"gr{uuid.uuid4().hex[:10]}")
    tmp = tmp_path_factory.mktemp("replicas")
    with ExitStack() as stack:
        one = stack.enter_context(running_gateway(broker=broker, sqs=sqs, s3=s3, table=table, tmp=tmp))
        two = stack.enter_context(running_gateway(broker=broker, sqs=sqs, s3=s3, table=table, tmp=tmp))
        yield one, two


def test_one_key_at_two_replicas_at_once_is_one_envelope_sent_once(replicas: tuple[Gateway, Gateway]) -> None:
    one, two = replicas
    keys = [f"race-{uuid.uuid4().hex[:12]}" for _ in range(KEYS)]

    async def race() -> list[tuple[str, int, str]]:
        async with httpx.AsyncClient(timeout=60) as http:

            async def post(gateway: Gateway, key: str) -> tuple[str, int, str]:
                answer = await http.post(f"{gateway.url}/api/v1/mesh/?actor=done", json={"payload": {"key": key}},
                                         headers={"Idempotency-Key": key})
                return key, answer.status_code, answer.json().get("id", answer.text)

            return await asyncio.gather(*(post(one if i % 2 else two, key)
                                          for key in keys for i in range(REQUESTS_PER_KEY)))

    answers = asyncio.run(race())
    assert {code for _, code, _ in answers} == {201}, [a for a in answers if a[1] != 201][:3]
    ids: dict[str, set[str]] = {}
    for key, _, envelope_id in answers:
        ids.setdefault(key, set()).add(envelope_id)
    assert all(len(found) == 1 for found in ids.values()), ids
    expected = {key: submission_id(namespace=one.config.namespace, idempotency_key=key) for key in keys}
    assert {key: found.pop() for key, found in ids.items()} == expected
    sent = [envelope["id"] for envelope in one.sent("done", wait_s=1.0)]
    assert sorted(sent) == sorted(expected.values()), f"{len(sent)} messages for {KEYS} keys"
    for envelope_id in expected.values():
        item = one.table.item(envelope_id)
        assert item is not None and item["sent"] == {"BOOL": True}


def test_a_retry_waits_while_another_replica_holds_the_send_lease_and_does_not_send(
    replicas: tuple[Gateway, Gateway],
) -> None:
    """Another replica wrote the record and holds the lease (it is sending): a retry waits for it, then answers
    the same id without a second send."""
    one, _ = replicas
    key = f"held-{uuid.uuid4().hex[:12]}"
    envelope_id = submission_id(namespace=one.config.namespace, idempotency_key=key)

    async def holder_writes(store: StatusStore) -> None:
        assert await store.create_pending(id=envelope_id, route="done", actor="done", idempotency_key=key,
                                          send_claim="the-other-replica")

    one.store(holder_writes)
    answered: list[httpx.Response] = []
    retry = threading.Thread(target=lambda: answered.append(
        httpx.post(f"{one.url}/api/v1/mesh/?actor=done", json={"payload": {}}, headers={"Idempotency-Key": key},
                   timeout=60)))
    retry.start()
    time.sleep(1.0)
    assert not answered, "the retry answered while another replica held the lease"

    async def holder_sent(store: StatusStore) -> None:
        assert await store.mark_sent(id=envelope_id)

    one.store(holder_sent)
    retry.join(timeout=30)
    assert answered and answered[0].status_code == 201 and answered[0].json() == {"id": envelope_id}
    assert one.sent("done", wait_s=0.5) == []  # the holder sent it (here: said so); the retry did not


def test_a_replica_that_crashed_holding_the_lease_loses_nothing(replicas: tuple[Gateway, Gateway]) -> None:
    """Written, lease taken, then the replica died before its send: once the lease ran out a retry sends it, once."""
    _, two = replicas
    key = f"crashed-{uuid.uuid4().hex[:12]}"
    envelope_id = submission_id(namespace=two.config.namespace, idempotency_key=key)

    async def crashed(store: StatusStore) -> None:
        assert await store.create_pending(id=envelope_id, route="done", actor="done", idempotency_key=key,
                                          send_claim="a-dead-replica", send_lease_s=1)

    two.store(crashed)
    time.sleep(2.1)  # the lease (whole epoch seconds) has run out
    with two.http() as http:
        answer = http.post("/api/v1/mesh/?actor=done", json={"payload": {}}, headers={"Idempotency-Key": key})
        again = http.post("/api/v1/mesh/?actor=done", json={"payload": {}}, headers={"Idempotency-Key": key})
    assert answer.json() == again.json() == {"id": envelope_id}
    assert [e["id"] for e in two.sent("done")] == [envelope_id]
    item = two.table.item(envelope_id)
    assert item is not None and item["sent"] == {"BOOL": True}
