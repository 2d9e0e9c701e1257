"""``ActorQueue``: an actor's SQS queue and its dead-letter queue, with settings derived from its resiliency.

* VisibilityTimeout = ``queue_visibility_timeout(resiliency)`` = min(ceil(actorTimeout), 60) + 30 s; the sidecar
  extends visibility while a call runs, so long calls are never delivered twice.
* RedrivePolicy.maxReceiveCount = ``queue_max_receive_count(resiliency)`` = max(maxAttempts) + 2: SQS dead-letters
  only what the sidecar could not error-end itself.
* SSE-SQS encryption, a policy denying non-TLS requests, 4-day retention (14 days on the DLQ: on a standard queue a
  message keeps its original enqueue time, so the DLQ must keep messages longer than the source queue).
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, child
from asya_pulumi.iam import deny_insecure_transport
from asya_runtime.naming import check_dns_label, check_names_fit, dlq_name, queue_name
from asya_runtime.resiliency import Resiliency, queue_max_receive_count, queue_visibility_timeout

QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600
#: Long polling: an idle replica makes one ReceiveMessage call per 20 s instead of a busy loop.
RECEIVE_WAIT_S = 20


class ActorQueue(pulumi.ComponentResource):
    """Queue ``asya-{namespace}_{actor}`` and DLQ ``asya-{namespace}_{actor}_dlq`` (:mod:`asya_runtime.naming`)."""

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
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        check_dns_label(namespace, what="mesh namespace")
        check_dns_label(actor, what="actor name")
        check_names_fit(namespace=namespace, actor=actor)
        super().__init__(f"{TYPE_PREFIX}ActorQueue", resource_name, None, opts)
        self.name = queue_name(namespace=namespace, actor=actor)
        max_receive_count = queue_max_receive_count(resiliency)
        self.dlq = aws.sqs.Queue(
            f"{resource_name}-dlq",
            name=dlq_name(namespace=namespace, actor=actor),
            message_retention_seconds=DLQ_RETENTION_S,
            sqs_managed_sse_enabled=True,
            tags=dict(tags or {}),
            opts=child(self),
        )
        self.queue = aws.sqs.Queue(
            resource_name,
            name=self.name,
            visibility_timeout_seconds=queue_visibility_timeout(resiliency),
            message_retention_seconds=QUEUE_RETENTION_S,
            receive_wait_time_seconds=RECEIVE_WAIT_S,
            sqs_managed_sse_enabled=True,
            redrive_policy=self.dlq.arn.apply(
                lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": max_receive_count})
            ),
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
        for suffix, queue in (("", self.queue), ("-dlq", self.dlq)):
            aws.sqs.QueuePolicy(
                f"{resource_name}{suffix}-tls-only",
                queue_url=queue.url,
                policy=queue.arn.apply(lambda arn: json.dumps(deny_insecure_transport(resources=[arn], service="sqs"))),
                opts=child(self),
            )
        self.url, self.arn = self.queue.url, self.queue.arn
        self.dlq_url, self.dlq_arn = self.dlq.url, self.dlq.arn
        self.register_outputs({"url": self.url, "arn": self.arn, "dlqUrl": self.dlq_url, "dlqArn": self.dlq_arn})
