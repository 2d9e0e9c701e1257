"""Helpers for driving the installed ``asya`` command as a subprocess, exactly as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: The console script pip installed next to this interpreter (pyproject's [project.scripts]).
ASYA = str(Path(sys.executable).parent / "asya")


@dataclass(frozen=True)
class AsyaResult:
    returncode: int
    stdout: str
    stderr: str


def run_asya(*args: str, timeout: float = 240.0, cwd: Path = REPO) -> AsyaResult:
    """Run ``asya ARGS`` to completion and return its exit status and output."""
    done = subprocess.run([ASYA, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return AsyaResult(done.returncode, done.stdout, done.stderr)


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def namespace() -> str:
    """A namespace no other test uses, so tests on the shared broker never see each other's queues or records."""
    return f"e2e-{uuid.uuid4().hex[:10]}"
