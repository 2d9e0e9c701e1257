"""Handler servers as subprocesses, for the tests that talk to them over their socket as the sidecar does.

``tests/runtime/test_handler_protocol.py`` (the wire protocol) and ``tests/conformance/`` (upstream Asya's ABI
examples) start both servers (``handler_server.py`` and ``handler_server.js``) through these.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from asya_runtime import handler_server
from asya_runtime.envelope import Envelope, Route, Status

RUNTIME_DIR = Path(handler_server.__file__).parent
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
START_TIMEOUT_S = 20.0
EXIT_TIMEOUT_S = 20.0


@dataclass(frozen=True)
class ServerKind:
    """How to start one implementation of the protocol and how it names a test handler."""

    name: str
    command: list[str]
    handler: Callable[[str], str]


def _node() -> str:
    node = shutil.which("node") or "/usr/bin/node"
    if not os.access(node, os.X_OK):
        pytest.fail("Node.js is required for the Node.js handler server tests (install nodejs >= 18)")
    return node


def server_kind(name: str, *, python_module: str, js_file: str) -> ServerKind:
    """The server ``name`` (``python`` or ``node``), naming handlers of ``python_module`` or ``js_file``."""
    if name == "python":
        python = os.environ.get("ASYA_TEST_HANDLER_PYTHON") or sys.executable  # e.g. a python3.9 to prove the floor
        return ServerKind("python", [python, str(RUNTIME_DIR / "handler_server.py")], f"{python_module}.{{}}".format)
    return ServerKind("node", [_node(), str(RUNTIME_DIR / "handler_server.js")], f"{js_file}:{{}}".format)


class Connection:
    """One client connection: newline-delimited JSON frames, one request at a time (keep-alive)."""

    def __init__(self, path: str, *, timeout_s: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout_s)
        self.sock.connect(path)
        self.frames = self.sock.makefile("rb")

    def send(self, frame: dict[str, Any] | bytes) -> None:
        data = frame if isinstance(frame, bytes) else json.dumps(frame).encode() + b"\n"
        self.sock.sendall(data)

    def receive_raw(self) -> bytes:
        line = self.frames.readline()
        assert line.endswith(b"\n"), f"the server closed the connection (got {line[:200]!r})"
        return line

    def receive(self) -> dict[str, Any]:
        return json.loads(self.receive_raw())

    def request(self, frame: dict[str, Any] | bytes) -> dict[str, Any]:
        self.send(frame)
        return self.receive()

    def call(self, payload: Any, *, timeout_s: float | None = 30.0, envelope: dict[str, Any] | None = None) -> Any:
        return self.request({"op": "call", "envelope": envelope or make_envelope(payload), "timeout_s": timeout_s})

    def close(self) -> None:
        self.frames.close()
        self.sock.close()


def make_envelope(payload: Any, **headers: Any) -> dict[str, Any]:
    envelope = Envelope(
        id="6a1f0c1e-2b1d-4c7e-9a55-0d2c1f1b9e10",
        route=Route(prev=["ingest"], curr="score", next=["judge", "store"]),
        headers={"traceparent": TRACEPARENT, **headers},
        status=Status(attempt=2, max_attempts=3),
        payload=payload,
    )
    return envelope.model_dump(mode="json")


class ServerProcess:
    """A handler server running as a subprocess on a socket in a private short directory."""

    def __init__(self, kind: ServerKind, handler: str, *, handlers_dir: Path, **env: str) -> None:
        self.kind = kind
        self.directory = tempfile.mkdtemp(prefix="asya-hs-", dir="/tmp")  # AF_UNIX paths max out at 108 bytes
        self.socket_path = os.path.join(self.directory, "run", "handler.sock")
        self.stderr_path = os.path.join(self.directory, "stderr.log")
        self.env = {
            **os.environ,
            handler_server.ENV_HANDLER: kind.handler(handler) if handler else "",
            handler_server.ENV_SOCKET_PATH: self.socket_path,
            handler_server.ENV_HANDLER_PATH: str(handlers_dir),
            **env,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.connections: list[Connection] = []

    def start(self) -> ServerProcess:
        with open(self.stderr_path, "wb") as stderr:
            self.process = subprocess.Popen(
                self.kind.command, env=self.env, cwd=self.directory, stdout=subprocess.DEVNULL, stderr=stderr
            )
        return self

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"the server exited with {self.proc.returncode}: {self.stderr()}"
            try:
                probe = Connection(self.socket_path, timeout_s=5)
            except OSError:
                time.sleep(0.02)
                continue
            probe.close()
            return self
        raise AssertionError(f"the server did not listen within {START_TIMEOUT_S} s: {self.stderr()}")

    @property
    def proc(self) -> subprocess.Popen[bytes]:
        assert self.process is not None
        return self.process

    def connect(self, *, timeout_s: float = 30.0) -> Connection:
        connection = Connection(self.socket_path, timeout_s=timeout_s)
        self.connections.append(connection)
        return connection

    def call(self, payload: Any, **kwargs: Any) -> Any:
        return self.connect().call(payload, **kwargs)

    def wait_exit(self, timeout_s: float = EXIT_TIMEOUT_S) -> int:
        return self.proc.wait(timeout=timeout_s)

    def stderr(self) -> str:
        with open(self.stderr_path, encoding="utf-8", errors="replace") as stderr:
            return stderr.read()

    def log_events(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stderr().splitlines() if line.startswith("{")]

    def health_cli(self) -> tuple[int, float]:
        started = time.monotonic()
        probe = subprocess.run([*self.kind.command, "--health"], env=self.env, capture_output=True, timeout=30)
        return probe.returncode, time.monotonic() - started

    def close(self) -> None:
        for connection in self.connections:
            connection.close()
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=EXIT_TIMEOUT_S)
        shutil.rmtree(self.directory, ignore_errors=True)
