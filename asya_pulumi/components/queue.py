"""``ActorQueue``: an actor's SQS queue and its dead-letter queue, with settings derived from its resiliency.

Every attribute comes from :func:`asya_pulumi.objects.queue_settings.queue_settings` (visibility, redrive count,
retention,
long polling; see there why), the function ``asya dev`` and the tests create their queues with. Added here:
SSE-SQS encryption and a policy denying non-TLS requests. A queue has one policy: ``senders`` adds statements
to it (an S3 trigger's, ``objects/triggers.py``), so no second policy resource can overwrite the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child
from asya_pulumi.objects.iam import deny_insecure_transport
from asya_pulumi.objects.queue_settings import queue_settings
from asya_runtime.naming import check_dns_label, check_names_fit, dlq_name, queue_name
from asya_runtime.resiliency import Resiliency


class ActorQueue(AsyaComponent):
    """Queue ``asya-{namespace}_{actor}`` and DLQ ``asya-{namespace}_{actor}_dlq`` (:mod:`asya_runtime.naming`)."""

    OUTPUTS = (
        ComponentOutput("url", "url", str, "The actor's queue URL."),
        ComponentOutput("arn", "arn", str, "The actor's queue ARN."),
        ComponentOutput("dlqUrl", "dlq_url", str, "Its dead-letter queue's URL."),
        ComponentOutput("dlqArn", "dlq_arn", str, "Its dead-letter queue's ARN."),
    )
    url: pulumi.Output[str]
    arn: pulumi.Output[str]
    dlq_url: pulumi.Output[str]
    dlq_arn: pulumi.Output[str]

    def __init__(
        self,
        resource_name: str,
        *,
        namespace: str,
        actor: str,
        resiliency: Resiliency,
        tags: Mapping[str, str] | None = None,
        senders: Callable[[str], pulumi.Input[list[dict[str, Any]]]] | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        """``senders``: given the queue's ARN, the statements that allow others to send to it (the queue's
        policy then holds them after the TLS-only Deny); None: the Deny alone."""
        check_dns_label(namespace, what="mesh namespace")
        check_dns_label(actor, what="actor name")
        check_names_fit(namespace=namespace, actor=actor)
        super().__init__(f"{TYPE_PREFIX}ActorQueue", resource_name, None, opts)
        self.name = queue_name(namespace=namespace, actor=actor)
        settings = queue_settings(resiliency)
        self.dlq = aws.sqs.Queue(
            f"{resource_name}-dlq",
            name=dlq_name(namespace=namespace, actor=actor),
            message_retention_seconds=settings.dlq_retention_s,
            sqs_managed_sse_enabled=True,
            tags=dict(tags or {}),
            opts=child(self),
        )
        self.queue = aws.sqs.Queue(
            resource_name,
            name=self.name,
            visibility_timeout_seconds=settings.visibility_timeout,
            message_retention_seconds=settings.retention_s,
            receive_wait_time_seconds=settings.receive_wait_s,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dlq.arn.apply(lambda arn: settings.redrive_policy(dlq_arn=arn)),
            tags=dict(tags or {}),
            opts=child(self),
        )
        aws.sqs.RedriveAllowPolicy(
            f"{resource_name}-dlq-redrive-allow",
            queue_url=self.dlq.url,
            redrive_allow_policy=self.queue.arn.apply(
                lambda arn: json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [arn]})
            ),
            opts=child(self),
        )
        self.policies: list[aws.sqs.QueuePolicy] = []
        for suffix, queue in (("", self.queue), ("-dlq", self.dlq)):
            allowed = senders if senders is not None and not suffix else None
            self.policies.append(aws.sqs.QueuePolicy(
                f"{resource_name}{suffix}-tls-only",
                queue_url=queue.url,
                policy=queue.arn.apply(lambda arn, allowed=allowed: _policy(arn, allowed)),
                opts=child(self),
            ))
        self.url, self.arn = self.queue.url, self.queue.arn
        self.dlq_url, self.dlq_arn = self.dlq.url, self.dlq.arn
        self.register()


def _policy(arn: str, senders: Callable[[str], pulumi.Input[list[dict[str, Any]]]] | None) -> pulumi.Output[str]:
    document = deny_insecure_transport(resources=[arn], service="sqs")
    extra = pulumi.Output.from_input(senders(arn) if senders is not None else [])
    return extra.apply(lambda statements: json.dumps({**document, "Statement": [*document["Statement"], *statements]}))
