"""The images, built once per session, and what the pod tests need: the images loaded into podman, the dev stack
rendered by ``asya render``, the rendered namespace's queues and bucket on the session's embedded broker.

Building needs root and mmdebstrap (the Debian bases; cached under ~/.cache/asya/images after the first ~60 s);
running needs podman and runc. Without them these tests are skipped and say what to install (scripts/test installs
them as root on Debian/Ubuntu).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e.conftest import run_asya

from asya_pulumi.images.build import LAYOUT_DIR, build_all
from asya_pulumi.images.podman import load_image, missing_tools, podman
from asya_pulumi.images.pods import POD_LABEL, read_rendered
from asya_pulumi.images.runtime_image import BuiltImage
from asya_pulumi.local.broker import LocalBroker
from asya_pulumi.local.queues import create_bucket, create_queues, mesh_queue_settings
from asya_pulumi.spec import load_pipeline_dir

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: The pipeline and namespace of the dev stack (stacks/Pulumi.dev.yaml) that ``asya render`` renders.
RENDERED_PIPELINE = EXAMPLES / "image-scoring"
RENDERED_NAMESPACE = "scoring-dev"


def build_tools_missing() -> list[str]:
    missing = [] if shutil.which("mmdebstrap") else ["mmdebstrap"]
    return missing + ([] if os.geteuid() == 0 else ["root"])


def skip_without_build_tools() -> None:
    if missing := build_tools_missing():
        pytest.skip(f"building images needs {', '.join(missing)} (apt-get install mmdebstrap, as root)")


def skip_without_podman() -> None:
    if missing := missing_tools():
        pytest.skip(f"running images needs {', '.join(missing)} (apt-get install podman runc, as root)")


@dataclass(frozen=True)
class Built:
    """One build of the runtime image and the examples' handler images into ``out``."""

    out: Path
    images: dict[str, BuiltImage]

    @property
    def layout(self) -> Path:
        return self.out / LAYOUT_DIR

    def listed(self) -> dict[str, Any]:
        return dict(json.loads((self.out / "images.json").read_text()))


def build_into(out: Path) -> Built:
    """The runtime image and both examples' handler images, in one layout under ``out``."""
    images = build_all(repo=REPO, out=out, pipeline_dirs=[EXAMPLES / "image-scoring", EXAMPLES / "text-chunking"])
    return Built(out=out, images={image.ref: image for image in images})


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    """The runtime image and both examples' handler images, in one layout."""
    skip_without_build_tools()
    return build_into(tmp_path_factory.mktemp("images"))


@pytest.fixture(scope="session")
def loaded(built: Built) -> Built:
    """The built images in podman's storage under their registry names."""
    skip_without_podman()
    for image in built.images.values():
        load_image(layout=built.layout, ref=image.ref, name=image.name)
    return built


@dataclass(frozen=True)
class Rendered:
    """The dev stack's mesh namespace as ``asya render --out`` wrote it, its spec and its result bucket."""

    deployments: dict[str, dict[str, Any]]
    config_maps: list[dict[str, Any]]
    bucket: str


@pytest.fixture(scope="session")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    out = tmp_path_factory.mktemp("render")
    run = run_asya("render", "stacks", "--stack", "dev", "--out", str(out))
    assert run.returncode == 0, run.stdout + run.stderr
    deployments, config_maps = read_rendered(out / RENDERED_NAMESPACE)
    env = {e["name"]: e.get("value") for e in deployments["success-sink"]["spec"]["template"]["spec"]
           ["containers"][0]["env"]}
    return Rendered(deployments=deployments, config_maps=config_maps, bucket=str(env["ASYA_RESULT_BUCKET"]))


@pytest.fixture
def rendered_queues(broker: LocalBroker, sqs: Any, s3: Any, rendered: Rendered) -> dict[str, str]:
    """The rendered namespace's queues (as ``pulumi up`` makes them) and bucket on the broker, emptied; actor →
    queue URL."""
    mesh = load_pipeline_dir(RENDERED_PIPELINE).with_overrides(namespace=RENDERED_NAMESPACE)
    urls = create_queues(sqs=sqs, settings=mesh_queue_settings(mesh))
    for url in urls.values():
        sqs.purge_queue(QueueUrl=url)
    create_bucket(s3=s3, bucket=rendered.bucket, region="us-east-1")
    return urls


@pytest.fixture
def no_pods_left() -> Iterator[None]:
    """Remove every pod the test played, however it ended."""
    yield
    listed = podman("pod", "ps", "--quiet", "--filter", f"label={POD_LABEL}", check=False).stdout.split()
    if listed:
        podman("pod", "rm", "--force", "--time", "5", *listed, check=False, timeout=120)
