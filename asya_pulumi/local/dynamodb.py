"""The local status store's DynamoDB: moto's server (PyPI ``moto[server]``) on a free loopback port.

``asya dev --gateway`` starts it next to the broker (docs/gateway.md, "Local"): a real DynamoDB API over HTTP —
conditional writes, GSIs, BatchGetItem, TTL attributes — in pure Python, so the status code that runs against AWS
runs here unchanged. It keeps its tables in memory: it lives as long as ``asya dev``, and a server that died would
come back empty, so it is not restarted (the broker is; it persists). :meth:`LocalDynamoDB.wait_ready` reports an
exit with the end of its log.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

from asya_pulumi.errors import AsyaError
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, free_port
from asya_pulumi.local.processes import ProcessSpec, Supervisor

__all__ = ["LocalDynamoDB", "LocalDynamoDBError"]

PROCESS_NAME = "dynamodb"


class LocalDynamoDBError(AsyaError, RuntimeError):
    """moto's server could not be started or reached."""


class LocalDynamoDB:
    """``python -m moto.server`` on ``127.0.0.1:port`` under its own :class:`Supervisor`; a context manager."""

    def __init__(
        self, *, region: str, port: int | None = None, state_dir: Path | None = None, startup_timeout_s: float = 60.0
    ) -> None:
        self.region = region
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self._given_dir = state_dir
        self._dir: Path | None = None
        self._supervisor: Supervisor | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path | None:
        return self._dir / f"{PROCESS_NAME}.log" if self._dir else None

    @property
    def pid(self) -> int | None:
        return self._supervisor.pid(PROCESS_NAME) if self._supervisor else None

    def spawn(self) -> LocalDynamoDB:
        """Start the server without waiting (it imports for about a second while the broker starts too)."""
        if self._supervisor is not None:
            return self
        self._dir = self._given_dir or Path(tempfile.mkdtemp(prefix="asya-dynamodb-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        from asya_pulumi.local.plan import base_env

        spec = ProcessSpec(
            name=PROCESS_NAME,
            argv=[sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=base_env() | {"AWS_DEFAULT_REGION": self.region},
            cwd=self._dir, group=PROCESS_NAME, ready_marker="Running on", restart=False,
        )
        self._supervisor = Supervisor(specs=[spec], log_dir=self._dir).start()
        return self

    def start(self) -> LocalDynamoDB:
        return self.spawn().wait_ready()

    def wait_ready(self) -> LocalDynamoDB:
        """Wait until the server answers; :class:`LocalDynamoDBError` (after stopping it) if it exits or times out."""
        assert self._supervisor is not None, "spawn() first"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            if self._supervisor.exit_statuses(PROCESS_NAME):
                log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""
                self.stop()
                raise LocalDynamoDBError(f"moto's server (the local DynamoDB) exited:\n{log}")
            if self.is_ready():
                return self
            time.sleep(0.1)
        self.stop()
        raise LocalDynamoDBError(
            f"moto's server (the local DynamoDB) did not answer on {self.endpoint} within "
            f"{self.startup_timeout_s:g} s; see {self.log_path}"
        )

    def is_ready(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1).close()
        except (OSError, urllib.error.URLError):
            return False
        return True

    def client(self) -> Any:
        """A boto3 DynamoDB client for this server."""
        import boto3

        kwargs = {**LOCAL_CREDENTIALS, "region_name": self.region}
        return boto3.client("dynamodb", endpoint_url=self.endpoint, **kwargs)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.stop(timeout_s=timeout_s)
        if self._dir is not None and self._given_dir is None:
            shutil.rmtree(self._dir, ignore_errors=True)
        self._dir = None

    def __enter__(self) -> LocalDynamoDB:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
