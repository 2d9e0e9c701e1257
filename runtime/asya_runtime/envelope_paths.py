"""jq-like paths into an envelope, as upstream Asya's ABI reference writes them, for the generator commands.

Stdlib only, Python >= 3.9: the handler server (``handler_server.py``) loads it from beside itself in the pod (the
ConfigMap holds both files), so the user's image still needs nothing from us. ``handler_server.js`` implements
the same grammar and access table; ``tests/conformance/test_abi_paths.py`` runs every documented example against
both servers, so the two cannot drift silently.

Grammar: a leading ``.``, then segments — ``.name`` (an object key), ``["a.b"]`` (a key in JSON string quotes,
for keys holding dots), ``[0]`` / ``[-1]`` (a list index), ``[start:end]`` (a slice, SET only: ``[:0]`` prepends,
``[999:]`` appends, ``[1:3]`` replaces a range, with Python's slice arithmetic). The first segment names one of
:data:`ROOTS`.

Access (upstream's table, plus ``.payload.<key>``, which this project has always allowed and upstream leaves to the
function argument): everything is readable, and GET returns a deep copy; ``.route.next`` (and its items) and
``.headers.<key>`` are writable and deletable; ``.status`` is writable, not deletable; ``.payload.<key>`` is
writable and deletable. ``DEL .route.next`` empties it: the envelope ends after this actor, as ``SET .route.next
[]`` does. Everything else — ``.id``, ``.parent_id``, ``.route.prev``, ``.route.curr``, ``.headers`` and
``.payload`` themselves — is read-only.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

__all__ = ["ROOTS", "PathError", "del_path", "get_path", "parse_path", "set_path"]

#: The envelope's fields a path may start with.
ROOTS = ("id", "parent_id", "route", "headers", "status", "payload")
if TYPE_CHECKING:  # Python 3.9 (the handler server's floor) cannot evaluate the `|` of this alias at run time
    #: A parsed segment: a key (str), an index (int), or a slice (a ``(start, end)`` pair of optional ints).
    Segment = str | int | tuple[int | None, int | None]
WRITABLE_HINT = "writable paths are .route.next, .headers.<key>, .status and .payload.<key>"
_NAME = re.compile(r"[^.\[\]\s]+")
_INDEX = re.compile(r"-?\d+")
_SLICE = re.compile(r"(-?\d+)?:(-?\d+)?")


class PathError(ValueError):
    """A path that does not parse, or a command the access table refuses; the message says which and why."""


def parse_path(path: Any) -> list[Segment]:
    """``.route.next[0]`` → ``["route", "next", 0]``; ``.headers["a.b"]`` → ``["headers", "a.b"]``."""
    if not isinstance(path, str) or not path.startswith(".") or len(path) < 2:
        raise PathError(f"path {path!r} must start with '.' and name a field, e.g. '.headers.x'")
    segments: list[Segment] = []
    position = 0
    while position < len(path):
        if path[position] == "." and path.startswith("[", position + 1):
            position += 1  # jq's `.["key"]`: the dot before a bracket is optional
        if path[position] == ".":
            match = _NAME.match(path, position + 1)
            if match is None:
                raise PathError(f"path {path!r} has an empty segment at character {position + 1}")
            segments.append(match.group())
            position = match.end()
        elif path[position] == "[":
            segment, position = _bracket(path, position)
            segments.append(segment)
        else:
            raise PathError(f"path {path!r}: unexpected {path[position]!r} at character {position + 1}")
    if segments[0] not in ROOTS:
        roots = ", ".join("." + root for root in ROOTS)
        raise PathError(f"path {path!r} starts with an unknown field; paths start with one of {roots}")
    return segments


def _bracket(path: str, start: int) -> tuple[Segment, int]:
    """The segment in the brackets at ``start`` and the position after them."""
    if path.startswith('"', start + 1):
        try:
            key, end = json.JSONDecoder().raw_decode(path, start + 1)
        except ValueError:
            raise PathError(f"path {path!r}: unterminated string at character {start + 2}") from None
        if not path.startswith("]", end):
            raise PathError(f"path {path!r}: expected ']' after the key at character {end + 1}")
        return str(key), end + 1
    end = path.find("]", start)
    if end < 0:
        raise PathError(f"path {path!r}: '[' at character {start + 1} is never closed")
    inner = path[start + 1 : end].strip()
    if _INDEX.fullmatch(inner):
        return int(inner), end + 1
    match = _SLICE.fullmatch(inner)
    if match:
        low, high = match.groups()
        return (None if low is None else int(low), None if high is None else int(high)), end + 1
    raise PathError(f"path {path!r}: [{inner}] is not a quoted key, an index or a slice")


def get_path(envelope: dict[str, Any], path: Any) -> Any:
    """The value at ``path`` as a deep copy (None where anything along it is missing), so a handler that changes
    what it read cannot change the envelope behind the server's back."""
    segments = parse_path(path)
    if any(isinstance(segment, tuple) for segment in segments):
        raise PathError(f"path {path!r}: slices are for SET only; GET an index or the whole list")
    value: Any = envelope
    for segment in segments:
        value = _child(value, segment)
        if value is None:
            return None
    return _clone(value)


def set_path(envelope: dict[str, Any], path: Any, value: Any) -> None:
    """Write ``value`` (a deep copy of it) at ``path``, creating missing objects on the way, if the table allows."""
    segments = parse_path(path)
    _check_writable(segments, path=path, op="SET")
    value = _clone(value)
    if segments[:2] == ["route", "next"]:
        _set_route_next(envelope, segments[2:], value, path=path)
        return
    if segments == ["status"]:
        if not isinstance(value, dict):
            raise PathError(f"SET .status takes an object, got {type(value).__name__}")
        envelope["status"] = value
        return
    created: list[tuple[dict[str, Any], str, bool]] = []
    try:
        parent = _parent(envelope, segments, create=True, path=path, created=created)
        assert parent is not None  # created on the way
        _assign(parent, segments[-1], value, path=path)
    except PathError:
        for node, key, held_null in created:  # a refused SET leaves the envelope as it was: no objects on the way
            if held_null:
                node[key] = None
            else:
                del node[key]
        raise


def del_path(envelope: dict[str, Any], path: Any) -> None:
    """Remove what ``path`` names (a missing key or index is no error); ``.route.next`` is emptied."""
    segments = parse_path(path)
    _check_writable(segments, path=path, op="DEL")
    if segments[0] == "status":
        raise PathError(f"DEL {path}: .status can be written, not deleted")
    if segments == ["route", "next"]:
        envelope["route"]["next"] = []
        return
    parent = _parent(envelope, segments, create=False, path=path)
    last = segments[-1]
    if isinstance(parent, dict) and isinstance(last, str):
        parent.pop(last, None)
    elif isinstance(parent, list) and isinstance(last, int) and -len(parent) <= last < len(parent):
        del parent[last]


# ------------------------------------------------------------------------------------------------- the table


def _check_writable(segments: list[Segment], *, path: str, op: str) -> None:
    root = segments[0]
    if segments[:2] == ["route", "next"] or root == "status" or (root in ("headers", "payload") and len(segments) > 1):
        slices = [depth for depth, segment in enumerate(segments) if isinstance(segment, tuple)]
        if slices and (op != "SET" or segments[:2] != ["route", "next"] or slices != [2] or len(segments) != 3):
            raise PathError(f"{op} {path}: slices are for SET of .route.next only, e.g. .route.next[:0]")
        return
    raise PathError(f"{path} is read-only; {WRITABLE_HINT}")


def _set_route_next(envelope: dict[str, Any], rest: list[Segment], value: Any, *, path: str) -> None:
    route_next = envelope["route"].setdefault("next", [])
    if not rest:
        envelope["route"]["next"] = _actor_names(value, path=path)
    elif len(rest) > 1:
        raise PathError(f"{path}: .route.next holds actor names; write the list, an index or a slice")
    elif isinstance(rest[0], tuple):
        low, high = rest[0]
        route_next[low:high] = _actor_names(value, path=path)
    elif isinstance(rest[0], int):
        if not isinstance(value, str) or not value:
            raise PathError(f"{path} must be an actor name, got {value!r}")
        _assign(route_next, rest[0], value, path=path)
    else:
        raise PathError(f"{path}: .route.next is a list; use an index such as .route.next[0]")


def _actor_names(value: Any, *, path: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(actor, str) and actor for actor in value):
        raise PathError(f"{path} must be a list of actor names, got {value!r}")
    return value


# --------------------------------------------------------------------------------------------- walking values


def _child(value: Any, segment: Segment) -> Any:
    if isinstance(value, dict) and isinstance(segment, str):
        return value.get(segment)
    if isinstance(value, list) and isinstance(segment, int) and -len(value) <= segment < len(value):
        return value[segment]
    return None


def _parent(
    envelope: dict[str, Any], segments: list[Segment], *, create: bool, path: str,
    created: list[tuple[dict[str, Any], str, bool]] | None = None,
) -> Any:
    """What holds the last segment; SET creates missing objects on the way (the outermost one created is appended
    to ``created`` with whether it held null, so that a refusal can take it back), DEL stops (None) at a missing
    one."""
    node: Any = envelope
    for depth, segment in enumerate(segments[:-1]):
        child = _child(node, segment)
        if child is None and create and isinstance(node, dict) and isinstance(segment, str):
            if created is not None and not created:
                created.append((node, segment, segment in node))
            child = node[segment] = {}
        if child is None:
            if create:
                raise PathError(f"cannot write {path}: {_render(segments[: depth + 1])} does not exist")
            return None
        if not isinstance(child, (dict, list)):
            where = _render(segments[: depth + 1])
            raise PathError(f"cannot write {path}: {where} is a {type(child).__name__}, not an object")
        node = child
    return node


def _assign(parent: Any, segment: Segment, value: Any, *, path: str) -> None:
    if isinstance(parent, dict) and isinstance(segment, str):
        parent[segment] = value
    elif isinstance(parent, list) and isinstance(segment, int):
        if not -len(parent) <= segment < len(parent):
            raise PathError(f"cannot write {path}: index {segment} is out of range (length {len(parent)})")
        parent[segment] = value
    else:
        kind = "a list" if isinstance(parent, list) else "an object"
        raise PathError(f"cannot write {path}: the value there is {kind}, which {_render([segment])} cannot index")


def _render(segments: list[Segment]) -> str:
    parts = []
    for segment in segments:
        if isinstance(segment, str):
            parts.append("." + segment if _NAME.fullmatch(segment) else f"[{json.dumps(segment)}]")
        elif isinstance(segment, int):
            parts.append(f"[{segment}]")
        else:
            parts.append(f"[{'' if segment[0] is None else segment[0]}:{'' if segment[1] is None else segment[1]}]")
    return "".join(parts)


def _clone(value: Any) -> Any:
    """Copy JSON-shaped data (faster than copy.deepcopy) so nothing read or written aliases the envelope."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value
