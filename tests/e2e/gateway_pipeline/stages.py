"""The acceptance pipeline's handlers: each sleeps ``pace_s`` (so a status poll sees it running) and records its
call as a file ``{actor}-{tag}-{n}`` in ``$GATEWAY_E2E_MARKS``; slow sleeps ``sleep_s`` more and then records
``slow-done-{tag}``."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _mark(name: str, payload: dict[str, Any]) -> None:
    marks = os.environ.get("GATEWAY_E2E_MARKS")
    if marks:
        Path(marks, f"{name}-{payload.get('tag', 'untagged')}-{uuid.uuid4().hex[:8]}").touch()


def _pace(payload: dict[str, Any]) -> None:
    time.sleep(float(payload.get("pace_s", 0)))


def first(payload: dict[str, Any]) -> Iterator[Any]:
    _mark("first", payload)
    _pace(payload)
    yield "FLY", {"progress": 50, "note": "first is halfway"}
    yield {**payload, "first": True}


def slow(payload: dict[str, Any]) -> dict[str, Any]:
    _mark("slow", payload)
    _pace(payload)
    time.sleep(float(payload.get("sleep_s", 0)))
    _mark("slow-done", payload)
    return {**payload, "slow": True}


def last(payload: dict[str, Any]) -> dict[str, Any]:
    _mark("last", payload)
    _pace(payload)
    return {**payload, "last": True}
