"""What ``scripts/build-image`` and ``asya build`` write into an output directory, and the pin.

``OUT_DIR/oci/`` is one OCI image layout holding every image built (refs: ``runtime``, ``gateway`` — the runtime's
layers and one more — and one per handler image); beside it, per image, ``<ref>.packages.tsv`` (the Debian packages
of its base), ``<ref>.rootfs.sha256`` (the base layer's sha256: the archive moves, this records what was installed)
and for the runtime and the gateway ``<ref>.cdx.json``, a CycloneDX SBOM of its Python distributions;
``images.json`` lists name, ref, digest and compressed size of each.
``--archive`` adds ``<ref>.docker.tar`` for ``docker load``. Nothing beside the layout reaches a digest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.gateway_image import GATEWAY_LOCK, build_gateway_image
from asya_pulumi.images.handler_images import build_handler_images
from asya_pulumi.images.oci import Layout, write_docker_archive
from asya_pulumi.images.runtime_image import DEFAULT_EPOCH, RUNTIME_LOCK, BuiltImage, build_runtime_image

LAYOUT_DIR = "oci"
IMAGES_FILE = "images.json"
#: The SBOM beside each image built from the runtime's sources: its ref's, from its lock.
SBOMS = {"runtime": RUNTIME_LOCK, "gateway": GATEWAY_LOCK}


def build_all(*, repo: Path, out: Path, runtime: bool = True, pipeline_dirs: Sequence[Path] = (),
              archive: bool = False, epoch: int = DEFAULT_EPOCH) -> list[BuiltImage]:
    """Build the runtime and gateway images (when ``runtime``) and the handler images of each of
    ``pipeline_dirs`` into ``out``; two pipelines naming one image is refused (the second would silently replace
    the first)."""
    layout = Layout(out / LAYOUT_DIR)
    built: list[BuiltImage] = []
    if runtime:
        runtime_image = build_runtime_image(repo=repo, layout=layout, epoch=epoch)
        built += [runtime_image, build_gateway_image(repo=repo, layout=layout, runtime=runtime_image, epoch=epoch)]
        for ref, lock in SBOMS.items():
            write_sbom(repo=repo, lock=lock, out=out / f"{ref}.cdx.json")
    for pipeline_dir in pipeline_dirs:
        images = build_handler_images(pipeline_dir=pipeline_dir, layout=layout, epoch=epoch)
        if clash := {i.ref for i in images} & {i.ref for i in built}:
            raise ImageError(f"{pipeline_dir}: image(s) {sorted(clash)} are built by another pipeline too")
        built.extend(images)
    for image in built:
        (out / f"{image.ref}.packages.tsv").write_text(image.base.packages)
        (out / f"{image.ref}.rootfs.sha256").write_text(f"{image.base.sha256}  {image.base.name} base layer\n")
        if archive:
            write_docker_archive(layout=layout, tag=image.ref, out=out / f"{image.ref}.docker.tar",
                                 repo_tag=image.name)
    listed = {i.ref: {"name": i.name, "digest": i.digest, "compressedBytes": i.compressed_bytes} for i in built}
    (out / IMAGES_FILE).write_text(json.dumps(listed, indent=2, sort_keys=True) + "\n")
    return built


def write_sbom(*, repo: Path, lock: str, out: Path) -> None:
    """CycloneDX (JSON) of the runtime and ``lock``'s dependencies, by cyclonedx-bom (requirements/dev.txt), with
    reproducible output (no serial number, no timestamp)."""
    command = [sys.executable, "-m", "cyclonedx_py", "requirements", str(repo / lock),
               "--pyproject", str(repo / "runtime/pyproject.toml"), "--of", "JSON", "--output-reproducible",
               "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"cyclonedx-py failed (pip install cyclonedx-bom): {done.stderr.strip()[-400:]}")
