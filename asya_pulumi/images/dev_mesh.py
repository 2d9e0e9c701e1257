"""``asya dev --containers``: every actor and sink of the local mesh as its pod, from the images built here.

What runs is what the cluster would run: the mesh's Deployments as the ``ActorMesh`` component renders them
(:func:`asya_pulumi.kube.local_target.mesh_objects`, under Pulumi's mocks), played by podman with the changes
:mod:`asya_pulumi.images.pods` lists, plus the two a local target needs (as ``--kube`` makes for KEDA): the
sidecars use the local result bucket, and the runtime image is the one just built from the checkout (the spec's
pinned digest is what a release pushes; the checkout may have moved on). Images are built into
``~/.cache/asya/images/dev/<namespace>`` (seconds once the Debian bases are cached) and loaded into podman.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, Any

from asya_pulumi.images.build import LAYOUT_DIR, build_all
from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.podman import load_image, missing_tools
from asya_pulumi.images.pods import play, playable, remove, wait_probes
from asya_pulumi.images.rootfs import cache_dir
from asya_pulumi.local.broker import free_port
from asya_pulumi.local.plan import LOCAL_AWS_ENV, MeshPlan

#: A pod's probes may take this long to pass (the handler imports its module; the sidecar imports aiobotocore).
POD_READY_TIMEOUT_S = 120.0


def checkout() -> Path:
    """The checkout this package runs from: the runtime image is built from its ``runtime/``."""
    repo = Path(__file__).resolve().parents[2]
    if not (repo / "runtime" / "pyproject.toml").is_file():
        raise ImageError("--containers builds the runtime image from the sources: run asya from a checkout")
    return repo


class ContainerMesh:
    """The mesh's pods, played once the queues exist; :meth:`close` removes them (each drains on SIGTERM)."""

    def __init__(self, *, plan: MeshPlan, notice: IO[str]) -> None:
        if missing := missing_tools():
            raise ImageError(f"--containers needs {', '.join(missing)} (apt-get install podman runc, as root)")
        self.plan = plan
        self.notice = notice
        self.pods: list[str] = []

    @property
    def replicas(self) -> dict[str, int]:
        return {name: 1 for name in self.pods}

    def start(self, *, sqs_endpoint: str, s3_endpoint: str) -> None:
        """Build and load the images, play every pod, wait until each one's probes pass."""
        started = time.monotonic()
        out = cache_dir() / "dev" / self.plan.mesh.namespace
        built = build_all(repo=checkout(), out=out, pipeline_dirs=[self.plan.pipeline_dir])
        for image in built:
            load_image(layout=out / LAYOUT_DIR, ref=image.ref, name=image.name)
        runtime = built[0]
        print(f"built and loaded {len(built)} images in {time.monotonic() - started:.1f} s", file=self.notice,
              flush=True)
        deployments, config_maps = self._rendered(runtime_image=runtime.pinned)
        env = {"ASYA_SQS_ENDPOINT": sqs_endpoint, "ASYA_S3_ENDPOINT": s3_endpoint,
               "ASYA_RESULT_BUCKET": self.plan.bucket, "ASYA_AWS_REGION": self.plan.region, **LOCAL_AWS_ENV}
        ports = {name: free_port() for name in deployments}
        documents = [*config_maps, *(playable(deployment=d, pod_name=self._pod(name), metrics_port=ports[name],
                                              runtime_env=env) for name, d in deployments.items())]
        self.pods = sorted(deployments)
        play(documents=documents)
        for name, deployment in deployments.items():
            wait_probes(pod_name=self._pod(name), deployment=deployment, metrics_port=ports[name],
                        timeout_s=POD_READY_TIMEOUT_S)
        print(f"{len(deployments)} pods ready in {time.monotonic() - started:.1f} s (podman pod ps)",
              file=self.notice, flush=True)

    def _pod(self, deployment: str) -> str:
        return f"{self.plan.mesh.namespace}-{deployment}"

    def _rendered(self, *, runtime_image: str) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
        from asya_pulumi.kube.local_target import mesh_objects  # pulumi: only for --containers

        objects = mesh_objects(self.plan.mesh.with_overrides(runtime_image=runtime_image))
        deployments = {o["metadata"]["name"]: o for o in objects if o.get("kind") == "Deployment"}
        config_maps = [o for o in objects if o.get("kind") == "ConfigMap"]
        return deployments, config_maps

    def close(self) -> None:
        if self.pods:
            remove(pod_names=[self._pod(name) for name in self.pods])
        self.pods = []
