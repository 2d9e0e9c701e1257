"""The actor and sink policies grant exactly the AWS operations the runtime's sidecar calls: no more, no less.

The operations are read from the sidecar's source (every string literal that is an SQS, S3 or IAM operation name in
botocore's service models), so a runtime change that needs a new permission fails here, not in production.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import boto3

from asya_pulumi.objects import iam

SIDECAR = Path(__file__).resolve().parents[2] / "runtime" / "asya_runtime" / "sidecar"
#: The status store (asya_runtime.status), which the sidecars, the sinks and the gateway all write through.
STATUS = SIDECAR.parent / "status"
#: SQS authorises its batch APIs with the single-message action.
BATCH_ACTIONS = {"SendMessageBatch": "SendMessage", "DeleteMessageBatch": "DeleteMessage",
                 "ChangeMessageVisibilityBatch": "ChangeMessageVisibility"}
#: S3 authorises ListObjectsV2 with the bucket-level ListBucket.
S3_ACTIONS = {"ListObjectsV2": "ListBucket"}
QUEUE = "arn:aws:sqs:us-east-1:123456789012:asya-dev_judge"
#: Fan-in's own modules: only an actor with ``fanIn`` makes their calls (and is granted them: the last test here).
FANIN = (SIDECAR / "fanin.py", SIDECAR / "fanin_state.py")


def operations_called(service: str, *, source: Path | tuple[Path, ...] = SIDECAR) -> set[str]:
    """The operations of ``service`` that the modules in ``source`` call (a folder: all of it but fan-in's)."""
    mapping = boto3.session.Session().client(service, region_name="us-east-1").meta.method_to_api_mapping
    paths = list(source) if isinstance(source, tuple) else [p for p in source.glob("*.py") if p not in FANIN]
    literals = {
        node.value
        for path in paths
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    }
    renamed = {**BATCH_ACTIONS, **S3_ACTIONS}
    return {f"{service}:{renamed.get(mapping[name], mapping[name])}" for name in literals if name in mapping}


def granted(policy: iam.PolicyDocument) -> set[str]:
    return {action for s in policy["Statement"] if s["Effect"] == "Allow" for action in s["Action"]}


BUCKET = "arn:aws:s3:::asya-dev-results-x"
#: GetObject with a VersionId (claim-check references name their version) is authorised as GetObjectVersion.
VERSIONED_READ = {"s3:GetObjectVersion"}


def test_actor_policy_grants_exactly_the_sqs_operations_the_sidecar_calls() -> None:
    needed = operations_called("sqs")
    assert {"sqs:ReceiveMessage", "sqs:SendMessage", "sqs:DeleteMessage"} <= needed  # the scan finds real calls
    assert granted(iam.actor_policy(queue_arn=QUEUE, namespace="dev")) == needed


def test_an_actor_with_the_mesh_bucket_may_offload_only_under_its_offload_prefix() -> None:
    needed = operations_called("s3")
    assert {"s3:PutObject", "s3:GetObject", "s3:DeleteObject"} <= needed
    policy = iam.actor_policy(queue_arn=QUEUE, namespace="dev", bucket_arn=BUCKET)
    assert granted(policy) == operations_called("sqs") | needed | VERSIONED_READ
    (offload,) = [s for s in policy["Statement"] if any(a.startswith("s3:") for a in s["Action"])]
    assert offload["Resource"] == f"{BUCKET}/offload/*"  # never the sinks' records, never a listing


def test_sink_policy_grants_exactly_the_operations_the_sink_calls_on_its_own_queue_and_prefix() -> None:
    bucket = "arn:aws:s3:::asya-dev-results-x"
    sink_queue = "arn:aws:sqs:us-east-1:123456789012:asya-dev_error-sink"
    sink = iam.sink_policy(queue_arn=sink_queue, sink="error-sink", namespace="dev", bucket_arn=bucket)
    assert operations_called("iam") == {"iam:GetRole"}
    called = operations_called("sqs") | operations_called("s3") | operations_called("iam")
    assert granted(sink) == called | VERSIONED_READ
    statements = {s["Sid"]: s for s in sink["Statement"]}
    # Who sent a record: the roles of its own mesh only ('_' ends the prefix: mesh dev reads none of dev-b's).
    assert statements.pop("ReadMeshRoles")["Resource"] == "arn:aws:iam::123456789012:role/asya-dev_*"
    assert statements["WriteResults"]["Resource"] == [f"{bucket}/failed/*"]
    offload = statements.pop("ReadOffloadedEnvelopes")
    assert offload["Resource"] == f"{bucket}/offload/*" and "s3:PutObject" not in offload["Action"]
    # A sink never forwards: its only send is the shutdown requeue into its own queue.
    assert statements["RequeueToOwnQueue"]["Resource"] == sink_queue
    assert statements.pop("ReadOwnDeadLetterQueueDepth")["Resource"] == f"{sink_queue}_dlq"  # its metrics only
    assert all(s["Resource"] == sink_queue for s in statements.values() if s["Sid"] != "WriteResults")
    success = iam.sink_policy(queue_arn=sink_queue, sink="success-sink", namespace="dev", bucket_arn=bucket)
    (write,) = [s for s in success["Statement"] if s["Sid"] == "WriteResults"]
    assert write["Resource"] == [f"{bucket}/failed/*", f"{bucket}/succeeded/*"]  # failed/: bodies that are no envelope


def test_only_the_own_queue_is_consumed_and_sends_stay_in_the_mesh() -> None:
    statements = {s["Sid"]: s for s in iam.actor_policy(queue_arn=QUEUE, namespace="dev")["Statement"]}
    assert statements["ConsumeOwnQueue"]["Resource"] == QUEUE
    assert statements["SendToMeshQueues"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:asya-dev_*"
    assert "sqs:ReceiveMessage" not in statements["SendToMeshQueues"]["Action"]
    deny = statements["NeverSendToDeadLetterQueues"]
    assert (deny["Effect"], deny["Resource"]) == ("Deny", "arn:aws:sqs:us-east-1:123456789012:asya-dev_*_dlq")


def test_trust_policy_names_one_service_account_of_one_cluster() -> None:
    cluster = iam.eks_cluster_arn(same_account_arn=QUEUE, region="eu-west-1", cluster_name="ml")
    assert cluster == "arn:aws:eks:eu-west-1:123456789012:cluster/ml"
    (statement,) = iam.pod_identity_trust_policy(cluster_arn=cluster, namespace="dev", service_account="judge")[
        "Statement"
    ]
    assert statement["Condition"]["StringEquals"] == {
        "aws:SourceAccount": "123456789012",
        "aws:RequestTag/eks-cluster-arn": cluster,
        "aws:RequestTag/kubernetes-namespace": "dev",
        "aws:RequestTag/kubernetes-service-account": "judge",
    }


def test_no_allowed_action_is_a_wildcard() -> None:
    policies = [
        iam.actor_policy(queue_arn=QUEUE, namespace="dev", bucket_arn=BUCKET),
        iam.sink_policy(queue_arn=QUEUE, sink="success-sink", namespace="dev", bucket_arn="arn:aws:s3:::b"),
        iam.scaler_policy(queue_arn_patterns=["arn:aws:sqs:us-east-1:1:asya-*"]),
        iam.cluster_autoscaler_policy(cluster_name="c"),
        iam.pod_identity_trust_policy(
            cluster_arn="arn:aws:eks:us-east-1:1:cluster/c", namespace="dev", service_account="judge"
        ),
    ]
    assert all("*" not in action for policy in policies for action in granted(policy))


def test_the_cluster_autoscaler_describes_and_resizes_only_this_clusters_node_groups() -> None:
    statements = {s["Sid"]: s for s in iam.cluster_autoscaler_policy(cluster_name="ml")["Statement"]}
    assert statements["DescribeOwnNodeGroups"]["Resource"] == "arn:*:eks:*:*:nodegroup/ml/*/*"
    resize = statements["ResizeOwnNodeGroups"]
    assert resize["Resource"].endswith(":autoScalingGroupName/eks-*")
    assert resize["Condition"] == {"StringEquals": {"aws:ResourceTag/k8s.io/cluster-autoscaler/ml": "owned"}}
    # Only actions without resource-level permissions keep Resource "*".
    assert all(a.split(":")[1].startswith(("Describe", "Get")) for a in statements["Discover"]["Action"])


TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/asya-dev_status"
#: What only ``asya dev`` calls, creating the table in moto's server (on AWS the stack creates it).
TABLE_MANAGEMENT = {"dynamodb:CreateTable", "dynamodb:UpdateTimeToLive"}


def test_the_status_grants_are_exactly_the_operations_the_status_store_calls() -> None:
    """Sidecars, sinks and the gateway together may call every item operation the status store makes, nothing more;
    each on the one table (the gateway's Query also on its by_status index)."""
    needed = operations_called("dynamodb", source=STATUS)
    assert {"dynamodb:UpdateItem", "dynamodb:BatchGetItem", "dynamodb:Query"} <= needed  # the scan finds real calls
    actor = iam.actor_policy(queue_arn=QUEUE, namespace="dev", bucket_arn=BUCKET, status_table_arn=TABLE)
    sink = iam.sink_policy(queue_arn=QUEUE + "_x", sink="success-sink", namespace="dev", bucket_arn=BUCKET,
                           status_table_arn=TABLE)
    gateway = iam.gateway_policy(same_account_queue_arn=QUEUE, namespace="dev", table_arn=TABLE, bucket_arn=BUCKET)
    grants = {name: {a for a in granted(policy) if a.startswith("dynamodb:")}
              for name, policy in (("actor", actor), ("sink", sink), ("gateway", gateway))}
    assert grants["actor"] == {"dynamodb:UpdateItem", "dynamodb:BatchGetItem"}
    assert grants["actor"] < grants["sink"] and grants["sink"] - grants["actor"] == {"dynamodb:GetItem"}
    assert set().union(*grants.values()) == needed - TABLE_MANAGEMENT
    for policy in (actor, sink):
        (statement,) = [s for s in policy["Statement"] if s["Action"][0].startswith("dynamodb:")]
        assert statement["Resource"] == TABLE
    (statement,) = [s for s in gateway["Statement"] if s["Action"][0].startswith("dynamodb:")]
    assert statement["Resource"] == [TABLE, f"{TABLE}/index/by_status"]
    assert "dynamodb" not in json.dumps(iam.actor_policy(queue_arn=QUEUE, namespace="dev"))  # gateway off: none


def test_the_gateway_sends_only_to_its_meshs_actor_queues_and_reads_only_success_records() -> None:
    gateway = iam.gateway_policy(same_account_queue_arn=QUEUE, namespace="dev", table_arn=TABLE, bucket_arn=BUCKET)
    by_sid = {s["Sid"]: s for s in gateway["Statement"]}
    assert by_sid["SubmitToMeshActors"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:asya-dev_*"
    assert by_sid["SubmitToMeshActors"]["Action"] == ["sqs:SendMessage", "sqs:GetQueueUrl"]
    denied = by_sid["NeverSendToSinksOrDeadLetterQueues"]
    assert denied["Effect"] == "Deny" and denied["Action"] == ["sqs:SendMessage"]
    assert sorted(denied["Resource"]) == sorted(f"arn:aws:sqs:us-east-1:123456789012:asya-dev_{q}"
                                                for q in ("*_dlq", "success-sink", "error-sink"))
    assert by_sid["ReadSuccessRecords"] == {"Sid": "ReadSuccessRecords", "Effect": "Allow",
                                            "Action": ["s3:GetObject"], "Resource": f"{BUCKET}/succeeded/*"}
    assert granted(gateway) == {"sqs:SendMessage", "sqs:GetQueueUrl", "s3:GetObject", *iam.GATEWAY_TABLE_ACTIONS}


def test_a_fan_in_actor_may_also_keep_state_under_its_own_prefix_and_read_error_records_only() -> None:
    needed = operations_called("s3", source=FANIN)
    assert needed == {"s3:PutObject", "s3:GetObject", "s3:ListBucket"}  # the scan finds fan-in's real calls
    plain = iam.actor_policy(queue_arn=QUEUE, namespace="dev", bucket_arn=BUCKET)
    policy = iam.actor_policy(queue_arn=QUEUE, namespace="dev", bucket_arn=BUCKET, fanin_actor="judge")
    assert granted(policy) == granted(plain) | needed
    statements = {s["Sid"]: s for s in policy["Statement"] if s not in plain["Statement"]}
    assert statements["FanInState"]["Resource"] == f"{BUCKET}/fanin/judge/*"  # the '/' keeps judge out of judge-b
    assert set(statements["FanInState"]["Action"]) == {"s3:PutObject", "s3:GetObject"}
    assert statements["FanInErrorRecords"] == {
        "Sid": "FanInErrorRecords", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": f"{BUCKET}/failed/*",
    }
    listing = statements["FanInListings"]
    assert listing["Action"] == ["s3:ListBucket"] and listing["Resource"] == BUCKET
    assert listing["Condition"] == {"StringLike": {"s3:prefix": ["fanin/judge/*", "failed/*"]}}
    assert "fanin" not in json.dumps(plain)  # an actor without fanIn gets none of it
    assert iam.actor_policy(queue_arn=QUEUE, namespace="dev", fanin_actor="judge") == iam.actor_policy(
        queue_arn=QUEUE, namespace="dev")  # no bucket, nothing to grant (the component refuses fanIn without one)
