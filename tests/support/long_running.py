"""A long-running documented command (``asya dev --keep-running``, ``asya ui``, ...) run as a user would: wait for
its ready line, press Ctrl-C, and see it stop cleanly."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Interrupted:
    """What a command printed until it was ready (``seen``), after Ctrl-C (``rest``), and its exit code."""

    seen: str
    rest: str
    returncode: int


def interrupt_when_ready(*, argv: list[str], cwd: Path, env: Mapping[str, str], ready: str,
                         within_s: float, stop_within_s: float) -> Interrupted:
    """Start ``argv``, read its output until a line starts with ``ready`` (assert that one does within
    ``within_s``), then send SIGINT and wait ``stop_within_s`` for it to exit. Its stdin is a pipe left open, as a
    terminal nobody types into (``--watch`` reads it)."""
    process = subprocess.Popen(argv, cwd=cwd, env=dict(env), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output: list[str] = []
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline and not any(line.startswith(ready) for line in output):
            line = process.stdout.readline()
            if not line:
                break
            output.append(line)
        assert any(line.startswith(ready) for line in output), "".join(output)[-3000:]
    finally:
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=stop_within_s)
    return Interrupted(seen="".join(output), rest=rest, returncode=process.returncode)
