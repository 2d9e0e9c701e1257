"""``MeshTriggers``: a mesh's S3 notifications and EventBridge schedules, each sending to its route's first queue.

What each renders and why it is least privilege is in :mod:`asya_pulumi.objects.triggers`. Here, the order AWS
needs: the first actor's queue policy (which allows S3 to send, :func:`queue_senders`) exists before the bucket's
notification configuration, because S3 checks it can deliver when the configuration is put (and sends its
``s3:TestEvent`` then); a schedule's role policy exists before the schedule, so its first invocation can send.

S3 keeps one notification configuration per bucket: the triggers on one bucket become one
``BucketNotification``, and on a named bucket it replaces whatever configuration the bucket had (docs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child, tags
from asya_pulumi.components.queue import ActorQueue
from asya_pulumi.objects.triggers import (
    S3_EVENTS,
    S3Notification,
    arn_parts,
    s3_notifications,
    s3_send_statement,
    schedule_arn,
    schedule_input,
    schedule_name,
    scheduler_role_name,
    scheduler_send_policy,
    scheduler_trust_policy,
    trigger_object_arn,
    trigger_objects_policy,
)
from asya_pulumi.spec.mesh import MeshSpec

__all__ = ["MeshTriggers", "queue_senders"]


def _bucket_arn(note: S3Notification, *, partition: str, mesh_bucket_arn: str) -> str:
    return mesh_bucket_arn if note.bucket is None else f"arn:{partition}:s3:::{note.bucket}"


def _readable(notes: list[S3Notification]) -> Callable[[list[str]], str]:
    """Given ``[a queue ARN (its partition), the mesh bucket's ARN]``, the read policy of ``notes``' objects."""
    def document(arns: list[str]) -> str:
        partition = arn_parts(arns[0])[0]
        return json.dumps(trigger_objects_policy([
            trigger_object_arn(bucket_arn=_bucket_arn(note, partition=partition, mesh_bucket_arn=arns[1]),
                               prefix=note.prefix, suffix=note.suffix)
            for note in notes
        ]))

    return document


def queue_senders(
    mesh: MeshSpec, *, actor: str, mesh_bucket_arn: pulumi.Input[str]
) -> Callable[[str], pulumi.Input[list[dict[str, Any]]]] | None:
    """For :class:`ActorQueue`'s ``senders``: the statements letting S3 deliver the notifications of the triggers
    whose route starts at ``actor`` (one per bucket they watch); None when none does."""
    notes = [note for note in s3_notifications(mesh) if note.first_actor == actor]
    if not notes:
        return None

    def senders(queue_arn: str) -> pulumi.Output[list[dict[str, Any]]]:
        partition, _, _ = arn_parts(queue_arn)
        # one statement per bucket, however many triggers watch it: SQS caps a queue's policy at 20,480 bytes
        return pulumi.Output.from_input(mesh_bucket_arn).apply(lambda mesh_arn: [
            s3_send_statement(index=index, queue_arn=queue_arn, bucket_arn=bucket_arn)
            for index, bucket_arn in enumerate(dict.fromkeys(
                _bucket_arn(note, partition=partition, mesh_bucket_arn=mesh_arn) for note in notes))
        ])

    return senders


class MeshTriggers(AsyaComponent):
    """The mesh's triggers (``spec.triggers``). ``queues``: every actor's :class:`ActorQueue`; ``bucket``: the
    mesh's result bucket (the default S3 trigger bucket); ``roles``: the actors' IAM roles, to which a policy
    reading the announced objects is added for each actor of an S3 trigger's route (none given: none added)."""

    OUTPUTS = (
        ComponentOutput("scheduleNames", "schedule_names", dict[str, str],
                        "Schedule trigger → its EventBridge schedule (asya-{namespace}_{trigger}, group default)."),
        ComponentOutput("notificationBuckets", "notification_buckets", dict[str, str],
                        "S3 trigger → the bucket whose notifications start it."),
    )
    schedule_names: pulumi.Output[dict[str, str]]
    notification_buckets: pulumi.Output[dict[str, str]]

    def __init__(
        self,
        resource_name: str,
        *,
        mesh: MeshSpec,
        queues: Mapping[str, ActorQueue],
        bucket: aws.s3.Bucket,
        roles: Mapping[str, aws.iam.Role] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}MeshTriggers", resource_name, None, opts)
        self.notifications = self._notifications(resource_name, mesh=mesh, queues=queues, bucket=bucket)
        self.readers = self._readers(resource_name, mesh=mesh, queues=queues, roles=roles or {}, bucket=bucket)
        self.schedules: dict[str, aws.scheduler.Schedule] = {}
        for trigger in mesh.triggers:
            if trigger.schedule is not None:
                queue = queues[mesh.routes[trigger.route][0]]
                self.schedules[trigger.name] = self._schedule(resource_name, mesh=mesh, trigger_name=trigger.name,
                                                              queue=queue)
        names = {t.name: schedule_name(namespace=mesh.namespace, trigger=t.name)
                 for t in mesh.triggers if t.schedule is not None}
        self.schedule_names = pulumi.Output.from_input(names)
        buckets = {note.trigger: pulumi.Output.from_input(note.bucket) if note.bucket else bucket.bucket
                   for note in s3_notifications(mesh)}
        keys = list(buckets)
        self.notification_buckets = pulumi.Output.all(*buckets.values()).apply(
            lambda values: dict(zip(keys, values, strict=True))
        )
        self.register()

    def _notifications(
        self, resource_name: str, *, mesh: MeshSpec, queues: Mapping[str, ActorQueue], bucket: aws.s3.Bucket
    ) -> list[aws.s3.BucketNotification]:
        """One ``BucketNotification`` per bucket, holding every S3 trigger on it."""
        by_bucket: dict[str | None, list[S3Notification]] = {}
        for note in s3_notifications(mesh):
            by_bucket.setdefault(note.bucket, []).append(note)
        made = []
        for name, notes in by_bucket.items():
            suffix = "mesh-bucket" if name is None else name.replace(".", "-")
            policies = [queues[note.first_actor].policies[0] for note in notes]
            made.append(aws.s3.BucketNotification(
                f"{resource_name}-{suffix}-notification",
                bucket=bucket.id if name is None else name,
                queues=[{
                    "id": note.id,
                    "queue_arn": queues[note.first_actor].arn,
                    "events": S3_EVENTS,
                    **({"filter_prefix": note.prefix} if note.prefix else {}),
                    **({"filter_suffix": note.suffix} if note.suffix else {}),
                } for note in notes],
                opts=child(self, depends_on=policies),  # S3 checks it may send when the configuration is put
            ))
        return made

    def _readers(
        self, resource_name: str, *, mesh: MeshSpec, queues: Mapping[str, ActorQueue],
        roles: Mapping[str, aws.iam.Role], bucket: aws.s3.Bucket,
    ) -> list[aws.iam.RolePolicy]:
        """Per actor on an S3 trigger's route: may read the objects those triggers announce, nothing more."""
        made = []
        for actor, role in roles.items():
            notes = [note for note in s3_notifications(mesh) if actor in note.route]
            if not notes:
                continue
            document = pulumi.Output.all(queues[actor].arn, bucket.arn).apply(_readable(notes))
            made.append(aws.iam.RolePolicy(f"{resource_name}-{actor}-read-objects", role=role.name, policy=document,
                                           opts=child(self)))
        return made

    def _schedule(
        self, resource_name: str, *, mesh: MeshSpec, trigger_name: str, queue: ActorQueue
    ) -> aws.scheduler.Schedule:
        trigger = next(t for t in mesh.triggers if t.name == trigger_name)
        assert trigger.schedule is not None
        namespace, region = mesh.namespace, mesh.region
        trust = queue.arn.apply(lambda arn: json.dumps(scheduler_trust_policy(schedule=schedule_arn(
            partition=arn_parts(arn)[0], region=region, account=arn_parts(arn)[2], namespace=namespace,
            trigger=trigger_name,
        ))))
        role = aws.iam.Role(
            f"{resource_name}-{trigger_name}-role",
            name=scheduler_role_name(namespace=namespace, trigger=trigger_name, region=region),
            assume_role_policy=trust,
            description=f"EventBridge Scheduler: schedule trigger {trigger_name} of mesh {namespace}",
            tags=tags(namespace=namespace),
            opts=child(self),
        )
        policy = aws.iam.RolePolicy(
            f"{resource_name}-{trigger_name}-send",
            role=role.name,
            policy=queue.arn.apply(lambda arn: json.dumps(scheduler_send_policy(queue_arn=arn))),
            opts=child(self),
        )
        return aws.scheduler.Schedule(
            f"{resource_name}-{trigger_name}",
            name=schedule_name(namespace=namespace, trigger=trigger_name),
            group_name="default",
            description=f"asya trigger {trigger_name}: starts route {trigger.route} of mesh {namespace}",
            schedule_expression=trigger.schedule.expression,
            schedule_expression_timezone=trigger.schedule.timezone,
            flexible_time_window={"mode": "OFF"},
            state="ENABLED",
            target={"arn": queue.arn, "role_arn": role.arn, "input": schedule_input(mesh=mesh, trigger=trigger)},
            opts=child(self, depends_on=[policy]),
        )
