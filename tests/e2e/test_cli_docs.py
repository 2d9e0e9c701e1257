"""docs/cli.md as written: every command of its ```bash blocks runs, from a fresh copy of the repository, and exits 0;
every synopsis and every ``asya ...`` command it quotes names only options that the parser has (and the choices
the parser offers) — or the command is listed here with the reason it cannot run on this machine.

As for the README (tests/e2e/test_readme.py), a command added to docs/cli.md is run unless it is listed, so the
page cannot promise a command nobody ran. The fresh copy is the checkout's files (tracked and not ignored) in a
temporary directory, so what a command writes (``asya init``, ``out/``) never lands in the checkout. The commands
whose row in the page's table says they talk to "local broker or AWS" run against one local mesh that
``asya dev examples/image-scoring --keep-running`` keeps up, with ``ASYA_SQS_ENDPOINT`` set to its endpoint, as the
page says to do.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.long_running import interrupt_when_ready

from asya_pulumi.cli.main import COMMANDS, _option_strings, build_parser
from e2e.conftest import REPO

DOC = REPO / "docs" / "cli.md"
BIN = Path(sys.executable).parent

#: Commands of the page's ```bash blocks that are not run here, each with the reason.
NOT_RUN: dict[str, str] = {}
#: Commands that run until stopped: the line their output reaches once they are ready (then Ctrl-C, exit 0).
LONG_RUNNING = {"asya ui --mesh examples/image-scoring --no-browser": "asya ui: http://"}
#: Commands for another shell than bash (the page says which, in the line's comment): how that shell runs them.
OTHER_SHELLS = {
    'eval "$(asya completion zsh)"': [
        "zsh", "-c", 'autoload -U compinit && compinit -u && eval "$(asya completion zsh)"'
    ],
    "asya completion fish | source": ["fish", "-c", "asya completion fish | source"],
}
#: The mesh the mesh commands' examples name.
MESH_EXAMPLE = "examples/image-scoring"


def _blocks(language: str) -> list[str]:
    """The bodies of the page's fenced blocks tagged ``language`` ("" for an untagged block), in order."""
    blocks: list[tuple[str, list[str]]] = []
    current: tuple[str, list[str]] | None = None
    for line in DOC.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current = (line[3:].strip(), [])
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current[1].append(line)
    return ["\n".join(body) + "\n" for tag, body in blocks if tag == language]


def doc_commands() -> list[str]:
    """Each command of each ```bash block, without its trailing comment."""
    commands = []
    for block in _blocks("bash"):
        for line in block.splitlines():
            command = re.sub(r"\s+#\s.*$", "", line).strip()
            if command and not command.startswith("#"):
                commands.append(command)
    return commands


def mesh_command_names() -> set[str]:
    """The commands whose row in the page's table says they talk to a local broker or AWS."""
    names = set()
    for row in re.findall(r"^\| `asya ([a-z]+)[^|]*\|[^|]*\| ([^|]*)\|$", DOC.read_text(), flags=re.M):
        if "local broker" in row[1]:
            names.add(row[0])
    return names


def quoted_commands() -> list[str]:
    """Every ``asya COMMAND ...`` the page quotes: its synopsis blocks (continuation lines joined), its ```bash
    blocks, and its inline code spans."""
    text = DOC.read_text()
    lines = []
    for block in [*_blocks(""), *_blocks("bash")]:
        for line in re.sub(r"\n[ \t]+", " ", block).splitlines():
            lines += re.findall(r"asya [a-z]+.*", re.sub(r"\s+#\s.*$", "", line))
    for span in re.findall(r"`([^`]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):  # spans, left to right
        if re.match(r"asya [a-z]", span):
            lines.append(" ".join(span.split()))
    return [line for line in lines if line.split()[1] in COMMANDS]


def _parser_of(command: str) -> argparse.ArgumentParser:
    parser = build_parser([command])
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices[command]


def _choices(parser: argparse.ArgumentParser) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for action in parser._actions:
        if action.choices and action.option_strings and not isinstance(action, argparse._SubParsersAction):
            for option in action.option_strings:
                found[option] = {str(c) for c in action.choices}
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found |= _choices(sub)
    return found


def test_every_page_command_is_run_or_says_why_not() -> None:
    commands = doc_commands()
    assert len(commands) >= 10, commands  # the blocks were found
    stale = sorted((set(NOT_RUN) | set(LONG_RUNNING) | set(OTHER_SHELLS)) - set(commands))
    assert not stale, f"listed here but no longer in docs/cli.md: {stale}"
    assert {"status", "send", "trace", "replay", "dlq", "ui"} <= mesh_command_names()


@pytest.mark.parametrize("line", quoted_commands())
def test_every_quoted_command_names_only_options_the_parser_has(line: str) -> None:
    command = line.split()[1]
    parser = _parser_of(command)
    options = set(_option_strings(parser)) | {"--help"}
    named = set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", line))
    unknown = sorted(named - options)
    assert not unknown, f"docs/cli.md quotes `{line}`, but `asya {command}` has no {unknown}"
    choices = _choices(parser)
    for option, written in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)[ =]([a-z0-9-]+(?:\|[a-z0-9-]+)+)", line):
        if option in choices:
            assert set(written.split("|")) == choices[option], f"`{line}`: {option} offers {choices[option]}"


@pytest.fixture(scope="module")
def fresh_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's files (tracked, and untracked ones git does not ignore) in a directory of their own."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    copy = tmp_path_factory.mktemp("fresh") / "asya-pulumi"
    for name in filter(None, listed):
        source = REPO / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    return copy


@pytest.fixture(scope="module")
def local_mesh(fresh_copy: Path) -> Iterator[str]:
    """The page's local mesh: ``asya dev examples/image-scoring --keep-running``; yields its SQS endpoint."""
    process = subprocess.Popen(["asya", "dev", MESH_EXAMPLE, "--keep-running"], cwd=fresh_copy, env=_environment(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    output = []
    endpoint = None
    try:
        for line in process.stdout:
            output.append(line)
            if "keeps running" in line:
                found = re.search(r"--sqs-endpoint (\S+)", line)
                endpoint = found.group(1) if found else None
                break
        assert endpoint, "".join(output)[-3000:]
        yield endpoint
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)


def _environment(**extra: str) -> dict[str, str]:
    return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}", **extra}


def _needs_mesh(command: str) -> bool:
    first = re.search(r"asya ([a-z]+)", command)
    return first is not None and first.group(1) in mesh_command_names()


def _run_here() -> list[str]:
    return [c for c in doc_commands() if c not in NOT_RUN and c not in LONG_RUNNING]


@pytest.mark.parametrize("command", _run_here())
def test_the_page_command_succeeds_as_written(command: str, fresh_copy: Path, request: pytest.FixtureRequest) -> None:
    extra = {"ASYA_SQS_ENDPOINT": request.getfixturevalue("local_mesh")} if _needs_mesh(command) else {}
    argv = OTHER_SHELLS.get(command, ["bash", "-c", command])
    if shutil.which(argv[0]) is None:
        pytest.skip(f"{argv[0]} is not installed (apt-get install -y {argv[0]})")
    done = subprocess.run(argv, cwd=fresh_copy, env=_environment(**extra), capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, f"{command!r} exited {done.returncode}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"


@pytest.mark.parametrize(("command", "ready"), LONG_RUNNING.items())
def test_the_page_long_running_command_gets_ready_and_stops_on_ctrl_c(
    command: str, ready: str, fresh_copy: Path, local_mesh: str
) -> None:
    done = interrupt_when_ready(argv=["bash", "-c", f"exec {command}"], cwd=fresh_copy,
                                env=_environment(ASYA_SQS_ENDPOINT=local_mesh), ready=ready, within_s=120,
                                stop_within_s=60)
    assert done.returncode == 0, done.seen[-2000:] + done.rest[-2000:]
