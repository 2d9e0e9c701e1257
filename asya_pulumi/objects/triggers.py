"""What a mesh's triggers render to, as plain data: names, policies, the schedule's input, the sidecar's targets.

The component (``components/triggers.py``) and ``asya dev`` (``local/triggers.py``) both build from these, so a
trigger behaves the same on a laptop and on AWS:

* an **S3 trigger** is a notification on its bucket (Id ``asya-{namespace}_{trigger}``, ``s3:ObjectCreated:*``,
  the prefix and suffix) whose destination is the queue of its route's first actor. That queue's policy gets one
  statement for it (:func:`s3_send_statement`): S3 may ``sqs:SendMessage`` to that queue alone, only for that
  bucket (``aws:SourceArn``) in the mesh's account (``aws:SourceAccount``). The first actor's sidecar turns the
  notification into an envelope (:mod:`asya_runtime.triggers`), knowing its triggers from ``ASYA_S3_TRIGGERS``
  (:func:`s3_trigger_targets`).
* a **schedule trigger** is an EventBridge Scheduler schedule ``asya-{namespace}_{trigger}`` whose target is the
  same queue; its input is a ready envelope (:func:`schedule_input`), so no sidecar needs to know about schedules.
  Its role (:func:`scheduler_role_name`) may be assumed only by EventBridge Scheduler for that one schedule of the
  mesh's account (:func:`scheduler_trust_policy`), and may only ``sqs:SendMessage`` to that one queue
  (:func:`scheduler_send_policy`).
* the actors of an S3 trigger's route may read the objects it announces (``s3:GetObject``/``GetObjectVersion`` on
  ``{bucket}/{prefix}*{suffix}``, :func:`trigger_objects_policy`): the payload names an object for them to fetch.

The queues are encrypted with SSE-SQS (``components/queue.py``), whose keys SQS holds: neither S3 nor the scheduler
needs a KMS grant to send to them. (With a customer managed key they would need ``kms:GenerateDataKey`` and
``kms:Decrypt`` on it; no queue here uses one.)
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.triggers import MeshTriggerSpec
from asya_runtime.naming import IAM_ROLE_NAME_MAX, SEPARATOR, mesh_prefix
from asya_runtime.triggers import TRIGGER_HEADER, S3TriggerTarget, notification_id

if TYPE_CHECKING:  # objects/iam loads the status store's schema (botocore): the spec checks import this module
    from asya_pulumi.objects.iam import PolicyDocument

__all__ = [
    "SCHEDULED_TIME_HEADER",
    "SCHEDULER_CONTEXT",
    "S3Notification",
    "s3_notifications",
    "s3_send_statement",
    "s3_trigger_targets",
    "schedule_arn",
    "schedule_input",
    "schedule_name",
    "scheduler_role_name",
    "scheduler_send_policy",
    "scheduler_trust_policy",
    "trigger_object_arn",
    "trigger_objects_policy",
]

#: Every S3 trigger starts on each object created (Put, Post, Copy, CompleteMultipartUpload).
S3_EVENTS = ["s3:ObjectCreated:*"]
#: Header of a scheduled envelope: the time EventBridge Scheduler meant to fire it.
SCHEDULED_TIME_HEADER = "x-asya-scheduled-time"
#: EventBridge Scheduler's context attributes, replaced in the input at each invocation.
SCHEDULER_CONTEXT = {
    "scheduled_time": "<aws.scheduler.scheduled-time>",
    "execution_id": "<aws.scheduler.execution-id>",
    "attempt_number": "<aws.scheduler.attempt-number>",
    "schedule_arn": "<aws.scheduler.schedule-arn>",
}
_ROLE_DIGEST_LEN = 10


def schedule_name(*, namespace: str, trigger: str) -> str:
    """``asya-{namespace}_{trigger}``: the schedule (in the account's ``default`` group)."""
    return f"{mesh_prefix(namespace=namespace)}{trigger}"


def schedule_arn(*, partition: str, region: str, account: str, namespace: str, trigger: str) -> str:
    """The schedule's ARN, known before it exists (the role's trust condition names it)."""
    name = schedule_name(namespace=namespace, trigger=trigger)
    return f"arn:{partition}:scheduler:{region}:{account}:schedule/default/{name}"


def scheduler_role_name(*, namespace: str, trigger: str, region: str) -> str:
    """``asya-{namespace}_{trigger}_schedule_{region}``, cut like an actor's role name (a digest keeps it unique).

    An actor's role is ``asya-{namespace}_{actor}_{region}``: a region has no ``_``, so no actor's role is ever
    called like a trigger's, whatever the names."""
    full = f"{schedule_name(namespace=namespace, trigger=trigger)}{SEPARATOR}schedule{SEPARATOR}{region}"
    if len(full) <= IAM_ROLE_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_ROLE_DIGEST_LEN]
    return f"{full[: IAM_ROLE_NAME_MAX - _ROLE_DIGEST_LEN - 1]}-{digest}"


def arn_parts(arn: str) -> tuple[str, str, str]:
    """``(partition, region, account)`` of an ARN such as a queue's."""
    parts = arn.split(":")
    if len(parts) < 6 or not parts[4]:
        raise ValueError(f"{arn!r} is not an ARN with a region and an account id")
    return parts[1], parts[3], parts[4]


def s3_send_statement(*, index: int, queue_arn: str, bucket_arn: str) -> dict[str, Any]:
    """The queue policy statement letting S3 send the notifications of ``bucket_arn`` to ``queue_arn`` alone."""
    _, _, account = arn_parts(queue_arn)
    return {
        "Sid": f"S3Trigger{index}",
        "Effect": "Allow",
        "Principal": {"Service": "s3.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": bucket_arn}, "StringEquals": {"aws:SourceAccount": account}},
    }


def iam_literal(text: str) -> str:
    """``text`` inside an IAM resource, its ``*``, ``?`` and ``$`` written as IAM's literal forms (``${*}``...), so a
    key prefix holding them grants that prefix, not a wildcard."""
    return "".join(f"${{{c}}}" if c in "*?$" else c for c in text)


def trigger_objects_policy(resources: list[str]) -> PolicyDocument:
    """A route actor's extra policy: read the objects its S3 triggers announce (the payload names them)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "ReadTriggerObjects", "Effect": "Allow",
                       "Action": ["s3:GetObject", "s3:GetObjectVersion"], "Resource": resources}],
    }


def trigger_object_arn(*, bucket_arn: str, prefix: str, suffix: str) -> str:
    """The objects an S3 trigger announces, as an IAM resource: ``{bucket}/{prefix}*{suffix}``, literal otherwise."""
    return f"{bucket_arn}/{iam_literal(prefix)}*{iam_literal(suffix)}"


def scheduler_trust_policy(*, schedule: str) -> PolicyDocument:
    """EventBridge Scheduler may assume the role only for ``schedule`` (an ARN) of its own account."""
    _, _, account = arn_parts(schedule)
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "scheduler.amazonaws.com"},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": account}, "ArnEquals": {"aws:SourceArn": schedule}},
        }],
    }


def scheduler_send_policy(*, queue_arn: str) -> PolicyDocument:
    """The schedule's role: ``sqs:SendMessage`` to the first actor's queue, nothing else (SSE-SQS needs no KMS)."""
    return {
        "Version": "2012-10-17",
        "Statement": [{"Sid": "SendToFirstActor", "Effect": "Allow", "Action": "sqs:SendMessage",
                       "Resource": queue_arn}],
    }


def schedule_input(*, mesh: MeshSpec, trigger: MeshTriggerSpec) -> str:
    """The schedule's target input: a ready envelope on the trigger's route with its fixed payload.

    Its id is ``{trigger}-{scheduled time}`` (EventBridge fills the time in at each invocation): a retried
    invocation, or a duplicate delivery, is the same envelope and overwrites the same record.
    """
    assert trigger.schedule is not None
    route = mesh.routes[trigger.route]
    when = SCHEDULER_CONTEXT["scheduled_time"]
    envelope = {
        "id": f"{trigger.name}-{when}",
        "parent_id": None,
        "route": {"prev": [], "curr": route[0], "next": list(route[1:])},
        "headers": {TRIGGER_HEADER: trigger.name, SCHEDULED_TIME_HEADER: when},
        "status": {"attempt": 1, "phase": "pending", "actor": route[0], "created_at": when, "updated_at": when},
        "payload": trigger.schedule.payload,
    }
    return json.dumps(envelope, separators=(",", ":"))


@dataclass(frozen=True)
class S3Notification:
    """One S3 trigger as its bucket's notification configuration names it. ``bucket`` None: the mesh's bucket."""

    trigger: str
    id: str
    bucket: str | None
    prefix: str
    suffix: str
    first_actor: str
    route: list[str]


def s3_notifications(mesh: MeshSpec) -> list[S3Notification]:
    """Every S3 trigger of ``mesh``, its defaults applied."""
    found = []
    for trigger in mesh.triggers:
        if trigger.s3 is None:
            continue
        route = list(mesh.routes[trigger.route])
        found.append(S3Notification(
            trigger=trigger.name, id=notification_id(namespace=mesh.namespace, trigger=trigger.name),
            bucket=trigger.s3.bucket, prefix=trigger.watched_prefix(), suffix=trigger.s3.suffix,
            first_actor=route[0], route=route,
        ))
    return found


def s3_trigger_targets(mesh: MeshSpec, *, actor: str, mesh_bucket: str) -> dict[str, S3TriggerTarget]:
    """``ASYA_S3_TRIGGERS`` of ``actor``'s sidecar: the S3 triggers whose route starts at it, by notification id."""
    return {
        note.id: S3TriggerTarget(trigger=note.trigger, bucket=note.bucket or mesh_bucket, route=note.route)
        for note in s3_notifications(mesh)
        if note.first_actor == actor
    }
