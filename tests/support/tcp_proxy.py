"""A TCP proxy on loopback that a test can cut (every connection dropped, new ones closed at once) and restore,
or hold (answers kept in the proxy) and release.

The sidecar is pointed at the proxy instead of the broker; ``cut()`` is a broker outage as the sidecar sees it.
``hold()`` is a broker that answers late: requests still reach it, so a long poll it answers meanwhile has taken
its messages, but the sidecar sees nothing until :meth:`release`.

A fault a test injects must be a fault that happened, so the proxy counts what it did: ``cuts``, ``dropped``
(connections a cut closed), ``refused`` (connections accepted while a cut ran, closed at once) and
``connections`` (pairs forwarded to the upstream). While cut the proxy does not listen, so a connect is refused by
the kernel and counted nowhere. A test that depends on an outage asserts
``dropped + refused > 0``: a cut that met no connection was no outage.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
from dataclasses import dataclass, field
from types import TracebackType

#: The longest unanswered request a connection remembers for :meth:`TcpProxy.waiting` (a request's head is far
#: shorter; a body beyond this is not searched).
_REQUEST_MEMORY = 16384
#: How often a pump whose answers are held looks whether :meth:`TcpProxy.release` was called.
_HOLD_TICK_S = 0.02


@dataclass(eq=False)
class _Pair:
    """One client connection and its upstream connection."""

    client: socket.socket
    server: socket.socket
    #: What the client sent since the server last answered on this connection (the first bytes of it).
    request: bytearray = field(default_factory=bytearray)


class TcpProxy:
    def __init__(self, *, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._pairs: set[_Pair] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._holding = False
        #: Pairs forwarded to the upstream.
        self.connections = 0
        #: Calls of :meth:`cut`.
        self.cuts = 0
        #: Open connections a cut closed.
        self.dropped = 0
        #: Connections accepted while cut (or while a cut ran) and closed at once.
        self.refused = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._listen()
        return self

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                cut, cuts_before = self._cut, self.cuts
            if cut:
                self._refuse(client)
                continue
            try:
                server = self._connect_upstream()
            except OSError:
                client.close()
                continue
            pair = _Pair(client=client, server=server)
            with self._lock:
                # A cut that ran while we connected upstream (even one already restored) did not see this pair:
                # registering it now would leave a connection alive through the outage.
                registered = not self._cut and self.cuts == cuts_before
                if registered:
                    self._pairs.add(pair)
                    self.connections += 1
            if not registered:
                self._refuse(client, server)
                continue
            threading.Thread(target=self._pump, args=(pair,), daemon=True).start()

    def _connect_upstream(self) -> socket.socket:
        server = socket.create_connection(self.upstream, timeout=5)
        server.settimeout(None)
        return server

    def _refuse(self, *sockets: socket.socket) -> None:
        with self._lock:
            self.refused += 1
        for sock in sockets:
            _close(sock)

    def _pump(self, pair: _Pair) -> None:
        client, server = pair.client, pair.server
        try:
            while True:
                holding = self._holding
                watch = [client] if holding else [client, server]
                readable, _, _ = select.select(watch, [], [], _HOLD_TICK_S if holding else 1.0)
                for sock in readable:
                    if sock is server:
                        with self._lock:
                            if self._holding:  # hold() came while we waited: this answer waits for release()
                                continue
                            # Read under the lock: what is forwarded now arrived before any hold() returned.
                            data = sock.recv(65536)
                            pair.request.clear()
                    else:
                        data = sock.recv(65536)
                        if data and len(pair.request) < _REQUEST_MEMORY:
                            with self._lock:
                                pair.request += data[: _REQUEST_MEMORY - len(pair.request)]
                    if not data:
                        return
                    (server if sock is client else client).sendall(data)
        except (OSError, ValueError):
            return
        finally:
            self._drop(pair)

    def _drop(self, pair: _Pair) -> bool:
        """Close ``pair``; whether it was still open."""
        with self._lock:
            was_open = pair in self._pairs
            self._pairs.discard(pair)
        for sock in (pair.client, pair.server):
            _close(sock)
        return was_open

    def cut(self) -> None:
        """Drop every open connection and refuse new ones until :meth:`restore`."""
        self._sever(count=True)

    def _sever(self, *, count: bool) -> None:
        with self._lock:
            if count:
                self.cuts += 1
            self._cut = True
            listener, self._listener = self._listener, None
            pairs = list(self._pairs)
        if listener is not None:
            with contextlib.suppress(OSError):
                listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close() alone leaves it listening
            listener.close()
        dropped = sum(self._drop(pair) for pair in pairs)
        if count:
            with self._lock:
                self.dropped += dropped

    def restore(self) -> None:
        with self._lock:
            self._cut = False
        self._listen()

    def hold(self) -> None:
        """From now until :meth:`release`, forward no answer: requests still reach the upstream, and what it
        answers stays in the proxy (an answer already on its way may still arrive, one that reaches the proxy
        after this returns does not)."""
        with self._lock:
            self._holding = True

    def release(self) -> None:
        """Forward the held answers, and every answer from now on."""
        with self._lock:
            self._holding = False

    def waiting(self, marker: bytes) -> int:
        """Open connections whose last request contains ``marker`` and has had no answer forwarded yet, e.g.
        ``waiting(b"AmazonSQS.ReceiveMessage")``: long polls open (or answered and held) right now."""
        with self._lock:
            return sum(1 for pair in self._pairs if marker in pair.request)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._pairs)

    def stop(self) -> None:
        self.release()
        self._sever(count=False)

    def __enter__(self) -> TcpProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
