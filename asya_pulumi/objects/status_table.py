"""The mesh's status table (docs/gateway.md, "The status store") as the arguments of ``aws.dynamodb.Table``.

The table's shape (name, key, the ``by_status`` index, the TTL attribute) belongs to the runtime, which reads and
writes it: :func:`status_table_args` translates ``asya_runtime.status.schema.table_definition`` (what ``asya dev``
creates in moto's server too) into the provider's arguments, so the two cannot drift. What this module adds is how
the table is kept on AWS: on demand (no capacity to size or to throttle at), encrypted with KMS, point-in-time
recovery, deletion protection where the spec asks for it.
"""

from __future__ import annotations

from typing import Any

from asya_runtime.config import SidecarConfig
from asya_runtime.naming import status_table_name
from asya_runtime.status.schema import BY_STATUS_INDEX, table_definition, time_to_live

__all__ = ["STATUS_TABLE_ENV", "index_arn", "status_table_args", "status_table_name"]

#: The environment variable naming the status table to a sidecar (and to the gateway): unset, no status tracked.
STATUS_TABLE_ENV: str = SidecarConfig.model_fields["status_table"].alias or "ASYA_STATUS_TABLE"


def index_arn(table: str) -> str:
    """The ``by_status`` index of the table whose ARN is ``table`` (what ``dynamodb:Query`` on it is authorised on)."""
    return f"{table}/index/{BY_STATUS_INDEX}"


def _key_schemas(key_schema: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{"attribute_name": k["AttributeName"], "key_type": k["KeyType"]} for k in key_schema]


def status_table_args(*, namespace: str, deletion_protection: bool, tags: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``aws.dynamodb.Table`` for mesh ``namespace``'s status table: the runtime's
    ``table_definition`` (name, on-demand billing, key, attributes, the keys-only ``by_status`` index) plus

    * ``server_side_encryption.enabled``: KMS (the AWS-managed ``aws/dynamodb`` key), not the AWS-owned default;
    * TTL on ``expires_at``: DynamoDB deletes an item after the time the runtime wrote there;
    * point-in-time recovery: any second of the last 35 days can be restored;
    * ``deletion_protection_enabled``: DynamoDB refuses DeleteTable until it is turned off (prod).
    """
    definition = table_definition(table_name=status_table_name(namespace))
    ttl = time_to_live()
    (hash_key,) = [k["AttributeName"] for k in definition["KeySchema"] if k["KeyType"] == "HASH"]
    return {
        "name": definition["TableName"],
        "billing_mode": definition["BillingMode"],
        "hash_key": hash_key,
        "attributes": [{"name": a["AttributeName"], "type": a["AttributeType"]}
                       for a in definition["AttributeDefinitions"]],
        "global_secondary_indexes": [
            {"name": index["IndexName"], "key_schemas": _key_schemas(index["KeySchema"]),
             "projection_type": index["Projection"]["ProjectionType"]}
            for index in definition["GlobalSecondaryIndexes"]
        ],
        "ttl": {"attribute_name": ttl["AttributeName"], "enabled": ttl["Enabled"]},
        "point_in_time_recovery": {"enabled": True},
        "server_side_encryption": {"enabled": True},
        "deletion_protection_enabled": deletion_protection,
        "tags": tags,
    }
