"""The embedded broker: LocalStack (SQS + S3) as a child process on a free loopback port.

``asya dev``, the benchmarks and the test suite all start the broker through :class:`LocalBroker`::

    with LocalBroker() as broker:
        sqs = boto3.client("sqs", **broker.client_kwargs())

LocalStack runs from its own virtual environment (its pins conflict with Pulumi's), found through
``ASYA_BROKER_PYTHON`` or the repository's ``.venv-broker``. Its state lives in a private temporary directory
that :meth:`LocalBroker.stop` removes, so two brokers never share queues.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

__all__ = ["BrokerError", "LocalBroker", "broker_python", "free_port"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
#: Credentials and region any local client may use; LocalStack accepts anything.
LOCAL_CREDENTIALS = {"aws_access_key_id": "test", "aws_secret_access_key": "test", "region_name": "us-east-1"}


class BrokerError(RuntimeError):
    """The broker could not be found, started or reached."""


def broker_python() -> Path:
    """The Python interpreter that has LocalStack installed: ``$ASYA_BROKER_PYTHON`` or ``.venv-broker/bin/python``."""
    configured = os.environ.get("ASYA_BROKER_PYTHON")
    path = Path(configured) if configured else _REPO_ROOT / ".venv-broker" / "bin" / "python"
    if not path.exists():
        raise BrokerError(
            f"no broker interpreter at {path}; run scripts/setup (it creates .venv-broker) "
            f"or set ASYA_BROKER_PYTHON to a Python that has localstack-core installed"
        )
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalBroker:
    """One LocalStack process serving SQS and S3 on ``127.0.0.1:port``; a context manager."""

    def __init__(self, *, port: int | None = None, startup_timeout_s: float = 60.0) -> None:
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._process: subprocess.Popen[bytes] | None = None
        self._state_dir: Path | None = None

    @property
    def endpoint(self) -> str:
        """The URL clients use for both SQS and S3 (path-style)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._state_dir / "localstack.log" if self._state_dir else None

    def client_kwargs(self) -> dict[str, str]:
        """Keyword arguments for ``boto3.client(service, **kwargs)`` pointing at this broker."""
        return {"endpoint_url": self.endpoint, **LOCAL_CREDENTIALS}

    def start(self) -> LocalBroker:
        """Start LocalStack and wait until its health endpoint reports SQS and S3 available."""
        if self._process is not None:
            return self
        self._state_dir = Path(tempfile.mkdtemp(prefix="asya-broker-"))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("LOCALSTACK_", "AWS_"))},
            "SERVICES": "sqs,s3",
            "GATEWAY_LISTEN": f"127.0.0.1:{self.port}",
            "LOCALSTACK_HOST": f"127.0.0.1:{self.port}",
            "SQS_ENDPOINT_STRATEGY": "path",
            "DNS_ADDRESS": "0",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "DISABLE_EVENTS": "1",
            # Per-request work a local broker does not need; together worth ~15 % of `asya dev`'s burst rate here.
            "SQS_DISABLE_CLOUDWATCH_METRICS": "1",
            "S3_SKIP_SIGNATURE_VALIDATION": "1",
            "LS_LOG": "warn",
            "LOCALSTACK_VOLUME_DIR": str(self._state_dir / "volume"),
            "TMPDIR": str(self._state_dir),
        }
        log = open(self._state_dir / "localstack.log", "wb")  # noqa: SIM115 - handed to the child process
        self._process = subprocess.Popen(
            [str(broker_python()), "-m", "localstack.runtime.main"],
            env=env,
            cwd=self._state_dir,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise BrokerError(f"LocalStack exited with {self._process.returncode}; see {self.log_path}")
            if self.is_healthy():
                return
            time.sleep(0.2)
        raise BrokerError(
            f"LocalStack did not become healthy within {self.startup_timeout_s:.0f}s; see {self.log_path}"
        )

    def is_healthy(self) -> bool:
        """True when the broker answers and reports both services available (or running)."""
        import json

        try:
            with urllib.request.urlopen(f"{self.endpoint}/_localstack/health", timeout=2) as response:
                services = json.load(response).get("services", {})
        except (OSError, ValueError, urllib.error.URLError):
            return False
        return all(services.get(name) in ("available", "running") for name in ("sqs", "s3"))

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop the process (SIGTERM, then SIGKILL) and remove its state directory."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=timeout_s)
            except ProcessLookupError:
                pass
        if self._state_dir is not None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
            self._state_dir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
