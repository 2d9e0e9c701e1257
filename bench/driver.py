"""The benchmark driver's side of the broker: create a pipeline's queues, inject envelopes, watch the sink.

The driver talks to the broker directly (never through the counting proxy), so none of its own calls are counted
against a contender. Queues are created from a mesh spec by the same code ``asya dev`` uses, so the sidecar runs
against the queues it would get in production, and the baseline loop against the very same ones.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import boto3

from asya_pulumi.local.queues import create_queues, mesh_queue_settings
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.envelope import new_envelope

#: The benchmark's handler: returns its payload unchanged, so every measured cost is the runtime's own.
IDENTITY_HANDLER = "bench.identity.handle"

CREDENTIALS = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


def sqs_client(endpoint: str) -> Any:
    return boto3.client("sqs", endpoint_url=endpoint, **CREDENTIALS)


def identity_mesh(*, namespace: str, actors: list[str], concurrency: int = 1) -> MeshSpec:
    """The benchmark's pipeline as a mesh spec: ``actors`` in a row, each running :mod:`bench.identity`."""
    specs = [AsyncActorSpec(name=a, image="local", handler=IDENTITY_HANDLER, concurrency=concurrency) for a in actors]
    return MeshSpec(namespace=namespace, actors=specs, routes={"bench": actors})


def create_pipeline_queues(*, sqs: Any, mesh: MeshSpec) -> dict[str, str]:
    """Create every queue of ``mesh`` (actors and sinks, with DLQs) as ``asya dev`` would; ``{actor: URL}``."""
    return create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))


def send_envelopes(*, sqs: Any, queue_url: str, route: list[str], count: int, payload: dict[str, Any]) -> list[str]:
    """Send ``count`` fresh envelopes addressed to ``route`` in batches of 10; return their ids."""
    ids: list[str] = []
    for start in range(0, count, 10):
        envelopes = [new_envelope(route=route, payload=payload) for _ in range(min(10, count - start))]
        entries = [{"Id": str(i), "MessageBody": e.to_json()} for i, e in enumerate(envelopes)]
        response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
        if response.get("Failed"):
            raise RuntimeError(f"driver could not send: {response['Failed']}")
        ids.extend(e.id for e in envelopes)
    return ids


def queue_depth(*, sqs: Any, queue_url: str) -> int:
    """Messages in the queue, visible or in flight."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def wait_for_depth(*, sqs: Any, queue_url: str, count: int, timeout_s: float, poll_s: float = 0.05) -> float:
    """Poll until ``queue_url`` holds ``count`` messages; return the monotonic time it was first seen."""
    deadline = time.monotonic() + timeout_s
    while True:
        depth = queue_depth(sqs=sqs, queue_url=queue_url)
        now = time.monotonic()
        if depth >= count:
            return now
        if now > deadline:
            raise TimeoutError(f"only {depth} of {count} envelopes reached the sink within {timeout_s:.0f} s")
        time.sleep(poll_s)


@dataclass
class Arrival:
    """One envelope taken off a queue by :func:`receive_one`."""

    envelope: dict[str, Any]
    at: float = field(default_factory=time.monotonic)


def receive_one(*, sqs: Any, queue_url: str, timeout_s: float) -> Arrival:
    """Long-poll one message off ``queue_url``, delete it, and return it with the time it arrived."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=1, WaitTimeSeconds=5)
        for message in response.get("Messages", []):
            arrival = Arrival(envelope=json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            return arrival
    raise TimeoutError(f"nothing arrived on {queue_url} within {timeout_s:.0f} s")


def purge(*, sqs: Any, queue_url: str) -> None:
    sqs.purge_queue(QueueUrl=queue_url)
