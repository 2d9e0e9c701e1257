"""Client side of docs/protocol.md: calls the handler server over its Unix socket, one call at a time per connection.

Connections are pooled (a call reuses an idle one); the answer comes back typed (:mod:`asya_runtime.sidecar.answer`).
The handler server may be absent for a while (starting, restarting after a crash or a hung call):
:meth:`HandlerClient.call` then waits with backoff instead of failing. After a call timed out, the server is expected to
report ``hung`` and exit; until a different process answers (or the same one reports healthy again after the server's
grace), no new call is sent to it, so a hung process never swallows the next message.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asya_runtime.sidecar import logs, routing
from asya_runtime.sidecar.answer import HandlerAnswer
from asya_runtime.sidecar.fitting import RESULT_TOO_LARGE_TYPE

#: The handler server's grace after ``timeout_s`` before it reports ``hung`` and exits (docs/protocol.md), plus slack.
SERVER_HUNG_GRACE_S = 2.0 + 1.5
#: Slack on top of ``4 × max_message_bytes`` for one answer line (the envelope's JSON framing, a fan-out's spread).
READ_LIMIT_SLACK_BYTES = 1024 * 1024


def read_limit_bytes(*, max_message_bytes: int) -> int:
    """Longest answer line read from the handler server: a few times what one message may carry, plus slack.

    An answer over it could never be sent on anyway (and would only cost memory): it ends as ``result too large``.
    """
    return 4 * max_message_bytes + READ_LIMIT_SLACK_BYTES


class HandlerCallError(Exception):
    """The call produced no handler answer. ``type_name`` is what lands in ``status.error.type``; ``error_types``
    and ``qualified_types`` what resiliency rules match (``(type_name,)`` and ``asya.{type_name}`` when empty);
    ``reason`` the error-sink reason when the call must not be retried (None: retryable)."""

    type_name = "HandlerCallError"
    error_types: tuple[str, ...] = ()
    qualified_types: tuple[str, ...] = ()
    reason: str | None = None


class HandlerTimeout(HandlerCallError):
    type_name = "ActorTimeout"
    #: So that rules naming ``TimeoutError`` (or ``builtins.TimeoutError``) match a timeout too.
    error_types = ("ActorTimeout", "TimeoutError")
    qualified_types = ("asya.ActorTimeout", "builtins.TimeoutError")


class HandlerCrashed(HandlerCallError):
    type_name = "HandlerCrashed"


class HandlerUnavailable(HandlerCallError):
    type_name = "HandlerUnavailable"


class HandlerAnswerTooLarge(HandlerCallError):
    """The answer line was longer than the read limit: not retryable, the handler would answer the same again."""

    type_name = RESULT_TOO_LARGE_TYPE
    reason = routing.RESULT_TOO_LARGE


class HandlerFanOutTooLarge(HandlerCallError):
    """The answer carries more outputs than ``ASYA_MAX_FANOUT``: not retryable (the handler would emit as many again).

    Raised once the answer line is parsed and before any output becomes an envelope, so no child is sent (all or
    nothing) and the memory spent is bounded by the read limit, not by the children the handler emitted.
    """

    type_name = "FanOutTooLarge"
    reason = routing.FAN_OUT_TOO_LARGE


class _Connection(asyncio.Protocol):
    """One connection to the handler server: a frame goes out, one answer line comes back.

    A protocol rather than a stream pair: the answer's bytes resolve the waiting call's future directly, without a
    reader's buffer, waiter and drain per call (the round trip is on every message's path). A call is bounded by
    a timer that fails its future, not by a timeout scope around it.
    """

    def __init__(self, *, limit: int) -> None:
        self.limit = limit
        self.pid: int | None = None
        #: The socket file this connection was made through (:func:`_socket_file`): a pooled connection is used
        #: again only while the path still names that file.
        self.socket_file: tuple[int, int] | None = None
        self._transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._waiter: asyncio.Future[bytes] | None = None
        self._closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # nothing asked (a late answer of a call that timed out: that connection is closed anyway)
        end = self._buffer.find(b"\n")
        if end > self.limit or (end < 0 and len(self._buffer) > self.limit):
            waiter.set_exception(_LineTooLong(f"answer line over the limit of {self.limit} bytes"))
        elif end >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            waiter.set_result(line)

    async def _line(self, loop: asyncio.AbstractEventLoop, deadline: float) -> bytes:
        """The next line: one already buffered (after a FLY frame), else the next to arrive before ``deadline``."""
        end = self._buffer.find(b"\n")
        if end > self.limit or (end < 0 and len(self._buffer) > self.limit):
            raise _LineTooLong(f"answer line over the limit of {self.limit} bytes")
        if end >= 0:
            line = bytes(self._buffer[: end + 1])
            del self._buffer[: end + 1]
            return line
        if self._closed:
            return b""
        waiter = self._waiter = loop.create_future()
        timer = loop.call_later(max(deadline - loop.time(), 0.0), _expire, waiter)
        try:
            return await waiter
        finally:
            timer.cancel()
            self._waiter = None

    def eof_received(self) -> bool:
        self._lost()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost()

    def _lost(self) -> None:
        self._closed = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(b"")  # no newline: the server went away mid-call

    @property
    def usable(self) -> bool:
        return not self._closed and self._transport is not None and not self._transport.is_closing()

    def close(self) -> None:
        self._closed = True
        if self._transport is not None:
            self._transport.close()

    async def request(
        self, frame: dict[str, Any] | str, *, timeout_s: float, on_fly: Callable[[Any], None] | None = None
    ) -> dict[str, Any]:
        """Send one frame (a dict, or its JSON text as one line ending in a newline) and read the answer line;
        TimeoutError after ``timeout_s``. With ``on_fly`` (a call that asked for ``"fly": true``), each FLY frame
        the server sends before its answer (``{"fly": value}``) is handed to it as it comes."""
        if not self.usable or self._transport is None:
            raise ConnectionResetError("the handler server closed the connection")
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":")) + "\n"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        self._transport.write(text.encode())
        line = await self._line(loop, deadline)
        while on_fly is not None and line.startswith(_FLY_FRAME):
            _hand_over(on_fly, line)
            line = await self._line(loop, deadline)
        if not line.endswith(b"\n"):
            raise ConnectionResetError("the handler server closed the connection")
        try:
            answer = json.loads(line)
        except RecursionError:
            raise ValueError("the handler server's answer nests too deeply for the JSON parser") from None
        if not isinstance(answer, dict):
            raise ValueError(f"handler server answered {type(answer).__name__}, not an object")
        if answer.get("ok") and _SURROGATE_ESCAPE.search(line) and holds_lone_surrogate(answer.get("outputs")):
            raise _Unsendable(
                "the handler's result holds a lone UTF-16 surrogate (half of a character outside the BMP, such as "
                "an emoji cut in two), which no message body can hold; keep such characters whole"
            )
        return answer


def _socket_file(path: str) -> tuple[int, int] | None:
    """Which file ``path`` names now, (inode, ctime): a new server's socket differs even where the inode number is
    reused; None when there is none. One ``stat`` per call (about a microsecond)."""
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_ino, info.st_ctime_ns


#: How a FLY frame starts (the server writes it compactly; an answer starts with ``{"ok":``).
_FLY_FRAME = b'{"fly":'


def _hand_over(on_fly: Callable[[Any], None], line: bytes) -> None:
    """One FLY frame's value to ``on_fly``; a frame that is no JSON, or a receiver that fails, costs the event only."""
    try:
        on_fly(json.loads(line)["fly"])
    except Exception as exc:
        logs.warning("FLY event not reported", error=f"{type(exc).__name__}: {exc}")


def _expire(waiter: asyncio.Future[bytes]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class _LineTooLong(ValueError):
    """An answer line over the read limit."""


class _Unsendable(ValueError):
    """A whole answer line that no message can carry: the same call would answer the same (not retryable)."""


#: A JSON escape of a UTF-16 surrogate: servers write other non-ASCII text raw, so only an answer holding one
#: (rare) is checked for a lone one.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def holds_lone_surrogate(outputs: object) -> bool:
    """Whether ``outputs`` hold a lone UTF-16 surrogate, which no UTF-8 message can carry."""
    try:
        json.dumps(outputs, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


@dataclass
class _Suspect:
    pid: int | None
    since: float


class HandlerClient:
    def __init__(self, *, socket_path: str, read_limit: int, max_outputs: int) -> None:
        self.socket_path = socket_path
        self.read_limit = read_limit
        self.max_outputs = max_outputs
        self._idle: list[_Connection] = []
        self._suspect: _Suspect | None = None

    async def call(
        self, *, envelope_json: str, budget: Callable[[], float], connect_wait_s: float,
        on_fly: Callable[[Any], None] | None = None,
    ) -> HandlerAnswer:
        """Send one ``call`` and return the server's answer (``ok`` true or false), typed.

        ``envelope_json`` is the envelope as JSON text on one line: it is spliced into the frame as it is, so the
        envelope is neither copied into a dict nor serialised again.

        ``budget()`` is the time the call may take, asked once a healthy server is connected (waiting for a
        restarting server does not eat into the handler's time). Raises :class:`HandlerTimeout` when the budget
        runs out, :class:`HandlerCrashed` when the connection drops mid-call, :class:`HandlerUnavailable` when
        no healthy server answered within ``connect_wait_s``, :class:`HandlerFanOutTooLarge` when the answer has
        more than ``max_outputs`` outputs.

        ``on_fly`` asks the server for the call's FLY events as they are yielded (``"fly": true`` in the frame;
        docs/protocol.md) and receives each; without it the server counts and drops them.
        """
        conn = await self._connection(wait_s=connect_wait_s)
        timeout_s = budget()
        fly = ',"fly":true' if on_fly is not None else ""
        frame = f'{{"op":"call","timeout_s":{round(max(timeout_s, 0.001), 3)!r}{fly},"envelope":{envelope_json}}}\n'
        answer = await self.exchange(conn, frame, timeout_s=timeout_s, on_fly=on_fly)
        if isinstance(answer, HandlerAnswer):
            return answer
        outputs = answer.get("outputs")
        if isinstance(outputs, list) and len(outputs) > self.max_outputs:
            raise self.fan_out_too_large(len(outputs))
        return HandlerAnswer.from_wire(answer)

    def fan_out_too_large(self, count: int) -> HandlerFanOutTooLarge:
        return HandlerFanOutTooLarge(
            f"the handler emitted {count} outputs in one call, over the limit of {self.max_outputs} "
            f"(ASYA_MAX_FANOUT, the actor's maxFanOut); none was sent: split the work over several envelopes "
            f"(a fan-out of fan-outs) or raise maxFanOut"
        )

    async def connection(self, *, wait_s: float) -> _Connection:
        """A healthy server's connection (pooled or new), waited for up to ``wait_s`` (:meth:`call`'s wait)."""
        return await self._connection(wait_s=wait_s)

    async def exchange(
        self, conn: _Connection, frame: str, *, timeout_s: float, on_fly: Callable[[Any], None] | None = None
    ) -> dict[str, Any] | HandlerAnswer:
        """Send ``frame`` on ``conn`` and read the answer object; the connection goes back to the pool once the
        whole answer was read. A failure is the :class:`HandlerCallError` :meth:`call` documents; an answer that
        holds a lone surrogate comes back as the violation it is (a :class:`HandlerAnswer`)."""
        try:
            answer = await conn.request(frame, timeout_s=timeout_s, on_fly=on_fly)
        except _Unsendable as exc:  # a whole answer: the connection is still in step
            self._idle.append(conn)
            return HandlerAnswer.violation(str(exc))
        except TimeoutError:
            conn.close()
            self._suspect = _Suspect(pid=conn.pid, since=time.monotonic())
            self._drop_idle(pid=conn.pid)
            raise HandlerTimeout(f"the handler did not answer within {timeout_s:.3f}s") from None
        except _LineTooLong:
            conn.close()
            raise HandlerAnswerTooLarge(
                f"the handler's answer is over {self.read_limit} bytes (4 x ASYA_MAX_MESSAGE_BYTES + slack); "
                f"return a reference (e.g. an S3 key) instead of the data"
            ) from None
        except (OSError, ValueError) as exc:
            conn.close()
            raise HandlerCrashed(f"the handler server dropped the call ({type(exc).__name__}: {exc})") from None
        except asyncio.CancelledError:  # its answer would arrive on a connection nobody reads: never reuse it
            conn.close()
            raise
        self._idle.append(conn)  # the whole answer was read: the connection is clean, whatever it said
        return answer

    async def _connection(self, *, wait_s: float) -> _Connection:
        deadline = time.monotonic() + wait_s
        delay = 0.02
        logged = False
        while True:
            conn = await self._try_connection()
            if conn is not None:
                return conn
            if time.monotonic() + delay > deadline:
                raise HandlerUnavailable(f"no healthy handler server at {self.socket_path} within {wait_s:.1f}s")
            if not logged:
                logs.warning("waiting for the handler server", socket=self.socket_path)
                logged = True
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)

    async def _try_connection(self) -> _Connection | None:
        current = _socket_file(self.socket_path) if self._idle else None
        while self._idle:
            conn = self._idle.pop()
            # a pooled connection to a server whose socket file is gone or replaced (it is stopping: a reload, a
            # restarted container) is not used again: the server closes it, and the next call goes to the new one
            if conn.usable and conn.socket_file == current and (self._suspect is None or await self._trusted(conn)):
                return conn
            conn.close()
        try:
            _, conn = await asyncio.get_running_loop().create_unix_connection(
                lambda: _Connection(limit=self.read_limit), self.socket_path
            )
        except OSError:
            return None
        conn.socket_file = _socket_file(self.socket_path)
        if not await self._trusted(conn):
            conn.close()
            return None
        return conn

    async def _trusted(self, conn: _Connection) -> bool:
        """Ask ``health``; refuse a server that is hung, or the one that just timed out while it may still hang."""
        try:
            health = await conn.request({"op": "health"}, timeout_s=5)
        except (OSError, ValueError, TimeoutError):
            return False
        conn.pid = health.get("pid") if isinstance(health.get("pid"), int) else None
        if not health.get("ok"):
            return False
        suspect = self._suspect
        if suspect is not None:
            if conn.pid == suspect.pid and time.monotonic() - suspect.since < SERVER_HUNG_GRACE_S:
                return False
            self._suspect = None
        return True

    def _drop_idle(self, *, pid: int | None) -> None:
        keep = []
        for conn in self._idle:
            if conn.pid == pid:
                conn.close()
            else:
                keep.append(conn)
        self._idle = keep

    def close(self) -> None:
        for conn in self._idle:
            conn.close()
        self._idle.clear()
