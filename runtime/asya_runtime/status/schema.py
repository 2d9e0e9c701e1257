"""The status table, defined once: its name, keys, index, TTL attribute, status values and limits.

Everything that builds or reads the table takes it from here: :class:`~asya_runtime.status.store.StatusStore`,
``asya dev --gateway`` (creates it in moto's server with :func:`table_definition`) and the Pulumi component
(``asya_pulumi``, which mirrors :func:`table_definition` as an ``aws.dynamodb.Table``). docs/gateway.md, "The status
store", describes each attribute.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from asya_runtime.naming import status_table_name
from asya_runtime.retention import DAY_S, DEFAULT_RETENTION_DAYS, MAX_RETENTION_DAYS

__all__ = [
    "BY_STATUS_INDEX", "DAY_S", "DEFAULT_RETENTION_DAYS", "DEFAULT_TTL_S", "FLY_EVENT_MAX_BYTES", "FLY_KEEP",
    "INLINE_PAYLOAD_MAX_BYTES", "KEY", "MAX_RETENTION_DAYS", "RANKS", "RATE_LIMIT_KEY_PREFIX", "STATUSES", "TERMINAL",
    "TERMINAL_RANK", "TRACKED_HEADER", "TRACKED_VALUE", "TTL_ATTRIBUTE", "Status", "iso_timestamp", "rate_limit_key",
    "status_table_name", "table_definition", "time_to_live",
]

#: The partition key: the envelope's id.
KEY = "id"
#: The index that lists envelopes by status, newest first: partition ``status``, sort ``created_at``, keys only.
BY_STATUS_INDEX = "by_status"
#: Epoch seconds after which DynamoDB's TTL deletes an item.
TTL_ATTRIBUTE = "expires_at"
#: How long an item lives after its last write by default: 7 days (every write moves ``expires_at``). A mesh sets its
#: own with ``gateway.statusRetentionDays`` (``ASYA_STATUS_RETENTION_DAYS``; asya_runtime/retention.py).
DEFAULT_TTL_S = DEFAULT_RETENTION_DAYS * DAY_S

Status = Literal["pending", "running", "paused", "succeeded", "failed", "canceled"]
#: Every status, in the order an envelope goes through them.
STATUSES: tuple[Status, ...] = ("pending", "running", "paused", "succeeded", "failed", "canceled")
#: The rank each status writes to ``rank``: every write is conditional on it, so no state goes back (monotonic);
#: the terminal ones share the top rank and never overwrite each other (upstream Asya's status model).
RANKS: dict[str, int] = {"pending": 0, "running": 1, "paused": 2, "succeeded": 3, "failed": 3, "canceled": 3}
TERMINAL_RANK = 3
TERMINAL: frozenset[str] = frozenset(s for s, rank in RANKS.items() if rank == TERMINAL_RANK)

#: The key prefix of the rate-limit buckets kept in the table (``rate-limit/{actor}``, sidecar/rate_limit.py): an
#: envelope id never holds ``/``, so no bucket shares a key with an envelope's item.
RATE_LIMIT_KEY_PREFIX = "rate-limit/"


def rate_limit_key(actor: str) -> str:
    """The ``id`` of ``actor``'s rate-limit bucket item (the sidecar writes it; IAM grants exactly that key)."""
    return f"{RATE_LIMIT_KEY_PREFIX}{actor}"


#: The header that says an envelope has a status record (the gateway sets it; fan-out children copy it).
TRACKED_HEADER = "x-asya-tracked"
TRACKED_VALUE = "1"
#: A final payload up to this size is kept in the item; a larger one by reference to the success sink's record
#: (DynamoDB items are at most 400 KB, and every write costs 1 WRU per KB of the item).
INLINE_PAYLOAD_MAX_BYTES = 32 * 1024
#: FLY events kept per item (the last ones), each at most this long as JSON text.
FLY_KEEP = 20
FLY_EVENT_MAX_BYTES = 1024


def table_definition(*, table_name: str) -> dict[str, Any]:
    """DynamoDB ``CreateTable``'s parameters for the status table: on demand, key ``id``, the ``by_status`` index.

    (TTL is set apart, with ``UpdateTimeToLive`` and :func:`time_to_live`; encryption, point-in-time recovery and
    deletion protection are the deployment's, see docs/gateway.md.)
    """
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": KEY, "AttributeType": "S"},
            {"AttributeName": "status", "AttributeType": "S"},
            {"AttributeName": "created_at", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": KEY, "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": BY_STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "status", "KeyType": "HASH"},
                    {"AttributeName": "created_at", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
    }


def time_to_live() -> dict[str, Any]:
    """``UpdateTimeToLive``'s ``TimeToLiveSpecification``: items expire at their ``expires_at``."""
    return {"AttributeName": TTL_ATTRIBUTE, "Enabled": True}


def iso_timestamp(moment: datetime | None = None) -> str:
    """``moment`` (default now) as ISO 8601 UTC with milliseconds and ``Z``: ``2026-12-07T21:04:05.123Z``. All such
    texts have the same length, so they sort as time does (the index's sort key)."""
    moment = (moment or datetime.now(UTC)).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
