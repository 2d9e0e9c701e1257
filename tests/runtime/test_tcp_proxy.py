"""The fault injector the outage tests rely on (tests/support/tcp_proxy.py): a cut leaves no connection alive, even
one accepted while the cut ran; a hold keeps every answer that reaches the proxy after it; the counters say what a
cut did, so that a test can assert that its outage was one."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from support.mesh import wait_for
from support.tcp_proxy import TcpProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    """An upstream that echoes every byte back on the connection it came on."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)

    def echo(conn: socket.socket) -> None:
        with contextlib.suppress(OSError), conn:
            for data in iter(lambda: conn.recv(65536), b""):
                conn.sendall(data)

    def serve() -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = listener.accept()
                threading.Thread(target=echo, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    listener.close()


def _echoes(sock: socket.socket, data: bytes, *, timeout_s: float) -> bool:
    """Whether ``data`` comes back on ``sock`` within ``timeout_s`` (False on EOF, a reset or silence)."""
    try:
        sock.settimeout(timeout_s)
        sock.sendall(data)
        got = b""
        while len(got) < len(data):
            chunk = sock.recv(len(data) - len(got))
            if not chunk:
                return False
            got += chunk
        return got == data
    except OSError:
        return False


def _read(sock: socket.socket, size: int, *, timeout_s: float) -> bytes:
    sock.settimeout(timeout_s)
    got = b""
    while len(got) < size and (chunk := sock.recv(size - len(got))):
        got += chunk
    return got


def test_a_cut_under_connect_load_leaves_no_connection_alive_and_counts_what_it_closed(echo_port: int) -> None:
    """Clients connect as fast as four threads can while the proxy is cut: a pair accepted mid-cut (its upstream
    connection made after the cut's snapshot) must not keep forwarding through the outage."""
    for trial in range(10):
        _cut_under_load(echo_port=echo_port, trial=trial)


def _cut_under_load(*, echo_port: int, trial: int) -> None:
    proxy = TcpProxy(upstream_host="127.0.0.1", upstream_port=echo_port).start()
    stop = threading.Event()
    clients: list[socket.socket] = []

    def hammer() -> None:
        while not stop.is_set():
            with contextlib.suppress(OSError):
                clients.append(socket.create_connection(("127.0.0.1", proxy.port), timeout=0.2))

    threads = [threading.Thread(target=hammer, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    wait_for(lambda: proxy.connections >= 4, timeout_s=10, what="connections before the cut")
    time.sleep(0.02)  # the accept thread is busy connecting upstream, as it is when the cut comes
    proxy.cut()
    stop.set()
    for thread in threads:
        thread.join(timeout=10)
    time.sleep(0.05)  # an accept that was connecting upstream during the cut has finished by now

    try:
        assert proxy.open_connections == 0, f"trial {trial}: connections alive after cut()"
        assert proxy.cuts == 1
        assert proxy.dropped >= 4  # the pairs open before the cut (the clients keep them open)
        assert not any(_echoes(c, b"ping", timeout_s=0.2) for c in clients), f"trial {trial}: echo through a cut"
    finally:
        for client in clients:
            client.close()
        proxy.stop()


class _CutWhileConnecting(TcpProxy):
    """A proxy whose first upstream connect is overtaken by a cut (and, with ``restore``, by the restore too):
    the race of a cut under load, made certain."""

    def __init__(self, *, restore: bool, upstream_port: int) -> None:
        super().__init__(upstream_host="127.0.0.1", upstream_port=upstream_port)
        self.restore_too = restore
        self.overtaken = threading.Event()

    def _connect_upstream(self) -> socket.socket:
        server = super()._connect_upstream()
        if not self.overtaken.is_set():
            self.cut()
            if self.restore_too:
                self.restore()
            self.overtaken.set()
        return server


@pytest.mark.parametrize("restore", [False, True], ids=["cut", "cut and restored"])
def test_a_connection_accepted_while_a_cut_runs_is_refused_not_forwarded(echo_port: int, restore: bool) -> None:
    proxy = _CutWhileConnecting(restore=restore, upstream_port=echo_port)
    with proxy:
        client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert proxy.overtaken.wait(timeout=5)

        assert not _echoes(client, b"through the cut?", timeout_s=1)
        assert (proxy.cuts, proxy.refused, proxy.connections, proxy.open_connections) == (1, 1, 0, 0)
        client.close()
        if restore:  # the restored proxy forwards what comes next
            after = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
            assert _echoes(after, b"after", timeout_s=5)
            after.close()


def test_a_cut_drops_open_connections_refuses_new_ones_and_restore_forwards_again(echo_port: int) -> None:
    with TcpProxy(upstream_host="127.0.0.1", upstream_port=echo_port) as proxy:
        before = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert _echoes(before, b"up", timeout_s=5)

        proxy.cut()

        assert (proxy.cuts, proxy.dropped, proxy.open_connections) == (1, 1, 0)
        assert not _echoes(before, b"down", timeout_s=1)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", proxy.port), timeout=1)
        proxy.restore()
        after = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert _echoes(after, b"up again", timeout_s=5)
        assert proxy.connections == 2
        before.close()
        after.close()


def test_a_hold_keeps_every_answer_until_release_and_lets_requests_through(echo_port: int) -> None:
    with TcpProxy(upstream_host="127.0.0.1", upstream_port=echo_port) as proxy:
        open_before = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        assert _echoes(open_before, b"warm", timeout_s=5)
        wait_for(lambda: proxy.waiting(b"warm") == 0, timeout_s=5, what="the answer clearing the request")

        proxy.hold()
        opened_during = socket.create_connection(("127.0.0.1", proxy.port), timeout=5)
        open_before.sendall(b"POST ReceiveMessage")
        opened_during.sendall(b"other")

        # The requests reached the upstream (it echoed them) and are still unanswered as the client sees it.
        wait_for(lambda: proxy.waiting(b"ReceiveMessage") == 1, timeout_s=5, what="the held request")
        wait_for(lambda: proxy.waiting(b"other") == 1, timeout_s=5, what="the request on the new connection")
        open_before.settimeout(0.5)
        with pytest.raises(TimeoutError):
            open_before.recv(100)
        opened_during.settimeout(0.5)
        with pytest.raises(TimeoutError):
            opened_during.recv(100)

        proxy.release()

        assert _read(open_before, len(b"POST ReceiveMessage"), timeout_s=5) == b"POST ReceiveMessage"
        assert _read(opened_during, len(b"other"), timeout_s=5) == b"other"
        wait_for(lambda: proxy.waiting(b"ReceiveMessage") == 0, timeout_s=5, what="the request answered")
        open_before.close()
        opened_during.close()
