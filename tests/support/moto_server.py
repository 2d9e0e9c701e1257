"""moto's server (PyPI ``moto[server]``) as a real HTTP endpoint on a free loopback port, for the services our own
broker does not serve (IAM, STS, DynamoDB) and for IAM enforcement (``tests/infra/test_iam_enforced.py``)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

from asya_pulumi.local.broker import free_port

#: One request at a time, so a conditional write is atomic as on AWS (asya_pulumi/local/dynamodb_server.py says why);
#: ``moto.server`` is moto's own, one thread per request.
SERVER_MODULE = "asya_pulumi.local.dynamodb_server"


def _python(module: str, switch_interval_s: float | None) -> list[str]:
    """``python -m module``; with ``switch_interval_s``, its threads take turns that often (``sys.setswitchinterval``:
    how a loaded machine interleaves them, made likely)."""
    if switch_interval_s is None:
        return [sys.executable, "-m", module]
    code = f"import runpy, sys; sys.setswitchinterval({switch_interval_s!r}); runpy.run_module({module!r}, " \
           "run_name='__main__', alter_sys=True)"
    return [sys.executable, "-c", code]


class MotoServer:
    """moto's server (:data:`SERVER_MODULE`) on ``127.0.0.1``; ``enforce_iam`` turns authorisation on from the first
    call (``INITIAL_NO_AUTH_ACTION_COUNT=0``); ``module`` and ``switch_interval_s``: see :func:`_python`. A context
    manager; :meth:`close` stops it."""

    def __init__(
        self, *, region: str, enforce_iam: bool = False, ready_within_s: float = 60.0,
        module: str = SERVER_MODULE, switch_interval_s: float | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_DEFAULT_REGION": region}
        if enforce_iam:
            env["INITIAL_NO_AUTH_ACTION_COUNT"] = "0"
        self.process = subprocess.Popen(
            [*_python(module, switch_interval_s), "-H", "127.0.0.1", "-p", str(self.port)],
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
