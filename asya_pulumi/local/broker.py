"""The embedded broker: an SQS + S3 server as a child process on a free loopback port.

``asya dev``, the benchmarks and the test suite all start the broker through :class:`LocalBroker`::

    with LocalBroker() as broker:
        sqs = boto3.client("sqs", **broker.client_kwargs())

Two servers can play the part; ``ASYA_BROKER`` (or ``kind=``) picks one:

- ``fauxqs`` (the default): an in-memory SQS + S3 emulator on Node.js, installed on first use into a per-user
  cache from a pinned ``package-lock.json`` (:mod:`asya_pulumi.local.broker_install`) and started through our
  own ``server.mjs`` so that it listens on loopback only. It costs ~1 ms of CPU per envelope of a 3-actor burst where
  LocalStack costs ~6, which is what lets ``asya dev`` drain bursts at 200+ envelopes/s on two cores
  (docs/architecture.md, "The embedded broker"). It has no ``StartMessageMoveTask``; ``asya dlq redrive``
  falls back to moving messages itself.
- ``localstack``: LocalStack 4.9.2 in its own virtual environment (its pins conflict with Pulumi's), found through
  ``ASYA_BROKER_PYTHON`` or the repository's ``.venv-broker`` (``scripts/setup --localstack``). Slower, but the
  reference for fidelity: the broker-semantics tests and the benchmarks run against both.

Each broker's state lives in memory or in a private temporary directory that :meth:`LocalBroker.stop` removes, so
two brokers never share queues.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from asya_pulumi.errors import AsyaError
from asya_pulumi.local import process_group

__all__ = ["BROKER_KINDS", "BrokerError", "LocalBroker", "broker_python", "default_broker_kind", "free_port"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
#: Credentials and region any local client may use; neither local server checks them.
LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}
BROKER_KINDS = ("fauxqs", "localstack")


class BrokerError(AsyaError, RuntimeError):
    """The broker could not be found, started or reached."""


def default_broker_kind() -> str:
    """``$ASYA_BROKER`` if set (checked against :data:`BROKER_KINDS`), else ``fauxqs``."""
    kind = os.environ.get("ASYA_BROKER") or BROKER_KINDS[0]
    if kind not in BROKER_KINDS:
        choices = ", ".join(BROKER_KINDS)
        raise BrokerError(f"ASYA_BROKER={kind!r} is not a broker this project knows; use one of {choices}")
    return kind


def broker_python() -> Path:
    """The Python interpreter that has LocalStack installed: ``$ASYA_BROKER_PYTHON`` or ``.venv-broker/bin/python``."""
    configured = os.environ.get("ASYA_BROKER_PYTHON")
    path = Path(configured) if configured else _REPO_ROOT / ".venv-broker" / "bin" / "python"
    if not path.exists():
        raise BrokerError(
            f"no LocalStack interpreter at {path}; run `scripts/setup --localstack` (it creates .venv-broker) "
            f"or set ASYA_BROKER_PYTHON to a Python that has localstack-core installed"
        )
    return path


def fauxqs_command(port: int) -> list[str]:
    """``node server.mjs PORT``, installing the pinned fauxqs for the Node.js on PATH first if needed."""
    from asya_pulumi.local.broker_install import ensure_fauxqs  # it raises this module's BrokerError

    return ensure_fauxqs().command(port=port)


def _localstack_env(port: int, state_dir: Path) -> dict[str, str]:
    return {
        "SERVICES": "sqs,s3",
        "GATEWAY_LISTEN": f"127.0.0.1:{port}",
        "LOCALSTACK_HOST": f"127.0.0.1:{port}",
        "SQS_ENDPOINT_STRATEGY": "path",
        "DNS_ADDRESS": "0",
        "SKIP_SSL_CERT_DOWNLOAD": "1",
        "DISABLE_EVENTS": "1",
        # Per-request work a local broker does not need; together worth ~15 % of `asya dev`'s burst rate.
        "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
        "S3_SKIP_SIGNATURE_VALIDATION": "1",
        "LS_LOG": "warn",
        "LOCALSTACK_VOLUME_DIR": str(state_dir / "volume"),
        "TMPDIR": str(state_dir),
    }


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """One SQS + S3 server on ``127.0.0.1:port``; a context manager."""

    def __init__(self, *, kind: str | None = None, port: int | None = None, startup_timeout_s: float = 60.0) -> None:
        self.kind = kind or default_broker_kind()
        if self.kind not in BROKER_KINDS:
            raise BrokerError(f"unknown broker {self.kind!r}; use one of {', '.join(BROKER_KINDS)}")
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._state_dir: Path | None = None

    @property
    def endpoint(self) -> str:
        """The URL clients use for both SQS and S3 (path-style)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def label(self) -> str:
        """What to call this broker in messages, e.g. ``fauxqs (SQS + S3)``."""
        return f"{self.kind} (SQS + S3)"

    @property
    def log_path(self) -> Path | None:
        return self._state_dir / f"{self.kind}.log" if self._state_dir else None

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(service, **kwargs)`` pointing at this broker."""
        return {"endpoint_url": self.endpoint, **LOCAL_CREDENTIALS}

    def start(self) -> LocalBroker:
        """Start the server and wait until its health endpoint reports SQS and S3 available."""
        self.spawn()
        self.wait_healthy()
        return self

    def spawn(self) -> LocalBroker:
        """Start the server without waiting for it (``asya dev`` starts the handler servers meanwhile); then
        :meth:`wait_healthy`. The endpoint is known already: the port was chosen when this object was made."""
        if self._process is not None:
            return self
        self._state_dir = Path(tempfile.mkdtemp(prefix="asya-broker-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALSTACK_", "AWS_"))}
        if self.kind == "fauxqs":
            command = fauxqs_command(self.port)
        else:
            command = [str(broker_python()), "-m", "localstack.runtime.main"]
            env.update(_localstack_env(self.port, self._state_dir))
        self._process = process_group.spawn(command, env=env, cwd=self._state_dir, log=self.log_path)
        return self

    def wait_healthy(self) -> None:
        """Wait until the spawned server is healthy; BrokerError (the server stopped) when it exits or times out."""
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""
                raise BrokerError(f"{self.kind} exited with {self._process.returncode}:\n{log}")
            if self.is_healthy():
                return
            time.sleep(0.1)
        raise BrokerError(
            f"{self.kind} did not become healthy within {self.startup_timeout_s:.0f}s; see {self.log_path}"
        )

    def is_healthy(self) -> bool:
        """True when the broker answers its health check (LocalStack: with both services available or running)."""
        path = "/health" if self.kind == "fauxqs" else "/_localstack/health"
        try:
            with urllib.request.urlopen(f"{self.endpoint}{path}", timeout=2) as response:
                status = json.load(response)
        except (OSError, ValueError, urllib.error.URLError):
            return False
        if self.kind == "fauxqs":
            return bool(status.get("status") == "ok")
        services = status.get("services", {})
        return all(services.get(name) in ("available", "running") for name in ("sqs", "s3"))

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its state directory."""
        process, self._process = self._process, None
        if process is not None:
            process_group.stop(process, timeout_s=timeout_s)
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
