"""Python test handlers for the handler-server protocol tests; js_handlers.js mirrors every one by name."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from typing import Any


def echo(payload: dict[str, Any]) -> dict[str, Any]:
    return payload


def end_here(payload: dict[str, Any]) -> None:
    return None


def fan_out(payload: dict[str, Any]) -> Any:
    """Each child is routed to its own worker and carries its index in a header set just before it is yielded."""
    for index in range(payload["n"]):
        yield ("SET", ".route.next", [f"worker-{index}"])
        yield ("SET", ".headers.index", index)
        yield {"i": index}


def commands(payload: dict[str, Any]) -> Any:
    trace = yield ("GET", ".headers.traceparent")
    curr = yield ("GET", ".route.curr")
    prev = yield ("GET", ".route.prev")
    attempt = yield ("GET", ".status.attempt")
    missing = yield ("GET", ".payload.nope.deeper")
    yield ("SET", ".headers.seen", {"trace": trace, "curr": curr, "prev": prev, "attempt": attempt, "missing": missing})
    yield ("SET", ".headers.nested.deep", 1)
    yield ("DEL", ".headers.drop_me")
    yield ("DEL", ".headers.never_there")
    yield ("SET", ".payload.added", True)
    yield ("DEL", ".payload.remove")
    yield ("SET", ".route.next", ["store"])
    whole = yield ("GET", ".payload")
    yield whole


def write_path(payload: dict[str, Any]) -> Any:
    """Issues the command the test asks for, then yields an output (it never gets there when refused)."""
    yield tuple(payload["command"])
    yield {"unreachable": True}


def returns_list(payload: dict[str, Any]) -> Any:
    return [1, 2, 3]


def yields_string(payload: dict[str, Any]) -> Any:
    yield "not a dict"


class TransientError(Exception):
    pass


class RateLimited(TransientError):
    pass


def fail(payload: dict[str, Any]) -> dict[str, Any]:
    raise RateLimited("slow down")


def flies(payload: dict[str, Any]) -> Any:
    """Asya-style partial outputs around one real output; FLY answers None into the generator."""
    replies = []
    for i in range(payload.get("n", 3)):
        replies.append((yield "FLY", {"partial": True, "text": f"token {i}"}))
    yield {"done": True, "replies": replies}


def only_flies(payload: dict[str, Any]) -> Any:
    yield "FLY", {"progress": 50}


async def async_flies(payload: dict[str, Any]) -> Any:
    yield "FLY", {"partial": True, "text": "a"}
    yield "FLY", {"partial": True, "text": "b"}
    yield {"done": True}


def bad_fly(payload: dict[str, Any]) -> Any:
    yield ("FLY",)


async def async_echo(payload: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(0.01)
    return {**payload, "async": True}


async def async_fan_out(payload: dict[str, Any]) -> Any:
    for index in range(payload["n"]):
        await asyncio.sleep(0)
        yield ("SET", ".headers.index", index)
        curr = yield ("GET", ".route.curr")
        yield {"i": index, "curr": curr}


_instances = 0


class Counter:
    """Counts its calls: state that survives across calls proves the class is instantiated once."""

    def __init__(self) -> None:
        global _instances
        _instances += 1
        self.calls = 0

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls += 1
        return {"calls": self.calls, "instances": _instances}


class Broken:
    def __init__(self) -> None:
        raise RuntimeError("model weights missing")

    def handle(self, payload: dict[str, Any]) -> dict[str, Any]:
        return payload


_active = 0
_max_active = 0


async def slow_async(payload: dict[str, Any]) -> dict[str, Any]:
    """Sleeps, reporting the most calls that were ever inside it at once."""
    global _active, _max_active
    _active += 1
    _max_active = max(_max_active, _active)
    try:
        await asyncio.sleep(payload["sleep_s"])
    finally:
        _active -= 1
    return {"max_active": _max_active}


def slow(payload: dict[str, Any]) -> dict[str, Any]:
    time.sleep(payload["sleep_s"])
    return {"slept": payload["sleep_s"]}


def hang(payload: dict[str, Any]) -> dict[str, Any]:
    threading.Event().wait()  # never set: a call that never returns
    return payload


def exits(payload: dict[str, Any]) -> dict[str, Any]:
    sys.exit(3)


def script(payload: dict[str, Any]) -> Any:
    """Yields each of ``payload["steps"]``: a list is a command (sent as a tuple), anything else an item as it is.
    What a command gives back is yielded as ``{"got": ...}``, a refusal as ``{"refused": its type}``, and the
    script goes on (the fuzz tests compare the two servers by these)."""
    for step in payload.get("steps") or []:
        try:
            reply = yield tuple(step) if isinstance(step, list) else step
        except Exception as exc:
            yield {"refused": type(exc).__name__}
            continue
        if reply is not None:
            yield {"got": reply}


def two_args(payload: dict[str, Any], context: dict[str, Any]) -> dict[str, Any]:
    """Wants a second argument the server never passes: refused at load, before any call."""
    return payload


def batch_mixed(payloads: list[dict[str, Any]]) -> list[Any]:
    """A batched handler: per payload ``op`` says what its slot holds (js_handlers.js has the same)."""
    out: list[Any] = []
    for p in payloads:
        op = p.get("op")
        if op == "fail":
            out.append(KeyError(p.get("key")))
        elif op == "none":
            out.append(None)
        elif op == "route":
            out.append(_batch_route(p))
        elif op == "bad":
            out.append("not a dict")
        else:
            out.append({"y": p["x"] * 2, "n": len(payloads)})
    return out


def _batch_route(payload: dict[str, Any]) -> Any:
    yield ("SET", ".route.next", ["elsewhere"])
    yield {"routed": payload["x"]}
    yield {"routed": payload["x"] + 1}


def batch_short(payloads: list[dict[str, Any]]) -> list[Any]:
    return [{}] * (len(payloads) - 1)


def batch_raises(payloads: list[dict[str, Any]]) -> list[Any]:
    raise TimeoutError(f"GPU busy for {len(payloads)}")


async def batch_async(payloads: list[dict[str, Any]]) -> list[Any]:
    await asyncio.sleep(0)
    return [{"y": p["x"]} for p in payloads]


def batch_slow(payloads: list[dict[str, Any]]) -> list[Any]:
    time.sleep(max(p["sleep_s"] for p in payloads))
    return [{"slept": p["sleep_s"]} for p in payloads]


def batch_sizes(payloads: list[dict[str, Any]]) -> list[Any]:
    """Each item learns the size of the batch it came in."""
    return [{"key": p.get("key"), "n": len(payloads)} for p in payloads]
