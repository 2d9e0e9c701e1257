"""Create a mesh's queues, dead-letter queues and result bucket on a local (or any) SQS/S3 endpoint.

Every value comes from the functions the Pulumi components use: names from :mod:`asya_runtime.naming`, the
VisibilityTimeout and RedrivePolicy.maxReceiveCount from :mod:`asya_runtime.resiliency` applied to the actor's own
``spec.resiliency``. So ``asya dev`` exercises exactly the queue settings ``pulumi up`` would create, and a change to
a formula reaches both at once. The sinks are actors too: their queues use the sidecar's default resiliency, the
same :class:`SidecarConfig` default the components render for them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.config import SidecarConfig
from asya_runtime.naming import SINKS, dlq_name, queue_name
from asya_runtime.resiliency import Resiliency, queue_max_receive_count, queue_visibility_timeout

#: SQS's maximum retention (14 days): a DLQ must keep what it holds until someone looks.
DLQ_RETENTION_S = 14 * 24 * 3600


@dataclass(frozen=True)
class QueueSettings:
    """One actor's queue pair as the components would create it."""

    actor: str
    name: str
    dlq_name: str
    visibility_timeout: int
    max_receive_count: int


def sink_resiliency() -> Resiliency:
    """The resiliency a sink runs with: the sidecar's default (sinks have no manifest)."""
    default = SidecarConfig.model_fields["resiliency"].get_default(call_default_factory=True)
    assert isinstance(default, Resiliency)
    return default


def mesh_queue_settings(mesh: MeshSpec) -> list[QueueSettings]:
    """The queue pair of every actor of ``mesh`` and of its two sinks, in that order."""
    policies: list[tuple[str, Resiliency]] = [(a.name, a.resiliency) for a in mesh.actors]
    policies += [(sink, sink_resiliency()) for sink in SINKS]
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
            sqs, queue.name, {"VisibilityTimeout": str(queue.visibility_timeout), "RedrivePolicy": redrive}
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
