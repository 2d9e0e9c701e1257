"""Helpers of the cluster tests (tests/kube) that are not fixtures."""

from __future__ import annotations

import shutil

import pytest


def require_go() -> None:
    """Skip, saying why, where the control plane cannot be built (no Go toolchain on PATH)."""
    if shutil.which("go") is None:
        pytest.skip("the local control plane is built from Go sources and `go` is not on PATH (install Go >= 1.25)")
