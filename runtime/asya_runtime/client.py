"""A small client of the front door (``asya-gateway``, docs/gateway.md "Client"): submit, get, wait, events, cancel.

:class:`GatewayClient` (sync) and :class:`AsyncGatewayClient` (asyncio) make the same calls; what they send and how
they read the answers lives once in :mod:`asya_runtime.client_wire`. Install with ``pip install
'asya-runtime[client]'`` (httpx only)::

    from asya_runtime.client import GatewayClient

    with GatewayClient("http://127.0.0.1:8089") as gateway:
        envelope_id = gateway.submit(route="summarize", payload={"text": "..."}, timeout=120)
        final = gateway.wait(envelope_id, timeout=130)
        print(final.status, final.payload)

Every error is a :class:`GatewayError`: :class:`GatewayUnreachable` (refused connections fail within
:data:`~asya_runtime.client_wire.CONNECT_TIMEOUT_S`), :class:`GatewayHTTPError` (4xx/5xx, with the gateway's
message), :class:`WaitTimeout`, and :class:`EnvelopeFailed` from :meth:`GatewayClient.result`.

``wait`` follows the envelope's SSE stream and falls back to polling ``GET`` every ``poll_s`` when the stream is not
available or drops (a proxy that buffers or cuts long responses), so it always ends at the terminal status or the
deadline — a stream that stays open without a terminal status (its ``:keepalive`` comments keep every read short)
ends at the deadline too: exactly for the async client, within one keepalive (15 s) for the sync one, whose
blocking read cannot be cut short. Every stream is closed when the call that opened it returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from types import TracebackType
from typing import Any

import httpx

from asya_runtime.client_wire import (
    MESH_PATH,
    EnvelopeFailed,
    EnvelopeStatus,
    Event,
    FlyEvent,
    GatewayError,
    GatewayHTTPError,
    GatewayUnreachable,
    ListPage,
    SseParser,
    StatusEvent,
    WaitTimeout,
    auth_headers,
    client_timeout,
    envelope_path,
    list_page,
    raise_for_answer,
    status_of,
    submit_request,
    submitted_id,
    unreachable,
)

__all__ = [
    "AsyncGatewayClient",
    "EnvelopeFailed",
    "EnvelopeStatus",
    "Event",
    "FlyEvent",
    "GatewayClient",
    "GatewayError",
    "GatewayHTTPError",
    "GatewayUnreachable",
    "ListPage",
    "StatusEvent",
    "WaitTimeout",
]

#: How long an SSE stream may stay silent (the gateway sends ``:keepalive`` every 15 s) before it counts as dropped.
STREAM_SILENCE_S = 60.0
#: ``wait``'s polling interval once the stream is unavailable.
POLL_S = 0.5
_SSE_HEADERS = {"Accept": "text/event-stream"}


def _stream_timeout(deadline: float | None) -> httpx.Timeout:
    """A silent stream ends within ``STREAM_SILENCE_S``, or just after the deadline when that comes first."""
    read = STREAM_SILENCE_S if deadline is None else max(0.05, min(STREAM_SILENCE_S, deadline - time.monotonic()))
    return httpx.Timeout(read, connect=client_timeout().connect)


def _timed_out(envelope_id: str, timeout: float | None, last: EnvelopeStatus | None) -> WaitTimeout:
    where = f" (last status: {last.status}{' at ' + last.actor if last and last.actor else ''})" if last else ""
    return WaitTimeout(f"envelope {envelope_id} not finished after {timeout:g} s{where}", last=last)


def _loop_time(deadline: float) -> float:
    """``deadline`` (``time.monotonic()``) on the running loop's clock, as ``asyncio.timeout_at`` takes it."""
    return asyncio.get_running_loop().time() + (deadline - time.monotonic())


def _final(status: EnvelopeStatus) -> Any:
    if not status.succeeded:
        raise EnvelopeFailed(f"envelope {status.id} {status.status}: {status.reason}", status=status)
    return status.payload


class GatewayClient:
    """The front door over HTTP, synchronously; a context manager that closes its connections.

    ``base_url`` is the gateway's root (``http://127.0.0.1:PORT``, as ``asya dev --gateway`` prints it); ``token`` is
    sent as ``Authorization: Bearer`` (an OIDC token where the gateway requires one).
    """

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, timeout=client_timeout(), headers=auth_headers(token))

    def __enter__(self) -> GatewayClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(exc, base_url=self.base_url, what=what) from None
        raise_for_answer(response, what=what)
        return response

    def submit(
        self,
        *,
        payload: Any,
        route: str | None = None,
        actor: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """Submit one envelope to a named ``route`` or a first ``actor``; its id. ``timeout`` (seconds) is its
        deadline; the same ``idempotency_key`` returns the same id and the pipeline runs once."""
        query, body, extra = submit_request(route=route, actor=actor, payload=payload, headers=headers,
                                            timeout=timeout, idempotency_key=idempotency_key)
        what = f"submit to {'route ' + route if route else 'actor ' + str(actor)}"
        return submitted_id(self._request("POST", MESH_PATH, what=what, params=query, json=body,
                                          headers=extra).json())

    def get(self, envelope_id: str) -> EnvelopeStatus:
        """The envelope's status record now."""
        return status_of(self._request("GET", envelope_path(envelope_id), what=f"get {envelope_id}").json())

    def list(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> ListPage:
        """Records newest first, optionally of one status."""
        params: dict[str, str | int] = {"limit": limit, "offset": offset} | ({"status": status} if status else {})
        return list_page(self._request("GET", MESH_PATH, what="list envelopes", params=params).json())

    def cancel(self, envelope_id: str) -> None:
        """Cancel the envelope (idempotent: cancelling a canceled one again is fine); :class:`GatewayHTTPError`
        404 for an unknown id, 409 when it already succeeded or failed (a terminal state is never overwritten)."""
        self._request("DELETE", envelope_path(envelope_id), what=f"cancel {envelope_id}")

    def health(self) -> Mapping[str, Any]:
        body = self._request("GET", "/health", what="health").json()
        return body if isinstance(body, Mapping) else {"status": body}

    def events(self, envelope_id: str, *, deadline: float | None = None) -> Generator[Event, None, None]:
        """The envelope's events as they happen: its current status first, then ``status`` and ``fly`` events;
        ends after the terminal status. ``deadline`` (``time.monotonic()``) bounds each silent read, and the
        stream ends (without an error) at the first line read after it."""
        what = f"events of {envelope_id}"
        try:
            with self._http.stream("GET", envelope_path(envelope_id, "/events"), headers=_SSE_HEADERS,
                                   timeout=_stream_timeout(deadline)) as response:
                if response.status_code >= 400:
                    response.read()
                    raise_for_answer(response, what=what)
                parser = SseParser(envelope_id)
                for line in response.iter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                        if isinstance(event, StatusEvent) and event.status.terminal:
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        return
        except httpx.TransportError as exc:
            raise unreachable(exc, base_url=self.base_url, what=what) from None

    def wait(self, envelope_id: str, *, timeout: float | None = None, poll_s: float = POLL_S) -> EnvelopeStatus:
        """Block until the envelope is terminal; its final record (check ``.succeeded``). :class:`WaitTimeout`
        after ``timeout`` seconds (None: no limit)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: EnvelopeStatus | None = None
        try:
            with contextlib.closing(self.events(envelope_id, deadline=deadline)) as events:
                for event in events:
                    if isinstance(event, StatusEvent):
                        last = event.status
                        if last.terminal:
                            return last
        except GatewayUnreachable:
            pass  # dropped, silent or cut: poll instead
        except GatewayHTTPError as exc:
            if exc.status_code not in (404, 405, 406, 501):
                raise
        while True:  # polling: a missing envelope's 404 comes from here
            last = self.get(envelope_id)
            if last.terminal:
                return last
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(envelope_id, timeout, last)
            remaining = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
            time.sleep(max(0.0, remaining))

    def result(self, envelope_id: str, *, timeout: float | None = None) -> Any:
        """:meth:`wait`, then the final payload; :class:`EnvelopeFailed` (with the reason) unless it succeeded."""
        return _final(self.wait(envelope_id, timeout=timeout))


class AsyncGatewayClient:
    """:class:`GatewayClient` for asyncio: the same calls, awaited (``events`` is an async iterator)."""

    def __init__(self, base_url: str, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=client_timeout(), headers=auth_headers(token))

    async def __aenter__(self) -> AsyncGatewayClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, *, what: str, **kwargs: Any) -> httpx.Response:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise unreachable(exc, base_url=self.base_url, what=what) from None
        raise_for_answer(response, what=what)
        return response

    async def submit(
        self,
        *,
        payload: Any,
        route: str | None = None,
        actor: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
        idempotency_key: str | None = None,
    ) -> str:
        """See :meth:`GatewayClient.submit`."""
        query, body, extra = submit_request(route=route, actor=actor, payload=payload, headers=headers,
                                            timeout=timeout, idempotency_key=idempotency_key)
        what = f"submit to {'route ' + route if route else 'actor ' + str(actor)}"
        response = await self._request("POST", MESH_PATH, what=what, params=query, json=body, headers=extra)
        return submitted_id(response.json())

    async def get(self, envelope_id: str) -> EnvelopeStatus:
        response = await self._request("GET", envelope_path(envelope_id), what=f"get {envelope_id}")
        return status_of(response.json())

    async def list(self, *, status: str | None = None, limit: int = 50, offset: int = 0) -> ListPage:
        params: dict[str, str | int] = {"limit": limit, "offset": offset} | ({"status": status} if status else {})
        return list_page((await self._request("GET", MESH_PATH, what="list envelopes", params=params)).json())

    async def cancel(self, envelope_id: str) -> None:
        await self._request("DELETE", envelope_path(envelope_id), what=f"cancel {envelope_id}")

    async def health(self) -> Mapping[str, Any]:
        body = (await self._request("GET", "/health", what="health")).json()
        return body if isinstance(body, Mapping) else {"status": body}

    async def events(self, envelope_id: str, *, deadline: float | None = None) -> AsyncGenerator[Event, None]:
        """See :meth:`GatewayClient.events`."""
        what = f"events of {envelope_id}"
        try:
            async with self._http.stream("GET", envelope_path(envelope_id, "/events"), headers=_SSE_HEADERS,
                                         timeout=_stream_timeout(deadline)) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise_for_answer(response, what=what)
                parser = SseParser(envelope_id)
                async for line in response.aiter_lines():
                    event = parser.feed(line)
                    if event is not None:
                        yield event
                        if isinstance(event, StatusEvent) and event.status.terminal:
                            return
                    if deadline is not None and time.monotonic() >= deadline:
                        return
        except httpx.TransportError as exc:
            raise unreachable(exc, base_url=self.base_url, what=what) from None

    async def wait(
        self, envelope_id: str, *, timeout: float | None = None, poll_s: float = POLL_S
    ) -> EnvelopeStatus:
        """See :meth:`GatewayClient.wait`."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: EnvelopeStatus | None = None
        try:
            # closed here, not whenever the loop finalizes an abandoned generator (its connection held till then);
            # the whole stream, not only each read, ends at the deadline
            async with contextlib.aclosing(self.events(envelope_id, deadline=deadline)) as events:
                async with asyncio.timeout_at(None if deadline is None else _loop_time(deadline)):
                    async for event in events:
                        if isinstance(event, StatusEvent):
                            last = event.status
                            if last.terminal:
                                return last
        except TimeoutError:
            pass  # the deadline: one last read below, then WaitTimeout
        except GatewayUnreachable:
            pass
        except GatewayHTTPError as exc:
            if exc.status_code not in (404, 405, 406, 501):
                raise
        while True:
            last = await self.get(envelope_id)
            if last.terminal:
                return last
            if deadline is not None and time.monotonic() >= deadline:
                raise _timed_out(envelope_id, timeout, last)
            remaining = poll_s if deadline is None else min(poll_s, deadline - time.monotonic())
            await asyncio.sleep(max(0.0, remaining))

    async def result(self, envelope_id: str, *, timeout: float | None = None) -> Any:
        """See :meth:`GatewayClient.result`."""
        return _final(await self.wait(envelope_id, timeout=timeout))
