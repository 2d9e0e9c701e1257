"""Benchmark: render MESHES meshes of ACTORS actors each (one KEDA for them all) under Pulumi's mocks.

    .venv/bin/python -m bench.scale_render [MESHES ACTORS]     # default 20 100: the size docs/scale.md discusses

Prints one JSON line: seconds to build and resolve, the peak RSS of this process (MiB; imports included, and the
RSS just before the render to subtract), the resources, IAM roles and Pod Identity associations registered, and
the quota findings ``asya render`` would print (:mod:`asya_pulumi.checks.quotas`). Run in its own process so the
peak RSS is the render's alone; ``tests/bench/test_scale_render.py`` runs it at a size that fits a CI machine.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from asya_pulumi.checks.mocked import REGION, MockedDeployment
from asya_pulumi.checks.quotas import quota_findings
from asya_pulumi.components import ActorMesh, Keda
from bench.mesh_build import mesh_of

DEFAULT_MESHES, DEFAULT_ACTORS = 20, 100


def namespaces(meshes: int) -> list[str]:
    return [f"mesh-{i:02d}" for i in range(meshes)]


def render(*, meshes: int, actors: int) -> dict[str, object]:
    specs = [mesh_of(actors, namespace=ns) for ns in namespaces(meshes)]
    deployment = MockedDeployment.start(stack=f"scale-{meshes}x{actors}")

    def program() -> None:
        keda = Keda("keda", cluster_name="scale", region=REGION, mesh_namespaces=namespaces(meshes))
        for spec in specs:
            ActorMesh(spec.namespace, spec=spec, cluster_name="scale", keda=keda)

    rss_before = _peak_rss_mib()
    started = time.perf_counter()
    deployment.run(program)
    seconds = time.perf_counter() - started
    registered = deployment.registered
    return {
        "meshes": meshes,
        "actors_per_mesh": actors,
        "seconds": round(seconds, 2),
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_render_mib": rss_before,
        "resources": len(registered),
        "iam_roles": len(deployment.of_type("aws:iam/role:Role")),
        "pod_identity_associations": len(deployment.of_type("aws:eks/podIdentityAssociation:PodIdentityAssociation")),
        "quota_findings": [f.message() for f in quota_findings(registered=registered)],
    }


def _peak_rss_mib() -> int:
    """This process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def main(argv: list[str]) -> int:
    meshes, actors = (int(argv[0]), int(argv[1])) if argv else (DEFAULT_MESHES, DEFAULT_ACTORS)
    print(json.dumps(render(meshes=meshes, actors=actors)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
