"""The envelope (contract 1): one JSON object per SQS message, carrying its own route.

```
{ "id": "uuid", "parent_id": null | "uuid",
  "route": {"prev": ["a"], "curr": "b", "next": ["c", "d"]},
  "headers": {"traceparent": "...", ...},
  "status": {"attempt": 1, "max_attempts": 3, "deadline_at": null | iso8601, "error": null | {...},
             "first_attempt_at": null | iso8601,
             "phase": "pending" | "processing" | "retrying" | "succeeded" | "failed" | ..., "actor": "b",
             "reason": null | "PolicyExhausted" | ..., "created_at": iso8601, "updated_at": iso8601},
  "payload": { ... },
  "hops": [{"actor": "a", "attempt": 1, "start": ..., "end": ..., "outcome": "ok", "replica": "..."}, ...] }
```

``hops`` is the envelope's history, one entry per finished attempt (:mod:`asya_runtime.sidecar.hops` makes them);
absent until the first actor finishes, and left out of the JSON while absent.

Fan-out children also carry ``"fanout": {"index": i, "total": n}`` (their place among their parent's ``n``
children, in emission order; ``"outer": {"parent_id", "fanout"}`` too when the parent was itself a child), and a
fan-in actor's aggregate carries ``"fanin": {"parent_id", "total", "errors", "missing", "at"}``
(:mod:`asya_runtime.sidecar.fanin`). Both are absent otherwise and left out of the JSON while absent, so an envelope
without them, from an older sidecar or another client, parses and travels as before.

``id`` is at most :data:`MAX_ID_BYTES` bytes of UTF-8, so a sink's key ``{status}/{id}.json`` always fits S3's
1,024-byte keys. ``status.first_attempt_at`` is when this actor first tried the envelope: set on a retry, kept
across retries and redeliveries, cleared for the next actor; ``maxDuration`` counts from it.

``status.phase``, ``actor``, ``reason``, ``created_at`` and ``updated_at`` are upstream Asya's lifecycle fields with
upstream's values (docs/asya-compat.md), stamped by the sidecar at each step (:meth:`Status.stamped`):
``pending`` when created, ``processing`` by the actor that hands it to the next one, ``retrying`` by the actor that
will try again, ``succeeded`` at the end of the route, ``failed`` in the error sink (``reason`` ``PolicyExhausted``
or ``RuntimeError``) or on the way to a recovery actor (``PolicyRouted``). They sit alongside ours: the attempt
count, the deadline and ``error`` (whose ``reason`` is this project's own phrase) mean what they always did.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

__all__ = [
    "MAX_ID_BYTES", "Envelope", "EnvelopeError", "ErrorInfo", "FanIn", "FanOut", "Phase", "Route", "Status", "child_id",
    "fanin_id", "new_envelope",
]

#: Upstream Asya's lifecycle phases (``status.phase``); this sidecar stamps the first five.
Phase = Literal["pending", "processing", "retrying", "succeeded", "failed", "paused", "canceled"]

#: Longest envelope id, in bytes of UTF-8: ``failed/{id}.json`` stays far below S3's 1,024-byte key limit.
MAX_ID_BYTES = 256
#: Deepest nesting of objects and arrays in a body (the envelope itself is level 1). pydantic cannot serialise
#: past ~255 levels and Python's JSON parser recurses out at ~1,000, so a deeper body is refused when it arrives,
#: as a malformed envelope with an error record, instead of failing later where no record can be written.
MAX_NESTING = 200


#: A JSON escape of a UTF-16 surrogate (``\\ud83d``): paired, it is one character (an emoji); alone, it is no text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
#: A surrogate character itself (a ``str`` body built in Python or decoded with ``surrogateescape``): no text either.
#: Searched only in a body that is not ASCII (one character class: an alternation would cost more than the parse).
_SURROGATE_CHARACTER = re.compile("[\ud800-\udfff]")


#: What SQS refuses in a message body: anything but #x9 | #xA | #xD | #x20-#xD7FF | #xE000-#xFFFD. In JSON text that
#: is a character outside the Basic Multilingual Plane (an emoji) or U+FFFE/U+FFFF; control characters are escaped
#: by every JSON writer already.
_OUTSIDE_SQS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd]")


def _json_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:  # a surrogate pair, as JSON writes characters outside the BMP
        code -= 0x10000
        return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"
    return f"\\u{code:04x}"


def sqs_safe(text: str) -> str:
    """JSON ``text`` with every character SQS refuses (``InvalidMessageContents``: an emoji, U+FFFF) written as a
    JSON escape: the same JSON value, a body SQS takes. ASCII text (most bodies) is returned as it is."""
    return text if text.isascii() else _OUTSIDE_SQS.sub(_json_escape, text)


def _refuse_lone_surrogates(text: str) -> None:
    """Refuse a body whose JSON holds a lone surrogate: it parses, but no UTF-8 output (the next hop's message, the
    sink's record) can be written from it, so it would fail later, where no record can be written."""
    import json

    try:
        json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise EnvelopeError(
            "malformed envelope",
            f"body holds a lone UTF-16 surrogate ({exc.object[exc.start:exc.end]!a}), which is not Unicode text; "
            "encode text as UTF-8, or escape a character outside the BMP as a surrogate pair",
        ) from None
    except (ValueError, RecursionError):
        pass  # not JSON: the parse above has already said so


def _refuse_non_finite(text: str) -> None:
    """Refuse a body holding ``NaN`` or ``Infinity`` (Python's JSON extensions, which the parsers take): the envelope
    would go on with ``null`` in their place, a value changed without a record. A number beyond a float's range
    (``1e999``) in the same body is refused too; alone it is not looked for (no scan for it costs less than the
    parse) and goes on as ``null``, as every JSON parser in the mesh reads it as infinity."""
    import json
    import math

    def refuse(spelling: str) -> float:
        raise EnvelopeError(
            "malformed envelope",
            f"body holds the number {spelling[:40]!r}, which JSON cannot carry (NaN, an infinity or beyond a float's "
            "range); send it as a string",
        )

    def checked(spelling: str) -> float:
        value = float(spelling)
        return value if math.isfinite(value) else refuse(spelling)

    try:
        json.loads(text, parse_constant=refuse, parse_float=checked)
    except EnvelopeError:
        raise
    except (ValueError, RecursionError):
        pass  # not JSON: the parse above has already said so


def id_problem(value: object) -> str | None:
    """Why ``value`` cannot be an envelope id (None when it can): a non-empty string of at most
    :data:`MAX_ID_BYTES` bytes of UTF-8 without ``/`` (ids are S3 key segments)."""
    if not isinstance(value, str) or not value:
        return "id must be a non-empty string"
    if "/" in value:
        return "id must not contain '/' (it names the sink's S3 object)"
    if any(ord(c) < 0x20 or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF for c in value):
        return ("id must not contain control characters (NUL, CR, LF, ...) or lone UTF-16 surrogates: it names the "
                "sink's S3 object and appears in every listing")
    size = len(value.encode())
    if size > MAX_ID_BYTES:
        return f"id is {size} bytes of UTF-8, over {MAX_ID_BYTES} (sink keys must fit S3's 1,024 bytes)"
    return None


def nesting_over(data: Any, *, limit: int) -> bool:
    """True when ``data`` nests objects/arrays deeper than ``limit`` levels (``data`` itself is level 1)."""
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, depth = stack.pop()
        if depth > limit:
            return True
        children = value.values() if isinstance(value, dict) else value
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class EnvelopeError(ValueError):
    """The message is not a valid envelope; ``reason`` is a short, stable phrase for metrics and the error sink."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class Route(_Model):
    prev: list[str] = Field(default_factory=list)
    curr: str
    next: list[str] = Field(default_factory=list)

    def advanced(self) -> Route | None:
        """The route after ``curr`` succeeded, or None when nothing is left (→ the success sink)."""
        if not self.next:
            return None
        return Route(prev=[*self.prev, self.curr], curr=self.next[0], next=self.next[1:])


class ErrorInfo(_Model):
    type: str
    message: str
    reason: str
    traceback: str | None = None
    actor: str | None = None


class Status(_Model):
    attempt: int = Field(1, ge=1)
    max_attempts: int | None = None
    deadline_at: datetime | None = None
    error: ErrorInfo | None = None
    #: When this actor first tried the envelope (set on retries; ``maxDuration`` counts from it).
    first_attempt_at: datetime | None = None
    #: Upstream's lifecycle phase; text, not :data:`Phase`, so an envelope from a newer upstream still parses.
    phase: str | None = None
    #: The actor that last stamped the status.
    actor: str | None = None
    #: Upstream's reason for a terminal phase (``PolicyExhausted``, ``PolicyRouted``, ``RuntimeError``).
    reason: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def stamped(self, *, phase: Phase, actor: str, reason: str | None = None, **changes: Any) -> Status:
        """A copy in ``phase``, stamped by ``actor`` now (``created_at`` too when the envelope never had one), with
        ``changes`` to the other fields in the same copy."""
        now = datetime.now(UTC)
        stamp = {"phase": phase, "actor": actor, "reason": reason, "updated_at": now}
        if self.created_at is None:
            stamp["created_at"] = now
        return self.model_copy(update={**changes, **stamp})


class FanOut(_Model):
    """A fan-out child's place: ``index`` among its parent's ``total`` children (emission order)."""

    index: int = Field(ge=0)
    total: int = Field(ge=1)
    #: The parent's own ``parent_id`` and ``fanout`` when the parent was itself a child (nested fan-out): what the
    #: fan-in aggregate of these children carries on, so an outer fan-in can gather it in turn.
    outer: dict[str, Any] | None = Field(default=None, exclude_if=lambda value: value is None)


class FanIn(_Model):
    """What a fan-in actor's aggregate (or its timer) says about the fan-out parent it gathers."""

    parent_id: str
    total: int = Field(ge=1)
    #: Indexes of children that error-ended (their items are error items).
    errors: list[int] = Field(default_factory=list)
    #: Indexes that never arrived (only in a timeout's error record).
    missing: list[int] = Field(default_factory=list)
    #: ``len(route.prev)`` where the aggregate was made: it is an aggregate only at that hop of the route (a retry
    #: of it comes back to the same actor at the same hop); further on it is history.
    at: int = Field(ge=0)
    #: Set on the sidecar's own timer message (never handed to a handler): its deadline, as epoch seconds.
    timer_deadline: float | None = Field(default=None, exclude_if=lambda value: value is None)
    #: The timer's: the actor that fanned out, from which missing children's ids are derived (:func:`child_id`).
    timer_by: str | None = Field(default=None, exclude_if=lambda value: value is None)


class Envelope(_Model):
    id: str
    parent_id: str | None = None
    route: Route
    headers: dict[str, Any] = Field(default_factory=dict)
    status: Status = Field(default_factory=Status)
    payload: Any = Field(default_factory=dict)
    #: The hop history (a list of entries; ``hops.history_of`` reads it, ignoring anything else a sender put here).
    #: Not typed further: an envelope with a foreign ``hops`` is still an envelope.
    hops: Any = Field(default=None, exclude_if=lambda value: value is None)
    #: A fan-out child's index and total (absent on every other envelope).
    fanout: FanOut | None = Field(default=None, exclude_if=lambda value: value is None)
    #: A fan-in aggregate's parent and outcome (absent on every other envelope).
    fanin: FanIn | None = Field(default=None, exclude_if=lambda value: value is None)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        problem = id_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @classmethod
    def parse(cls, body: str | bytes) -> Envelope:
        """Parse an SQS body, raising :class:`EnvelopeError` with a reason for every way it can be wrong.

        A valid body is parsed and validated in one pass (pydantic's own JSON parser: about half the time of
        ``json.loads`` plus validation); any body it refuses, or that may nest too deeply, takes the step-by-step
        path below, which names what is wrong.
        """
        text = body if isinstance(body, str) else body.decode(errors="replace")
        # Counting brackets is C-speed; only a body with enough of them can nest too deeply, and only that is walked.
        may_nest_too_deeply = text.count("[") + text.count("{") > MAX_NESTING
        envelope = None
        if not may_nest_too_deeply:
            with contextlib.suppress(ValidationError, ValueError, RecursionError):  # the path below says why
                envelope = cls.model_validate_json(body)
        if envelope is None:
            envelope = cls._parse_slowly(body, text=text, may_nest_too_deeply=may_nest_too_deeply)
        if _SURROGATE_ESCAPE.search(text) or (not text.isascii() and _SURROGATE_CHARACTER.search(text)):
            _refuse_lone_surrogates(text)  # C-speed scans; only a body with a surrogate is checked further
        if "NaN" in text or "Infinity" in text:  # likewise: only a body that may spell such a number is parsed again
            _refuse_non_finite(text)
        return envelope

    @classmethod
    def _parse_slowly(cls, body: str | bytes, *, text: str, may_nest_too_deeply: bool) -> Envelope:
        import json

        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise EnvelopeError("malformed envelope", f"body is not JSON ({exc})") from None
        except RecursionError:
            raise EnvelopeError("malformed envelope", "body nests too deeply for the JSON parser") from None
        if not isinstance(data, dict):
            raise EnvelopeError("malformed envelope", f"body is JSON {type(data).__name__}, not an object")
        if "route" not in data:
            raise EnvelopeError("malformed envelope", "no 'route'")
        if may_nest_too_deeply and nesting_over(data, limit=MAX_NESTING):
            raise EnvelopeError("malformed envelope", f"body nests deeper than {MAX_NESTING} levels")
        try:
            return cls.model_validate(data)
        except RecursionError:
            raise EnvelopeError("malformed envelope", "body nests too deeply to validate") from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise EnvelopeError("malformed envelope", f"{where}: {first['msg']}") from None

    def to_json(self) -> str:
        """The envelope as an SQS message body: JSON whose every character SQS accepts (:func:`sqs_safe`)."""
        return sqs_safe(self.model_dump_json(exclude_none=False))

    def call_json(self, body: str, *, exclude: set[str] | None = None) -> str:
        """This envelope as the JSON object of a handler call, given ``body``, the text it was parsed from.

        ``body`` itself when it already states every field (as every envelope a sidecar or client wrote does) and
        fits on one line of the newline-delimited protocol: then it says what a fresh serialisation would, without
        the copy. Otherwise the envelope is serialised, defaults filled in and the ``exclude`` fields left out.
        """
        if (
            self.model_fields_set.issuperset(_ENVELOPE_FIELDS)
            and self.status.model_fields_set.issuperset(_STATUS_FIELDS)
            and "\n" not in body
        ):
            return body
        return self.model_dump_json(exclude=exclude)


#: What a body must state to be passed to a handler as it is (``hops`` is absent until the first hop, ``fanout`` and
#: ``fanin`` on most envelopes: optional).
_ENVELOPE_FIELDS = frozenset(Envelope.model_fields) - {"hops", "fanout", "fanin"}
_STATUS_FIELDS = frozenset(Status.model_fields)


def new_envelope(
    *, route: list[str], payload: Any, headers: dict[str, Any] | None = None, envelope_id: str | None = None
) -> Envelope:
    """A fresh envelope addressed to ``route[0]`` (how `asya send` and tests start a pipeline)."""
    if not route:
        raise ValueError("a route needs at least one actor")
    return Envelope(
        id=envelope_id or str(uuid.uuid4()),
        route=Route(prev=[], curr=route[0], next=list(route[1:])),
        headers=dict(headers or {}),
        status=Status().stamped(phase="pending", actor=route[0]),
        payload=payload,
    )


def child_id(*, parent_id: str, actor: str, index: int) -> str:
    """Deterministic id of fan-out child ``index``: a redelivered parent yields the same children, not new ones."""
    namespace = uuid.UUID(parent_id) if _is_uuid(parent_id) else uuid.NAMESPACE_URL
    return str(uuid.uuid5(namespace, f"{parent_id}/{actor}/{index}"))


def fanin_id(*, parent_id: str, actor: str) -> str:
    """Deterministic id of fan-in ``actor``'s aggregate of ``parent_id``'s children: whichever replica or redelivery
    makes it, it is the same envelope downstream (a repeat overwrites its sink record instead of adding one)."""
    namespace = uuid.UUID(parent_id) if _is_uuid(parent_id) else uuid.NAMESPACE_URL
    return str(uuid.uuid5(namespace, f"{parent_id}/fanin/{actor}"))


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True
