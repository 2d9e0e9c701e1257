"""DynamoDB's typed JSON (``{"S": "text"}``, ``{"N": "3"}``...) to and from Python values, for the store's items.

The store writes strings, numbers, booleans, maps and lists only, so this is the small subset it needs (no sets, no
binary); boto3's ``TypeSerializer`` would do the same but is not a runtime dependency.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any


def encode(value: Any) -> dict[str, Any]:
    """One Python value as a DynamoDB attribute value."""
    if value is None:
        return {"NULL": True}
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, str):
        return {"S": value}
    if isinstance(value, (int, float, Decimal)):
        return {"N": _number_text(value)}
    if isinstance(value, Mapping):
        return {"M": {str(k): encode(v) for k, v in value.items()}}
    if isinstance(value, (list, tuple)):
        return {"L": [encode(v) for v in value]}
    raise TypeError(f"the status store keeps no {type(value).__name__} values (only text, numbers, maps, lists)")


def encode_item(values: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: encode(value) for name, value in values.items()}


def decode(attribute: Mapping[str, Any]) -> Any:
    """One DynamoDB attribute value as Python: numbers as ``int`` when whole, else ``float``."""
    (kind, value), = attribute.items()
    if kind == "S":
        return value
    if kind == "N":
        number = Decimal(value)
        return int(number) if number == number.to_integral_value() else float(number)
    if kind == "BOOL":
        return bool(value)
    if kind == "NULL":
        return None
    if kind == "M":
        return {k: decode(v) for k, v in value.items()}
    if kind == "L":
        return [decode(v) for v in value]
    raise ValueError(f"unexpected DynamoDB attribute type {kind!r} in a status item")


def decode_item(item: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    return {name: decode(value) for name, value in item.items()}


def _number_text(value: int | float | Decimal) -> str:
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"the status store keeps finite numbers only, not {value!r}")
        return repr(value) if not value.is_integer() else str(int(value))
    return str(value)
