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

from pydantic import ValidationError

from asya_runtime.envelope import Route

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
        type_name = _text(error.get("type") or "Error")
        traceback = error.get("traceback")
        return cls(
            type=type_name,
            message=_text(error.get("message") or ""),
            error_types=_names(error.get("mro")) or (type_name,),
            qualified_types=_names(error.get("mro_qualified")),
            traceback=None if traceback is None else _text(traceback),
            retryable=error.get("retryable") is not False,
        )


def _text(value: object) -> str:
    """``value`` as text an error record can hold: a lone UTF-16 surrogate (half of an emoji in an exception's
    message) kept as its ``\\udXXX`` escape."""
    return str(value).encode("utf-8", "backslashreplace").decode("utf-8")


def _names(value: object) -> tuple[str, ...]:
    """A list of class names from the wire as a tuple of text; anything else as none."""
    return tuple(_text(name) for name in value) if isinstance(value, list) else ()


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
        """The answer a server sent; one that is not what docs/protocol.md says (outputs that are not objects with
        an object ``route`` and ``headers``, an ``error`` that is not an object, a ``fly`` that is not a count) is
        the contract violation it is (:meth:`violation`), as the sidecar could never send it on."""
        ok = bool(answer.get("ok"))
        outputs, error, fly = answer.get("outputs") or [], answer.get("error") or {}, answer.get("fly") or 0
        problem = _output_problem(outputs) if ok else None
        if problem is None and not ok and not isinstance(error, Mapping):
            problem = f"'error' is {type(error).__name__}, not an object"
        if problem is None and (not isinstance(fly, int) or isinstance(fly, bool) or fly < 0):
            problem = f"'fly' is {fly!r}, not a count"
        if problem is not None:
            return cls.violation(f"the handler server's answer does not follow the protocol: {problem}")
        return cls(ok=ok, outputs=outputs, error=None if ok else CallError.from_wire(error), fly=fly)

    @classmethod
    def violation(cls, message: str) -> HandlerAnswer:
        """The answer for one the sidecar cannot use (see :meth:`from_wire`; a lone UTF-16 surrogate, which no
        message body can hold): a ``HandlerResultError``, not retryable — the same call would answer the same."""
        error = CallError(
            type="HandlerResultError",
            message=message,
            error_types=("HandlerResultError", "ContractError"),
            qualified_types=("asya.HandlerResultError", "asya.ContractError"),
            retryable=False,
        )
        return cls(ok=False, error=error)

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


def _output_problem(outputs: object) -> str | None:
    """What makes ``outputs`` no list of output frames the sidecar can route (None when nothing does)."""
    if not isinstance(outputs, list):
        return f"'outputs' is {type(outputs).__name__}, not a list"
    for index, output in enumerate(outputs):
        if not isinstance(output, dict):
            return f"output {index} is {type(output).__name__}, not an object"
        route, headers = output.get("route"), output.get("headers", {})
        if not isinstance(headers, dict):
            return f"output {index}: 'headers' is {type(headers).__name__}, not an object"
        if route:  # absent or empty: the envelope's own route
            try:
                Route.model_validate(route)
            except ValidationError as exc:
                first = exc.errors()[0]
                return f"output {index}: route.{'.'.join(str(p) for p in first['loc'])}: {first['msg']}"
    return None
