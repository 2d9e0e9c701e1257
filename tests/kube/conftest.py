"""One real control plane (kube-apiserver, controller-manager, scheduler, etcd, KWOK, KEDA) for the cluster tests.

The binaries are built from the Go module proxy on first use and cached (asya_pulumi/kube/build.py); scripts/test
starts that build in the background at the start of a run, and these tests are collected last so that, on a cold
machine, the build overlaps the rest of the suite. Without Go on PATH they are skipped with the reason.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.kube import require_go

from asya_pulumi.cli.kube import LOCAL_CLUSTER
from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.spec import ClusterSpec

KUBE_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the cluster tests after every other test (see the module docstring)."""
    items.sort(key=lambda item: KUBE_TESTS in Path(str(item.path)).parents)


@pytest.fixture(scope="session")
def local_cluster() -> ClusterSpec:
    return ClusterSpec.model_validate(LOCAL_CLUSTER)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory, local_cluster: ClusterSpec) -> Iterator[ControlPlane]:
    require_go()
    plane = ControlPlane(tmp_path_factory.mktemp("kube") / "plane")
    plane.up(cluster=local_cluster, notice=sys.stderr)
    try:
        yield plane
    finally:
        plane.down(purge=True)
