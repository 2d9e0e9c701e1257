"""KEDA objects for one actor: a ScaledObject on its queue's depth, and the TriggerAuthentication it uses.

Authentication uses the KEDA operator's own EKS Pod Identity (``identityOwner: keda``), which may only read queue
attributes (see ``iam.scaler_policy``); an actor's role is never lent to KEDA.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.spec import ScalingSpec
from asya_pulumi.spec.scaling_options import QUEUE_TRIGGER_NAME, keda_fields

KEDA_API_VERSION = "keda.sh/v1alpha1"
SQS_TRIGGER = "aws-sqs-queue"
TRIGGER_AUTHENTICATION_SPEC = {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}


def queue_length_target(*, scaling: ScalingSpec, batch_size: int = 1) -> int:
    """KEDA's ``queueLength``: messages per replica. ``scaling.queueLength`` counts handler calls' worth of work;
    a batching replica takes ``batch.maxSize`` messages per call at about the cost of one (the cost is per call on
    a GPU) and holds up to ``concurrency x maxSize`` in flight, which KEDA counts: without the factor, one replica's
    own in-flight batch would ask for ``maxSize / queueLength`` replicas. So the target is ``queueLength x maxSize``.
    """
    return scaling.queue_length * batch_size


def scaled_object_spec(
    *, deployment: str, scaling: ScalingSpec, queue_url: Any, region: str, trigger_authentication: str,
    batch_size: int = 1,
) -> dict[str, Any]:
    """Replicas = ceil(queue depth / queueLength), within [minReplicaCount, maxReplicaCount]; a batching actor's
    queueLength is scaled by its batch size (:func:`queue_length_target`).

    Depth counts in-flight messages too (KEDA's ``scaleOnInFlight`` default), so a replica busy with a long GPU
    call is not scaled away under it, and delayed messages (``scaleOnDelayed``, off by KEDA's default): a retry
    waits out its backoff as a delayed message (up to ``maxInterval``, at most 15 min), and without it an actor
    whose only work is a pending retry would scale to zero and pay a cold start (minutes on GPU) when the retry
    becomes visible. Trigger metadata values are strings, as KEDA requires. ``fallback`` and ``advanced`` are
    rendered only when the spec sets them (KEDA's defaults otherwise); ``additionalTriggers`` follow the queue's.
    """
    return {
        "scaleTargetRef": {"name": deployment},
        "minReplicaCount": scaling.min_replica_count,
        "maxReplicaCount": scaling.max_replica_count,
        "pollingInterval": scaling.polling_interval,
        "cooldownPeriod": scaling.cooldown_period,
        **keda_fields(fallback=scaling.fallback, advanced=scaling.advanced),
        "triggers": [
            {
                "type": SQS_TRIGGER,
                "name": QUEUE_TRIGGER_NAME,
                "authenticationRef": {"name": trigger_authentication},
                "metadata": {
                    "queueURL": queue_url,
                    "queueLength": str(queue_length_target(scaling=scaling, batch_size=batch_size)),
                    "activationQueueLength": str(scaling.activation_queue_length),
                    "scaleOnDelayed": "true",
                    "awsRegion": region,
                },
            },
            *(trigger.model_dump(by_alias=True, exclude_none=True) for trigger in scaling.additional_triggers),
        ],
    }
