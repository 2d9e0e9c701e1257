"""The batching benchmark's handlers: a GPU-shaped cost, a fixed 25 ms per call plus 1 ms per item."""

from __future__ import annotations

import time
from typing import Any

FIXED_S = 0.025
PER_ITEM_S = 0.001


def score(payload: dict[str, Any]) -> dict[str, Any]:
    """One item per call: 26 ms."""
    time.sleep(FIXED_S + PER_ITEM_S)
    return payload


def score_batch(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A batch per call: 25 ms + 1 ms per item (16 items: 41 ms, 2.6 ms each)."""
    time.sleep(FIXED_S + PER_ITEM_S * len(payloads))
    return payloads


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    """No cost of its own: what a frame costs (bench/batching.py ``--frame-lever``)."""
    return payload


def echo_batch(payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return payloads
