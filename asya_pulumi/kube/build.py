"""Builds the control plane's binaries from the Go module proxy once, into a per-user cache keyed by version.

``ensure_tool(TOOLS["kubernetes"])`` returns the directory holding kube-apiserver, kube-controller-manager and
kube-scheduler, building them first if the cache lacks them. The cache entry is
``$XDG_CACHE_HOME/asya/kube/<tool>-<version>-<hash>``: the hash covers the wrapper module (``go.mod``, ``go.sum``,
its Go file), the ldflags and the Go toolchain's version, so a new pin is a new directory and an old one is never
half-updated. A build writes into a temporary sibling and is renamed into place only once every binary exists and
``SHA256SUMS`` lists them; every use checks each binary against that list (a truncated or replaced binary is
rebuilt, never run). Two concurrent builds of the same entry are serialised by a lock file.

Builds run under ``nice -n 19`` with ``go build -p ASYA_KUBE_BUILD_JOBS`` (default 1) so that, started in the
background, they leave the two cores of a CI machine to the tests. ``go.sum`` pins every dependency's hash and the
build runs with ``-mod=readonly``: a module the proxy serves with other content fails the build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TextIO

from asya_pulumi.kube.errors import KubeError
from asya_pulumi.kube.versions import TOOLS, GoTool
from asya_pulumi.local.broker_install import cache_root

__all__ = ["binary", "ensure_all", "ensure_tool", "module_source", "tool_cache_dir"]

_GOMOD = Path(__file__).resolve().parent / "gomod"
_SUMS = "SHA256SUMS"


def _wrapper_dir(tool: GoTool) -> Path:
    return _GOMOD / tool.name


def _go() -> str:
    go = shutil.which("go")
    if go is None:
        raise KubeError(
            "the local control plane is built from Go sources and no `go` is on PATH: install Go >= 1.25 "
            "(Debian: apt install golang-1.25, or https://go.dev/dl) and run `asya kube up` again"
        )
    return go


def _go_version(go: str) -> str:
    return subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()


def tool_cache_dir(tool: GoTool, *, go: str | None = None) -> Path:
    """Where ``tool``'s binaries live once built (whether or not they are there yet)."""
    digest = hashlib.sha256()
    for path in sorted(_wrapper_dir(tool).iterdir()):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    digest.update("\0".join(tool.ldflags).encode())
    digest.update(_go_version(go or _go()).encode())
    return cache_root() / "kube" / f"{tool.name}-{tool.version}-{digest.hexdigest()[:12]}"


def binary(name: str) -> Path:
    """The path of one built binary (``kube-apiserver``, ``etcd``, ...), building its tool if needed."""
    for tool in TOOLS.values():
        if name in tool.packages:
            return ensure_tool(tool) / name
    raise KeyError(name)


def ensure_all(*, notice: TextIO | None = None) -> dict[str, Path]:
    """Every tool built (in order: the small ones first, so a proxy or toolchain problem shows early)."""
    order = ("etcd", "kwok", "kubernetes", "keda")
    return {name: ensure_tool(TOOLS[name], notice=notice) for name in order}


def ensure_tool(tool: GoTool, *, notice: TextIO | None = None) -> Path:
    """``tool``'s cache directory, with every binary present and matching ``SHA256SUMS``; built first if not."""
    go = _go()
    target = tool_cache_dir(tool, go=go)
    if _verified(target, tool):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent build of the same entry finishes first; then we reuse it
        if _verified(target, tool):
            return target
        if target.exists():
            shutil.rmtree(target)  # present but not matching its sums: never run it
        _build(tool, go=go, target=target, notice=notice)
    return target


def _verified(target: Path, tool: GoTool) -> bool:
    sums = target / _SUMS
    if not sums.is_file():
        return False
    expected = dict(line.split("  ", 1)[::-1] for line in sums.read_text().splitlines() if line)
    if set(expected) != set(tool.packages):
        return False
    return all(_sha256(target / name) == digest for name, digest in expected.items() if (target / name).is_file()) \
        and all((target / name).is_file() for name in expected)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _build(tool: GoTool, *, go: str, target: Path, notice: TextIO | None) -> None:
    jobs = os.environ.get("ASYA_KUBE_BUILD_JOBS", "1")
    if notice is not None:
        print(f"==> building {tool.module} {tool.version} from the Go module proxy (once; cached in "
              f"{target.parent}) ...", file=notice, flush=True)
    started = time.monotonic()
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    work = Path(tempfile.mkdtemp(prefix=f"asya-gomod-{tool.name}-"))
    try:
        for path in _wrapper_dir(tool).iterdir():
            shutil.copy(path, work / path.name)  # the package ships read-only; go may want to touch the module
        ldflags = " ".join(("-s", "-w", *tool.ldflags))
        for name, package in tool.packages.items():
            command = ["nice", "-n", "19", go, "build", "-mod=readonly", "-trimpath", "-p", jobs,
                       "-ldflags", ldflags, "-o", str(staging / name), package]
            result = subprocess.run(command, cwd=work, capture_output=True, text=True,
                                    env={**os.environ, "GOFLAGS": "-buildvcs=false", "CGO_ENABLED": "0"})
            if result.returncode != 0:
                tail = " | ".join(result.stderr.strip().splitlines()[-3:])
                raise KubeError(
                    f"building {package} ({tool.module} {tool.version}) failed: {tail}; check that the Go "
                    f"module proxy is reachable (GOPROXY={os.environ.get('GOPROXY', 'https://proxy.golang.org')})"
                    f" and that Go is >= 1.25, then run `asya kube up` again"
                )
        lines = [f"{_sha256(staging / name)}  {name}" for name in sorted(tool.packages)]
        (staging / _SUMS).write_text("\n".join(lines) + "\n")
        staging.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    if notice is not None:
        print(f"    built {', '.join(tool.packages)} in {time.monotonic() - started:.0f} s", file=notice, flush=True)


def module_source(module: str, version: str) -> Path:
    """The module cache's read-only copy of ``module@version``, downloaded (and checked against the sum database)
    first if absent.

    The control plane reads upstream's own manifests from there (CRDs, KWOK's stages, KEDA's RBAC and webhook
    configuration), so what it installs is what that release ships, not a copy of ours.
    """
    with tempfile.TemporaryDirectory(prefix="asya-gomod-") as work:
        result = subprocess.run([_go(), "mod", "download", "-json", f"{module}@{version}"], cwd=work,
                                capture_output=True, text=True, env={**os.environ, "GOFLAGS": "-mod=mod"})
    try:
        info = json.loads(result.stdout)
    except ValueError:
        info = {}
    if result.returncode != 0 or not info.get("Dir") or info.get("Error"):
        problem = info.get("Error") or result.stderr.strip() or "no answer"
        raise KubeError(f"cannot download {module}@{version} from the Go module proxy: {problem}; check GOPROXY "
                        f"({os.environ.get('GOPROXY', 'https://proxy.golang.org')}) and run `asya kube up` again")
    return Path(info["Dir"])


if __name__ == "__main__":  # `python -m asya_pulumi.kube.build`: what scripts/test starts in the background
    import sys

    try:
        for name, directory in ensure_all(notice=sys.stdout).items():
            print(f"{name}: {directory}", flush=True)
    except KubeError as exc:
        print(f"asya kube build: {exc}", file=sys.stderr)
        sys.exit(1)
