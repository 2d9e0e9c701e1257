"""IAM policy documents, as plain dicts (pure functions: easy to test, rendered to JSON by the components).

Least privilege, stated once:

* an actor consumes only its own queue and sends only to its own mesh's queues (``asya-{namespace}_*``, a wildcard
  that matches no other mesh's queue: see :mod:`asya_runtime.naming`), never to a dead-letter queue;
* a sink consumes its own queue, sends only to it (the shutdown requeue) and writes objects (never reads or lists)
  under its own prefix of the mesh's bucket (``succeeded/`` or ``failed/``);
* actors write, read and delete offloaded envelopes (claim-check) under ``offload/`` of their own mesh's bucket,
  sinks read and delete them there; nobody lists, but a fan-in actor, which lists only its own state prefix
  ``fanin/{actor}/`` and looks single error records up (``failed/{id}.json``: its error-ended children);
* with the front door on (docs/gateway.md), sidecars update and batch-read their own mesh's status table, sinks
  also get single items; the gateway sends only to its own mesh's actor queues (never a sink's or a DLQ), reads and
  writes its own table and its ``by_status`` index, and reads success records (``payload_ref``); nothing else;
* a rate-limited actor (``spec.rateLimit``) takes tokens from its own bucket item of the mesh's status table
  (``UpdateItem`` on the key ``rate-limit/{actor}`` alone, ``dynamodb:LeadingKeys``), gateway or not;
* KEDA's operator may only read queue attributes;
* every role trusts EKS Pod Identity for one service account of one namespace of one cluster of one account;
  the cluster role trusts EKS for that one cluster of that one account.

No statement has a wildcard action.
"""

from __future__ import annotations

from typing import Any

from asya_pulumi.objects.status_table import index_arn
from asya_runtime.config import FANIN_PREFIX, OFFLOAD_PREFIX
from asya_runtime.naming import (
    DLQ_SUFFIX,
    ERROR_SINK,
    MALFORMED_RECORD_PREFIX,
    SINK_RECORD_PREFIXES,
    SINKS,
    SUCCESS_SINK,
    dlq_name,
    mesh_prefix,
    queue_name,
)
from asya_runtime.status.schema import rate_limit_key

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
#: A sink reads its mesh's actor roles to check who sent a record.
SENDER_CHECK_ACTIONS = ("iam:GetRole",)
SCALER_ACTIONS = ("sqs:GetQueueAttributes",)
#: Claim-check: GetObjectVersion because references name the version they wrote (a duplicate delivery still reads
#: it after the consumer's delete marker); DeleteObject without a version only adds that marker.
OFFLOAD_READ_ACTIONS = ("s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject")
OFFLOAD_ACTIONS = ("s3:PutObject", *OFFLOAD_READ_ACTIONS)
#: Fan-in state (runtime sidecar/fanin.py): children's records and the conditional open/claim objects (a conditional
#: PutObject needs no other action); error-sink records are only read.
FANIN_STATE_ACTIONS = ("s3:PutObject", "s3:GetObject")
FANIN_ERROR_READ_ACTIONS = ("s3:GetObject",)
FANIN_LIST_ACTIONS = ("s3:ListBucket",)
#: A sidecar's status writes: one ``running`` update per envelope per hop, one batched cancel check per batch.
STATUS_UPDATE_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:BatchGetItem")
#: A rate-limited actor's take of its shared token bucket (runtime sidecar/rate_limit.py): one conditional update.
RATE_LIMIT_ACTIONS = ("dynamodb:UpdateItem",)
#: A sink writes the terminal state and may read one item (a fan-out parent); BatchGetItem already reads as much.
SINK_STATUS_ACTIONS = (*STATUS_UPDATE_ACTIONS, "dynamodb:GetItem")
#: The gateway: create (``pending``), cancel, read one or many, list by status (Query on ``by_status``).
GATEWAY_TABLE_ACTIONS = (
    "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query",
)
#: The gateway reads a success record when a final payload was too large for the status item (``payload_ref``).
GATEWAY_RESULT_ACTIONS = ("s3:GetObject",)


def _document(*statements: dict[str, Any]) -> PolicyDocument:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def pod_identity_trust_policy(*, cluster_arn: str, namespace: str, service_account: str) -> PolicyDocument:
    """Trust policy that lets EKS Pod Identity (and only it) assume the role, for one service account.

    EKS Pod Identity tags every session it starts with the cluster's ARN, the pod's namespace and service account
    (session tags, hence ``sts:TagSession``). Requiring them — and the cluster's account as ``aws:SourceAccount``
    — means no other cluster, namespace or service account can be associated with this role and use it, even by
    someone allowed to create Pod Identity associations.
    """
    account_id = _arn_part(cluster_arn, index=4, what="EKS cluster ARN")
    return _document(
        {
            "Sid": "PodIdentityForOneServiceAccount",
            "Effect": "Allow",
            "Principal": {"Service": POD_IDENTITY_PRINCIPAL},
            "Action": ["sts:AssumeRole", "sts:TagSession"],
            "Condition": {
                "StringEquals": {
                    "aws:SourceAccount": account_id,
                    "aws:RequestTag/eks-cluster-arn": cluster_arn,
                    "aws:RequestTag/kubernetes-namespace": namespace,
                    "aws:RequestTag/kubernetes-service-account": service_account,
                }
            },
        }
    )


def service_trust_policy(*, service: str, source_account: str | None = None,
                         source_arn: str | None = None) -> PolicyDocument:
    """A trust policy that lets the AWS ``service`` assume the role; with ``source_account`` / ``source_arn``, only
    on behalf of that account / resource (the confused-deputy guard: no other account's EKS cluster can be made to
    use the role).

    EKS documents both keys for the cluster role. EC2 does not send them when it hands an instance profile's role
    to an instance, so the node roles cannot carry them (the condition would leave every node without credentials);
    who may pass the node role is what guards it (``iam:PassRole``), and docs/infrastructure.md says so.
    """
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    condition: dict[str, Any] = {}
    if source_account is not None:
        condition["StringEquals"] = {"aws:SourceAccount": source_account}
    if source_arn is not None:
        condition["ArnLike"] = {"aws:SourceArn": source_arn}
    if condition:
        statement["Condition"] = condition
    return _document(statement)


def eks_cluster_arn(*, same_account_arn: str, region: str, cluster_name: str) -> str:
    """``arn:PARTITION:eks:REGION:ACCOUNT:cluster/NAME``, taking partition and account from any ARN of the account."""
    parts = same_account_arn.split(":")
    if len(parts) < 6 or not parts[4].isdigit():
        raise ValueError(f"{same_account_arn!r} is not an ARN with an account id")
    return f"arn:{parts[1]}:eks:{region}:{parts[4]}:cluster/{cluster_name}"


def _arn_part(arn: str, *, index: int, what: str) -> str:
    parts = arn.split(":")
    if len(parts) < 6 or not parts[index]:
        raise ValueError(f"{arn!r} is not an {what}")
    return parts[index]


def mesh_queue_arn_pattern(*, queue_arn: str, namespace: str, dlq: bool = False) -> str:
    """``arn:aws:sqs:REGION:ACCOUNT:asya-{namespace}_*`` (``..._*_dlq`` with ``dlq``), from any queue ARN of the
    same account and region.

    A resource wildcard (not an action wildcard) that matches this mesh's queues and no other mesh's
    (:mod:`asya_runtime.naming`). Listing every queue ARN instead would outgrow IAM's 10 KiB inline-policy limit at
    about 150 actors, and would shut out actors that a team stack adds to the mesh later.
    """
    partition_to_account = queue_arn.split(":")[:5]
    if len(partition_to_account) != 5 or partition_to_account[2] != "sqs":
        raise ValueError(f"{queue_arn!r} is not an SQS queue ARN")
    name = dlq_name if dlq else queue_name
    return ":".join([*partition_to_account, name(namespace=namespace, actor="*")])


def offload_objects(bucket_arn: str) -> str:
    """``{bucket_arn}/offload/*``: the offloaded envelopes of the mesh that owns the bucket."""
    return f"{bucket_arn}/{OFFLOAD_PREFIX}/*"


def actor_policy(
    *,
    queue_arn: str,
    namespace: str,
    bucket_arn: str | None = None,
    status_table_arn: str | None = None,
    fanin_actor: str | None = None,
    rate_limit: tuple[str, str] | None = None,
) -> PolicyDocument:
    """Consume the actor's own queue; send to the mesh's queues (its own included: retries), never to a DLQ; with
    ``bucket_arn`` (the mesh's bucket), put, get and delete offloaded envelopes under its ``offload/`` prefix; with
    ``status_table_arn`` (the mesh's status table), update and batch-read its items; with ``fanin_actor`` (the
    actor has ``fanIn``), :func:`fanin_statements`; with ``rate_limit`` (``(table ARN, actor)``: a rate-limited
    actor), update its own bucket item of that table and no other item.

    The explicit deny keeps dead-letter queues for what SQS itself moves there: a handler that routes to a DLQ's
    name cannot slip an envelope into it (the sidecar refuses such routes too; this is the second lock).
    """
    offload: list[dict[str, Any]] = []
    if bucket_arn is not None:
        offload.append(
            {
                "Sid": "OffloadedEnvelopes",
                "Effect": "Allow",
                "Action": list(OFFLOAD_ACTIONS),
                "Resource": offload_objects(bucket_arn),
            }
        )
    return _document(
        _consume(queue_arn),
        _dead_letter_depth(queue_arn),
        {
            "Sid": "SendToMeshQueues",
            "Effect": "Allow",
            "Action": list(SEND_ACTIONS),
            "Resource": mesh_queue_arn_pattern(queue_arn=queue_arn, namespace=namespace),
        },
        {
            "Sid": "NeverSendToDeadLetterQueues",
            "Effect": "Deny",
            "Action": ["sqs:SendMessage"],
            "Resource": mesh_queue_arn_pattern(queue_arn=queue_arn, namespace=namespace, dlq=True),
        },
        *offload,
        *(fanin_statements(bucket_arn=bucket_arn, actor=fanin_actor) if fanin_actor and bucket_arn else []),
        *_status(status_table_arn, STATUS_UPDATE_ACTIONS),
        *_rate_limit_bucket(rate_limit),
    )


def _rate_limit_bucket(rate_limit: tuple[str, str] | None) -> list[dict[str, Any]]:
    """``UpdateItem`` on the one item ``rate-limit/{actor}`` of the table (``dynamodb:LeadingKeys``: a request for any
    other key is refused), or nothing. With the gateway on, ``TrackStatus`` allows it as well; stated anyway, so the
    rate limit does not hang on the gateway."""
    if rate_limit is None:
        return []
    table_arn, actor = rate_limit
    return [{
        "Sid": "RateLimitBucket",
        "Effect": "Allow",
        "Action": list(RATE_LIMIT_ACTIONS),
        "Resource": table_arn,
        "Condition": {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [rate_limit_key(actor)]}},
    }]


def fanin_statements(*, bucket_arn: str, actor: str) -> list[dict[str, Any]]:
    """A fan-in actor's: put and get its own state (``fanin/{actor}/*``: the ``/`` after the name keeps actor ``a``
    out of ``a-b``'s), list only that prefix and the error records' (S3 answers a get of a missing key with 403,
    not 404, without ``s3:ListBucket``, so the sidecar lists ``failed/{child id}.json`` to ask whether a child
    error-ended), and get error records. The bucket is the mesh's own, so no other mesh's state is in reach."""
    state = f"{FANIN_PREFIX}/{actor}/"
    errors = f"{SINK_RECORD_PREFIXES[ERROR_SINK]}/"
    return [
        {"Sid": "FanInState", "Effect": "Allow", "Action": list(FANIN_STATE_ACTIONS),
         "Resource": f"{bucket_arn}/{state}*"},
        {"Sid": "FanInErrorRecords", "Effect": "Allow", "Action": list(FANIN_ERROR_READ_ACTIONS),
         "Resource": f"{bucket_arn}/{errors}*"},
        {"Sid": "FanInListings", "Effect": "Allow", "Action": list(FANIN_LIST_ACTIONS), "Resource": bucket_arn,
         "Condition": {"StringLike": {"s3:prefix": [f"{state}*", f"{errors}*"]}}},
    ]


def _status(table_arn: str | None, actions: tuple[str, ...]) -> list[dict[str, Any]]:
    """The statement on the mesh's status table (its items only: no index, no table-level action), or none."""
    if table_arn is None:
        return []
    return [{"Sid": "TrackStatus", "Effect": "Allow", "Action": list(actions), "Resource": table_arn}]


def sink_policy(
    *, queue_arn: str, sink: str, namespace: str, bucket_arn: str, status_table_arn: str | None = None
) -> PolicyDocument:
    """Consume the sink's own queue and send only to it (the shutdown requeue); put objects under its own prefix
    (and, for a body that is no envelope, the malformed-record prefix); read and delete offloaded envelopes; read
    the roles of its own mesh's actors (``iam:GetRole``: a record is kept only if SQS's SenderId is the role of the
    actor it names, runtime ``sidecar/sinks.py``). The mesh prefix ``asya-{namespace}_`` ends in ``_``, which no
    namespace holds, so mesh ``a`` reads no role of mesh ``a-b``."""
    prefixes = sorted({SINK_RECORD_PREFIXES[sink], MALFORMED_RECORD_PREFIX})
    partition = _arn_part(queue_arn, index=1, what="ARN with a partition")
    account = _arn_part(queue_arn, index=4, what="ARN with an account id")
    return _document(
        _consume(queue_arn),
        _dead_letter_depth(queue_arn),
        {"Sid": "RequeueToOwnQueue", "Effect": "Allow", "Action": list(SEND_ACTIONS), "Resource": queue_arn},
        {
            "Sid": "WriteResults",
            "Effect": "Allow",
            "Action": list(SINK_WRITE_ACTIONS),
            "Resource": [f"{bucket_arn}/{prefix}/*" for prefix in prefixes],
        },
        {
            "Sid": "ReadOffloadedEnvelopes",
            "Effect": "Allow",
            "Action": list(OFFLOAD_READ_ACTIONS),
            "Resource": offload_objects(bucket_arn),
        },
        {
            "Sid": "ReadMeshRoles",
            "Effect": "Allow",
            "Action": list(SENDER_CHECK_ACTIONS),
            "Resource": f"arn:{partition}:iam::{account}:role/{mesh_prefix(namespace=namespace)}*",
        },
        *_status(status_table_arn, SINK_STATUS_ACTIONS),
    )


def gateway_policy(*, same_account_queue_arn: str, namespace: str, table_arn: str, bucket_arn: str) -> PolicyDocument:
    """The gateway of mesh ``namespace``: send to the mesh's actor queues (``asya-{namespace}_*``, no other mesh's:
    the ``_`` ends the prefix), never to a DLQ or a sink (a submission enters at an actor; a forged record must not
    come from the front door); read and write the status table and query its ``by_status`` index; read success
    records (``succeeded/``) of the mesh's bucket, for a ``payload_ref``. ``same_account_queue_arn``: any queue ARN
    of the mesh's account and region (the pattern is built from it)."""
    pattern = mesh_queue_arn_pattern(queue_arn=same_account_queue_arn, namespace=namespace)
    prefix = pattern.removesuffix("*")
    return _document(
        {"Sid": "SubmitToMeshActors", "Effect": "Allow", "Action": list(SEND_ACTIONS), "Resource": pattern},
        {
            "Sid": "NeverSendToSinksOrDeadLetterQueues",
            "Effect": "Deny",
            "Action": ["sqs:SendMessage"],
            "Resource": [
                mesh_queue_arn_pattern(queue_arn=same_account_queue_arn, namespace=namespace, dlq=True),
                *(prefix + sink for sink in SINKS),
            ],
        },
        {
            "Sid": "StatusTable",
            "Effect": "Allow",
            "Action": list(GATEWAY_TABLE_ACTIONS),
            "Resource": [table_arn, index_arn(table_arn)],
        },
        {
            "Sid": "ReadSuccessRecords",
            "Effect": "Allow",
            "Action": list(GATEWAY_RESULT_ACTIONS),
            "Resource": f"{bucket_arn}/{SINK_RECORD_PREFIXES[SUCCESS_SINK]}/*",
        },
    )


def _consume(queue_arn: str) -> dict[str, Any]:
    return {"Sid": "ConsumeOwnQueue", "Effect": "Allow", "Action": list(CONSUME_ACTIONS), "Resource": queue_arn}


def _dead_letter_depth(queue_arn: str) -> dict[str, Any]:
    """Read the depth of the actor's own DLQ (``asya_queue_messages{queue="dlq"}``, sidecar/metrics.py); no more."""
    return {
        "Sid": "ReadOwnDeadLetterQueueDepth",
        "Effect": "Allow",
        "Action": ["sqs:GetQueueAttributes"],
        "Resource": queue_arn + DLQ_SUFFIX,
    }


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
            ],
            "Resource": "*",
        },
        {
            "Sid": "DescribeOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["eks:DescribeNodegroup"],
            "Resource": f"arn:*:eks:*:*:nodegroup/{cluster_name}/*/*",
        },
        {
            "Sid": "ResizeOwnNodeGroups",
            "Effect": "Allow",
            "Action": ["autoscaling:SetDesiredCapacity", "autoscaling:TerminateInstanceInAutoScalingGroup"],
            # EKS names a managed node group's ASG eks-<node group>-<uuid>; the tag condition narrows it to ours.
            "Resource": "arn:*:autoscaling:*:*:autoScalingGroup:*:autoScalingGroupName/eks-*",
            "Condition": {"StringEquals": {f"aws:ResourceTag/k8s.io/cluster-autoscaler/{cluster_name}": "owned"}},
        },
    )


def karpenter_controller_policy(
    *, cluster_arn: str, node_role_arn: str, instance_profile_arn: str, interruption_queue_arn: str
) -> PolicyDocument:
    """Karpenter's controller, as its getting-started CloudFormation grants it, narrowed where this stack allows.

    Launch and tag only with this cluster's ownership tags on the request, terminate only instances carrying them
    (``kubernetes.io/cluster/<name>: owned`` and a ``karpenter.sh/nodepool`` tag: Karpenter's, never a managed node
    group's). The instance profile is created by the stack (``EC2NodeClass.spec.instanceProfile``), so the
    controller gets none of the instance-profile create/tag/delete rights Karpenter's own policy carries: it only
    reads that one profile and passes its role to EC2. Zonal shift stays off (the chart's default), so none of its
    rights. The read-only Describe*, ``pricing:GetProducts`` and ``iam:ListInstanceProfiles`` take ``Resource: *``
    (those APIs have no resource-level permissions); the Describe calls are limited to the cluster's region.
    """
    parts = cluster_arn.split(":")
    if len(parts) < 6 or parts[2] != "eks" or not parts[5].startswith("cluster/"):
        raise ValueError(f"{cluster_arn!r} is not an EKS cluster ARN")
    partition, region, cluster_name = parts[1], parts[3], parts[5].removeprefix("cluster/")
    ec2 = f"arn:{partition}:ec2:{region}"
    owned = {f"aws:ResourceTag/kubernetes.io/cluster/{cluster_name}": "owned"}
    owned_request = {
        f"aws:RequestTag/kubernetes.io/cluster/{cluster_name}": "owned",
        "aws:RequestTag/eks:eks-cluster-name": cluster_name,
    }
    launched = [f"{ec2}:*:{kind}/*" for kind in (
        "fleet", "instance", "volume", "network-interface", "launch-template", "spot-instances-request")]
    return _document(
        {
            "Sid": "LaunchFromRegionalResources",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": [
                f"{ec2}::image/*", f"{ec2}::snapshot/*", f"{ec2}:*:security-group/*", f"{ec2}:*:subnet/*",
                f"{ec2}:*:capacity-reservation/*", f"{ec2}:*:placement-group/*",
            ],
        },
        {
            "Sid": "LaunchFromOwnLaunchTemplates",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet"],
            "Resource": f"{ec2}:*:launch-template/*",
            "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "CreateOnlyOwnedResources",
            "Effect": "Allow",
            "Action": ["ec2:RunInstances", "ec2:CreateFleet", "ec2:CreateLaunchTemplate"],
            "Resource": launched,
            "Condition": {"StringEquals": owned_request,
                          "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "TagOnCreate",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": launched,
            "Condition": {
                "StringEquals": {**owned_request,
                                 "ec2:CreateAction": ["RunInstances", "CreateFleet", "CreateLaunchTemplate"]},
                "StringLike": {"aws:RequestTag/karpenter.sh/nodepool": "*"},
            },
        },
        {
            "Sid": "TagOwnInstances",
            "Effect": "Allow",
            "Action": ["ec2:CreateTags"],
            "Resource": f"{ec2}:*:instance/*",
            "Condition": {
                "StringEquals": owned,
                "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"},
                "StringEqualsIfExists": {"aws:RequestTag/eks:eks-cluster-name": cluster_name},
                "ForAllValues:StringEquals": {
                    "aws:TagKeys": ["eks:eks-cluster-name", "karpenter.sh/nodeclaim", "Name"]
                },
            },
        },
        {
            "Sid": "DeleteOwnInstancesAndTemplates",
            "Effect": "Allow",
            "Action": ["ec2:TerminateInstances", "ec2:DeleteLaunchTemplate"],
            "Resource": [f"{ec2}:*:instance/*", f"{ec2}:*:launch-template/*"],
            "Condition": {"StringEquals": owned, "StringLike": {"aws:ResourceTag/karpenter.sh/nodepool": "*"}},
        },
        {
            "Sid": "PassNodeRoleToEc2",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": node_role_arn,
            "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}},
        },
        {"Sid": "ReadNodeInstanceProfile", "Effect": "Allow", "Action": ["iam:GetInstanceProfile"],
         "Resource": instance_profile_arn},
        {"Sid": "FindApiServer", "Effect": "Allow", "Action": ["eks:DescribeCluster"], "Resource": cluster_arn},
        {
            "Sid": "ConsumeInterruptionQueue",
            "Effect": "Allow",
            "Action": ["sqs:DeleteMessage", "sqs:GetQueueUrl", "sqs:ReceiveMessage"],
            "Resource": interruption_queue_arn,
        },
        {"Sid": "ReadPublicAmiParameters", "Effect": "Allow", "Action": ["ssm:GetParameter"],
         "Resource": f"arn:{partition}:ssm:{region}:*:parameter/aws/service/*"},  # public: no account
        {
            "Sid": "DescribeRegionalCapacity",
            "Effect": "Allow",
            "Action": [
                "ec2:DescribeCapacityReservations", "ec2:DescribeImages", "ec2:DescribeInstances",
                "ec2:DescribeInstanceStatus", "ec2:DescribeInstanceTypeOfferings", "ec2:DescribeInstanceTypes",
                "ec2:DescribeLaunchTemplates", "ec2:DescribePlacementGroups", "ec2:DescribeSecurityGroups",
                "ec2:DescribeSpotPriceHistory", "ec2:DescribeSubnets",
            ],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:RequestedRegion": region}},
        },
        {"Sid": "ReadPrices", "Effect": "Allow", "Action": ["pricing:GetProducts"], "Resource": "*"},
        {"Sid": "ListInstanceProfiles", "Effect": "Allow", "Action": ["iam:ListInstanceProfiles"], "Resource": "*"},
    )


def interruption_queue_policy(*, queue_arn: str, rule_arns: list[str]) -> PolicyDocument:
    """Karpenter's interruption queue: only this stack's EventBridge rules may send; nothing reaches it without TLS."""
    return _document(
        {
            "Sid": "EventBridgeRulesSend",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arns}},
        },
        *deny_insecure_transport(resources=[queue_arn], service="sqs")["Statement"],
    )
