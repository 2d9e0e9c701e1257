"""The embedded broker: an SQS + S3 server as a child process on a free loopback port.

``asya dev``, the benchmarks and the test suite all start the broker through :class:`LocalBroker`::

    with LocalBroker() as broker:
        sqs = boto3.client("sqs", **broker.client_kwargs())

Two servers can play the part; ``ASYA_BROKER`` (or ``kind=``) picks one:

- ``fauxqs`` (the default): an SQS + S3 emulator on Node.js (2.x, which needs Node.js >= 22.13: the OS's, else
  Node.js from the Python package index), installed on first use into a per-user cache from a pinned
  ``package-lock.json`` (:mod:`asya_pulumi.local.broker_install`) and started through our own ``server.mjs`` so that
  it listens on loopback only. It costs ~1 ms of CPU per envelope of a 3-actor burst where LocalStack costs ~6,
  which is what lets ``asya dev`` drain bursts at 200+ envelopes/s on two cores (docs/architecture.md, "The
  embedded broker"). It has no ``StartMessageMoveTask``; ``asya dlq redrive`` falls back to moving messages itself.
- ``localstack``: LocalStack 4.9.2 in its own virtual environment (its pins conflict with Pulumi's), found through
  ``ASYA_BROKER_PYTHON`` or the repository's ``.venv-broker`` (``scripts/setup --localstack``). Slower, but the
  reference for fidelity: the broker-semantics tests and the benchmarks run against both.

**A killed broker loses nothing.** fauxqs writes every queue, message (visible, delayed and in flight, with its
receipt handle) and object through to ``fauxqs.db`` in the broker's state directory before it answers, and the
broker runs under the one local :class:`~asya_pulumi.local.processes.Supervisor`: when it dies (SIGKILL, out of
memory) it is started again on the same port from the same file, after the supervisor's backoff (0.25 s first).
Clients see a few refused connections, which the sidecars and ``asya dev`` retry; a sidecar's receipt handles stay
valid, so what it was working on is deleted, not delivered twice. LocalStack keeps its state in memory (its
persistence is not in the community edition), so it is not restarted: a LocalStack that dies ends the run as before.

Each broker's state lives in its own directory: ``state_dir`` (``asya dev`` passes a fresh one inside the run's
directory; a directory that already holds a ``fauxqs.db`` is restored from, as on a restart, and left in place at
stop) or a private temporary directory that :meth:`LocalBroker.stop` removes, so two brokers never share queues.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from types import TracebackType

from asya_pulumi.errors import AsyaError
from asya_pulumi.local.processes import ProcessSpec, Supervisor

__all__ = ["BROKER_KINDS", "BrokerError", "LocalBroker", "broker_python", "default_broker_kind", "free_port"]

_REPO_ROOT = Path(__file__).resolve().parents[2]
#: The LocalStack the second broker lane is tested with (requirements/broker.in pins the same).
LOCALSTACK_REQUIREMENT = "localstack-core[runtime]==4.9.2"
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
    """The Python interpreter that has LocalStack installed: ``$ASYA_BROKER_PYTHON``, else, in a source checkout,
    its ``.venv-broker/bin/python`` (an installed package has no checkout to look in)."""
    configured = os.environ.get("ASYA_BROKER_PYTHON")
    in_checkout = (_REPO_ROOT / "pyproject.toml").is_file() and (_REPO_ROOT / "requirements").is_dir()
    if configured:
        path = Path(configured)
    elif in_checkout:
        path = _REPO_ROOT / ".venv-broker" / "bin" / "python"
    else:
        raise BrokerError(
            "--broker localstack needs a Python that has LocalStack: make a venv, pip install "
            f"'{LOCALSTACK_REQUIREMENT}' 'cbor2<6' 'pyopenssl<25' 'cryptography<45' service_identity, and set "
            "ASYA_BROKER_PYTHON to its python"
        )
    if not path.exists():
        how = "run `scripts/setup --localstack` (it creates .venv-broker) or " if in_checkout else ""
        raise BrokerError(
            f"no LocalStack interpreter at {path}; {how}set ASYA_BROKER_PYTHON to a Python that has "
            f"{LOCALSTACK_REQUIREMENT} installed"
        )
    return path


def fauxqs_command(*, port: int, data_dir: Path | None) -> list[str]:
    """``node server.mjs PORT [DATA_DIR]``, installing the pinned fauxqs (and finding a Node.js for it) first if
    needed; with ``data_dir`` the broker persists its state there (:mod:`asya_pulumi.local.broker_install`)."""
    from asya_pulumi.local.broker_install import ensure_fauxqs  # it raises this module's BrokerError

    return ensure_fauxqs().command(port=port, data_dir=data_dir)


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
    """One SQS + S3 server on ``127.0.0.1:port``, restarted from its state file when it dies; a context manager.

    ``persist=False`` keeps a fauxqs broker's state in memory only (the benchmarks' comparison): faster by the cost
    of the writes, and a broker that dies then takes its queues with it, so it is not restarted either.
    """

    def __init__(
        self,
        *,
        kind: str | None = None,
        port: int | None = None,
        startup_timeout_s: float = 60.0,
        state_dir: Path | None = None,
        persist: bool = True,
    ) -> None:
        self.kind = kind or default_broker_kind()
        if self.kind not in BROKER_KINDS:
            raise BrokerError(f"unknown broker {self.kind!r}; use one of {', '.join(BROKER_KINDS)}")
        self.port = port or free_port()
        self.startup_timeout_s = startup_timeout_s
        self.persist = persist and self.kind == "fauxqs"
        self._given_state_dir = state_dir
        self._state_dir: Path | None = None
        self._supervisor: Supervisor | None = None

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
        """The server's output, appended across restarts."""
        return self._state_dir / f"{self.kind}.log" if self._state_dir else None

    @property
    def state_file(self) -> Path | None:
        """Where a persisting broker keeps its queues, messages and objects (None: in memory)."""
        return self._state_dir / "fauxqs.db" if self._state_dir and self.persist else None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs (also its process group's id), e.g. to kill it in a test."""
        return self._supervisor.pid(self.kind) if self._supervisor else None

    @property
    def restarts(self) -> int:
        """How often the server was started again after it died."""
        return self._supervisor.restarts().get(self.kind, 0) if self._supervisor else 0

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
        :meth:`wait_healthy`. The endpoint is known already: the port was chosen when this object was made.

        The server runs under its own :class:`Supervisor` (its thread starts and restarts it; see the module's
        docstring); the same port and state file on every start, so clients keep their endpoint and receipt handles.
        """
        if self._supervisor is not None:
            return self
        if self._given_state_dir is not None:
            self._given_state_dir.mkdir(parents=True, exist_ok=True)
            self._state_dir = self._given_state_dir
        else:
            self._state_dir = Path(tempfile.mkdtemp(prefix="asya-broker-"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCALSTACK_", "AWS_"))}
        if self.kind == "fauxqs":
            command = fauxqs_command(port=self.port, data_dir=self._state_dir if self.persist else None)
        else:
            command = [str(broker_python()), "-m", "localstack.runtime.main"]
            env.update(_localstack_env(self.port, self._state_dir))
        spec = ProcessSpec(
            name=self.kind, argv=command, env=env, cwd=self._state_dir, group=self.kind, restart=self.persist,
            ready_marker="fauxqs listening on" if self.kind == "fauxqs" else None,
        )
        self._supervisor = Supervisor(specs=[spec], log_dir=self._state_dir).start()
        return self

    def wait_healthy(self) -> None:
        """Wait until the spawned server is healthy; BrokerError (the server stopped) when it exits or times out."""
        try:
            self._wait_healthy()
        except BaseException:
            self.stop()
            raise

    def _wait_healthy(self) -> None:
        assert self._supervisor is not None, "spawn() first"
        deadline = time.monotonic() + self.startup_timeout_s
        while time.monotonic() < deadline:
            exits = self._supervisor.exit_statuses(self.kind)
            if exits:  # before it was ever healthy: a restart would fail the same way
                log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""
                raise BrokerError(f"{self.kind} exited with {exits[0]}:\n{log}")
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
        """Stop the server (SIGTERM, then SIGKILL; no restart) and remove its state directory unless it was given."""
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.stop(timeout_s=timeout_s)
        if self._state_dir is not None and self._given_state_dir is None:
            shutil.rmtree(self._state_dir, ignore_errors=True)
        self._state_dir = None

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
