"""The embedded broker's first-use install: which pin for which Node.js, one-line failures, an atomic cache entry."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest

from asya_pulumi.local import broker_install
from asya_pulumi.local.broker import BrokerError
from asya_pulumi.local.broker_install import FAUXQS_FLAVORS, ensure_fauxqs, select_flavor


@pytest.mark.parametrize(
    ("node", "flavor"),
    [
        ((20, 0), "node20"),
        ((20, 20), "node20"),
        ((22, 12), "node20"),  # node:sqlite still behind --experimental-sqlite
        ((22, 13), "node22"),
        ((23, 3), "node20"),
        ((23, 4), "node22"),
        ((24, 19), "node22"),
    ],
)
def test_the_newest_pin_that_runs_on_the_node_version_is_chosen(node: tuple[int, int], flavor: str):
    assert select_flavor(node_version=node).directory == flavor


def test_each_pin_is_a_lock_with_an_integrity_hash_for_every_package():
    versions = {}
    for flavor in FAUXQS_FLAVORS:
        lock = json.loads((flavor.source / "package-lock.json").read_text())
        packages = {path: entry for path, entry in lock["packages"].items() if path}
        assert packages, flavor.directory
        for path, entry in packages.items():
            assert entry["integrity"].startswith("sha512-"), (flavor.directory, path)
        assert packages["node_modules/fauxqs"]["version"] == flavor.fauxqs_version  # package.json and lock agree
        versions[flavor.directory] = flavor.fauxqs_version
    assert versions["node20"].startswith("1.") and versions["node22"].startswith("2.")


def _fake_program(directory: Path, name: str, script: str) -> None:
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def _one_line_naming_the_alternatives(message: str) -> None:
    assert "\n" not in message
    assert "--broker localstack" in message and "--sqs-endpoint" in message


def test_no_node_on_path_is_one_line_naming_the_alternatives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs()
    _one_line_naming_the_alternatives(str(caught.value))
    assert "Node.js >= 20" in str(caught.value)


def test_node_older_than_20_is_one_line_naming_the_alternatives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    _fake_program(tmp_path, "node", "echo v18.19.1")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs()
    _one_line_naming_the_alternatives(str(caught.value))
    assert "found 18.19" in str(caught.value)


def test_a_failed_npm_ci_leaves_nothing_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _fake_program(bin_dir, "node", "echo v20.20.2")
    _fake_program(bin_dir, "npm", "echo 'npm error network unreachable' >&2; exit 1")
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    with pytest.raises(BrokerError) as caught:
        ensure_fauxqs(notice=io.StringIO())
    _one_line_naming_the_alternatives(str(caught.value))
    assert "exit status 1" in str(caught.value)
    assert list((tmp_path / "cache" / "asya").iterdir()) == []  # no half-installed directory to trip over later


def test_first_use_installs_once_into_the_cache_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The install logic around npm (a stand-in that records its calls); the real `npm ci` runs in the e2e tests
    (test_wheel_install, test_setup_os_python) and on every machine's first broker."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "npm-calls"
    _fake_program(bin_dir, "node", "echo v20.20.2")
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
    assert len(lines) == 1 and "installing the embedded broker (fauxqs 1.9.2" in lines[0]
    assert str(installed.directory) in lines[0]
    [call] = calls.read_text().splitlines()
    staging, arguments = call.split(" ", 1)
    assert Path(staging).parent == cache and Path(staging).name.startswith(f".{installed.directory.name}.partial-")
    assert arguments.startswith("ci ") and "--ignore-scripts" in arguments  # the lock, as pinned, no install scripts
    assert not Path(staging).exists()  # renamed into place
    assert installed.directory.parent == cache and installed.directory.name.startswith("fauxqs-")
    assert sorted(p.name for p in installed.directory.iterdir()) == [
        ".asya-complete", "node_modules", "package-lock.json", "package.json", "server.mjs"
    ]
    assert installed.command(port=4566) == [str(bin_dir / "node"), str(installed.directory / "server.mjs"), "4566"]

    again = io.StringIO()
    assert ensure_fauxqs(notice=again) == installed and again.getvalue() == ""  # second use: no install, no notice
    assert len(calls.read_text().splitlines()) == 1


def test_the_cache_directory_changes_with_the_pin_or_the_launcher(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    flavor = select_flavor(node_version=(20, 20))
    before = broker_install._content_hash(flavor)
    launcher = tmp_path / "server.mjs"
    launcher.write_text((broker_install._SOURCE_DIR / "server.mjs").read_text() + "\n// changed\n")
    source = tmp_path / "fauxqs"
    source.mkdir()
    (source / "server.mjs").write_text(launcher.read_text())
    (source / "node20").symlink_to(flavor.source)
    monkeypatch.setattr(broker_install, "_SOURCE_DIR", source)
    assert broker_install._content_hash(flavor) != before


def test_asya_dev_without_node_says_so_in_one_line_and_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    from asya_pulumi.cli.errors import EXIT_USAGE
    from asya_pulumi.cli.main import main

    monkeypatch.setenv("PATH", str(tmp_path))
    # a pipeline of Python handlers only: a Node.js one would be reported first, by the handlers' pre-flight
    example = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"

    assert main(["dev", str(example), "--send", "score", '{"pixels": [1]}']) == EXIT_USAGE

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("asya: error: the embedded broker (fauxqs) needs Node.js >= 20")
    _one_line_naming_the_alternatives(err.strip())
