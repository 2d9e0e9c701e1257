"""Benchmark: build and resolve ActorMeshes of 10/50/100/200 actors under Pulumi's mocks.

    .venv/bin/python bench/mesh_build.py [SIZES...]

Prints, per size, the seconds to construct the components and wait for every registration and output, and the
resources registered per actor. Target: 100 actors in under 10 s on a 2-core machine. Not a test (timings vary).
"""

from __future__ import annotations

import sys
import time

from asya_pulumi.checks.mocked import REGION, MockedDeployment
from asya_pulumi.components import ActorMesh, Keda
from asya_pulumi.spec import AsyncActorSpec, MeshSpec

DEFAULT_SIZES = (10, 50, 100, 200)


def mesh_of(size: int, *, namespace: str = "bench") -> MeshSpec:
    actors = [
        AsyncActorSpec(
            name=f"step-{i:03d}",
            image="example/step:1",
            handler="handlers.step",
            gpu=1 if i % 10 == 0 else None,  # every tenth actor on the GPU pool
        )
        for i in range(size)
    ]
    return MeshSpec(
        namespace=namespace, actors=actors, gpu_pools=["gpu"], routes={"all": [a.name for a in actors]}, region=REGION
    )


def measure(size: int) -> tuple[float, int]:
    spec = mesh_of(size)
    deployment = MockedDeployment.start(stack=f"bench-{size}")

    def program() -> object:
        keda = Keda("keda", cluster_name="bench", region=REGION, mesh_namespaces=["bench"])
        return ActorMesh("bench", spec=spec, cluster_name="bench", keda=keda).queue_urls

    started = time.perf_counter()
    deployment.run(program)
    return time.perf_counter() - started, len(deployment.registered)


def main(argv: list[str]) -> int:
    sizes = [int(a) for a in argv] or list(DEFAULT_SIZES)
    measure(2)  # warm-up: imports and first-use costs are not part of a mesh's build time
    print(f"{'actors':>6} {'seconds':>8} {'resources':>9} {'per actor':>9} {'ms/actor':>8}")
    for size in sizes:
        seconds, resources = measure(size)
        actors = size + 2  # the two sinks
        print(f"{size:>6} {seconds:>8.2f} {resources:>9} {resources / actors:>9.1f} {seconds / actors * 1000:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
