"""The ``vpc-cni`` EKS add-on with its network policy agent on: what makes the mesh's NetworkPolicy enforced.

EKS clusters start with a self-managed VPC CNI that ignores NetworkPolicy objects. Managing the add-on (and
overwriting the self-managed one's settings) with ``enableNetworkPolicy`` starts the network policy agent in every
``aws-node`` pod; without it the mesh's default-deny policy is stored but lets everything through.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import child

CONFIGURATION = {"enableNetworkPolicy": "true"}


def vpc_cni_addon(parent: pulumi.Resource, *, resource_name: str, cluster_name: pulumi.Input[str]) -> aws.eks.Addon:
    """``vpc-cni`` with ``{"enableNetworkPolicy": "true"}``, taking over the cluster's self-managed CNI."""
    return aws.eks.Addon(
        resource_name,
        cluster_name=cluster_name,
        addon_name="vpc-cni",
        configuration_values=json.dumps(CONFIGURATION),
        resolve_conflicts_on_create="OVERWRITE",
        resolve_conflicts_on_update="OVERWRITE",
        opts=child(parent),
    )
