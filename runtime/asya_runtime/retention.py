"""How long a status record lives (docs/gateway.md, "The status store"): every write sets its ``expires_at`` this
many days ahead and DynamoDB's TTL deletes it after that.

A module of its own, without dependencies, so the configs (``SidecarConfig``, ``GatewayConfig``) and the spec
(``gateway.statusRetentionDays``) share the numbers without importing the status store (and botocore) with them.
"""

from __future__ import annotations

__all__ = ["DAY_S", "DEFAULT_RETENTION_DAYS", "MAX_RETENTION_DAYS"]

DAY_S = 24 * 3600
#: The mesh's ``gateway.statusRetentionDays`` unless it names its own (``ASYA_STATUS_RETENTION_DAYS``).
DEFAULT_RETENTION_DAYS = 7
#: DynamoDB's TTL takes any epoch time; ten years is far past any reason to keep an envelope's status.
MAX_RETENTION_DAYS = 3650
