"""The mesh's status table (docs/gateway.md, "The status store") as the arguments of ``aws.dynamodb.Table``.

The table's shape (name, key, the ``by_status`` index, the TTL attribute) belongs to the runtime, which reads and
writes it (``asya_runtime.status``); what this module adds is how it is kept on AWS: on demand (no capacity to size
or to throttle at), encrypted with KMS, point-in-time recovery, deletion protection where the spec asks for it.

Until the runtime's status package is on this branch the shape is stated once here, under the names the runtime
uses; :data:`SHAPE` is the one place to switch to its table definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asya_runtime.naming import PREFIX, SEPARATOR

#: The environment variable naming the status table to a sidecar and to the gateway (``SidecarConfig`` /
#: ``GatewayConfig`` field ``status_table``): unset, no status is tracked.
STATUS_TABLE_ENV = "ASYA_STATUS_TABLE"
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class TableShape:
    """What the runtime reads and writes: the key, the listing index, the TTL attribute."""

    key: str = "id"
    index: str = "by_status"
    index_key: str = "status"
    index_sort: str = "created_at"
    ttl_attribute: str = "expires_at"


SHAPE = TableShape()


def status_table_name(*, namespace: str) -> str:
    """``asya-{namespace}_status``: the ``_`` that ends the mesh prefix keeps mesh ``a``'s table apart from mesh
    ``a-b``'s in every ``asya-a_*`` pattern, as for queues (:mod:`asya_runtime.naming`)."""
    return f"{PREFIX}{namespace}{SEPARATOR}status"


def table_arn(*, same_account_arn: str, region: str, namespace: str) -> str:
    """``arn:PARTITION:dynamodb:REGION:ACCOUNT:table/asya-{namespace}_status``, from any ARN of the account."""
    parts = same_account_arn.split(":")
    if len(parts) < 6 or not parts[4].isdigit():
        raise ValueError(f"{same_account_arn!r} is not an ARN with an account id")
    return f"arn:{parts[1]}:dynamodb:{region}:{parts[4]}:table/{status_table_name(namespace=namespace)}"


def index_arn(table: str) -> str:
    """The ``by_status`` index of the table whose ARN is ``table`` (what ``dynamodb:Query`` on it is authorised on)."""
    return f"{table}/index/{SHAPE.index}"


def status_table_args(*, namespace: str, deletion_protection: bool, tags: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments of ``aws.dynamodb.Table`` for mesh ``namespace``'s status table.

    * ``PAY_PER_REQUEST``: on demand, billed per request; nothing to provision, nothing idle to pay for.
    * ``server_side_encryption.enabled``: KMS (the AWS-managed ``aws/dynamodb`` key), not the AWS-owned default.
    * TTL on ``expires_at``: DynamoDB deletes an item after the time the gateway wrote there (retention days).
    * point-in-time recovery: any second of the last 35 days can be restored.
    * ``deletion_protection_enabled``: DynamoDB refuses DeleteTable until it is turned off (prod).
    """
    shape = SHAPE
    return {
        "name": status_table_name(namespace=namespace),
        "billing_mode": "PAY_PER_REQUEST",
        "hash_key": shape.key,
        "attributes": [
            {"name": shape.key, "type": "S"},
            {"name": shape.index_key, "type": "S"},
            {"name": shape.index_sort, "type": "S"},
        ],
        "global_secondary_indexes": [{
            "name": shape.index,
            "key_schemas": [
                {"attribute_name": shape.index_key, "key_type": "HASH"},
                {"attribute_name": shape.index_sort, "key_type": "RANGE"},
            ],
            "projection_type": "KEYS_ONLY",
        }],
        "ttl": {"attribute_name": shape.ttl_attribute, "enabled": True},
        "point_in_time_recovery": {"enabled": True},
        "server_side_encryption": {"enabled": True},
        "deletion_protection_enabled": deletion_protection,
        "tags": tags,
    }
