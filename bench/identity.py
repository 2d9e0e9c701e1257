"""The benchmark's handler: returns its payload unchanged, so every measured cost is the runtime's own."""

from __future__ import annotations

from typing import Any


def handle(payload: Any) -> Any:
    return payload
