"""KEDA objects for one actor, as plain dicts: a ScaledObject on its queue's depth and its TriggerAuthentication.

Authentication uses the KEDA operator's own EKS Pod Identity (``identityOwner: keda``), which may only read queue
attributes (see ``iam.scaler_policy``); the actor's role is never lent to KEDA.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.spec import ScalingSpec

KEDA_API_VERSION = "keda.sh/v1alpha1"
SQS_TRIGGER = "aws-sqs-queue"


def trigger_authentication(*, name: str, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "TriggerAuthentication",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"podIdentity": {"provider": "aws", "identityOwner": "keda"}},
    }


def scaled_object(
    *,
    name: str,
    namespace: str,
    deployment: str,
    scaling: ScalingSpec,
    queue_url: Any,
    region: str,
    trigger_authentication_name: str,
    labels: dict[str, str],
) -> dict[str, Any]:
    """ScaledObject for ``deployment``: replicas = ceil(queue depth / queueLength), within [min, max].

    Depth counts in-flight messages too (KEDA's ``scaleOnInFlight`` default), so a replica busy with a long GPU
    call is not scaled away. Trigger metadata values are strings, as KEDA requires.
    """
    return {
        "apiVersion": KEDA_API_VERSION,
        "kind": "ScaledObject",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "scaleTargetRef": {"name": deployment, "envSourceContainerName": "sidecar"},
            "minReplicaCount": scaling.min_replica_count,
            "maxReplicaCount": scaling.max_replica_count,
            "pollingInterval": scaling.polling_interval,
            "cooldownPeriod": scaling.cooldown_period,
            "triggers": [
                {
                    "type": SQS_TRIGGER,
                    "authenticationRef": {"name": trigger_authentication_name},
                    "metadata": {
                        "queueURL": queue_url,
                        "queueLength": str(scaling.queue_length),
                        "activationQueueLength": str(scaling.activation_queue_length),
                        "awsRegion": region,
                    },
                }
            ],
        },
    }
