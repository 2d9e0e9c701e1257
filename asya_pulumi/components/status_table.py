"""``StatusTable``: the mesh's DynamoDB status table (docs/gateway.md) — on demand, KMS-encrypted, TTL on
``expires_at``, point-in-time recovery, deletion protection where the spec asks, and a resource policy refusing
every request not made over TLS. ``ActorMesh`` creates it when ``MeshSpec.gateway`` is set (``deletion_protection``:
the gateway's) or an actor has ``rateLimit`` (its shared token bucket lives there)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from asya_pulumi.components.common import TYPE_PREFIX, AsyaComponent, ComponentOutput, child, tags
from asya_pulumi.objects.iam import deny_insecure_transport
from asya_pulumi.objects.status_table import index_arn, status_table_args


class StatusTable(AsyaComponent):
    """Outputs: ``table_name``, ``table_arn``."""

    OUTPUTS = (
        ComponentOutput("tableName", "table_name", str, "The status table: asya-{namespace}_status."),
        ComponentOutput("tableArn", "table_arn", str, "The status table's ARN."),
    )
    table: aws.dynamodb.Table
    table_name: pulumi.Output[str]
    table_arn: pulumi.Output[str]

    def __init__(
        self, resource_name: str, *, namespace: str, deletion_protection: bool = False,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__(f"{TYPE_PREFIX}StatusTable", resource_name, None, opts)
        self.table = aws.dynamodb.Table(
            f"{resource_name}-table",
            **status_table_args(
                namespace=namespace, deletion_protection=deletion_protection, tags=tags(namespace=namespace)
            ),
            opts=child(self),
        )
        self.tls_only = aws.dynamodb.ResourcePolicy(
            f"{resource_name}-tls-only",
            resource_arn=self.table.arn,
            policy=self.table.arn.apply(lambda arn: json.dumps(
                deny_insecure_transport(resources=[arn, index_arn(arn)], service="dynamodb"))),
            opts=child(self),
        )
        self.table_name = self.table.name
        self.table_arn = self.table.arn
        self.register()
