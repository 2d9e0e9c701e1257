"""What a handler call gives back, typed: :class:`HandlerAnswer` and its :class:`CallError` (upstream Asya's
``RuntimeResponse`` and ``ErrorDetails``, ``internal/runtime/client.go``).

An answer is either the handler server's answer line, read by :meth:`HandlerAnswer.from_wire` (docs/protocol.md,
*Call responses*: ``ok``, ``outputs``, ``error``, ``fly``), or the sidecar's own answer for a call that produced
none (:meth:`HandlerAnswer.no_answer`, from a :class:`~asya_runtime.sidecar.handler_client.HandlerCallError`).
The error-sink reason the sidecar decided for such a call (``result too large``, ``fan-out too large``) is the
answer's ``reason``; the handler cannot set it, since nothing read from the wire does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from asya_runtime.sidecar.handler_client import HandlerCallError


@dataclass(frozen=True)
class CallError:
    """Why a call failed, as the error frame says (or the sidecar, for a call with no answer)."""

    type: str
    message: str
    #: Class names, most specific first: what a resiliency rule's ``errors`` match.
    error_types: tuple[str, ...]
    #: The same, module-qualified (``builtins.TimeoutError``).
    qualified_types: tuple[str, ...] = ()
    traceback: str | None = None
    #: False for contract violations and answers too large: the same call would fail the same way again.
    retryable: bool = True

    @classmethod
    def from_wire(cls, error: Mapping[str, Any]) -> CallError:
        type_name = str(error.get("type") or "Error")
        traceback = error.get("traceback")
        return cls(
            type=type_name,
            message=str(error.get("message") or ""),
            error_types=tuple(error.get("mro") or [type_name]),
            qualified_types=tuple(error.get("mro_qualified") or ()),
            traceback=None if traceback is None else str(traceback),
            retryable=error.get("retryable") is not False,
        )


@dataclass(frozen=True)
class HandlerAnswer:
    """One call's outcome: ``ok`` with the ``outputs`` to send on, or not ``ok`` with the ``error``."""

    ok: bool
    #: The output frames (``payload``, and ``route``/``headers`` when the handler changed them).
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: CallError | None = None
    #: The error-sink reason the sidecar decided for a call that produced no answer; never read from the wire.
    reason: str | None = None
    #: Partial results (``FLY``) the handler streamed during the call.
    fly: int = 0

    @classmethod
    def from_wire(cls, answer: Mapping[str, Any]) -> HandlerAnswer:
        ok = bool(answer.get("ok"))
        return cls(
            ok=ok,
            outputs=list(answer.get("outputs") or []),
            error=None if ok else CallError.from_wire(answer.get("error") or {}),
            fly=int(answer.get("fly") or 0),
        )

    @classmethod
    def no_answer(cls, exc: HandlerCallError) -> HandlerAnswer:
        """The sidecar's answer for a call that produced none: timed out, dropped, no server, answer too large,
        fan-out over the cap."""
        error = CallError(
            type=exc.type_name,
            message=str(exc),
            error_types=exc.error_types or (exc.type_name,),
            qualified_types=exc.qualified_types or (f"asya.{exc.type_name}",),
            retryable=exc.reason is None,
        )
        return cls(ok=False, error=error, reason=exc.reason)
