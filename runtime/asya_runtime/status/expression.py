"""The pieces of the store's requests: expressions with every name and value aliased, and FLY events as text."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from asya_runtime.status import schema
from asya_runtime.status.codec import encode

_CONDITION_FAILED = "ConditionalCheckFailedException"


def condition_failed(exc: BaseException) -> bool:
    """Whether ``exc`` is DynamoDB saying a write's condition did not hold (no error for the store)."""
    return isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") == _CONDITION_FAILED


class Expression:
    """An update or condition expression's names (``#name``) and values (``:name``), so no attribute name can clash
    with one of DynamoDB's ~570 reserved words (``status`` is one)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, dict[str, Any]] = {}

    def name(self, attribute: str) -> str:
        self.names[f"#{attribute}"] = attribute
        return f"#{attribute}"

    def value(self, label: str, value: Any) -> str:
        self.values[f":{label}"] = encode(value)
        return f":{label}"

    def assign(self, values: dict[str, Any]) -> list[str]:
        return [f"{self.name(k)} = {self.value(k, v)}" for k, v in values.items()]

    def params(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            out["ExpressionAttributeValues"] = self.values
        return out


def fly_text(event: Any) -> str:
    """A FLY event as the JSON text the item keeps; one over 1 KiB is kept as a note saying how long it was."""
    text = json.dumps(event, ensure_ascii=False, separators=(",", ":"), default=str)
    size = len(text.encode())
    if size <= schema.FLY_EVENT_MAX_BYTES:
        return text
    return json.dumps({"truncated": True, "bytes": size}, separators=(",", ":"))
