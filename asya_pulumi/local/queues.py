"""Create a mesh's queues, dead-letter queues and result bucket on a local (or any) SQS/S3 endpoint.

Every value comes from where the Pulumi components take it: names from :mod:`asya_runtime.naming`, the
VisibilityTimeout and RedrivePolicy.maxReceiveCount from :mod:`asya_runtime.resiliency` applied to the actor's own
``spec.resiliency``, retention and long-poll settings from :mod:`asya_pulumi.components.queue`. So ``asya dev``
exercises exactly the queue settings ``pulumi up`` would create, and a change to a formula reaches both at once.
The sinks are actors too: their settings come from :class:`SinkSpec`, as in the ``ActorMesh`` component.
(Not reproduced locally: SSE and the TLS-only queue policy, which a local server does not enforce.)
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from asya_pulumi.components.queue import DLQ_RETENTION_S, QUEUE_RETENTION_S, RECEIVE_WAIT_S
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.sink import SinkSpec
from asya_runtime.naming import SINKS, dlq_name, queue_name
from asya_runtime.resiliency import Resiliency, queue_max_receive_count, queue_visibility_timeout


@dataclass(frozen=True)
class QueueSettings:
    """One actor's queue pair as the components would create it."""

    actor: str
    name: str
    dlq_name: str
    visibility_timeout: int
    max_receive_count: int


def mesh_sinks() -> list[SinkSpec]:
    """The two sinks every mesh has, with the settings the ``ActorMesh`` component gives them."""
    return [SinkSpec(name=sink) for sink in SINKS]


def mesh_members(mesh: MeshSpec) -> list[AsyncActorSpec | SinkSpec]:
    """Every actor of ``mesh`` and then its two sinks: everything that has a queue and runs a sidecar."""
    return [*mesh.actors, *mesh_sinks()]


def mesh_queue_settings(mesh: MeshSpec) -> list[QueueSettings]:
    """The queue pair of every actor of ``mesh`` and of its two sinks, in that order."""
    policies: list[tuple[str, Resiliency]] = [(m.name, m.resiliency) for m in mesh_members(mesh)]
    return [
        QueueSettings(
            actor=actor,
            name=queue_name(namespace=mesh.namespace, actor=actor),
            dlq_name=dlq_name(namespace=mesh.namespace, actor=actor),
            visibility_timeout=queue_visibility_timeout(resiliency),
            max_receive_count=queue_max_receive_count(resiliency),
        )
        for actor, resiliency in policies
    ]


def create_queues(*, sqs: Any, settings: Sequence[QueueSettings]) -> dict[str, str]:
    """Create (or update, when they exist) every DLQ and queue; returns ``{actor: queue URL}``.

    CreateQueue is idempotent for identical attributes; an existing queue with other attributes (a namespace reused
    after a manifest change) is updated with SetQueueAttributes instead of failing.
    """
    urls = {}
    for queue in settings:
        dlq_url = _create_or_update(sqs, queue.dlq_name, {"MessageRetentionPeriod": str(DLQ_RETENTION_S)})
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.max_receive_count})
        urls[queue.actor] = _create_or_update(
            sqs,
            queue.name,
            {
                "VisibilityTimeout": str(queue.visibility_timeout),
                "RedrivePolicy": redrive,
                "MessageRetentionPeriod": str(QUEUE_RETENTION_S),
                "ReceiveMessageWaitTimeSeconds": str(RECEIVE_WAIT_S),
            },
        )
    return urls


def create_bucket(*, s3: Any, bucket: str, region: str) -> None:
    """Create the result bucket the sinks write to; an existing bucket of ours is fine."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except ClientError as exc:
        if "QueueAlreadyExists" not in exc.response.get("Error", {}).get("Code", ""):
            raise
    url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url


def result_bucket_name(*, namespace: str) -> str:
    """The bucket the local mesh's sinks write to: one per namespace, so parallel runs never mix records."""
    return f"asya-{namespace}-results"
