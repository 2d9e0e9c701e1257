"""Create a mesh's queues, dead-letter queues and result bucket on a local (or any) SQS/S3 endpoint.

Every value comes from where the Pulumi components take it: names from :mod:`asya_runtime.naming`, every queue
attribute from :func:`asya_pulumi.objects.queue_settings.queue_settings` applied to the actor's own ``spec.resiliency``.
So ``asya dev`` exercises exactly the queue settings ``pulumi up`` would create, and a change to a formula reaches both
at once. The sinks are actors too: their settings come from :class:`SinkSpec`, as in the ``ActorMesh`` component.
(Not reproduced locally: SSE and the TLS-only queue policy, which a local server does not enforce.)
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from asya_pulumi.objects.queue_settings import QueueSettings, queue_settings
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.sink import SinkSpec
from asya_runtime.naming import SINKS, dlq_name, queue_name


@dataclass(frozen=True)
class MeshQueue:
    """One actor's queue pair as the components would create it: names and settings."""

    actor: str
    name: str
    dlq_name: str
    settings: QueueSettings


def mesh_sinks() -> list[SinkSpec]:
    """The two sinks every mesh has, with the settings the ``ActorMesh`` component gives them."""
    return [SinkSpec(name=sink) for sink in SINKS]


def mesh_members(mesh: MeshSpec) -> list[AsyncActorSpec | SinkSpec]:
    """Every actor of ``mesh`` and then its two sinks: everything that has a queue and runs a sidecar."""
    return [*mesh.actors, *mesh_sinks()]


def mesh_queue_settings(mesh: MeshSpec, *, visibility_timeout: int | None = None) -> list[MeshQueue]:
    """The queue pair of every actor of ``mesh`` and of its two sinks, in that order.

    ``visibility_timeout`` replaces the derived one (see :func:`queue_settings`; tests only).
    """
    return [
        MeshQueue(
            actor=member.name,
            name=queue_name(namespace=mesh.namespace, actor=member.name),
            dlq_name=dlq_name(namespace=mesh.namespace, actor=member.name),
            settings=queue_settings(member.resiliency, visibility_timeout=visibility_timeout),
        )
        for member in mesh_members(mesh)
    ]


#: Queue pairs created at once: each pair is three requests in a row, and a local run waits for all of them.
CREATE_THREADS = 8


def create_queues(*, sqs: Any, settings: Sequence[MeshQueue]) -> dict[str, str]:
    """Create (or update, when they exist) every DLQ and queue, several pairs at once; ``{actor: queue URL}``."""

    def create(queue: MeshQueue) -> str:
        return create_queue_pair(sqs=sqs, name=queue.name, dlq_name=queue.dlq_name, settings=queue.settings)

    with ThreadPoolExecutor(max_workers=CREATE_THREADS) as pool:
        urls = list(pool.map(create, settings))
    return {queue.actor: url for queue, url in zip(settings, urls, strict=True)}


def create_queue_pair(*, sqs: Any, name: str, dlq_name: str, settings: QueueSettings) -> str:
    """Create (or update) one DLQ and its queue with ``settings``; the queue's URL.

    CreateQueue is idempotent for identical attributes; an existing queue with other attributes (a namespace reused
    after a manifest change) is updated with SetQueueAttributes instead of failing.
    """
    dlq_url = _create_or_update(sqs, dlq_name, settings.dlq_attributes())
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return _create_or_update(sqs, name, settings.queue_attributes(dlq_arn=dlq_arn))


def create_bucket(*, s3: Any, bucket: str, region: str) -> None:
    """Create the result bucket the sinks write to; an existing bucket of ours is fine."""
    kwargs: dict[str, Any] = {"Bucket": bucket}
    if region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    from botocore.exceptions import ClientError  # here: planning a mesh (``asya dev``'s first step) needs no botocore

    try:
        s3.create_bucket(**kwargs)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise


def _create_or_update(sqs: Any, name: str, attributes: dict[str, str]) -> str:
    from botocore.exceptions import ClientError

    try:
        return str(sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"])
    except ClientError as exc:
        if "QueueAlreadyExists" not in exc.response.get("Error", {}).get("Code", ""):
            raise
    url = str(sqs.get_queue_url(QueueName=name)["QueueUrl"])
    sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    return url

