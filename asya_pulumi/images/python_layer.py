"""A layer of Python distributions for ``/usr/local`` of a Debian base: installed by uv for the base's Python
(3.11, manylinux x86_64) without running anything of theirs, then compiled by the base's own Python.

Locked dependencies are installed with ``--require-hashes``: a wheel that is not the one the lock names fails the
build rather than reaching an image. What an install writes that depends on the machine is removed —
``direct_url.json`` (the path the local wheel was built in), ``uv_cache.json``, the console scripts (their shebang
is the build machine's interpreter); entry scripts are written here instead, with ``/usr/bin/python3``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from asya_pulumi.images.errors import ImageError

#: Where Debian's python3 looks for site packages that no Debian package owns.
SITE_PACKAGES = "lib/python3.11/dist-packages"
PYTHON_VERSION = "3.11"
PLATFORM = "x86_64-manylinux_2_28"
#: Files an installer writes into a ``.dist-info`` that depend on the machine, not the distribution.
MACHINE_FILES = ("direct_url.json", "uv_cache.json")


def uv() -> str:
    """The project's pinned uv (next to this interpreter, as scripts/setup installs it), else the one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    found = str(beside) if beside.exists() else shutil.which("uv")
    if found is None:
        raise ImageError("building images needs uv: run scripts/setup (it installs the pinned uv into .venv)")
    return found


def install(*, prefix: Path, requirements: Path | None = None, wheels: Sequence[Path] = (),
            hashed: bool = True) -> None:
    """Install ``requirements`` (with ``--require-hashes`` when ``hashed``) and then ``wheels`` (no dependencies:
    the lock holds them) into ``prefix/lib/python3.11/dist-packages``."""
    target = prefix / SITE_PACKAGES
    common = ["pip", "install", "--quiet", "--target", str(target), "--python-version", PYTHON_VERSION,
              "--python-platform", PLATFORM, "--no-deps", "--no-compile", "--link-mode", "copy"]
    if requirements is not None:
        _uv(*common, "--only-binary", ":all:", *(["--require-hashes"] if hashed else []), "-r", str(requirements))
    if wheels:
        _uv(*common, *map(str, wheels))
    shutil.rmtree(target / "bin", ignore_errors=True)
    (target / ".lock").unlink(missing_ok=True)  # uv's lock of the target while it installs: no part of a layer
    for dist_info in sorted(target.glob("*.dist-info")):
        _drop_machine_files(dist_info)

def _drop_machine_files(dist_info: Path) -> None:
    """Remove what records the build machine (the wheel's path, uv's cache key) and the RECORD rows of those files
    and of the console scripts removed with ``bin/`` (each row holds the hash of a script whose shebang is the
    build machine's interpreter)."""
    dropped = [dist_info / name for name in MACHINE_FILES if (dist_info / name).exists()]
    for path in dropped:
        path.unlink()
    own = (*(f"{dist_info.name}/{path.name}," for path in dropped), "bin/")
    record = dist_info / "RECORD"
    lines = record.read_text().splitlines(keepends=True)
    kept = [line for line in lines if not line.startswith(own)]
    if kept != lines:
        record.write_text("".join(kept))


def build_wheel(*, project: Path, out: Path, epoch: int) -> Path:
    """``project``'s wheel (uv build, isolated): the distribution exactly as PyPI would get it."""
    out.mkdir(parents=True, exist_ok=True)
    _uv("build", "--quiet", "--wheel", "--out-dir", str(out), str(project), env={"SOURCE_DATE_EPOCH": str(epoch)})
    built = sorted(out.glob("*.whl"))
    if len(built) != 1:
        raise ImageError(f"uv build of {project} gave {len(built)} wheels, expected one")
    return built[0]


def write_entry_script(*, prefix: Path, name: str, module: str) -> None:
    """``prefix/bin/NAME``: runs ``python3 -m MODULE`` with the image's interpreter."""
    script = prefix / "bin" / name
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(f"#!/usr/bin/python3\nimport runpy\nrunpy.run_module({module!r}, run_name='__main__')\n")
    script.chmod(0o755)


def normalize_modes(root: Path) -> None:
    """Directories 0755, files 0755 when anyone may run them else 0644: a umask must not reach the digest."""
    for directory, _dirs, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o111 else 0o644)


def _uv(*args: str, env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run([uv(), *args], capture_output=True, text=True, env={**os.environ, **(env or {})})
    if done.returncode != 0:
        raise ImageError(f"uv {args[0]} {args[1]} failed: {done.stderr.strip()[-600:]}")
