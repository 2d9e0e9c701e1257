"""What ``scripts/build-image`` and ``asya build`` write into an output directory, and the pin.

``OUT_DIR/oci/`` is one OCI image layout holding every image built (refs: ``runtime``, and one per handler image);
beside it, per image, ``<ref>.packages.tsv`` (the Debian packages of its base), ``<ref>.rootfs.sha256`` (the base
layer's sha256: the archive moves, this records what was installed) and for the runtime ``runtime.cdx.json``, a
CycloneDX SBOM of its Python distributions; ``images.json`` lists name, ref, digest and compressed size of each.
``--archive`` adds ``<ref>.docker.tar`` for ``docker load``. Nothing beside the layout reaches a digest.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.handler_images import build_handler_images
from asya_pulumi.images.oci import Layout, write_docker_archive
from asya_pulumi.images.runtime_image import DEFAULT_EPOCH, RUNTIME_LOCK, BuiltImage, build_runtime_image

LAYOUT_DIR = "oci"
IMAGES_FILE = "images.json"
SBOM_FILE = "runtime.cdx.json"


def build_all(*, repo: Path, out: Path, runtime: bool = True, pipeline_dirs: Sequence[Path] = (),
              archive: bool = False, epoch: int = DEFAULT_EPOCH) -> list[BuiltImage]:
    """Build the runtime image (when ``runtime``) and the handler images of each of ``pipeline_dirs`` into
    ``out``; two pipelines naming one image is refused (the second would silently replace the first)."""
    layout = Layout(out / LAYOUT_DIR)
    built: list[BuiltImage] = []
    if runtime:
        built.append(build_runtime_image(repo=repo, layout=layout, epoch=epoch))
        write_sbom(repo=repo, out=out / SBOM_FILE)
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


def write_sbom(*, repo: Path, out: Path) -> None:
    """CycloneDX (JSON) of the runtime and its locked dependencies, by cyclonedx-bom (requirements/dev.txt), with
    reproducible output (no serial number, no timestamp)."""
    command = [sys.executable, "-m", "cyclonedx_py", "requirements", str(repo / RUNTIME_LOCK),
               "--pyproject", str(repo / "runtime/pyproject.toml"), "--of", "JSON", "--output-reproducible",
               "-o", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise ImageError(f"cyclonedx-py failed (pip install cyclonedx-bom): {done.stderr.strip()[-400:]}")
