"""`scripts/setup` on the OS's own Python, as a new user on Debian/Ubuntu runs it.

That Python is "externally managed" (PEP 668): ``pip install --user`` into it fails, and there is no uv on PATH. The
test copies the checkout (tracked and untracked, not ignored, files), scrubs PATH down to the system directories and
the OS's Node.js (if any), and gives the run an empty per-user cache, so setup must bootstrap its own uv and install
the broker (on the wheel's Node.js where the OS's is older than 22.13). uv's, pip's and npm's download caches stay
the real ones: the run is quick and needs little of the network.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from e2e.conftest import REPO

OS_PYTHON = Path("/usr/bin/python3.11")
SYSTEM_PATH = ("/usr/bin", "/bin")


def _copy_checkout(destination: Path) -> None:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO, capture_output=True, check=True,
    ).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = REPO / name
        if not source.exists() and not source.is_symlink():  # deleted in the working tree
            continue
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_symlink():
            target.symlink_to(os.readlink(source))
        else:
            shutil.copy2(source, target)


def _scrubbed_env(cache: Path) -> dict[str, str]:
    node = shutil.which("node")  # the OS's, if any: the broker runs on it when >= 22.13, else on the wheel's
    path = os.pathsep.join(dict.fromkeys([*([str(Path(node).parent)] if node else []), *SYSTEM_PATH]))
    if shutil.which("uv", path=path):
        pytest.skip(f"uv is installed system-wide ({shutil.which('uv', path=path)}): nothing to bootstrap")
    user_cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    uv_cache = subprocess.run(
        [sys.executable, "-m", "uv", "cache", "dir"], capture_output=True, text=True, check=True
    ).stdout.strip()
    env = {
        key: value for key, value in os.environ.items()
        if not key.startswith(("PYENV", "UV_", "VIRTUAL_ENV", "PYTHON", "ASYA_", "PYTEST"))
    }
    return {
        **env,
        "PATH": path,
        "ASYA_PYTHON": str(OS_PYTHON),
        "XDG_CACHE_HOME": str(cache),  # nothing of asya's there yet: no uv, no broker
        "UV_CACHE_DIR": uv_cache,
        "PIP_CACHE_DIR": str(user_cache / "pip"),
    }


@pytest.mark.timeout(600)
@pytest.mark.skipif(
    not (OS_PYTHON.is_file() and list(Path("/usr/lib/python3.11").glob("EXTERNALLY-MANAGED"))),
    reason="needs the OS's externally managed /usr/bin/python3.11 (Debian/Ubuntu)",
)
def test_setup_bootstraps_on_the_externally_managed_os_python(tmp_path: Path):
    checkout, cache = tmp_path / "checkout", tmp_path / "cache"
    _copy_checkout(checkout)
    env = _scrubbed_env(cache)

    started = time.monotonic()
    first = subprocess.run(["scripts/setup"], cwd=checkout, env=env, capture_output=True, text=True, timeout=540)
    first_s = time.monotonic() - started

    assert first.returncode == 0, first.stdout + first.stderr
    assert "==> uv " in first.stdout and "into its own venv" in first.stdout
    [uv_venv] = cache.glob("asya/uv-*")
    assert (uv_venv / "bin" / "uv").is_file()
    assert Path(os.path.realpath(checkout / ".venv" / "bin" / "python")) == Path(os.path.realpath(OS_PYTHON))
    probe = "import sys, asya_pulumi, asya_runtime; print(sys.base_prefix, asya_pulumi.__file__)"
    base_prefix, module = subprocess.run(
        [checkout / ".venv" / "bin" / "python", "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True,
        env=env,
    ).stdout.split()
    assert base_prefix == "/usr" and module.startswith(str(checkout))  # the OS's Python, the copy's editable install
    assert [p.name for p in cache.glob("asya/fauxqs-*/.asya-complete")] == [".asya-complete"]

    again = subprocess.run(["scripts/setup"], cwd=checkout, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr  # idempotent and quiet
    print(f"scripts/setup on {OS_PYTHON}: {first_s:.0f}s from an empty per-user cache")


@pytest.mark.skipif(not OS_PYTHON.is_file(), reason="needs /usr/bin/python3.11")
def test_setup_without_the_venv_module_names_the_package_to_install(tmp_path: Path):
    """Ubuntu's python3.11 without python3.11-venv: `-m venv` fails (no ensurepip); setup says what to install."""
    fake_python = tmp_path / "python3.11"
    fake_python.write_text(
        f'#!/bin/sh\nif [ "$1 $2" = "-m venv" ]; then echo "Error: ensurepip is not available" >&2; exit 1; fi\n'
        f'exec {OS_PYTHON} "$@"\n'
    )
    fake_python.chmod(0o755)
    checkout = tmp_path / "checkout"
    _copy_checkout(checkout)
    env = {**_scrubbed_env(tmp_path / "cache"), "ASYA_PYTHON": str(fake_python)}

    run = subprocess.run(["scripts/setup"], cwd=checkout, env=env, capture_output=True, text=True, timeout=60)

    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.splitlines()[-1] == (
        f"error: '{fake_python} -m venv' failed; on Debian/Ubuntu: apt install python3.11-venv (or put uv on PATH)"
    )
    assert not (checkout / ".venv").exists()
