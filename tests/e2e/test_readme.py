"""Every command in README.md's shell blocks runs, as written, from the repository root — or is listed here with
the reason it cannot run on this machine (AWS, the Pulumi CLI, the suite itself, a benchmark of minutes).

A command added to the README is run by :func:`test_the_readme_command_succeeds_as_written` unless it is listed
here, so the README cannot promise a command nobody ran. ``asya`` is the project's own (``.venv/bin``), as the
README says after ``scripts/setup``; a long-running command (``--watch``) must reach its steady state and stop
cleanly on Ctrl-C.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from support.long_running import interrupt_when_ready

from e2e.conftest import REPO

README = REPO / "README.md"
BIN = Path(sys.executable).parent

#: Commands that are not run here, each with the reason.
NOT_RUN = {
    "scripts/test": "the suite this test is part of",
    "asya status --namespace scoring-dev --region eu-west-1": "a mesh on AWS (tests/e2e/test_status.py: locally)",
    "asya dlq redrive score-image --namespace scoring-dev": "a mesh on AWS (tests/e2e/test_mesh_commands.py: locally)",
    "pulumi stack select dev || pulumi stack init dev": "the Pulumi CLI and a state backend",
    "pulumi up": "AWS (the program under mocks: asya render, tests/infra)",
    "bench/run": "a benchmark of minutes (tests/bench runs its parts)",
    ".venv/bin/python -m bench.dev_burst": "a benchmark of minutes (tests/bench runs its parts)",
}
#: Commands that run until stopped: the line their output reaches once they are ready.
LONG_RUNNING = {
    "asya dev examples/image-scoring --input examples/image-scoring/input.jsonl --watch": "watching ",
}


def readme_commands() -> list[str]:
    """Each command of each ```bash block, without its trailing comment."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), flags=re.S):
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def _environment() -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}"}


def _run_here() -> list[str]:
    """The README's commands that this test runs to completion: all but those listed above."""
    return [c for c in readme_commands() if c not in NOT_RUN and c not in LONG_RUNNING]


def test_every_readme_command_is_run_or_says_why_not() -> None:
    commands = readme_commands()
    assert len(commands) >= 10, commands  # the blocks were found
    assert {"scripts/demo", "scripts/test"} <= set(commands)  # the quick start's two
    stale = sorted((set(NOT_RUN) | set(LONG_RUNNING)) - set(commands))
    assert not stale, f"listed here but no longer in the README: {stale}"


@pytest.mark.parametrize("command", _run_here())
def test_the_readme_command_succeeds_as_written(command: str) -> None:
    done = subprocess.run(["bash", "-c", command], cwd=REPO, env=_environment(), capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize(("command", "ready"), LONG_RUNNING.items())
def test_the_readme_long_running_command_gets_ready_and_stops_on_ctrl_c(command: str, ready: str) -> None:
    done = interrupt_when_ready(argv=shlex.split(command), cwd=REPO, env=_environment(), ready=ready, within_s=240,
                                stop_within_s=120)
    assert not any(line.lstrip().startswith("FAIL") for line in done.seen.splitlines()), done.seen[-3000:]
    assert done.returncode == 0, done.seen[-2000:] + done.rest[-2000:]
