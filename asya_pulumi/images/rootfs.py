"""Debian base root filesystems from packages (mmdebstrap), cached by their inputs under ``~/.cache/asya/images``.

No registry is involved: the base of every image is bookworm's packages, installed by ``mmdebstrap`` into a
directory, then made fit to ship — the package manager (dpkg and its database) removed after the package list is
recorded, the non-root user added, every ``.pyc`` recompiled as ``unchecked-hash`` (a timestamp pyc would be stale
once the layer's mtimes are fixed, and a read-only root filesystem could not take a fresh one). The Debian archive
moves, so a base is keyed by its inputs and kept: the same inputs give the same layer on this machine, and the package
list and the layer's sha256 travel beside each image as the record of what it holds.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.oci import gzip_layer, tar_bytes

SUITE = "bookworm"
#: The archive the bases come from (the machine's own sources: Debian, its updates and security).
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
#: The packages of each base; ``essential`` brings no apt, and dpkg is removed after its list is read.
BASES: dict[str, tuple[str, ...]] = {
    "python": ("python3", "ca-certificates"),
    "node": ("nodejs", "ca-certificates"),
}
#: The user every image runs as (the pods' runAsUser, asya_pulumi/objects/pod.py's RUN_AS_UID).
USER_ID = 10001
USER_NAME = "asya"
#: Removed from every base: the package manager, its state, docs and logs (nothing at run time needs them).
REMOVED = (
    "usr/bin/dpkg*", "usr/sbin/dpkg*", "usr/lib/dpkg", "usr/share/dpkg", "etc/dpkg", "var/lib/dpkg",
    "usr/bin/apt*", "etc/apt", "var/lib/apt", "var/cache/apt", "var/cache/debconf", "var/cache/ldconfig",
    "usr/share/doc", "usr/share/man", "usr/share/info", "usr/share/locale", "var/log/*",
)
#: Bumped when :func:`_finish` changes, so a cached base built by the old code is not reused.
FINISH_VERSION = "1"


@dataclass(frozen=True)
class Base:
    """A finished base: its directory (for compiling later layers' .pyc with the base's own Python), its gzipped
    layer, the installed packages (``name<TAB>version<TAB>arch`` per line) and the uncompressed layer's sha256."""

    name: str
    root: Path
    layer_gz: Path
    packages: str
    sha256: str


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asya" / "images"


def base_key(*, name: str, epoch: int) -> str:
    """What decides a base's bytes, hashed: suite, archive, packages, epoch and the finishing code's version."""
    inputs = {"suite": SUITE, "mirrors": MIRRORS, "packages": BASES[name], "epoch": epoch, "finish": FINISH_VERSION}
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def debian_base(*, name: str, epoch: int) -> Base:
    """The base ``name`` (``python`` or ``node``), built once per key (~40 s) and then read from the cache."""
    require_tools()
    key = base_key(name=name, epoch=epoch)
    home = cache_dir() / f"{name}-{key}"
    if not (home / "layer.sha256").exists():
        _build(name=name, epoch=epoch, home=home)
    return Base(
        name=name,
        root=home / "root",
        layer_gz=home / "layer.tar.gz",
        packages=(home / "packages.tsv").read_text(),
        sha256=(home / "layer.sha256").read_text().strip(),
    )


def require_tools() -> None:
    """mmdebstrap, run as root (it installs packages into a directory and chroots into it)."""
    if shutil.which("mmdebstrap") is None:
        raise ImageError("building images needs mmdebstrap: apt-get install mmdebstrap (Debian/Ubuntu)")
    if os.geteuid() != 0:
        raise ImageError("building images needs root (mmdebstrap installs packages and chroots into the tree)")


def _build(*, name: str, epoch: int, home: Path) -> None:
    partial = home.with_name(home.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    root = partial / "root"
    command = [
        "mmdebstrap", "--quiet", "--variant=essential", f"--include={','.join(BASES[name])}",
        "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",
        *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")),
        SUITE, str(root), *MIRRORS,
    ]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ImageError(f"mmdebstrap failed for the {name} base: {' / '.join(tail)}")
    packages = _chroot(root, "dpkg-query", "-W", "-f=${Package}\t${Version}\t${Architecture}\n")
    (partial / "packages.tsv").write_text("".join(sorted(packages.splitlines(keepends=True))))
    _finish(root)
    tar = tar_bytes(root=root, epoch=epoch)
    (partial / "layer.tar.gz").write_bytes(gzip_layer(tar))
    (partial / "layer.sha256").write_text(hashlib.sha256(tar).hexdigest() + "\n")
    shutil.rmtree(home, ignore_errors=True)
    partial.rename(home)


def _finish(root: Path) -> None:
    """Fit to ship: unchecked-hash .pyc, the non-root user, no package manager."""
    if (root / "usr/bin/python3").exists():
        compile_python(root=root, paths=["/usr/lib/python3.11", "/usr/lib/python3/dist-packages"])
    with (root / "etc/passwd").open("a") as passwd:
        passwd.write(f"{USER_NAME}:x:{USER_ID}:{USER_ID}::/tmp:/usr/sbin/nologin\n")
    with (root / "etc/group").open("a") as group:
        group.write(f"{USER_NAME}:x:{USER_ID}:\n")
    for pattern in REMOVED:
        for path in sorted(root.glob(pattern)):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()


def compile_python(*, root: Path, paths: list[str], usr_local: Path | None = None) -> None:
    """Byte-compile ``paths`` (absolute inside ``root``) with the tree's own Python, as ``unchecked-hash`` pycs: no
    source mtime inside, so the bytes depend only on the sources, and Python never finds them stale. One process,
    files in a fixed order: marshal's output then depends on nothing else. ``usr_local`` is bind-mounted over the
    tree's ``/usr/local`` in a private mount namespace, so a later layer compiles against a cached base untouched."""
    command = ["/usr/bin/python3", "-m", "compileall", "-q", "-f", "-j", "1", "--invalidation-mode", "unchecked-hash"]
    if usr_local is None:
        _chroot(root, *command, *paths)
        return
    script = 'mount --bind "$1" "$2/usr/local" && shift 2 && exec "$CHROOT" "$0" "$@"'
    done = subprocess.run([_tool("unshare"), "--mount", "--propagation", "private", "sh", "-c", script, str(root),
                           str(usr_local), str(root), *command, *paths], capture_output=True, text=True,
                          env={**_CHROOT_ENV, "CHROOT": _tool("chroot")})
    if done.returncode != 0:
        raise ImageError(f"compiling {usr_local} against {root} failed: {done.stderr.strip()[-400:]}")


_CHROOT_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def _tool(name: str) -> str:
    """A host program's absolute path: the commands run with the tree's PATH, which the host's lookup must not use."""
    found = shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin") or shutil.which(name)
    if found is None:
        raise ImageError(f"building images needs {name} (util-linux / coreutils)")
    return found


def _chroot(root: Path, *command: str) -> str:
    done = subprocess.run([_tool("chroot"), str(root), *command], capture_output=True, text=True,
                          env=_CHROOT_ENV)
    if done.returncode != 0:
        raise ImageError(f"{command[0]} in {root} failed: {done.stderr.strip()[-400:]}")
    return done.stdout
