"""moto's server with every DynamoDB request applied atomically, as DynamoDB applies a (conditional) write to an item.

moto 5.2.5's server is threaded and its DynamoDB backend takes no lock, so two conditional ``UpdateItem`` calls that
arrive together can both read the old item, both pass their condition and both write: a race real DynamoDB never
lets happen (a conditional write is atomic per item), found by ``tests/runtime/test_rate_limit_bucket.py``, whose
racing takers got the same token twice. This launcher runs each DynamoDB request under one lock; every other service
and everything else is moto's own.

Run as ``python moto_atomic.py -H HOST -p PORT`` (``moto.server``'s arguments).
"""

from __future__ import annotations

import sys
import threading
from typing import Any

from moto import server
from moto.dynamodb.responses import DynamoHandler

_LOCK = threading.Lock()
_call_action = DynamoHandler.call_action


def _atomic_call_action(self: Any) -> Any:
    with _LOCK:
        return _call_action(self)


DynamoHandler.call_action = _atomic_call_action  # type: ignore[method-assign]

if __name__ == "__main__":
    server.main(sys.argv[1:])
