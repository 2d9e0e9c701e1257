"""IAM policy documents, as plain dicts (pure functions: easy to test, rendered to JSON by the components).

Least privilege, stated once: an actor may consume only its own queue and send only to its mesh's queues; a sink
may also write objects (never read or list) in the mesh's bucket; KEDA's operator may only read queue attributes.
No statement has a wildcard action.
"""

from __future__ import annotations

from typing import Any

from asya_runtime.naming import queue_name

PolicyDocument = dict[str, Any]

#: The service principal of EKS Pod Identity; it needs TagSession to attach the pod's session tags.
POD_IDENTITY_PRINCIPAL = "pods.eks.amazonaws.com"
CONSUME_ACTIONS = (
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
)
SEND_ACTIONS = ("sqs:SendMessage", "sqs:GetQueueUrl")
SINK_WRITE_ACTIONS = ("s3:PutObject",)
SCALER_ACTIONS = ("sqs:GetQueueAttributes",)


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def pod_identity_trust_policy() -> PolicyDocument:
    """Trust policy that lets EKS Pod Identity (and only it) assume the role for a pod's service account."""
    return _document(
        {
            "Effect": "Allow",
            "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
        }
    )


def mesh_queue_arn_pattern(*, queue_arn: str, namespace: str) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:asya-{namespace}-*``, built from any queue ARN of the same account and region.

    A resource wildcard (not an action wildcard): the mesh's queues are all named ``asya-{namespace}-...``.
    Listing every queue ARN instead would outgrow IAM's 10 KiB inline-policy limit at about 150 actors.
    """
    partition_to_account = queue_arn.split(":")[:5]
    if len(partition_to_account) != 5 or partition_to_account[2] != "sqs":
        raise ValueError(f"{queue_arn!r} is not an SQS queue ARN")
    return ":".join([*partition_to_account, queue_name(namespace=namespace, actor="*")])


def actor_policy(*, queue_arn: str, namespace: str, bucket_arn: str | None = None) -> PolicyDocument:
    """Consume the actor's own queue; send to the mesh's queues; sinks (``bucket_arn`` set) put result objects."""
    statements: list[dict[str, Any]] = [
        {"Sid": "ConsumeOwnQueue", "Effect": "Allow", "Action": list(CONSUME_ACTIONS), "Resource": queue_arn},
        {
            "Sid": "SendToMeshQueues",
            "Effect": "Allow",
            "Action": list(SEND_ACTIONS),
            "Resource": mesh_queue_arn_pattern(queue_arn=queue_arn, namespace=namespace),
        },
    ]
    if bucket_arn is not None:
        write = {"Sid": "WriteResults", "Effect": "Allow", "Action": list(SINK_WRITE_ACTIONS)}
        statements.append({**write, "Resource": f"{bucket_arn}/*"})
    return _document(*statements)


def scaler_policy(*, queue_arn_patterns: list[str]) -> PolicyDocument:
    """KEDA's operator: read queue depth (GetQueueAttributes) of the given queues, nothing else."""
    return _document(
        {"Sid": "ReadQueueDepth", "Effect": "Allow", "Action": list(SCALER_ACTIONS), "Resource": queue_arn_patterns}
    )


def deny_insecure_transport(*, resources: list[str], service: str) -> PolicyDocument:
    """Resource policy refusing every request not made over TLS (``aws:SecureTransport`` false)."""
    return _document(
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": f"{service}:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )


def cluster_autoscaler_policy(*, cluster_name: str) -> PolicyDocument:
    """Cluster Autoscaler: discover node groups, and resize only the ASGs tagged as owned by this cluster."""
    return _document(
        {
            "Sid": "Discover",
            "Effect": "Allow",
            "Action": [
                "autoscaling:DescribeAutoScalingGroups",
                "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeLaunchConfigurations",
                "autoscaling:DescribeScalingActivities",
                "autoscaling:DescribeTags",
                "ec2:DescribeImages",
                "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplateVersions",
                "ec2:GetInstanceTypesFromInstanceRequirements",
                "eks:DescribeNodegroup",
            ],
            "Resource": "*",
        },
        {
            "Sid": "ResizeOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            "Resource": "*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        },
    )
