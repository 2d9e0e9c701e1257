"""Installs the embedded broker (fauxqs, from npm) into a per-user cache on first use, for the Node.js on PATH.

A wheel carries no ``node_modules``, so ``asya dev`` installs the broker itself: the pinned ``package-lock.json``
(every package with its integrity hash) goes through ``npm ci`` into
``$XDG_CACHE_HOME/asya/fauxqs-<hash>`` (``~/.cache/asya/...`` by default), next to a copy of the launcher
``server.mjs``. The hash covers the lock, its ``package.json`` and the launcher, so a new pin or a new launcher
is a new directory and an old one is never half-updated. The install happens in a temporary sibling directory that
is renamed into place once ``npm ci`` has finished: a run that is interrupted, or two runs that install at the
same time, never leave or use a half-installed broker. The source checkout (``scripts/setup``) and the tests go
through the same code path.

Two pins, one launcher contract (``node server.mjs PORT``), chosen by the Node.js version:

- ``node22/``: fauxqs 2.x, which imports ``node:sqlite`` at start-up; that module loads without a flag from
  Node 22.13 (and 23.4 on the 23 line);
- ``node20/``: fauxqs 1.9.2 on Node 20 up to those versions.

Node.js missing or older than 20 is one line naming the alternatives that need no Node.js: ``--broker localstack``
and ``--sqs-endpoint URL``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from asya_pulumi.local.broker import BrokerError

__all__ = ["FAUXQS_FLAVORS", "FauxqsFlavor", "FauxqsInstall", "cache_root", "ensure_fauxqs", "select_flavor"]

_SOURCE_DIR = Path(__file__).resolve().parent / "fauxqs"
_LAUNCHER = "server.mjs"
_COMPLETE_MARKER = ".asya-complete"
_ALTERNATIVES = (
    "or run without Node.js: `--broker localstack` (LocalStack; scripts/setup --localstack) or "
    "`--sqs-endpoint URL` (an SQS server already running)"
)


@dataclass(frozen=True)
class FauxqsFlavor:
    """One pinned fauxqs install: the lock directory under ``fauxqs/`` and the oldest Node.js it runs on."""

    directory: str
    min_node: tuple[int, int]
    #: Node.js versions at or above ``min_node`` that still cannot run it (half-open ranges).
    excluded: tuple[tuple[tuple[int, int], tuple[int, int]], ...] = ()

    def runs_on(self, node: tuple[int, int]) -> bool:
        return node >= self.min_node and not any(low <= node < high for low, high in self.excluded)

    @property
    def source(self) -> Path:
        return _SOURCE_DIR / self.directory

    @property
    def fauxqs_version(self) -> str:
        """The pinned fauxqs version, read from the flavor's package.json (the one place it is written)."""
        manifest = json.loads((self.source / "package.json").read_text(encoding="utf-8"))
        return str(manifest["dependencies"]["fauxqs"])


#: Preferred first; :func:`select_flavor` takes the first that runs on the Node.js found.
FAUXQS_FLAVORS = (
    FauxqsFlavor("node22", min_node=(22, 13), excluded=(((23, 0), (23, 4)),)),
    FauxqsFlavor("node20", min_node=(20, 0)),
)


@dataclass(frozen=True)
class FauxqsInstall:
    """An installed broker: the ``node`` binary to run it with and the directory holding the launcher."""

    node: Path
    directory: Path

    def command(self, *, port: int) -> list[str]:
        """``node server.mjs PORT``: the server listens on ``127.0.0.1:PORT``."""
        return [str(self.node), str(self.directory / _LAUNCHER), str(port)]


def select_flavor(*, node_version: tuple[int, int]) -> FauxqsFlavor:
    """The newest pin that runs on ``node_version`` (major, minor); :class:`BrokerError` below Node 20."""
    for flavor in FAUXQS_FLAVORS:
        if flavor.runs_on(node_version):
            return flavor
    found = ".".join(map(str, node_version))
    raise BrokerError(
        f"the embedded broker (fauxqs) needs Node.js >= 20, found {found}; upgrade Node.js, {_ALTERNATIVES}"
    )


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/asya``, else ``~/.cache/asya``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asya"


def ensure_fauxqs(*, notice: TextIO | None = None) -> FauxqsInstall:
    """The broker for the Node.js on PATH, installed into the cache first if it is not there yet.

    Prints one notice line (to ``notice``, default stderr) before installing, then npm's own progress and summary;
    raises :class:`BrokerError` with one line when Node.js or npm is missing, too old, or ``npm ci`` fails.
    """
    node = _which("node")
    flavor = select_flavor(node_version=_node_version(node))
    target = cache_root() / f"fauxqs-{_content_hash(flavor)}"
    if not (target / _COMPLETE_MARKER).is_file():
        _install(flavor=flavor, node=node, target=target, notice=notice or sys.stderr)
    return FauxqsInstall(node=node, directory=target)


def _which(program: str) -> Path:
    found = shutil.which(program)
    if found is None:
        raise BrokerError(
            f"the embedded broker (fauxqs) needs Node.js >= 20 with {program} on PATH; install it, {_ALTERNATIVES}"
        )
    return Path(found)


def _node_version(node: Path) -> tuple[int, int]:
    try:
        output = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"could not run {node} --version ({exc}); {_ALTERNATIVES}") from None
    match = re.match(r"v?(\d+)\.(\d+)", output.strip())
    if match is None:
        raise BrokerError(f"{node} --version printed {output.strip()!r}, not a Node.js version; {_ALTERNATIVES}")
    return int(match.group(1)), int(match.group(2))


def _content_hash(flavor: FauxqsFlavor) -> str:
    """Of everything copied into the install directory, so that any change is a new directory."""
    digest = hashlib.sha256()
    for path in (flavor.source / "package.json", flavor.source / "package-lock.json", _SOURCE_DIR / _LAUNCHER):
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _install(*, flavor: FauxqsFlavor, node: Path, target: Path, notice: TextIO) -> None:
    npm = _which("npm")
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"asya: installing the embedded broker (fauxqs {flavor.fauxqs_version}, npm ci from its lock file) "
        f"into {target} (first use only)",
        file=notice,
        flush=True,
    )
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(flavor.source / name, staging / name)
        shutil.copyfile(_SOURCE_DIR / _LAUNCHER, staging / _LAUNCHER)
        # npm's progress, summary and errors go to file descriptor 2, so stdout stays the command's own output.
        npm_args = ["ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--loglevel=error"]
        env = {**os.environ, "PATH": f"{node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        result = subprocess.run([str(npm), *npm_args], cwd=staging, env=env, stdout=2, check=False)
        if result.returncode != 0:
            raise BrokerError(
                f"`npm ci` of the embedded broker failed with exit status {result.returncode} (npm's output is above); "
                f"retry, {_ALTERNATIVES}"
            )
        (staging / _COMPLETE_MARKER).write_text(f"fauxqs {flavor.fauxqs_version} for node {flavor.directory}\n")
        if target.exists() and not (target / _COMPLETE_MARKER).is_file():
            shutil.rmtree(target)  # not one of ours: every directory renamed into place has the marker
        try:
            staging.rename(target)
        except OSError:
            if not (target / _COMPLETE_MARKER).is_file():  # not a concurrent install that finished first
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


if __name__ == "__main__":  # scripts/setup: install ahead of the first `asya dev`, print where
    try:
        print(ensure_fauxqs().directory)
    except BrokerError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
