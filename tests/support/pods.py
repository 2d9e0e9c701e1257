"""Reading rendered pod specs in tests."""

from __future__ import annotations

from typing import Any


def plain_env(container: dict[str, Any]) -> dict[str, str]:
    """The container's env entries that carry a value; those from the downward API or a Secret (``valueFrom``),
    which only the kubelet can resolve, are left out."""
    return {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
