"""An EKS Pod Identity: an IAM role that trusts one ServiceAccount of one namespace of one cluster, its inline
policy, and the association that hands the role to that ServiceAccount's pods — written once for every component
that needs one (actors and sinks, KEDA's operator, the Cluster Autoscaler, Karpenter's controller).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import child
from asya_pulumi.objects import iam


@dataclass(frozen=True)
class PodIdentity:
    role: aws.iam.Role
    policy: aws.iam.RolePolicy
    association: aws.eks.PodIdentityAssociation


def pod_identity(
    parent: pulumi.Resource,
    *,
    prefix: str,
    cluster_arn: pulumi.Input[str],
    cluster_name: pulumi.Input[str],
    namespace: pulumi.Input[str],
    service_account: pulumi.Input[str],
    policy: pulumi.Input[str],
    association_name: str | None = None,
    association_namespace: pulumi.Input[str] | None = None,
    association_service_account: pulumi.Input[str] | None = None,
    role_name: str | None = None,
    tags: dict[str, str] | None = None,
) -> PodIdentity:
    """``{prefix}-role`` trusting ``service_account`` in ``namespace`` of cluster ``cluster_arn``,
    ``{prefix}-policy`` (the JSON document ``policy``) on it, and the association (``association_name``, by default
    ``{prefix}-pod-identity``) in cluster ``cluster_name``.

    The association names its namespace and ServiceAccount as ``association_namespace`` and
    ``association_service_account`` when given (the Namespace's or ServiceAccount's own output, so Pulumi creates
    them first), else as the trusted ones.
    """
    trust = pulumi.Output.all(cluster_arn, namespace, service_account).apply(
        lambda args: json.dumps(
            iam.pod_identity_trust_policy(cluster_arn=args[0], namespace=args[1], service_account=args[2])
        )
    )
    role = aws.iam.Role(
        f"{prefix}-role",
        **({"name": role_name} if role_name is not None else {}),
        assume_role_policy=trust,
        **({"tags": tags} if tags is not None else {}),
        opts=child(parent),
    )
    role_policy = aws.iam.RolePolicy(f"{prefix}-policy", role=role.id, policy=policy, opts=child(parent))
    association = aws.eks.PodIdentityAssociation(
        association_name or f"{prefix}-pod-identity",
        cluster_name=cluster_name,
        namespace=association_namespace if association_namespace is not None else namespace,
        service_account=association_service_account if association_service_account is not None else service_account,
        role_arn=role.arn,
        opts=child(parent),
    )
    return PodIdentity(role=role, policy=role_policy, association=association)
