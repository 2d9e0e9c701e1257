"""Handlers the sidecar tests run behind the real handler server.

Every call appends one JSON line ``{"key", "pid", "t"}`` to the file named by ``ASYA_TEST_CALLS`` (set per test),
so a test can count how often, when and in which process its handler really ran.
"""

from __future__ import annotations

import inspect
import json
import os
import time
from typing import Any


def _record(payload: dict[str, Any], **seen: Any) -> None:
    path = os.environ.get("ASYA_TEST_CALLS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"key": payload.get("key"), "pid": os.getpid(), "t": time.time(), **seen}) + "\n")


def identity(payload: dict[str, Any]) -> dict[str, Any]:
    _record(payload)
    return payload


def fail(payload: dict[str, Any]) -> dict[str, Any]:
    _record(payload)
    raise ValueError(f"refusing {payload.get('key')}")


def fail_seeing_status(payload: dict[str, Any]) -> Any:
    """Records the envelope's ``status`` as the handler sees it (``GET .status``), then fails like :func:`fail`."""
    status = yield ("GET", ".status")
    _record(payload, status=status)
    raise ValueError(f"refusing {payload.get('key')}")


def slow(payload: dict[str, Any]) -> dict[str, Any]:
    """Sleeps ``payload["sleep_s"]`` seconds, then passes the payload on."""
    _record(payload)
    time.sleep(float(payload.get("sleep_s", 0)))
    return payload


def hang_if_asked(payload: dict[str, Any]) -> dict[str, Any]:
    _record(payload)
    if payload.get("hang"):
        time.sleep(3600)
    return payload


def non_dict(payload: dict[str, Any]) -> Any:
    _record(payload)
    return [payload.get("key")]


def fan_out(payload: dict[str, Any]) -> Any:
    """Yields ``payload["n"]`` children; child ``payload.get("big")`` carries ``payload["big_bytes"]`` of padding,
    child ``payload.get("unsendable")`` a character SQS refuses."""
    _record(payload)
    for index in range(payload["n"]):
        child: dict[str, Any] = {"key": payload.get("key"), "i": index}
        if index == payload.get("big"):
            child["pad"] = "x" * int(payload["big_bytes"])
        if index == payload.get("unsendable"):
            child["text"] = "\uffff"  # a character SQS refuses raw: the sidecar must send it escaped
        yield child


def route_to(payload: dict[str, Any]) -> Any:
    """Replaces the rest of the route with ``payload["next"]`` and adds a header."""
    _record(payload)
    yield ("SET", ".route.next", payload["next"])
    yield ("SET", ".headers.x-routed-by", "route_to")
    yield payload


def bounce(payload: dict[str, Any]) -> Any:
    """Routes to ``payload["peers"]`` in turn, forever (a route loop, as a buggy handler would make one)."""
    _record(payload)
    n = payload.get("n", 0) + 1
    yield ("SET", ".route.next", [payload["peers"][n % len(payload["peers"])]])
    yield {**payload, "n": n}


def end_here(payload: dict[str, Any]) -> None:
    _record(payload)
    return None


def fail_loudly(payload: dict[str, Any]) -> dict[str, Any]:
    """Raises with a message of ``payload["message_bytes"]`` characters (and a traceback of its own)."""
    _record(payload)
    raise ValueError("m" * int(payload["message_bytes"]))


def bad_json(payload: dict[str, Any]) -> dict[str, Any]:
    """Raises ``json.JSONDecodeError``: defined in ``json.decoder``, re-exported by ``json``, a ``ValueError``."""
    _record(payload)
    return json.loads("{not json")  # type: ignore[no-any-return]


def recover(payload: Any) -> Any:
    """A recovery actor: passes the payload on with the error that ended the envelope upstream."""
    _record(payload)
    error = yield ("GET", ".status.error")
    prev = yield ("GET", ".route.prev")
    yield {**payload, "recovered_from": error, "prev": prev}


def flies(payload: dict[str, Any]) -> Any:
    """Asya-style partial outputs (dropped by the sidecar) around one real output."""
    _record(payload)
    for i in range(3):
        yield ("FLY", {"partial": True, "text": f"token {i}"})
    yield {**payload, "flew": True}


def inflate(payload: dict[str, Any]) -> dict[str, Any]:
    """Adds ``payload["inflate"]`` bytes of padding (a result too large for SQS), after ``sleep_s`` seconds."""
    _record(payload)
    time.sleep(float(payload.get("sleep_s", 0)))
    return {**payload, "pad": "x" * int(payload["inflate"])}


def copies(payload: dict[str, Any]) -> Any:
    """Fan-out: yields ``payload["n"]`` copies of the payload, each with its index ``i``."""
    _record(payload)
    for index in range(payload["n"]):
        yield {**payload, "i": index}


def _never_called() -> dict[str, Any]:
    raise AssertionError("the server called a handler its signature refuses")


def advertises_one_argument() -> dict[str, Any]:
    """Takes no argument, yet advertises ``(payload)`` (as a decorator library may): the load check passes it, and
    the call itself raises the TypeError, before any of its code runs."""
    return _never_called()


advertises_one_argument.__signature__ = inspect.signature(identity)  # type: ignore[attr-defined]


def type_error_inside(payload: dict[str, Any]) -> dict[str, Any]:
    """A TypeError from the handler's own code (a bug, or bad data): the policy decides, as for any exception."""
    _record(payload)
    return {"n": len(payload.get("key"))}  # type: ignore[arg-type]  # payload["key"] is None here: TypeError


def gather(payload: list[Any]) -> dict[str, Any]:
    """A fan-in handler: records the list it was called with (``items``) and returns it as ``{"items": [...]}``."""
    _record({"key": "gather"}, items=payload)
    return {"items": payload}


def fail_on(payload: dict[str, Any]) -> dict[str, Any]:
    """Raises for a payload whose ``i`` is in ``ASYA_TEST_FAIL_ON`` (a JSON list); passes the others on."""
    _record(payload)
    if payload.get("i") in json.loads(os.environ.get("ASYA_TEST_FAIL_ON", "[]")):
        raise ValueError(f"refusing child {payload.get('i')}")
    return payload


def gather_failing_once(payload: list[Any]) -> dict[str, Any]:
    """``gather``, except that the first call (no file at ``ASYA_TEST_FLAG`` yet) creates the file and raises."""
    _record({"key": "gather"}, items=payload)
    flag = os.environ["ASYA_TEST_FLAG"]
    if not os.path.exists(flag):
        open(flag, "w").close()
        raise ValueError("failing the first call")
    return {"items": payload}


# -- batched handlers (spec.batch): called with a list of payloads, one result per payload -----------------------

_failed_once: set[str] = set()


def batch_echo(payloads: list[dict[str, Any]]) -> list[Any]:
    """Records one line per call, ``{"keys": [...], "pid"}``; sleeps the batch's largest ``sleep_s``; raises if
    any payload has ``poison``; then per
    payload: ``fail`` → a ValueError instance (that item fails), ``fail_once`` → one the first time its key is seen
    by this process, ``end`` → None, ``route`` → a generator that routes that item on to ``route``, else the
    payload with ``batch_size``."""
    path = os.environ.get("ASYA_TEST_CALLS")
    if path:
        with open(path, "a") as out:
            keys = [p.get("key") for p in payloads]
            out.write(json.dumps({"keys": keys, "pid": os.getpid(), "t": time.time()}) + "\n")
    time.sleep(max(float(p.get("sleep_s", 0)) for p in payloads))
    if any(p.get("poison") for p in payloads):
        raise RuntimeError("a poison payload fails the whole call")
    return [_batch_item(p, len(payloads)) for p in payloads]


def _batch_item(payload: dict[str, Any], size: int) -> Any:
    key = str(payload.get("key"))
    if payload.get("fail"):
        return ValueError(f"refusing {key}")
    if payload.get("fail_once") and key not in _failed_once:
        _failed_once.add(key)
        return ConnectionError(f"first try of {key}")
    if payload.get("end"):
        return None
    if payload.get("route"):
        return _routed(payload, size)
    return {**payload, "batch_size": size}


def _routed(payload: dict[str, Any], size: int) -> Any:
    yield ("SET", ".route.next", [payload["route"]])
    yield ("SET", ".headers.x-batched", size)
    yield {**payload, "batch_size": size}


def fan_out_twice(payload: dict[str, Any]) -> Any:
    """Yields two children of ``payload``, each with ``j`` (its index here) added."""
    for index in range(2):
        yield {**payload, "j": index}
