"""``asya completion bash|zsh``: the script completes commands, subcommands, options and choices in a real shell.

Bash: the generated function is sourced and called as bash's completion machinery calls it (COMP_WORDS,
COMP_CWORD), in a real bash. Zsh: an interactive zsh in a pseudo-terminal loads the script the documented way
(``eval "$(asya completion zsh)"``), and a Tab typed after ``asya dlq`` completes ``redrive`` on the line.
Every command of ``COMMANDS`` completes, because the script is generated from the parser.
"""

from __future__ import annotations

import os
import pty
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asya_pulumi.cli.main import COMMANDS
from e2e.conftest import run_asya

BIN = str(Path(sys.executable).parent)


def _bash_complete(script: Path, *words: str) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one is being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=(); "
        '_asya_completion; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=30, check=True)
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = run_asya("completion", "bash", timeout=60)
    assert run.returncode == 0, run.stderr
    path = tmp_path_factory.mktemp("completion") / "asya.bash"
    path.write_text(run.stdout)
    return path


def test_bash_completes_commands_options_and_choices(bash_script: Path, tmp_path: Path):
    assert _bash_complete(bash_script, "asya", "") == list(COMMANDS)
    assert _bash_complete(bash_script, "asya", "d") == ["dev", "dlq"]
    assert _bash_complete(bash_script, "asya", "dlq", "") == ["redrive"]
    assert _bash_complete(bash_script, "asya", "status", "--js") == ["--json"]
    assert set(_bash_complete(bash_script, "asya", "dlq", "redrive", "--")) >= {"--no-wait", "--stack", "--namespace"}
    assert _bash_complete(bash_script, "asya", "dev", "--broker", "") == ["fauxqs", "localstack"]
    assert _bash_complete(bash_script, "asya", "completion", "") == ["bash", "zsh"]
    # an option's value is skipped when finding the command, and a value with no choices completes file names
    assert _bash_complete(bash_script, "asya", "dev", "--input", "x.jsonl", "--rep") == ["--replicas"]
    (tmp_path / "pipeline-dir").mkdir()
    assert _bash_complete(bash_script, "asya", "dev", str(tmp_path / "pipe")) == [str(tmp_path / "pipeline-dir")]


@pytest.mark.skipif(shutil.which("zsh") is None, reason="zsh is not installed (apt-get install zsh)")
def test_zsh_completes_a_subcommand_on_tab(tmp_path: Path):
    env = {"HOME": str(tmp_path), "TERM": "dumb", "PATH": f"{BIN}:/usr/bin:/bin"}
    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive zsh without any rc file
        os.execve(shutil.which("zsh") or "zsh", ["zsh", "-f", "-i"], env)
    try:
        os.write(fd, b'autoload -U compinit && compinit -u; eval "$(asya completion zsh)"\n')
        os.write(fd, b"echo LOADED-$+_comps[asya]\n")
        _read_until(fd, b"LOADED-1")
        os.write(fd, b"asya dlq \t")
        assert b"asya dlq redrive" in _read_until(fd, b"redrive")
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)
        os.close(fd)


def _read_until(fd: int, expected: bytes, timeout: float = 30) -> bytes:
    seen, deadline = b"", time.monotonic() + timeout
    while expected not in seen.replace(b"\r", b""):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {expected!r} from zsh within {timeout} s; it wrote {seen[-500:]!r}")
        seen += os.read(fd, 4096)
    return seen
