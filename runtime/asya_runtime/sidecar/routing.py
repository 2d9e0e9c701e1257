"""What the sidecar sends where: next-hop envelopes from a handler's answer, and error-sink records.

Pure functions over :class:`~asya_runtime.envelope.Envelope`; the I/O lives in :mod:`asya_runtime.sidecar.actor`
(the handler call), :mod:`~asya_runtime.sidecar.outputs` (sending) and :mod:`~asya_runtime.sidecar.sinks`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from asya_runtime.envelope import Envelope, ErrorInfo, FanOut, Phase, Route, Status, child_id
from asya_runtime.naming import ERROR_SINK, SUCCESS_SINK, check_actor_name, malformed_record_id

#: Stable reasons: the ``reason`` label of ``asya_messages_failed`` and ``status.error.reason`` in the error sink.
MALFORMED = "malformed envelope"
UNKNOWN_ACTOR = "unknown actor"
FOREIGN_ACTOR = "foreign actor"
DEADLINE_EXCEEDED = "deadline exceeded"
RESULT_TOO_LARGE = "result too large"
FAN_OUT_TOO_LARGE = "fan-out too large"
RETRIES_EXHAUSTED = "retries exhausted"
NOT_RETRYABLE = "not retryable"
REDELIVERED_TOO_OFTEN = "redelivered too often"
HOP_BUDGET_EXHAUSTED = "hop budget exhausted"
ROUTED_TO_ERROR_SINK = "routed to error sink"
#: Its status record says it was canceled (the front door's DELETE): ended without calling the handler.
CANCELED = "canceled"

#: Upstream Asya's ``status.reason`` for an envelope in the error sink: the policy gave up, or the infrastructure
#: refused the envelope (upstream's ``RuntimeError``: malformed, unroutable, too late, too large).
POLICY_EXHAUSTED = "PolicyExhausted"
INFRASTRUCTURE_ERROR = "RuntimeError"
#: Upstream's ``status.reason`` for an envelope sent to ``onExhausted``'s recovery actors.
POLICY_ROUTED = "PolicyRouted"
_POLICY_REASONS = frozenset({RETRIES_EXHAUSTED, NOT_RETRYABLE, REDELIVERED_TOO_OFTEN})

#: Longest ``status.error.message`` / ``traceback`` kept (characters); longer ones are cut with a note saying so.
ERROR_TEXT_MAX = 16 * 1024


@dataclass(frozen=True)
class Outgoing:
    """One envelope and the actor whose queue it goes to."""

    to: str
    envelope: Envelope
    delay_s: float = 0.0
    #: The envelope sent back to this actor's own queue for another attempt (its payload must stay whole).
    retry: bool = False

    @property
    def is_error(self) -> bool:
        return self.to == ERROR_SINK


def next_hops(
    *, source: Envelope, outputs: Sequence[Mapping[str, Any]], extra: Mapping[str, Any] | None = None
) -> list[Outgoing]:
    """The envelopes a successful call produces (docs/protocol.md, *Call responses*).

    ``none`` (or no outputs) ends the envelope unchanged in the success sink. One output keeps the envelope's id;
    two or more are fan-out children with deterministic ids, ``parent_id`` and ``fanout`` (index and total, for a
    fan-in actor downstream: :mod:`asya_runtime.sidecar.fanin`). Each output's route advances;
    an empty rest goes to the success sink. ``status`` starts afresh for the next actor (the deadline stays),
    ``processing`` by this actor, or ``succeeded`` where the route ends. ``extra`` (e.g. the hop history) is set on
    every resulting envelope in the same copy.
    """
    actor = source.route.curr
    if not outputs:
        ended = source.status.stamped(phase="succeeded", actor=actor)
        return [Outgoing(to=SUCCESS_SINK, envelope=source.model_copy(update={**(extra or {}), "status": ended}))]
    fresh: dict[str, Any] = {"attempt": 1, "max_attempts": None, "error": None, "first_attempt_at": None}
    statuses: dict[Phase, Status] = {}  # one stamp per phase, shared by every output in it (never changed in place)
    hops = []
    source_route = source.route.model_dump()
    unchanged: tuple[Route | None, Route] | None = None  # the source route advanced, for every output keeping it
    for index, output in enumerate(outputs):
        given = output.get("route") or source_route
        if given == source_route:
            if unchanged is None:
                unchanged = _advance(source.route)
            named, advanced = unchanged
        else:
            named, advanced = _advance(Route.model_validate(given))
        to = named.curr if named else SUCCESS_SINK
        phase: Phase = "processing" if named else "succeeded"
        if phase not in statuses:
            statuses[phase] = source.status.stamped(phase=phase, actor=actor, **fresh)
        fan_out = len(outputs) > 1
        envelope = source.model_copy(
            update={
                "id": child_id(parent_id=source.id, actor=source.route.curr, index=index) if fan_out else source.id,
                "parent_id": source.id if fan_out else source.parent_id,
                "route": advanced,
                "headers": output.get("headers", source.headers),
                "status": statuses[phase],
                "payload": output.get("payload"),
                **({"fanout": _fanout(source, index=index, total=len(outputs))} if fan_out else {}),
                **(extra or {}),
            }
        )
        refusal = _refused_destination(to=to, named=named is not None, actor=source.route.curr)
        if refusal is None:
            hops.append(Outgoing(to=to, envelope=envelope))
        else:
            reason, type_name, message = refusal
            hops.append(
                error_record(envelope=envelope, actor=source.route.curr, reason=reason, type_name=type_name,
                             message=message)
            )
    return hops


def _fanout(source: Envelope, *, index: int, total: int) -> FanOut:
    """Child ``index`` of ``total``; when ``source`` was itself a child, its own place goes along as ``outer``."""
    outer = None
    if source.parent_id is not None and source.fanout is not None:
        outer = {"parent_id": source.parent_id, "fanout": source.fanout.model_dump(mode="json")}
    return FanOut(index=index, total=total, outer=outer)


def _advance(route: Route) -> tuple[Route | None, Route]:
    """``(the route naming the next actor or None when it is finished, the route the envelope travels with)``."""
    named = route.advanced()
    return named, named or Route(prev=[*route.prev, route.curr], curr=SUCCESS_SINK, next=[])


def _refused_destination(*, to: str, named: bool, actor: str) -> tuple[str, str, str] | None:
    """``(reason, type, message)`` of the error record that replaces an output bound for ``to``, or None to send it.

    ``named``: the route names ``to`` (rather than ending, which sends the envelope to the success sink).
    """
    if not named:
        return None
    foreign = foreign_destination(to)
    if foreign is not None:
        return FOREIGN_ACTOR, "ForeignActor", f"the route of {actor!r} names {to!r}, which no route may name: {foreign}"
    if to == ERROR_SINK:
        # The handler routed this output to the error sink itself: it is an error record like any other.
        message = f"the handler of {actor!r} routed this envelope to the error sink"
        return ROUTED_TO_ERROR_SINK, "RoutedToErrorSink", message
    return None


def recovery_hop(*, envelope: Envelope, actors: tuple[str, ...], error: ErrorInfo) -> Outgoing:
    """``envelope``, its retries exhausted, routed to ``onExhausted``'s recovery actors instead of the error sink.

    The route goes on from the failed actor (``prev += [curr]``, ``curr`` = the first recovery actor, ``next`` =
    the rest); ``status.error`` keeps the last error so the recovery actor can read why (``GET .status.error``);
    the attempt count starts afresh for the recovery actor; the phase is upstream's ``failed``/``PolicyRouted``.
    """
    route = Route(prev=[*envelope.route.prev, envelope.route.curr], curr=actors[0], next=list(actors[1:]))
    status = envelope.status.stamped(
        phase="failed", actor=envelope.route.curr, reason=POLICY_ROUTED,
        attempt=1, max_attempts=None, error=error, first_attempt_at=None,
    )
    return Outgoing(to=actors[0], envelope=envelope.model_copy(update={"route": route, "status": status}))


@functools.lru_cache(maxsize=1024)  # a pure function of the name, asked once per output
def foreign_destination(name: str) -> str | None:
    """Why a route may not name ``name`` (None when it may: an actor name, or ``error-sink``, which gives an error
    record of its own).

    Routes reach only actors of the envelope's own mesh, by actor name: a name that is no actor name at all (say,
    ``b_dlq``, which would address actor ``b``'s dead-letter queue, or another mesh's ``asya-…`` queue name), or that
    names the success sink (end a route by leaving ``next`` empty), is refused here, before any queue is looked up.
    """
    if name == ERROR_SINK:
        return None
    if name == SUCCESS_SINK:
        return "the success sink receives envelopes whose route is finished; leave .route.next empty instead"
    try:
        check_actor_name(name)
    except ValueError as exc:
        return f"{exc} — routes reach only actors of their own mesh, by actor name"
    return None


def error_record(
    *,
    envelope: Envelope,
    actor: str,
    reason: str,
    type_name: str,
    message: str,
    traceback: str | None = None,
    attempt: int | None = None,
) -> Outgoing:
    """``envelope`` bound for the error sink with ``status.error`` filled in and upstream's phase ``failed`` (its
    reason from :func:`upstream_reason`); route and headers stay as they were."""
    error = error_info(type_name=type_name, message=message, reason=reason, traceback=traceback, actor=actor)
    status = envelope.status.stamped(
        phase="failed", actor=actor, reason=upstream_reason(reason), error=error,
        attempt=attempt or envelope.status.attempt,
    )
    return Outgoing(to=ERROR_SINK, envelope=envelope.model_copy(update={"status": status}))


def upstream_reason(reason: str) -> str:
    """Upstream's ``status.reason`` for one of this module's reasons: the policy's, or the infrastructure's."""
    return POLICY_EXHAUSTED if reason in _POLICY_REASONS else INFRASTRUCTURE_ERROR


def error_info(*, type_name: str, message: str, reason: str, traceback: str | None, actor: str) -> ErrorInfo:
    """An :class:`ErrorInfo` whose message and traceback are capped at :data:`ERROR_TEXT_MAX` characters each."""
    return ErrorInfo(
        type=type_name,
        message=capped(message, limit=ERROR_TEXT_MAX),
        reason=reason,
        traceback=None if traceback is None else capped(traceback, limit=ERROR_TEXT_MAX),
        actor=actor,
    )


def capped(text: str, *, limit: int) -> str:
    """``text``, or its first part plus a note saying how much was cut, in at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    note = f"... [truncated: {len(text)} characters, {limit} kept]"
    return text[: max(limit - len(note), 0)] + note


def malformed_record(*, raw_body: str, message_id: str, actor: str, detail: str) -> Outgoing:
    """An error-sink record for a body that is not a usable envelope; the raw body is kept for inspection.

    The id derives from the SQS MessageId, so a redelivered bad message overwrites its record instead of adding one.
    A lone surrogate in the body (no UTF-8 can hold it, so no record could be written) is kept as its ``\\udXXX``.
    """
    raw_body = raw_body.encode("utf-8", "backslashreplace").decode("utf-8")
    envelope = Envelope(
        id=malformed_record_id(message_id),
        route=Route(prev=[], curr=actor, next=[]),
        status=Status().stamped(
            phase="failed", actor=actor, reason=INFRASTRUCTURE_ERROR,
            error=ErrorInfo(type="MalformedEnvelope", message=detail, reason=MALFORMED, actor=actor),
        ),
        payload={"raw_body": raw_body},
    )
    return Outgoing(to=ERROR_SINK, envelope=envelope)
