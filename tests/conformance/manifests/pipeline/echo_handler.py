"""The handler every conformance manifest names: upstream's echo, as a plain function (no import from us)."""

from __future__ import annotations

from typing import Any


def process(payload: dict[str, Any]) -> dict[str, Any]:
    return {**payload, "echoed": True}
