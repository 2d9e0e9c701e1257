"""``asya completion bash|zsh|fish``: the script completes commands, subcommands, options, choices and the pipeline's
route and actor names in a real shell.

Bash: the generated function is sourced and called as bash's completion machinery calls it (COMP_WORDS,
COMP_CWORD), in a real bash. Zsh: an interactive zsh in a pseudo-terminal loads the script the documented way
(``eval "$(asya completion zsh)"``), and a Tab typed after ``asya dlq`` completes ``redrive`` on the line. Fish:
fish's own engine (``complete -C LINE``) on the sourced script.
Every command of ``COMMANDS`` completes, because the script is generated from the parser.
"""

from __future__ import annotations

import os
import pty
import select
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asya_pulumi.cli.completion import pipeline_names
from asya_pulumi.cli.main import COMMANDS
from e2e.conftest import EXAMPLES, REPO, run_asya

BIN = str(Path(sys.executable).parent)


def _bash_complete(script: Path, *words: str) -> list[str]:
    """COMPREPLY for the command line ``words`` (the last one is being completed)."""
    quoted = " ".join(f"'{w}'" for w in words)
    program = (
        f"source {script}; COMP_WORDS=({quoted}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); COMPREPLY=(); "
        '_asya_completion; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, timeout=60, check=True,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}"})
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
    assert _bash_complete(bash_script, "asya", "completion", "") == ["bash", "zsh", "fish"]
    # an option's value is skipped when finding the command, and a value with no choices completes file names
    assert _bash_complete(bash_script, "asya", "dev", "--input", "x.jsonl", "--rep") == ["--replicas"]
    (tmp_path / "pipeline-dir").mkdir()
    assert _bash_complete(bash_script, "asya", "dev", str(tmp_path / "pipe")) == [str(tmp_path / "pipeline-dir")]


def test_bash_completes_the_pipelines_route_and_actor_names(bash_script: Path):
    pipeline = str(EXAMPLES / "image-scoring")
    names = ["score", "human-review", "judge", "preprocess", "score-image", "store"]  # routes, then actors
    assert _bash_complete(bash_script, "asya", "dev", pipeline, "--send", "") == names
    assert _bash_complete(bash_script, "asya", "dev", pipeline, "--send", "sc") == ["score", "score-image"]
    assert _bash_complete(bash_script, "asya", "send", "--mesh", pipeline, "") == names


def _fish_complete(script: Path, line: str, *, cwd: Path = REPO) -> list[str]:
    """What fish offers for the command line ``line`` (``complete -C``: fish's own completion engine)."""
    done = subprocess.run(
        ["fish", "--no-config", "-c", f"source {script}; complete -C {shlex.quote(line)}"], cwd=cwd,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(script.parent)}, capture_output=True, text=True,
        timeout=60, check=True,
    )
    assert done.stderr == "", done.stderr
    return [entry.split("\t")[0] for entry in done.stdout.splitlines()]


@pytest.mark.skipif(shutil.which("fish") is None, reason="fish is not installed (apt-get install fish)")
def test_fish_completes_commands_options_choices_and_names(tmp_path: Path):
    script = tmp_path / "asya.fish"
    run = run_asya("completion", "fish", timeout=60)
    assert run.returncode == 0, run.stderr
    script.write_text(run.stdout)

    assert _fish_complete(script, "asya ") == sorted(COMMANDS)
    assert _fish_complete(script, "asya dlq ") == ["redrive"]
    assert _fish_complete(script, "asya status --js") == ["--json"]
    assert _fish_complete(script, "asya dev --broker ") == ["fauxqs", "localstack"]
    assert _fish_complete(script, "asya dev --input x.jsonl --rep") == ["--replicas"]  # the value is skipped
    names = sorted(["score", "human-review", "judge", "preprocess", "score-image", "store"])
    assert _fish_complete(script, "asya dev examples/image-scoring --send ") == names
    assert _fish_complete(script, "asya dlq redrive ", cwd=EXAMPLES / "image-scoring") == names  # the current dir
    assert _fish_complete(script, "asya send --mesh examples/text-chunking ") == sorted(
        pipeline_names(str(EXAMPLES / "text-chunking")))


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
