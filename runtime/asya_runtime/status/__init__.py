"""The durable status store of the front door (docs/gateway.md, "The status store"): one DynamoDB item per tracked
envelope, written by the gateway (pending, canceled), the sidecars (running, FLY) and the sinks (terminal).

``schema`` defines the table (the one source for ``asya dev`` and the Pulumi component), ``store`` reads and writes
it, ``client.open_store`` connects one on its own.
"""

from asya_runtime.naming import status_table_name
from asya_runtime.status.expression import condition_failed
from asya_runtime.status.record import FlyLog, RunningUpdate, StatusPage, StatusRecord
from asya_runtime.status.schema import (
    BY_STATUS_INDEX,
    DEFAULT_TTL_S,
    INLINE_PAYLOAD_MAX_BYTES,
    RANKS,
    STATUSES,
    TERMINAL,
    TRACKED_HEADER,
    TRACKED_VALUE,
    TTL_ATTRIBUTE,
    iso_timestamp,
    table_definition,
    time_to_live,
)
from asya_runtime.status.store import StatusStore

__all__ = [
    "BY_STATUS_INDEX", "DEFAULT_TTL_S", "INLINE_PAYLOAD_MAX_BYTES", "RANKS", "STATUSES", "TERMINAL", "TRACKED_HEADER",
    "TRACKED_VALUE", "TTL_ATTRIBUTE", "FlyLog", "RunningUpdate", "StatusPage", "StatusRecord", "StatusStore",
    "condition_failed", "iso_timestamp", "status_table_name", "table_definition", "time_to_live",
]
