"""Client side of docs/protocol.md: calls the handler server over its Unix socket, one connection per call.

Connections are pooled (a call reuses an idle one). The handler server may be absent for a while (starting,
restarting after a crash or a hung call): :meth:`HandlerClient.call` then waits with backoff instead of failing.
After a call timed out, the server is expected to report ``hung`` and exit; until a different process answers (or
the same one reports healthy again after the server's grace), no new call is sent to it, so a hung process never
swallows the next message.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from asya_runtime.sidecar import logs

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
    """The call produced no handler answer. ``type_name`` is what lands in ``status.error.type``."""

    type_name = "HandlerCallError"


class HandlerTimeout(HandlerCallError):
    type_name = "ActorTimeout"


class HandlerCrashed(HandlerCallError):
    type_name = "HandlerCrashed"


class HandlerUnavailable(HandlerCallError):
    type_name = "HandlerUnavailable"


class HandlerAnswerTooLarge(HandlerCallError):
    """The answer line was longer than the read limit: not retryable, the handler would answer the same again."""

    type_name = "ResultTooLarge"


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    pid: int | None

    @property
    def usable(self) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing()

    def close(self) -> None:
        self.writer.close()

    async def request(self, frame: dict[str, Any] | str) -> dict[str, Any]:
        """Send one frame (a dict, or its JSON text as one line ending in a newline) and read the answer line."""
        text = frame if isinstance(frame, str) else json.dumps(frame, separators=(",", ":")) + "\n"
        self.writer.write(text.encode())
        await self.writer.drain()
        try:
            line = await self.reader.readline()
        except ValueError as exc:  # StreamReader's limit overrun: the rest of the line is unread, the stream unusable
            raise _LineTooLong(str(exc)) from None
        if not line.endswith(b"\n"):
            raise ConnectionResetError("the handler server closed the connection")
        answer = json.loads(line)
        if not isinstance(answer, dict):
            raise ValueError(f"handler server answered {type(answer).__name__}, not an object")
        return answer


class _LineTooLong(ValueError):
    """An answer line over the read limit."""


@dataclass
class _Suspect:
    pid: int | None
    since: float


class HandlerClient:
    def __init__(self, *, socket_path: str, read_limit: int) -> None:
        self.socket_path = socket_path
        self.read_limit = read_limit
        self._idle: list[_Connection] = []
        self._suspect: _Suspect | None = None

    async def call(self, *, envelope_json: str, budget: Callable[[], float], connect_wait_s: float) -> dict[str, Any]:
        """Send one ``call`` and return the server's answer (``ok`` true or false).

        ``envelope_json`` is the envelope as JSON text on one line: it is spliced into the frame as it is, so the
        envelope is neither copied into a dict nor serialised again.

        ``budget()`` is the time the call may take, asked once a healthy server is connected (waiting for a
        restarting server does not eat into the handler's time). Raises :class:`HandlerTimeout` when the budget
        runs out, :class:`HandlerCrashed` when the connection drops mid-call, :class:`HandlerUnavailable` when
        no healthy server answered within ``connect_wait_s``.
        """
        conn = await self._connection(wait_s=connect_wait_s)
        timeout_s = budget()
        frame = f'{{"op":"call","timeout_s":{round(max(timeout_s, 0.001), 3)!r},"envelope":{envelope_json}}}\n'
        try:
            async with asyncio.timeout(timeout_s):  # unlike wait_for, no extra task per call
                answer = await conn.request(frame)
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
        self._idle.append(conn)
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
        while self._idle:
            conn = self._idle.pop()
            if conn.usable and (self._suspect is None or await self._trusted(conn)):
                return conn
            conn.close()
        try:
            reader, writer = await asyncio.open_unix_connection(self.socket_path, limit=self.read_limit)
        except OSError:
            return None
        conn = _Connection(reader=reader, writer=writer, pid=None)
        if not await self._trusted(conn):
            conn.close()
            return None
        return conn

    async def _trusted(self, conn: _Connection) -> bool:
        """Ask ``health``; refuse a server that is hung, or the one that just timed out while it may still hang."""
        try:
            health = await asyncio.wait_for(conn.request({"op": "health"}), timeout=5)
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
