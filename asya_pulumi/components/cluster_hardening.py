"""The cluster's hardening resources made before it: the control-plane log group (with a retention) and the KMS key
that wraps its Secrets (``asya_pulumi.spec.hardening`` has the settings, docs/infrastructure.md the reasons)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import child
from asya_pulumi.spec import ControlPlaneLogsSpec, SecretsEncryptionSpec


def control_plane_log_group(
    parent: pulumi.Resource, *, resource_name: str, cluster_name: str, logs: ControlPlaneLogsSpec
) -> aws.cloudwatch.LogGroup | None:
    """The group EKS writes control-plane logs to, with ``logs.retention_days``; None when no log type is on.

    EKS writes to ``/aws/eks/<cluster>/cluster`` and creates it, with no expiry, if it does not exist; creating it
    first (the cluster depends on it) is how the retention applies from the first log line.
    """
    if not logs.types:
        return None
    return aws.cloudwatch.LogGroup(
        f"{resource_name}-control-plane-logs",
        name=f"/aws/eks/{cluster_name}/cluster",
        retention_in_days=logs.retention_days,
        opts=child(parent),
    )


def secrets_key(
    parent: pulumi.Resource, *, resource_name: str, cluster_role: aws.iam.Role, encryption: SecretsEncryptionSpec
) -> tuple[aws.kms.Key, aws.iam.RolePolicy] | None:
    """A KMS key (rotated yearly) that wraps the cluster's Secrets, and the cluster role's right to use it.

    The key policy is KMS's default (the account's IAM decides); the cluster role may use only this key, only for
    the calls envelope encryption makes.
    """
    if not encryption.enabled:
        return None
    key = aws.kms.Key(
        f"{resource_name}-secrets",
        description=f"{resource_name}: envelope encryption of Kubernetes Secrets",
        enable_key_rotation=True,
        deletion_window_in_days=encryption.deletion_window_days,
        opts=child(parent),
    )
    grant = aws.iam.RolePolicy(
        f"{resource_name}-cluster-role-secrets-key",
        role=cluster_role.id,
        policy=key.arn.apply(
            lambda arn: json.dumps(
                {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey", "kms:ListGrants"],
                    "Resource": arn}]}
            )
        ),
        opts=child(parent),
    )
    return key, grant
