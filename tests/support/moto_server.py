"""moto's server (PyPI ``moto[server]``) as a real HTTP endpoint on a free loopback port, for the services our own
broker does not serve (IAM, STS, DynamoDB) and for IAM enforcement (``tests/infra/test_iam_enforced.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from asya_pulumi.local.broker import free_port

#: moto's server with each DynamoDB request applied atomically, as DynamoDB does (see that module).
ATOMIC_LAUNCHER = str(Path(__file__).with_name("moto_atomic.py"))


class MotoServer:
    """``python -m moto.server`` on ``127.0.0.1``; ``enforce_iam`` turns authorisation on from the first call
    (``INITIAL_NO_AUTH_ACTION_COUNT=0``). DynamoDB requests are applied one at a time (``moto_atomic.py``): moto
    alone lets two conditional writes race. A context manager; :meth:`close` stops it."""

    def __init__(self, *, region: str, enforce_iam: bool = False, ready_within_s: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_DEFAULT_REGION": region}
        if enforce_iam:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        self.process = subprocess.Popen(
            [sys.executable, ATOMIC_LAUNCHER, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready(ready_within_s)
        except BaseException:
            self.close()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto's server exited with {self.process.returncode}")
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/", timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"moto's server did not answer on {self.url} within {timeout_s} s")

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def __enter__(self) -> MotoServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
