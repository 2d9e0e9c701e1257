"""The conformance suite's handlers (tests/conformance/test_abi.py); ``abi_script.js`` does the same in JavaScript.

``script`` yields each step of ``payload["steps"]`` and records what came back, so one handler can replay every
example of upstream Asya's ABI reference: a list is a command (``["GET", ".route.next"]``), ``None`` a bare yield,
``{"emit": {...}}`` an output, ``"mutate"`` changes the last value read or written (to prove copies), and
``"yield_text"`` yields a string (a protocol error). A refused step is recorded as ``{"refused": type}``, and the
handler goes on. The last output is ``{"results": [...]}``.
"""

from __future__ import annotations

import copy
from typing import Any


def script(payload: dict[str, Any]) -> Any:
    results: list[Any] = []
    last: Any = None
    for step in payload["steps"]:
        if step == "mutate":
            if isinstance(last, list):
                last.append("mutated")
            elif isinstance(last, dict):
                last["mutated"] = True
            results.append("mutated")
            continue
        item: Any = tuple(step) if isinstance(step, list) else step
        if isinstance(step, dict) and "emit" in step:
            item = step["emit"]
        elif step == "yield_text":
            item = "not a dict"
        if isinstance(step, list) and step[:1] == ["SET"] and len(step) == 3:
            last = step[2]
        try:
            reply = yield item
        except Exception as exc:  # a refused command is raised at its yield
            results.append({"refused": type(exc).__name__, "message": str(exc)})
            continue
        if isinstance(step, list) and step[:1] == ["GET"]:
            last = reply
        results.append(copy.deepcopy(reply))  # as it came back, before any later 'mutate'
    yield {"results": results}


def _set_routing(*actors: str) -> Any:
    yield ("SET", ".route.next", list(actors))


def delegating(payload: dict[str, Any]) -> Any:
    """Upstream's ``yield from`` example: a helper generator's commands are the handler's own."""
    yield from _set_routing("actor_a", "actor_b")
    yield payload


async def _async_routing(*actors: str) -> Any:
    yield ("SET", ".route.next", list(actors))


async def async_delegating(payload: dict[str, Any]) -> Any:
    """Upstream's async example: async generators iterate the helper explicitly."""
    async for instruction in _async_routing("actor_a", "actor_b"):
        yield instruction
    yield payload


def splitter(payload: dict[str, Any]) -> Any:
    """Upstream's fan-out example: each item goes to ``item_processor``."""
    for item in payload["items"]:
        yield ("SET", ".route.next", ["item_processor"])
        yield {"item": item}
