"""One real control plane (kube-apiserver, controller-manager, scheduler, etcd, KWOK, KEDA) for the cluster tests.

The binaries are built from the Go module proxy on first use and cached (asya_pulumi/kube/build.py); scripts/test
starts that build in the background at the start of a run, and these tests are collected last so that, on a cold
machine, the build overlaps the rest of the suite. Without Go on PATH they are skipped with the reason.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.kube import require_go

from asya_pulumi.cli.kube import LOCAL_CLUSTER
from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.spec import ClusterSpec

KUBE_TESTS = Path(__file__).resolve().parent


#: The first cluster test may wait for the background build (cold: tens of minutes), which pytest-timeout counts.
FIRST_BUILD_TIMEOUT_S = 3600


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the cluster tests after every other test (see the module docstring), under a timeout the build fits."""
    items.sort(key=lambda item: KUBE_TESTS in Path(str(item.path)).parents)
    for item in items:
        if KUBE_TESTS in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.timeout(FIRST_BUILD_TIMEOUT_S))


@pytest.fixture(scope="session")
def local_cluster() -> ClusterSpec:
    return ClusterSpec.model_validate(LOCAL_CLUSTER)


@pytest.fixture(scope="session")
def control_plane(tmp_path_factory: pytest.TempPathFactory, local_cluster: ClusterSpec) -> Iterator[ControlPlane]:
    """A control plane of the session's own; ``ASYA_KUBE_TEST_DIR=DIR`` keeps it (and its logs) in DIR after the run,
    for looking into a failure with kubectl."""
    require_go()
    kept = os.environ.get("ASYA_KUBE_TEST_DIR")
    plane = ControlPlane(Path(kept) if kept else tmp_path_factory.mktemp("kube") / "plane")
    plane.up(cluster=local_cluster, notice=sys.stderr)
    try:
        yield plane
        stopped = [name for name, state in plane.status().items() if state == "stopped"]
        assert stopped == [], f"control-plane components exited during the run: {stopped}; logs in {plane.directory}"
    finally:
        if not kept:
            plane.down(purge=True)
