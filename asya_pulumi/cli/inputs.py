"""Input envelopes from the command line: ``--send ROUTE PAYLOAD`` or a JSONL file of ``{"route", "payload"}`` lines.

A route is a list of actor names or the name of one of the mesh's routes. Every mistake (bad JSON, a missing field,
an unknown actor or route) is a :class:`UsageError` naming the file, the line and the fix, raised before anything
is sent, so a half-sent input file never happens.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from pathlib import Path
from typing import Any

from asya_pulumi.cli.errors import UsageError
from asya_runtime.envelope import Envelope, new_envelope


def resolve_route(
    route: object, *, actors: Collection[str] | None, routes: Mapping[str, Sequence[str]], where: str
) -> list[str]:
    """The actor list ``route`` stands for: itself (a list of names) or the mesh route it names.

    ``actors`` is the set of known actors (None: not known, e.g. ``asya send`` without a pipeline directory).
    """
    if isinstance(route, str):
        if route in routes:
            return list(routes[route])
        if actors is not None and route not in actors:
            known = ", ".join(sorted(routes)) or "none"
            raise UsageError(f"{where}: {route!r} is neither a route of the mesh (routes: {known}) nor an actor")
        route = [route]
    if not isinstance(route, list) or not route or not all(isinstance(a, str) and a for a in route):
        raise UsageError(f"{where}: 'route' must be a non-empty list of actor names or a route name, got {route!r}")
    if actors is not None:
        unknown = [a for a in route if a not in actors]
        if unknown:
            raise UsageError(
                f"{where}: unknown actor {unknown[0]!r} in route {route}; "
                f"the mesh's actors are {', '.join(sorted(actors))}"
            )
    return list(route)


def parse_route_argument(text: str) -> object:
    """``ROUTE`` as typed: a JSON list (``'["a","b"]'``), a comma-separated list (``a,b``) or one name."""
    text = text.strip()
    if text.startswith("["):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise UsageError(f"ROUTE {text!r} is not a JSON list ({exc}); write e.g. '[\"a\",\"b\"]' or a,b") from None
    return [part.strip() for part in text.split(",")] if "," in text else text


def parse_payload_argument(text: str) -> dict[str, Any]:
    """``PAYLOAD`` as typed: a JSON object."""
    try:
        payload = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"PAYLOAD is not valid JSON ({exc}); write e.g. '{{\"text\": \"hi\"}}'") from None
    if not isinstance(payload, dict):
        raise UsageError(f"PAYLOAD must be a JSON object, got {type(payload).__name__}")
    return payload


def envelope_from_arguments(
    *, route: str, payload: str, actors: Collection[str] | None, routes: Mapping[str, Sequence[str]]
) -> Envelope:
    """The envelope of ``--send ROUTE PAYLOAD`` / ``asya send ROUTE PAYLOAD``."""
    actor_list = resolve_route(parse_route_argument(route), actors=actors, routes=routes, where="ROUTE")
    return new_envelope(route=actor_list, payload=parse_payload_argument(payload))


def read_input_file(
    path: Path, *, actors: Collection[str] | None, routes: Mapping[str, Sequence[str]]
) -> list[Envelope]:
    """Every envelope of a JSONL input file; blank lines and lines starting with ``#`` are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"cannot read input file {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"input file {str(path)!r} is not UTF-8 text ({exc.reason})") from None
    envelopes = [
        _envelope_from_line(line, actors=actors, routes=routes, where=f"{path}:{number}")
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not envelopes:
        raise UsageError(f"input file {str(path)!r} holds no envelopes; write one JSON object per line")
    return envelopes


def _envelope_from_line(
    line: str, *, actors: Collection[str] | None, routes: Mapping[str, Sequence[str]], where: str
) -> Envelope:
    try:
        data = json.loads(line)
    except ValueError as exc:
        raise UsageError(f"{where}: not a JSON object ({exc})") from None
    if not isinstance(data, dict) or "route" not in data or "payload" not in data:
        raise UsageError(f'{where}: each line must be an object {{"route": [...] | "name", "payload": {{...}}}}')
    extra = sorted(set(data) - {"route", "payload", "headers", "id"})
    if extra:
        raise UsageError(f"{where}: unknown field {extra[0]!r}; allowed: route, payload, headers, id")
    payload, headers = data["payload"], data.get("headers", {})
    if not isinstance(payload, dict):
        raise UsageError(f"{where}: 'payload' must be a JSON object, got {type(payload).__name__}")
    if not isinstance(headers, dict):
        raise UsageError(f"{where}: 'headers' must be a JSON object, got {type(headers).__name__}")
    actor_list = resolve_route(data["route"], actors=actors, routes=routes, where=where)
    envelope_id = data.get("id")
    if envelope_id is not None and (not isinstance(envelope_id, str) or not envelope_id):
        raise UsageError(f"{where}: 'id' must be a non-empty string")
    return new_envelope(route=actor_list, payload=payload, headers=headers, envelope_id=envelope_id)
