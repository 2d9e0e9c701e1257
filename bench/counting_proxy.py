"""An HTTP reverse proxy on loopback that counts every SQS API call passing through it, by action.

Both contenders of a benchmark (the sidecar mesh and the hand-written loop) talk to the broker through one of
these, so "SQS requests per envelope" is counted at the server side of the client, the same way for both, and
cannot be flattered by client-side bookkeeping. The action is read from the JSON protocol's ``X-Amz-Target``
header (``AmazonSQS.ReceiveMessage``) or, for the query protocol, from ``Action=`` in the query string or the
form body. Requests that are neither (S3, health checks) are counted as ``other``.

SQS bills each 64 KiB chunk of a request's payload as one request, so next to the plain count the proxy keeps
``billed``: per request ``max(1, ceil(request body / 64 KiB), ceil(response body / 64 KiB))``.

Run it as its own process so its CPU never lands on a contender::

    python -m bench.counting_proxy --upstream http://127.0.0.1:4566 --port-file /tmp/p.port

``GET /_counting_proxy/counts`` answers the counters as JSON; ``POST /_counting_proxy/reset`` zeroes them.
Neither is forwarded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import signal
import sys
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from asya_pulumi.local import process_group

CONTROL_PREFIX = b"/_counting_proxy/"
CHUNK_BYTES = 64 * 1024
_REPO_ROOT = Path(__file__).resolve().parent.parent
_HEAD_END = b"\r\n\r\n"


class RequestCounter:
    """Counters of SQS calls by action, plus billed 64 KiB units; ``other`` holds non-SQS requests."""

    def __init__(self) -> None:
        self.by_action: Counter[str] = Counter()
        self.billed = 0

    def add(self, *, action: str | None, request_bytes: int, response_bytes: int) -> None:
        if action is None:
            self.by_action["other"] += 1
            return
        self.by_action[action] += 1
        self.billed += max(1, math.ceil(request_bytes / CHUNK_BYTES), math.ceil(response_bytes / CHUNK_BYTES))

    def snapshot(self) -> dict[str, object]:
        sqs = sum(n for a, n in self.by_action.items() if a != "other")
        return {"sqs_requests": sqs, "billed_requests": self.billed, "by_action": dict(self.by_action)}

    def reset(self) -> None:
        self.by_action.clear()
        self.billed = 0


def sqs_action(*, target: str | None, path: bytes, body: bytes, content_type: str | None) -> str | None:
    """The SQS action a request calls, or None when it is not an SQS call."""
    if target:
        service, _, action = target.partition(".")
        return action if service == "AmazonSQS" and action else None
    query = urlsplit(path.decode("latin-1")).query
    found = parse_qs(query).get("Action")
    if not found and content_type and content_type.startswith("application/x-www-form-urlencoded"):
        found = parse_qs(body.decode("latin-1")).get("Action")
    return found[0] if found else None


class _Message:
    """One parsed HTTP/1.1 message head: the start line and the headers (lower-cased names)."""

    def __init__(self, head: bytes) -> None:
        lines = head.split(b"\r\n")
        self.start = lines[0]
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(b":")
                self.headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")

    def wants_close(self) -> bool:
        return self.headers.get("connection", "").lower() == "close" or self.start.endswith(b"HTTP/1.0")


async def _read_body(reader: asyncio.StreamReader, message: _Message, *, is_response: bool) -> bytes:
    """The raw body bytes as they were framed (chunked bodies are passed through with their framing)."""
    if message.headers.get("transfer-encoding", "").lower() == "chunked":
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            parts.append(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while True:  # trailers, then the empty line
                    line = await reader.readuntil(b"\r\n")
                    parts.append(line)
                    if line == b"\r\n":
                        return b"".join(parts)
            parts.append(await reader.readexactly(size + 2))
    if "content-length" in message.headers:
        return await reader.readexactly(int(message.headers["content-length"]))
    if is_response and not message.start.split(b" ")[1].startswith((b"1", b"204", b"304")):
        return await reader.read()  # delimited by the upstream closing the connection
    return b""


class CountingProxy:
    """Forwards each client connection to one upstream connection, counting the requests that pass."""

    def __init__(self, *, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.counter = RequestCounter()

    async def handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        upstream_w: asyncio.StreamWriter | None = None
        try:
            upstream_r, upstream_w = await asyncio.open_connection(*self.upstream)
            while True:
                try:
                    head = await client_r.readuntil(_HEAD_END)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                request = _Message(head[: -len(_HEAD_END)])
                body = await _read_body(client_r, request, is_response=False)
                path = request.start.split(b" ")[1]
                if path.startswith(CONTROL_PREFIX):
                    self._control(path, client_w)
                    await client_w.drain()
                    continue
                upstream_w.write(head + body)
                await upstream_w.drain()
                response_head = await upstream_r.readuntil(_HEAD_END)
                response = _Message(response_head[: -len(_HEAD_END)])
                response_body = await _read_body(upstream_r, response, is_response=True)
                self.counter.add(
                    action=sqs_action(
                        target=request.headers.get("x-amz-target"),
                        path=path,
                        body=body,
                        content_type=request.headers.get("content-type"),
                    ),
                    request_bytes=len(body),
                    response_bytes=len(response_body),
                )
                client_w.write(response_head + response_body)
                await client_w.drain()
                if request.wants_close() or response.wants_close():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.CancelledError):
            return  # a peer went away, or the proxy is shutting down: nothing left to forward
        finally:
            for writer in (client_w, upstream_w):
                if writer is not None:
                    writer.close()

    def _control(self, path: bytes, client_w: asyncio.StreamWriter) -> None:
        if path.startswith(CONTROL_PREFIX + b"reset"):
            self.counter.reset()
        body = json.dumps(self.counter.snapshot()).encode()
        client_w.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
        )


async def serve(*, upstream: str, port: int, port_file: str | None) -> None:
    """Listen on 127.0.0.1:``port`` (0 = any free port, written to ``port_file``) until SIGTERM/SIGINT."""
    parts = urlsplit(upstream)
    proxy = CountingProxy(upstream_host=parts.hostname or "127.0.0.1", upstream_port=parts.port or 80)
    server = await asyncio.start_server(proxy.handle, "127.0.0.1", port, backlog=512)
    bound = server.sockets[0].getsockname()[1]
    if port_file:
        tmp = f"{port_file}.tmp"
        with open(tmp, "w") as f:
            f.write(str(bound))
        os.replace(tmp, port_file)  # readers never see a half-written port
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--upstream", required=True, help="broker URL, e.g. http://127.0.0.1:4566")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", help="write the bound port here once listening")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(upstream=args.upstream, port=args.port, port_file=args.port_file))


class CountingProxyProcess:
    """A counting proxy in a child process (so its CPU is nobody's): start it, read and reset its counters."""

    def __init__(self, *, upstream: str, workdir: str) -> None:
        port_file = os.path.join(workdir, f"counting-proxy-{os.getpid()}-{id(self)}.port")
        self.process = process_group.spawn(
            [sys.executable, "-m", "bench.counting_proxy", "--upstream", upstream, "--port-file", port_file],
            env=os.environ,
            cwd=_REPO_ROOT,
        )
        deadline = time.monotonic() + 60
        while not os.path.exists(port_file):
            if self.process.poll() is not None:
                raise RuntimeError(f"counting proxy exited with {self.process.returncode} before listening")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("counting proxy did not listen within 60 s")
            time.sleep(0.02)
        with open(port_file) as f:
            self.port = int(f.read())
        os.unlink(port_file)
        self.url = f"http://127.0.0.1:{self.port}"

    def counts(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.url}/_counting_proxy/counts", timeout=10) as response:
            return dict(json.load(response))

    def reset(self) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.url}/_counting_proxy/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10) as response:
            return dict(json.load(response))

    def stop(self) -> None:
        process_group.stop(self.process, timeout_s=10)

    def __enter__(self) -> CountingProxyProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":
    main()
