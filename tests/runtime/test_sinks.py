"""The sinks persist final envelopes at deterministic keys and never swallow a failed write."""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator

import boto3
import pytest
from support.mesh import AWS_ENV, MeshHarness, wait_for
from support.moto_server import MotoServer
from support.tcp_proxy import TcpProxy

from asya_pulumi.local.broker import LOCAL_CREDENTIALS
from asya_runtime.config import SidecarConfig
from asya_runtime.envelope import new_envelope
from asya_runtime.naming import role_name
from asya_runtime.sidecar.aws import BrokerClient
from asya_runtime.sidecar.metrics import Metrics
from asya_runtime.sidecar.sinks import SenderCheck

TRACEPARENT = "00-55555555555555555555555555555555-6666666666666666-01"


def test_sinks_write_each_final_envelope_at_its_status_and_id_and_a_redelivery_overwrites(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    done = new_envelope(route=["x"], payload={"key": "ok"}, headers={"traceparent": TRACEPARENT})
    failed = new_envelope(route=["x"], payload={"key": "bad"}, headers={"traceparent": TRACEPARENT})
    mesh.send("success-sink", done)
    mesh.send("success-sink", done)  # a redelivery of the same envelope
    mesh.send("error-sink", failed)

    succeeded = mesh.wait_records("succeeded", 1)
    wait_for(lambda: mesh.writes()[f"succeeded/{done.id}.json"] == 2, timeout_s=30, what="the second write")
    failures = mesh.wait_records("failed", 1)

    assert succeeded == {done.id: done.model_dump(mode="json")}
    assert failures == {failed.id: failed.model_dump(mode="json")}
    assert len(mesh.records("succeeded")) == 1  # overwritten, not duplicated
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the sink queue to be empty")


def test_a_failed_write_keeps_the_message_queued_until_the_bucket_takes_it(mesh: MeshHarness) -> None:
    mesh.create_sink_queues()  # no bucket yet: every PutObject fails
    for sink in ("success-sink", "error-sink"):
        mesh.start_actor(sink, handler=None, mode=sink, result_bucket=mesh.bucket)
    sink = mesh.actors[0]
    envelope = new_envelope(route=["x"], payload={"key": "waiting"})
    mesh.send("success-sink", envelope)
    wait_for(lambda: "sink write failed" in sink.logs(), timeout_s=30, what="a failed write")
    assert mesh.depth("success-sink") == 1  # not deleted, not lost

    mesh.create_bucket()

    records = mesh.wait_records("succeeded", 1, timeout_s=60)
    assert records == {envelope.id: envelope.model_dump(mode="json")}
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message to be deleted after the write")
    assert "asya_sink_write_failures_total" in sink.read_metrics()


def test_a_body_that_is_no_envelope_is_kept_raw_under_failed(mesh: MeshHarness) -> None:
    mesh.standard(sinks=True)
    mesh.send("error-sink", "definitely { not json")

    [record] = mesh.wait_records("failed", 1).values()

    assert record["raw_body"] == "definitely { not json" and record["reason"] == "malformed envelope"


def test_a_short_s3_outage_is_retried_in_process_and_the_message_is_never_handed_back(mesh: MeshHarness) -> None:
    mesh.create_sink_queues()  # visibility 90 s: the sink may retry S3 for up to 45 s holding the message
    mesh.create_bucket()
    host, port = mesh.broker.endpoint.removeprefix("http://").split(":")
    with TcpProxy(upstream_host=host, upstream_port=int(port)) as proxy:
        sink = mesh.start_actor(
            "success-sink", handler=None, mode="success-sink", result_bucket=mesh.bucket, s3_endpoint=proxy.endpoint
        )
        proxy.cut()
        envelope = new_envelope(route=["x"], payload={"key": "hiccup"})
        mesh.send("success-sink", envelope)
        wait_for(lambda: "broker unreachable" in sink.logs(), timeout_s=30, what="the sink noticing the S3 outage")
        time.sleep(2)  # an outage of a few seconds, not a blip
        proxy.restore()

        records = mesh.wait_records("succeeded", 1, timeout_s=60)

    assert records == {envelope.id: envelope.model_dump(mode="json")}
    assert mesh.writes()[f"succeeded/{envelope.id}.json"] == 1
    assert "sink write failed" not in sink.logs()  # retried in-process, never handed back to SQS
    wait_for(lambda: mesh.depth("success-sink") == 0, timeout_s=30, what="the message to be deleted after the write")
    metrics = sink.read_metrics()
    assert re.search(r'asya_broker_errors_total\{api="put_object"\} [1-9]', metrics), metrics
    assert re.search(r"asya_sink_write_failures_total 0\.0", metrics)


# ------------------------------------------------------------------------------------ who sent a record (SenderId)


@pytest.fixture(scope="module")
def iam_server() -> Iterator[MotoServer]:
    """A real IAM endpoint (moto's server) holding the actors' roles, as a deployed mesh has them."""
    with MotoServer(region=LOCAL_CREDENTIALS["region_name"]) as server:
        yield server


def create_role(server: MotoServer, *, namespace: str, actor: str) -> str:
    """``actor``'s role as the components name it; its RoleId (what SQS's SenderId starts with)."""
    iam = boto3.client("iam", endpoint_url=server.url, **LOCAL_CREDENTIALS)
    name = role_name(namespace=namespace, actor=actor, region=LOCAL_CREDENTIALS["region_name"])
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17",
                                                                                "Statement": []}))
    return str(role["Role"]["RoleId"])


def test_a_record_whose_sender_is_not_the_actor_it_names_is_kept_by_message_id_and_overwrites_nothing(
    mesh: MeshHarness, iam_server: MotoServer
) -> None:
    """The embedded broker names every sender ``000000000000``, no actor's role: each record claims an actor it was
    not sent by, the way a compromised actor would forge another's result."""
    create_role(iam_server, namespace=mesh.namespace, actor="score")
    mesh.create_sink_queues()
    mesh.create_bucket()
    mesh.start_sinks(verify_senders=True, iam_endpoint=iam_server.url)
    forged = new_envelope(route=["score"], payload={"verdict": "forged"})
    ghost = new_envelope(route=["ghost"], payload={"verdict": "no such actor"})
    mesh.send("success-sink", forged)
    mesh.send("error-sink", ghost)

    records = mesh.wait_records("failed", 2)

    assert mesh.keys("succeeded") == [] and forged.id not in records and ghost.id not in records
    by_claim = {json.loads(r["raw_body"])["id"]: r for r in records.values()}
    assert {r["reason"] for r in by_claim.values()} == {"forged record"}
    assert by_claim[forged.id]["sink"] == "success-sink" and by_claim[ghost.id]["sink"] == "error-sink"
    assert "sent by '000000000000', but it claims actor 'score', whose role is 'AROA" in by_claim[forged.id]["detail"]
    assert "claims actor 'ghost'" in by_claim[ghost.id]["detail"] and "NoSuchEntity" in by_claim[ghost.id]["detail"]
    wait_for(lambda: mesh.depth("success-sink") + mesh.depth("error-sink") == 0, timeout_s=30,
             what="both messages deleted once their records were kept")


def test_the_sender_check_accepts_the_named_actors_role_and_nothing_else(
    iam_server: MotoServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    namespace = "t" + uuid.uuid4().hex[:10]
    score = create_role(iam_server, namespace=namespace, actor="score")
    judge = create_role(iam_server, namespace=namespace, actor="judge")
    config = SidecarConfig(actor="success-sink", namespace=namespace, mode="success-sink", verify_senders=True,
                           region=LOCAL_CREDENTIALS["region_name"], iam_endpoint=iam_server.url, result_bucket="b")

    async def problems() -> list[str | None]:
        async with BrokerClient(config=config, metrics=Metrics()) as broker:
            check = SenderCheck(broker=broker, config=config, within_s=5)
            return [
                await check.problem(sender_id=f"{score}:eks-c-score-6f7d9", claimed="score"),
                await check.problem(sender_id=f"{judge}:eks-c-judge-1a2b3", claimed="score"),
                await check.problem(sender_id=score, claimed="score"),  # a role id with no session: still the role
                await check.problem(sender_id=None, claimed="score"),
                await check.problem(sender_id=f"{score}:s", claimed=None),
                await check.problem(sender_id=f"{score}:s", claimed="../other"),
            ]

    accepted, wrong_role, bare, no_sender, no_claim, bad_name = asyncio.run(problems())
    assert accepted is None and bare is None
    assert wrong_role is not None and f"whose role is {score!r}" in wrong_role
    assert no_sender == "SQS named no sender (SenderId) for this message"
    assert no_claim is not None and "names no actor" in no_claim
    assert bad_name is not None and "no actor name" in bad_name
