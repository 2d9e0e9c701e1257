"""Shrinking error records and retries to the broker's size limit, so the error they carry is never lost.

A result over ``ASYA_MAX_MESSAGE_BYTES`` is error-ended as "result too large" (see :mod:`.outputs`); an envelope
that *carries* an error cannot be treated that way: the error would be replaced, and a final error record the
broker refuses would be redelivered until "redelivered too often". So these are cut down instead:

- an error record gives up its payload first (``{"truncated": true, "bytes": N}``; a payload under 1 KiB is
  kept), keeping the error whole, then its traceback, then the end of its message;
- a retry keeps its payload (the next attempt needs it) and gives up its traceback, then the end of its message;
  a retry that still does not fit is error-ended, shrunk like any error record.
"""

from __future__ import annotations

import json

from asya_runtime.envelope import Envelope
from asya_runtime.sidecar import logs, routing
from asya_runtime.sidecar.routing import Outgoing

#: ``status.error.type`` of a result over the broker's limit.
RESULT_TOO_LARGE_TYPE = "ResultTooLarge"
#: What a message cut to fit the limit keeps at least, however little room is left.
MESSAGE_MIN_CHARS = 256
#: A payload this small is kept even when the record is over the limit: dropping it would gain nothing worth it.
PAYLOAD_KEEP_BYTES = 1024


def size_of(envelope: Envelope) -> int:
    return len(envelope.to_json().encode())


def fit_error_record(hop: Outgoing, *, limit: int) -> Outgoing:
    """``hop`` (bound for the error sink), cut down until it fits ``limit`` bytes: payload, traceback, message."""
    envelope = hop.envelope
    if size_of(envelope) <= limit:
        return hop
    payload_bytes = len(json.dumps(envelope.payload, separators=(",", ":")).encode())
    if payload_bytes > PAYLOAD_KEEP_BYTES:
        envelope = envelope.model_copy(update={"payload": {"truncated": True, "bytes": payload_bytes}})
        logs.warning("error record over the size limit; payload replaced", id=envelope.id, payload_bytes=payload_bytes)
    return Outgoing(to=hop.to, envelope=_shrink_error(envelope, limit=limit), delay_s=hop.delay_s)


def fit_retry(hop: Outgoing, *, limit: int, actor: str) -> Outgoing:
    """``hop`` (a retry to this actor's own queue) with its error cut to fit; error-ended if even that is too big."""
    envelope = _shrink_error(hop.envelope, limit=limit)
    if size_of(envelope) <= limit:
        return Outgoing(to=hop.to, envelope=envelope, delay_s=hop.delay_s, retry=True)
    error = envelope.status.error
    size = size_of(envelope)
    text = f"the retry envelope is {size} bytes, over the broker's limit of {limit} bytes"
    if error is not None:
        text = f"{error.type}: {error.message} ({text})"
    return result_too_large(
        envelope, actor=actor, limit=limit, size=size, message=text,
        type_name=error.type if error is not None else RESULT_TOO_LARGE_TYPE,
    )


def result_too_large(
    envelope: Envelope, *, actor: str, limit: int, size: int, message: str, type_name: str = RESULT_TOO_LARGE_TYPE
) -> Outgoing:
    """The one "result too large" error record (an output or a retry over the broker's limit): logged, built and
    cut to fit ``limit``. (An answer too large to read ends the same way through the handler client's
    :class:`~asya_runtime.sidecar.handler_client.HandlerAnswerTooLarge`, whose ``reason`` is this one.)"""
    logs.warning("error-ending envelope", id=envelope.id, reason=routing.RESULT_TOO_LARGE, size=size)
    record = routing.error_record(
        envelope=envelope, actor=actor, reason=routing.RESULT_TOO_LARGE, type_name=type_name, message=message
    )
    return fit_error_record(record, limit=limit)


def _shrink_error(envelope: Envelope, *, limit: int) -> Envelope:
    """``envelope`` without its error's traceback, then with the error message cut, while it is over ``limit``."""
    error = envelope.status.error
    if error is None or size_of(envelope) <= limit:
        return envelope
    if error.traceback is not None:
        error = error.model_copy(update={"traceback": None})
        envelope = _with_error(envelope, error)
        if size_of(envelope) <= limit:
            return envelope
    over = size_of(envelope) - limit
    keep = max(len(error.message) - over - 128, MESSAGE_MIN_CHARS)  # 128: room for the truncation note
    error = error.model_copy(update={"message": routing.capped(error.message, limit=keep)})
    return _with_error(envelope, error)


def _with_error(envelope: Envelope, error: object) -> Envelope:
    return envelope.model_copy(update={"status": envelope.status.model_copy(update={"error": error})})
