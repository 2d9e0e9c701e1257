"""An actor's queue settings, derived once: ``pulumi up``, ``asya dev`` and the tests all create queues from here.

:func:`queue_settings` turns an actor's resiliency into every attribute of its queue pair:

* VisibilityTimeout = ``queue_visibility_timeout(resiliency)`` = min(ceil(actorTimeout), 60) + 30 s; the sidecar
  extends visibility while a call runs, so long calls are never delivered twice.
* RedrivePolicy.maxReceiveCount = ``queue_max_receive_count(resiliency)`` = max(maxAttempts) + 2: SQS dead-letters
  only what the sidecar could not error-end itself.
* 4-day retention, 14 days on the DLQ: on a standard queue a message keeps its original enqueue time, so the DLQ must
  keep messages longer than the source queue.
* 20 s long polling: an idle replica makes one ReceiveMessage call per 20 s instead of a busy loop.

The formulas themselves live with the resiliency model (:mod:`asya_runtime.resiliency`). This module imports no
Pulumi SDK, so local mode can use it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from asya_runtime.resiliency import Resiliency, queue_max_receive_count, queue_visibility_timeout

__all__ = ["DLQ_RETENTION_S", "QUEUE_RETENTION_S", "RECEIVE_WAIT_S", "QueueSettings", "queue_settings"]

QUEUE_RETENTION_S = 4 * 24 * 3600
DLQ_RETENTION_S = 14 * 24 * 3600
RECEIVE_WAIT_S = 20


@dataclass(frozen=True)
class QueueSettings:
    """The attributes of one actor's queue and its DLQ (the source of both the Pulumi arguments and the API calls)."""

    visibility_timeout: int
    max_receive_count: int
    retention_s: int = QUEUE_RETENTION_S
    dlq_retention_s: int = DLQ_RETENTION_S
    receive_wait_s: int = RECEIVE_WAIT_S

    def redrive_policy(self, *, dlq_arn: str) -> str:
        """The queue's RedrivePolicy (JSON) pointing at ``dlq_arn``."""
        return json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": self.max_receive_count})

    def queue_attributes(self, *, dlq_arn: str) -> dict[str, str]:
        """The queue's attributes as SQS's CreateQueue / SetQueueAttributes take them."""
        return {
            "VisibilityTimeout": str(self.visibility_timeout),
            "RedrivePolicy": self.redrive_policy(dlq_arn=dlq_arn),
            "MessageRetentionPeriod": str(self.retention_s),
            "ReceiveMessageWaitTimeSeconds": str(self.receive_wait_s),
        }

    def dlq_attributes(self) -> dict[str, str]:
        """The DLQ's attributes as SQS's CreateQueue / SetQueueAttributes take them."""
        return {"MessageRetentionPeriod": str(self.dlq_retention_s)}


def queue_settings(resiliency: Resiliency, *, visibility_timeout: int | None = None) -> QueueSettings:
    """The queue settings of an actor with ``resiliency``.

    ``visibility_timeout`` replaces the derived one; only tests that need a killed consumer's messages back within
    seconds pass it (the sidecar reads the queue's visibility back and heartbeats every third of it).
    """
    return QueueSettings(
        visibility_timeout=visibility_timeout or queue_visibility_timeout(resiliency),
        max_receive_count=queue_max_receive_count(resiliency),
    )
