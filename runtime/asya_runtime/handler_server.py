#!/usr/bin/env python3
"""asya handler server: runs the user's handler behind a Unix socket for the sidecar (docs/protocol.md).

One stdlib-only file, Python >= 3.9, mounted into the user's container so the image needs nothing from us:

    ASYA_HANDLER=module.func python3 handler_server.py     # serve
    python3 handler_server.py --health                     # liveness probe: exit 0 if healthy, else 1

Threads: the main thread accepts connections and waits for SIGTERM; each connection (the sidecar keeps them
alive) has its own thread that reads newline-delimited JSON frames and runs sync handlers in place, so a call
costs no thread start. A semaphore admits ``ASYA_HANDLER_CONCURRENCY`` calls at once. Coroutines and async
generators run on one asyncio loop in a background thread. A watchdog thread ends the process with status 70 when
a call outlives its ``timeout_s`` plus a grace, because a hung thread cannot be stopped from inside the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import importlib.util
import itertools
import json
import os
import select
import selectors
import signal
import socket
import sys
import threading
import time
import types
from collections.abc import Callable, Mapping
from typing import Any

ENV_HANDLER = "ASYA_HANDLER"
ENV_SOCKET_PATH = "ASYA_SOCKET_PATH"
ENV_HANDLER_CONCURRENCY = "ASYA_HANDLER_CONCURRENCY"
ENV_HANDLER_PATH = "ASYA_HANDLER_PATH"
ENV_HANDLER_DRAIN_S = "ASYA_HANDLER_DRAIN_S"

DEFAULT_SOCKET_PATH = "/var/run/asya/handler.sock"
DEFAULT_CONCURRENCY = 1
#: How long SIGTERM waits for in-flight calls and open connections (Kubernetes' default grace is 30 s).
DEFAULT_DRAIN_S = 25.0
#: A call running this long past its ``timeout_s`` is hung: the process exits with :data:`EXIT_HUNG`.
HUNG_GRACE_S = 2.0
#: After SIGTERM, a connection with no request being answered is closed once this long has passed (docs/protocol.md).
IDLE_CLOSE_GRACE_S = 0.1
#: The ``--health`` probe gives up after this long (Kubernetes' exec probe default timeout is 1 s).
HEALTH_PROBE_TIMEOUT_S = 0.8

EXIT_OK = 0
EXIT_UNHEALTHY = 1
EXIT_STARTUP_ERROR = 2
#: EX_SOFTWARE from sysexits.h: the process ended itself because a handler call hung.
EXIT_HUNG = 70

_WATCHDOG_INTERVAL_S = 0.1
_STDLIB_DIR = os.path.dirname(threading.__file__)
_HIDDEN_FRAME_PREFIXES = (os.path.join(_STDLIB_DIR, "asyncio"), os.path.join(_STDLIB_DIR, "concurrent"))


class ContractError(Exception):
    """The handler or the client broke the protocol: not retryable, the envelope goes to the error sink."""


class HandlerResultError(ContractError):
    """The handler returned or yielded something other than a dict, None or a command tuple."""


class EnvelopeCommandError(ContractError):
    """A generator command was malformed or tried to write a read-only path."""


class ProtocolError(ContractError):
    """The request frame was not understood."""


class HandlerSignatureError(ContractError):
    """Calling the handler with the payload raised a TypeError itself (its signature refuses one argument), before
    any of its code ran: every attempt would fail the same way."""


#: What ``--check`` reports as ``problem``: ``module`` (not found), ``import`` (importing it raised), ``syntax``
#: (it does not compile), ``attribute`` (a name it lacks), ``constructor`` (the class's constructor raised),
#: ``signature`` (it cannot be called with one payload), ``target`` (a class or a value, not a function), ``spec``
#: (the handler string's form), ``config`` (another setting).
PROBLEMS = ("module", "import", "syntax", "attribute", "constructor", "signature", "target", "spec", "config")
#: How close a name must be to be offered as "did you mean" (difflib's ratio; its own default).
CLOSE_MATCH_CUTOFF = 0.6


def close_match(name: str, candidates: list[str]) -> str | None:
    """The candidate closest to ``name`` (a mistyped function or module), or None when none is close.

    The one rule for "did you mean": this server's startup line and ``asya``'s pre-flight (for both servers) use it.
    """
    import difflib  # only on errors

    found = difflib.get_close_matches(name, candidates, n=1, cutoff=CLOSE_MATCH_CUTOFF)
    return found[0] if found else None


class StartupError(Exception):
    """The server cannot start; ``str()`` is one readable line: ``ASYA_HANDLER='…': <what is wrong; the fix>``.

    ``problem`` (one of :data:`PROBLEMS`), ``missing`` (the name not found) and ``candidates`` (the names there
    are) travel in ``--check``'s answer so that a caller can word the fix in its own terms.
    """

    def __init__(
        self,
        detail: str,
        *,
        spec: str | None = None,
        problem: str = "config",
        missing: str | None = None,
        candidates: list[str] | None = None,
    ) -> None:
        self.detail = detail
        self.spec = spec
        self.problem = problem
        self.missing = missing
        self.candidates = candidates or []
        super().__init__(f"{ENV_HANDLER}={spec!r}: {detail}" if spec is not None else detail)

    def answer(self) -> dict[str, Any]:
        """``--check``'s answer for this error (docs/protocol.md, *Lifecycle*)."""
        return {
            "ok": False,
            "handler": self.spec,
            "problem": self.problem,
            "message": self.detail,
            "missing": self.missing,
            "candidates": self.candidates,
        }


# --------------------------------------------------------------------------------------------- configuration


@dataclasses.dataclass(frozen=True)
class HandlerServerConfig:
    """Everything the server is configured with, typed; it travels as ``ASYA_*`` environment variables.

    One type for both ends: the pod (``asya_pulumi.objects.pod``) and the local runner (``asya_pulumi.local``) build it
    and render it with :meth:`to_env`; the server reads it back with :meth:`from_env`. So no environment variable name
    or default is typed out anywhere else.
    """

    #: ``module.function`` or ``module.Class.method`` (the Node.js server also takes ``path/file.js:export``).
    handler: str
    socket_path: str = DEFAULT_SOCKET_PATH
    #: Calls run at once (the actor's ``spec.concurrency``).
    concurrency: int = DEFAULT_CONCURRENCY
    #: After SIGTERM, how long in-flight calls and open connections may take to finish.
    drain_s: float = DEFAULT_DRAIN_S
    #: Directories searched for the handler's module first; empty means the working directory.
    search_path: tuple[str, ...] = ()

    def to_env(self) -> dict[str, str]:
        """The environment variables that configure a server this way (``ASYA_HANDLER_PATH`` only when set)."""
        env = {
            ENV_HANDLER: self.handler,
            ENV_SOCKET_PATH: self.socket_path,
            ENV_HANDLER_CONCURRENCY: str(self.concurrency),
            ENV_HANDLER_DRAIN_S: f"{self.drain_s:g}",
        }
        if self.search_path:
            env[ENV_HANDLER_PATH] = ":".join(self.search_path)
        return env

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> HandlerServerConfig:
        """Read the configuration; a missing handler or a malformed number is a :class:`StartupError` naming it."""
        handler = environ.get(ENV_HANDLER, "").strip()
        if not handler:
            raise StartupError(f"{ENV_HANDLER} is not set; set it to 'module.function' or 'module.Class.method'")
        concurrency_text = environ.get(ENV_HANDLER_CONCURRENCY) or str(DEFAULT_CONCURRENCY)
        drain_text = environ.get(ENV_HANDLER_DRAIN_S) or str(DEFAULT_DRAIN_S)
        try:
            concurrency = int(concurrency_text)
            if concurrency < 1:
                raise ValueError
        except ValueError:
            raise StartupError(f"{ENV_HANDLER_CONCURRENCY}={concurrency_text!r} must be a whole number >= 1") from None
        try:
            drain_s = float(drain_text)
        except ValueError:
            raise StartupError(f"{ENV_HANDLER_DRAIN_S}={drain_text!r} must be a number of seconds") from None
        return cls(
            handler=handler,
            socket_path=environ.get(ENV_SOCKET_PATH) or DEFAULT_SOCKET_PATH,
            concurrency=concurrency,
            drain_s=drain_s,
            search_path=tuple(d for d in environ.get(ENV_HANDLER_PATH, "").split(":") if d),
        )


# ---------------------------------------------------------------------------------------------------- logging


def log(level: str, event: str, **fields: Any) -> None:
    """Write one JSON line to stderr (start, stop, crash); never a payload."""
    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    record = {"time": stamp, "level": level, "logger": "asya.handler_server", "event": event, **fields}
    sys.stderr.write(json.dumps(record, default=str) + "\n")
    sys.stderr.flush()


# ------------------------------------------------------------------------------------------ loading the handler

def load_handler(spec: str, search_path: list[str], *, instantiate: bool = True) -> Callable[[Any], Any]:
    """Resolve ``module.func`` or ``module.Class.method`` (the class instantiated once, without arguments) and check
    that it can be called with one argument, the payload.

    ``instantiate=False`` (``--check``) looks a method up on its class without creating an instance, so a check does
    not run a constructor that loads a model; only a method the class does not define (one its constructor sets)
    needs the instance. Every failure is a :class:`StartupError`; a name not found comes with a "did you mean".
    """
    for directory in reversed(search_path):
        sys.path.insert(0, directory)
    parts = spec.split(".")
    if len(parts) < 2 or not all(parts):
        raise StartupError("must be 'module.function' or 'module.Class.method'", spec=spec, problem="spec")
    target, index = _import_longest_prefix(spec, parts, search_path)
    unbound = False  # target is a function looked up on a class, not on an instance: it takes `self` first
    for position in range(index, len(parts)):
        name, owner = parts[position], target
        try:
            target = getattr(owner, name)
            unbound = isinstance(owner, type) and isinstance(_class_attribute(owner, name), types.FunctionType)
        except AttributeError:
            if isinstance(owner, type) and not instantiate:  # set by the constructor, perhaps: ask an instance
                target, unbound = getattr(_instance(spec, owner), name, None), False
                if target is not None:
                    continue
            raise _missing(spec, where=".".join(parts[:position]), name=name, owner=owner) from None
        if isinstance(target, type) and position < len(parts) - 1 and instantiate:
            target = _instance(spec, target)
    if isinstance(target, type):
        raise StartupError("names a class; name one of its methods: module.Class.method", spec=spec, problem="target")
    if not callable(target):
        raise StartupError(f"names a {type(target).__name__}, not a function", spec=spec, problem="target")
    _check_signature(spec, target, unbound=unbound)
    return target


def _class_attribute(owner: type, name: str) -> Any:
    """The class attribute as its class body wrote it (a function, a staticmethod...), not bound to anything."""
    import inspect

    return inspect.getattr_static(owner, name, None)


def _instance(spec: str, cls: type) -> Any:
    try:
        return cls()
    except Exception as exc:
        problem = f"creating {cls.__name__}() raised {type(exc).__name__}: {exc}"
        detail = f"{problem}; the class is created without arguments"
        raise StartupError(detail, spec=spec, problem="constructor") from exc


def _missing(spec: str, *, where: str, name: str, owner: Any) -> StartupError:
    """``where`` has no ``name``: the error names what it does have, and the closest as "did you mean"."""
    candidates = sorted(n for n in dir(owner) if not n.startswith("_") and callable(getattr(owner, n, None)))
    close = close_match(name, candidates)
    hint = f"; did you mean {close!r}?" if close else (f"; it has {', '.join(candidates[:8])}" if candidates else "")
    return StartupError(f"{where!r} has no attribute {name!r}{hint}", spec=spec, problem="attribute", missing=name,
                        candidates=candidates)


def _check_signature(spec: str, target: Callable[[Any], Any], *, unbound: bool) -> None:
    """Refuse a handler that cannot be called with one positional argument (the payload): every call would fail.

    A signature Python cannot read (some builtins) passes; a TypeError the call itself raises is then still
    refused without a retry (:class:`HandlerSignatureError`).
    """
    import inspect

    try:
        signature = inspect.signature(target)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*([None] if unbound else []), {})
    except TypeError as exc:
        name = getattr(target, "__name__", spec.rsplit(".", 1)[-1])
        raise StartupError(
            f"{name}{signature} cannot be called with one argument, the payload ({exc}); "
            f"define it as def {name}({'self, ' if unbound else ''}payload)",
            spec=spec, problem="signature",
        ) from None


def _import_longest_prefix(spec: str, parts: list[str], search_path: list[str]) -> tuple[Any, int]:
    """Import the longest dotted prefix of ``parts`` that is a module; return it and the index of the rest."""
    for end in range(len(parts) - 1, 0, -1):
        name = ".".join(parts[:end])
        try:
            return importlib.import_module(name), end
        except ModuleNotFoundError as exc:
            if exc.name and (name == exc.name or name.startswith(exc.name + ".")):
                continue  # this prefix is not a module: try a shorter one
            problem = f"importing {name!r} failed: {exc}; install it where the handler runs"
            raise StartupError(problem, spec=spec, problem="import", missing=exc.name) from exc
        except SyntaxError as exc:
            where = f"{exc.filename}:{exc.lineno}" if exc.filename else name
            problem = f"importing {name!r} raised SyntaxError: {exc.msg} ({where})"
            raise StartupError(problem, spec=spec, problem="syntax") from exc
        except Exception as exc:
            problem = f"importing {name!r} raised {type(exc).__name__}: {exc}"
            raise StartupError(problem, spec=spec, problem="import") from exc
    import pkgutil

    where = ":".join(search_path)
    candidates = sorted({module.name for module in pkgutil.iter_modules(search_path)})
    close = close_match(parts[0], candidates)
    hint = f"; did you mean {close!r}?" if close else f"; put {parts[0]}.py in {where} or install it"
    raise StartupError(f"module {parts[0]!r} not found ({ENV_HANDLER_PATH}={where!r}){hint}", spec=spec,
                       problem="module", missing=parts[0], candidates=candidates)


# ------------------------------------------------------------------------------------------ generator commands


def _load_envelope_paths() -> types.ModuleType:
    """The path module (``envelope_paths.py``): from the package when this file is imported as
    ``asya_runtime.handler_server``, else from beside this file (the pod mounts both from one ConfigMap), by file
    location so that a user's module of the same name cannot shadow it."""
    if __package__:
        return importlib.import_module(f"{__package__}.envelope_paths")
    location = os.path.join(os.path.dirname(os.path.abspath(__file__)), "envelope_paths.py")
    spec = importlib.util.spec_from_file_location("_asya_envelope_paths", location)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {location}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


_paths = _load_envelope_paths()


def apply_command(envelope: dict[str, Any], command: tuple[Any, ...]) -> Any:
    """Apply ``("SET", path, value)``, ``("DEL", path)`` or ``("GET", path)`` (paths and access rules:
    ``envelope_paths``); return what GET sends back. Every refusal is an :class:`EnvelopeCommandError`."""
    op = command[0] if command else None
    arity = {"SET": 3, "DEL": 2, "GET": 2}.get(op) if isinstance(op, str) else None
    if arity is None:
        known = "('SET', path, value), ('DEL', path), ('GET', path)"
        raise EnvelopeCommandError(f"unknown command {op!r}; commands are {known}")
    if len(command) != arity:
        raise EnvelopeCommandError(f"{op} takes {arity - 1} argument(s), got {len(command) - 1}")
    try:
        if op == "GET":
            return _paths.get_path(envelope, command[1])
        if op == "SET":
            _paths.set_path(envelope, command[1], command[2])
        else:
            _paths.del_path(envelope, command[1])
    except _paths.PathError as exc:
        raise EnvelopeCommandError(str(exc)) from None
    return None


# ------------------------------------------------------------------------------------------------ running a call


#: One encoder for every output: ``json.dumps`` with options builds a new encoder on each call.
_OUTPUT_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _dumps(value: Any) -> str:
    return _OUTPUT_ENCODER.encode(value)


def _output(envelope: dict[str, Any], payload: dict[str, Any]) -> str:
    """One output, serialised now: that is the snapshot of route and headers the protocol promises."""
    try:
        return _dumps({"route": envelope.get("route"), "headers": envelope.get("headers"), "payload": payload})
    except (TypeError, ValueError) as exc:
        raise HandlerResultError(f"the handler's result is not JSON-serialisable: {exc}") from None


def _error_frame(exc: BaseException, *, retryable: bool) -> dict[str, Any]:
    kind = type(exc)
    return {
        "ok": False,
        "error": {
            "type": kind.__name__,
            "mro": [cls.__name__ for cls in kind.__mro__ if cls is not object],
            "mro_qualified": [f"{cls.__module__}.{cls.__qualname__}" for cls in kind.__mro__ if cls is not object],
            "message": str(exc),
            "traceback": _user_traceback(exc),
            "retryable": retryable,
        },
    }


def _user_traceback(exc: BaseException) -> str:
    """The traceback without this server's and asyncio's frames, so it points at the user's code."""
    import traceback  # only on errors: keeps `--health` (a fresh process every probe) quick to start

    details = traceback.TracebackException(type(exc), exc, exc.__traceback__)
    kept = [
        frame
        for frame in details.stack
        if frame.filename != __file__ and not frame.filename.startswith(_HIDDEN_FRAME_PREFIXES)
    ]
    details.stack = traceback.StackSummary.from_list(kept)
    return "".join(details.format())


class _AsyncRunner:
    """One asyncio loop in a daemon thread, started on first use, shared by every async call."""

    def __init__(self) -> None:
        self._loop: Any = None
        self._lock = threading.Lock()

    def run(self, coroutine: Any) -> Any:
        import asyncio

        with self._lock:
            if self._loop is None:
                self._loop = asyncio.new_event_loop()
                threading.Thread(target=self._loop.run_forever, name="asya-asyncio", daemon=True).start()
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result()


class CallRunner:
    """Calls the handler with an envelope's payload and turns what happens into a response frame (bytes)."""

    def __init__(self, func: Callable[[Any], Any]) -> None:
        self._func = func
        self._async = _AsyncRunner()

    def respond(self, envelope: dict[str, Any], on_fly: Callable[[Any], None] | None = None) -> bytes:
        """``on_fly`` (a call that asked for ``"fly": true``) receives each FLY value as the generator yields it."""
        try:
            kind, outputs = self._run(envelope, on_fly)
        except ContractError as exc:
            return _encode(_error_frame(exc, retryable=False))
        except Exception as exc:
            return _encode(_error_frame(exc, retryable=True))
        # The answer line is put together once and encoded once (newline included): no further copy of the outputs.
        return _encode_line(_answer_text(kind, outputs) + "\n")

    def _run(self, envelope: dict[str, Any], on_fly: Callable[[Any], None] | None = None) -> tuple[str, list[str]]:
        try:
            result = self._func(envelope.get("payload"))
        except TypeError as exc:
            if _raised_by_the_call(exc, self._func):
                raise HandlerSignatureError(
                    f"the handler cannot be called with one argument, the payload: {exc}; "
                    "define it as def handle(payload) (a method: def handle(self, payload))"
                ) from exc
            raise
        return self._finish(envelope, result, on_fly)

    def _finish(
        self, envelope: dict[str, Any], result: Any, on_fly: Callable[[Any], None] | None = None
    ) -> tuple[str, list[str]]:
        """``(kind, outputs)`` of what the handler gave for ``envelope``: a dict, None, an awaitable, a generator."""
        if isinstance(result, dict):  # the common case first: this is the hot path
            return "return", [_output(envelope, result)]
        if isinstance(result, types.GeneratorType):
            outputs = self._drive(result, envelope, on_fly)
        elif isinstance(result, types.AsyncGeneratorType):
            outputs = self._async.run(self._drive_async(result, envelope, on_fly))
        else:
            if hasattr(result, "__await__"):
                result = self._async.run(_await(result))
            if result is None:
                return "none", []
            if not isinstance(result, dict):
                raise HandlerResultError(
                    f"the handler returned {type(result).__name__}; return a dict (the next payload) or None (end here)"
                )
            return "return", [_output(envelope, result)]
        return ("stream" if outputs else "none"), outputs

    def respond_batch(self, envelopes: list[dict[str, Any]]) -> bytes:
        """One ``call_batch`` (docs/protocol.md): the handler called once with every envelope's payload, in order;
        the answer holds one result per envelope, each what a ``call`` of that envelope alone would have answered.
        The whole frame fails (every envelope the same error) only when the call itself raised or broke the
        contract (not a list of one result per payload)."""
        try:
            results = self._run_batch(envelopes)
        except ContractError as exc:
            return _encode(_error_frame(exc, retryable=False))
        except Exception as exc:
            return _encode(_error_frame(exc, retryable=True))
        return _encode_line('{"ok":true,"results":[' + ",".join(results) + "]}\n")

    def _run_batch(self, envelopes: list[dict[str, Any]]) -> list[str]:
        payloads = [envelope.get("payload") for envelope in envelopes]
        try:
            result = self._func(payloads)
        except TypeError as exc:
            if _raised_by_the_call(exc, self._func):
                raise HandlerSignatureError(
                    f"the batched handler cannot be called with one argument, the list of payloads: {exc}; "
                    "define it as def handle(payloads)"
                ) from exc
            raise
        if isinstance(result, (types.GeneratorType, types.AsyncGeneratorType)):
            raise HandlerResultError(
                "the batched handler is a generator; return a list with one result per payload (an item may be a "
                "generator: it routes that item as a single call's generator would)"
            )
        if hasattr(result, "__await__"):
            result = self._async.run(_await(result))
        if not isinstance(result, (list, tuple)):
            raise HandlerResultError(
                f"the batched handler returned {type(result).__name__}; return a list with one result per payload"
            )
        if len(result) != len(envelopes):
            raise HandlerResultError(
                f"the batched handler returned {len(result)} results for {len(envelopes)} payloads; return one per "
                "payload, in order (an Exception instance fails that item alone)"
            )
        return [self._batch_item(envelope, item) for envelope, item in zip(envelopes, result)]  # noqa: B905  (Python 3.9: no strict=; lengths checked above)

    def _batch_item(self, envelope: dict[str, Any], item: Any) -> str:
        """One item's answer text: an Exception instance fails it (retryable, as if its own call had raised it)."""
        try:
            if isinstance(item, Exception):
                return _dumps_frame(_error_frame(item, retryable=not isinstance(item, ContractError)))
            kind, outputs = self._finish(envelope, item)
        except ContractError as exc:
            return _dumps_frame(_error_frame(exc, retryable=False))
        except Exception as exc:
            return _dumps_frame(_error_frame(exc, retryable=True))
        return _answer_text(kind, outputs)

    def _drive(self, generator: Any, envelope: dict[str, Any], on_fly: Callable[[Any], None] | None) -> list[str]:
        outputs = _Outputs()
        outputs.on_fly = on_fly
        try:
            item = next(generator)
            while True:
                try:
                    reply = _take(item, envelope, outputs)
                except ContractError as exc:
                    item = generator.throw(exc)  # raised at the user's `yield`, so the traceback points there
                    continue
                item = generator.send(reply)
        except StopIteration:
            return outputs
        finally:
            generator.close()

    async def _drive_async(
        self, generator: Any, envelope: dict[str, Any], on_fly: Callable[[Any], None] | None
    ) -> list[str]:
        outputs = _Outputs()
        outputs.on_fly = on_fly
        try:
            item = await generator.__anext__()
            while True:
                try:
                    reply = _take(item, envelope, outputs)
                except ContractError as exc:
                    item = await generator.athrow(exc)
                    continue
                item = await generator.asend(reply)
        except StopAsyncIteration:
            return outputs
        finally:
            await generator.aclose()


def _raised_by_the_call(exc: TypeError, func: Callable[[Any], Any]) -> bool:
    """Whether ``exc`` came from binding the payload to ``func``'s parameters rather than from its body.

    A Python function's body runs in a frame of its own, so an error raised there has a traceback entry below the
    caller's; a TypeError with none was raised by the call itself. Only for Python code (functions, methods, objects
    with a Python ``__call__``): a builtin has no frame, and its TypeError may be about the payload's content.
    """
    if exc.__traceback__ is None or exc.__traceback__.tb_next is not None:
        return False
    code = func.__func__ if isinstance(func, types.MethodType) else func
    if not isinstance(code, types.FunctionType):
        code = _class_attribute(type(func), "__call__")  # an object with a Python __call__
    return isinstance(code, types.FunctionType)


async def _await(awaitable: Any) -> Any:
    return await awaitable


class _Outputs(list):
    """A generator's serialised outputs, and how many ``FLY`` events it yielded (sent on to ``on_fly`` if set)."""

    fly = 0
    on_fly: Callable[[Any], None] | None = None


def _take(item: Any, envelope: dict[str, Any], outputs: list[str]) -> Any:
    """Handle one yielded item: a dict is an output, a tuple a command (its result is sent back), None nothing.

    ``("FLY", value)`` is Asya's ephemeral partial output (a token, a progress note): it is accepted, counted in
    the answer's ``fly`` and, unless the call asked for them (``on_fly``: a FLY frame to the sidecar, which keeps
    it in the status store), dropped here (docs/protocol.md, *Generator commands*).
    """
    if isinstance(item, dict):
        outputs.append(_output(envelope, item))
        return None
    if isinstance(item, tuple):
        if item and item[0] == "FLY":
            if len(item) != 2:
                raise EnvelopeCommandError(f"FLY takes 1 argument (the partial output), got {len(item) - 1}")
            if isinstance(outputs, _Outputs):
                outputs.fly += 1
                if outputs.on_fly is not None:
                    outputs.on_fly(item[1])
            return None
        return apply_command(envelope, item)
    if item is None:
        return None
    raise HandlerResultError(
        f"the handler yielded {type(item).__name__}; yield a dict (an output) or a command tuple "
        "such as ('SET', '.route.next', ['actor'])"
    )


def _answer_text(kind: str, outputs: list[str]) -> str:
    """A success answer's JSON text (no newline) around outputs already serialised."""
    fly = getattr(outputs, "fly", 0)
    head = '{"ok":true,"kind":"' + kind + '","outputs":['
    return head + ",".join(outputs) + ("]}" if not fly else '],"fly":' + str(fly) + "}")


def _dumps_frame(frame: dict[str, Any]) -> str:
    return json.dumps(frame, ensure_ascii=False, separators=(",", ":"), default=str)


def _encode(frame: dict[str, Any]) -> bytes:
    return _encode_text(json.dumps(frame, ensure_ascii=False, separators=(",", ":"), default=str))


def _encode_text(text: str) -> bytes:
    return _encode_line(text + "\n")


def _encode_line(line: str) -> bytes:
    """``line`` (JSON text ending in a newline) as UTF-8."""
    try:
        return line.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from the input: send it \u-escaped, still valid JSON
        return json.dumps(json.loads(line), separators=(",", ":")).encode("ascii") + b"\n"


# ------------------------------------------------------------------------------------------------------- server


class HandlerServer:
    """Accepts connections, admits calls through a semaphore, answers health, watches for hung calls."""

    def __init__(
        self, *, func: Callable[[Any], Any], handler: str, socket_path: str, concurrency: int, drain_s: float
    ) -> None:
        self._runner = CallRunner(func)
        self._handler = handler
        self._socket_path = socket_path
        self._concurrency = concurrency
        self._drain_s = drain_s
        self._slots = threading.Semaphore(concurrency)
        self._lock = threading.Lock()
        self._running: dict[int, tuple[float, float | None]] = {}  # call number → (started, timeout_s)
        self._call_numbers = itertools.count()
        self._connections: dict[socket.socket, bool] = {}  # open connection → a request is being answered on it
        self._socket_identity: tuple[int, int] | None = None  # (inode, ctime): a reused inode number differs in ctime
        self._draining = False

    # -- lifecycle

    def serve(self) -> int:
        listener = self._listen()
        wake_reader, wake_writer = socket.socketpair()
        wake_writer.setblocking(False)
        stop = threading.Event()
        signal.set_wakeup_fd(wake_writer.fileno())
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        threading.Thread(target=self._watchdog, name="asya-watchdog", daemon=True).start()
        log(
            "info",
            "start",
            handler=self._handler,
            socket=self._socket_path,
            pid=os.getpid(),
            concurrency=self._concurrency,
            runtime=f"python {sys.version.split()[0]}",
        )
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake_reader, selectors.EVENT_READ)
            while not stop.is_set():
                for key, _ in selector.select():
                    if key.fileobj is wake_reader:
                        wake_reader.recv(64)
                    elif not stop.is_set():
                        self._accept(listener)
        listener.close()
        self._unlink_socket()
        return self._drain()

    def _listen(self) -> socket.socket:
        directory = os.path.dirname(self._socket_path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        _unlink(self._socket_path)  # a socket left by a previous process that died
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self._socket_path)
        self._socket_identity = _identity(self._socket_path)
        listener.listen(128)
        listener.setblocking(False)
        return listener

    def _accept(self, listener: socket.socket) -> None:
        try:
            connection, _ = listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        connection.setblocking(True)
        with self._lock:
            self._connections[connection] = False
        threading.Thread(target=self._serve_connection, args=(connection,), name="asya-conn", daemon=True).start()

    def _drain(self) -> int:
        """After SIGTERM: let in-flight calls finish, close idle connections, within the drain bound.

        A connection on which no request is being answered is closed once :data:`IDLE_CLOSE_GRACE_S` has passed
        since the socket file was removed (a client that picked it just before then has had time to write its
        frame, which is then answered); clients reconnect to the next server. Without this a client's pooled
        connections kept a stopped server alive for the whole drain bound (``asya dev --watch``'s reload: 10 s).
        """
        with self._lock:
            self._draining = True
            connections = len(self._connections)
        log("info", "stopping", pid=os.getpid(), in_flight=len(self._running), connections=connections)
        started = time.monotonic()
        deadline = started + self._drain_s
        while time.monotonic() < deadline:
            with self._lock:
                if not self._running and not self._connections:
                    log("info", "stop", pid=os.getpid())
                    return EXIT_OK
                if time.monotonic() - started >= IDLE_CLOSE_GRACE_S:
                    for connection, busy in self._connections.items():
                        if not busy and not _readable(connection):
                            with contextlib.suppress(OSError):
                                connection.shutdown(socket.SHUT_RDWR)  # its thread reads EOF and ends
            time.sleep(0.02)
        log("warning", "stop", pid=os.getpid(), drain_timed_out=True, in_flight=len(self._running))
        os._exit(EXIT_OK)  # daemon threads may still be inside the handler

    # -- connections and calls

    def _serve_connection(self, connection: socket.socket) -> None:
        try:
            with connection, connection.makefile("rb") as frames:
                for line in frames:
                    if line.strip():
                        with self._lock:
                            self._connections[connection] = True
                        connection.sendall(self._respond(line, connection))
                        with self._lock:
                            self._connections[connection] = False
        except OSError:
            pass  # the client went away; its call (if any) already ran
        finally:
            with self._lock:
                self._connections.pop(connection, None)

    def _respond(self, line: bytes, connection: socket.socket | None = None) -> bytes:
        try:
            request = json.loads(line)
        except ValueError as exc:
            return _encode(_error_frame(ProtocolError(f"the frame is not JSON: {exc}"), retryable=False))
        except RecursionError:  # not a ValueError: uncaught, it would end the connection without an answer
            problem = ProtocolError("the frame nests too deeply for the JSON parser")
            return _encode(_error_frame(problem, retryable=False))
        op = request.get("op") if isinstance(request, dict) else None
        if op == "call":
            envelope, timeout_s = request.get("envelope"), request.get("timeout_s")
            if not isinstance(envelope, dict) or not isinstance(envelope.get("route"), dict):
                problem = ProtocolError("a call needs 'envelope': an object with a 'route' object")
                return _encode(_error_frame(problem, retryable=False))
            if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))):
                problem = ProtocolError(f"'timeout_s' must be a number of seconds or null, got {timeout_s!r}")
                return _encode(_error_frame(problem, retryable=False))
            on_fly = _fly_sender(connection) if request.get("fly") is True and connection is not None else None
            return self._call(envelope, timeout_s, on_fly)
        if op == "call_batch":
            return self._call_batch(request)
        if op == "health":
            return _encode(self.health())
        problem = ProtocolError(f"unknown op {op!r}; ops are 'call', 'call_batch' and 'health'")
        return _encode(_error_frame(problem, retryable=False))

    def _call(
        self, envelope: dict[str, Any], timeout_s: float | None, on_fly: Callable[[Any], None] | None = None
    ) -> bytes:
        return self._admitted(timeout_s, lambda: self._runner.respond(envelope, on_fly))

    def _call_batch(self, request: dict[str, Any]) -> bytes:
        """``call_batch``: checked like a ``call``; the batch takes one slot and is one running call for the
        watchdog and ``health`` (its ``timeout_s`` covers the whole batch)."""
        envelopes, timeout_s = request.get("envelopes"), request.get("timeout_s")
        if not isinstance(envelopes, list) or not envelopes or not all(
            isinstance(e, dict) and isinstance(e.get("route"), dict) for e in envelopes
        ):
            problem = ProtocolError("a call_batch needs 'envelopes': a non-empty list of objects with a 'route' object")
            return _encode(_error_frame(problem, retryable=False))
        if timeout_s is not None and (isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float))):
            problem = ProtocolError(f"'timeout_s' must be a number of seconds or null, got {timeout_s!r}")
            return _encode(_error_frame(problem, retryable=False))
        return self._admitted(timeout_s, lambda: self._runner.respond_batch(envelopes))

    def _admitted(self, timeout_s: float | None, run: Callable[[], bytes]) -> bytes:
        """``run()`` in a concurrency slot, watched as one running call."""
        with self._slots:
            number = next(self._call_numbers)
            with self._lock:
                self._running[number] = (time.monotonic(), timeout_s)
            try:
                return run()
            except BaseException as exc:  # SystemExit, KeyboardInterrupt from a handler: a crash, not a result
                log("error", "crash", pid=os.getpid(), error=type(exc).__name__, message=str(exc))
                os._exit(EXIT_UNHEALTHY)
            finally:
                with self._lock:
                    del self._running[number]

    def health(self) -> dict[str, Any]:
        now = time.monotonic()
        with self._lock:
            overdue = any(t is not None and now - started > t for started, t in self._running.values())
            in_flight = len(self._running)
            status = "hung" if overdue else "draining" if self._draining else "ok"
        return {
            "ok": not overdue,
            "status": status,
            "handler": self._handler,
            "pid": os.getpid(),
            "in_flight": in_flight,
            "concurrency": self._concurrency,
        }

    def _watchdog(self) -> None:
        while True:
            time.sleep(_WATCHDOG_INTERVAL_S)
            now = time.monotonic()
            with self._lock:
                hung = [
                    now - started
                    for started, timeout in self._running.values()
                    if timeout is not None and now - started > timeout + HUNG_GRACE_S
                ]
            if hung:
                log(
                    "error",
                    "hung",
                    pid=os.getpid(),
                    running_s=round(max(hung), 3),
                    grace_s=HUNG_GRACE_S,
                    exit_status=EXIT_HUNG,
                )
                self._unlink_socket()
                os._exit(EXIT_HUNG)


    def _unlink_socket(self) -> None:
        """Remove the socket file if it is still the one this server bound: a successor that already bound the path
        (a reload starting the next server early) keeps its own."""
        with contextlib.suppress(OSError):
            if _identity(self._socket_path) == self._socket_identity:
                os.unlink(self._socket_path)


def _fly_sender(connection: socket.socket) -> Callable[[Any], None]:
    """Writes each FLY value to the sidecar as a frame of its own, ``{"fly": value}``, before the call's answer; a
    value that cannot be written (the sidecar went away) is dropped, the call goes on."""

    def send(value: Any) -> None:
        with contextlib.suppress(OSError, ValueError):  # ValueError: text no UTF-8 can hold (a lone surrogate)
            connection.sendall(_encode({"fly": value}))

    return send


def _identity(path: str) -> tuple[int, int]:
    """What tells one file at ``path`` from the next: the inode number (reused at once on tmpfs) and its ctime."""
    info = os.stat(path)
    return info.st_ino, info.st_ctime_ns


def _readable(connection: socket.socket) -> bool:
    """Whether ``connection`` has bytes waiting (a request on its way in): then it is not idle."""
    with contextlib.suppress(OSError, ValueError):
        return bool(select.select([connection], [], [], 0)[0])
    return False


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


# --------------------------------------------------------------------------------------------------------- CLI


def probe_health(socket_path: str, *, timeout_s: float = HEALTH_PROBE_TIMEOUT_S) -> tuple[bool, str]:
    """Ask a running server for ``health``; (healthy, what was seen). Used by ``--health``."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(timeout_s)
            probe.connect(socket_path)
            probe.sendall(b'{"op":"health"}\n')
            reply = b""
            while not reply.endswith(b"\n"):
                chunk = probe.recv(65536)
                if not chunk:
                    return False, "the server closed the connection without answering"
                reply += chunk
    except OSError as exc:
        return False, f"cannot reach {socket_path}: {exc}"
    answer = json.loads(reply)
    return bool(answer.get("ok")), f"status {answer.get('status')!r}"


def check(environ: Mapping[str, str]) -> int:
    """``--check``: load the handler as serving would (without creating a class's instance when the class defines
    the method), print one JSON line on stdout, ``{"ok": true, "handler": …}`` or :meth:`StartupError.answer`, and
    exit 0 or :data:`EXIT_STARTUP_ERROR`. Listens on nothing: ``asya``'s pre-flight runs it in a throwaway process."""
    handler = environ.get(ENV_HANDLER, "").strip() or None
    try:
        config = HandlerServerConfig.from_env(environ)
        load_handler(config.handler, list(config.search_path) or [os.getcwd()], instantiate=False)
        answer: dict[str, Any] = {"ok": True, "handler": config.handler}
    except StartupError as exc:
        answer = {**exc.answer(), "handler": handler}
    sys.stdout.write(json.dumps(answer) + "\n")
    sys.stdout.flush()
    return EXIT_OK if answer["ok"] else EXIT_STARTUP_ERROR


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--health"]:
        healthy, seen = probe_health(os.environ.get(ENV_SOCKET_PATH) or DEFAULT_SOCKET_PATH)
        if not healthy:
            sys.stderr.write(f"asya handler server unhealthy: {seen}\n")
        return EXIT_OK if healthy else EXIT_UNHEALTHY
    if args == ["--check"]:
        return check(os.environ)
    if args:
        sys.stderr.write("usage: handler_server.py [--health | --check]  (configured by ASYA_* variables)\n")
        return EXIT_STARTUP_ERROR
    try:
        config = HandlerServerConfig.from_env(os.environ)
        func = load_handler(config.handler, list(config.search_path) or [os.getcwd()])
    except StartupError as exc:
        import traceback

        cause = exc.__cause__
        detail = "".join(traceback.format_exception(type(cause), cause, cause.__traceback__)) if cause else None
        log("error", "startup_failed", message=str(exc), traceback=detail)
        return EXIT_STARTUP_ERROR
    server = HandlerServer(
        func=func,
        handler=config.handler,
        socket_path=config.socket_path,
        concurrency=config.concurrency,
        drain_s=config.drain_s,
    )
    return server.serve()


if __name__ == "__main__":
    sys.exit(main())
