"""The runtime image (``asya-sidecar``): the Python base, then one layer with the runtime wheel and its hash-locked
dependencies (``requirements/runtime.txt``) under ``/usr/local``.

Everything that decides its bytes is in the checkout — the runtime's sources, the lock, the base's inputs and
``SOURCE_DATE_EPOCH`` — so ``scripts/build-image`` gives the same manifest digest on any machine with the same cached
base, and the digest pinned in ``asya_pulumi/spec/runtime_pin.py`` can be checked against a fresh build.
The ``revision`` label is a hash of those sources, not the commit id: a commit id would change the digest with every
commit of the project, runtime or not, and no pin could ever match (the release workflow's provenance names the
commit).
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from asya_pulumi.images.oci import ImageConfig, Layer, Layout, tar_bytes
from asya_pulumi.images.python_layer import SITE_PACKAGES, build_wheel, install, normalize_modes, write_entry_script
from asya_pulumi.images.rootfs import USER_ID, Base, compile_python, debian_base

#: The image's name in GHCR; the tag is the runtime's version.
RUNTIME_REPOSITORY = "ghcr.io/asya-sh/asya-runtime"
SOURCE_URL = "https://github.com/asya-sh/asya-pulumi"
#: The default ``SOURCE_DATE_EPOCH`` of every image (2023-11-14): part of the inputs, like the sources.
DEFAULT_EPOCH = 1700000000
#: Prometheus /metrics and /healthz (SidecarConfig.metrics_port's default).
METRICS_PORT = 9100
#: The runtime's sources that reach the image (besides the lock): what the revision label hashes.
RUNTIME_SOURCES = ("runtime/pyproject.toml", "runtime/LICENSE", "runtime/asya_runtime")
RUNTIME_LOCK = "requirements/runtime.txt"
#: The environment every Python image runs with: unbuffered logs, no attempt to write .pyc on a read-only root.
PYTHON_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "LANG": "C.UTF-8",
    "HOME": "/tmp",
    "PYTHONDONTWRITEBYTECODE": "1",
    "PYTHONUNBUFFERED": "1",
}


@dataclass(frozen=True)
class BuiltImage:
    """One image in a layout: its ref there, its registry name, manifest digest and compressed size."""

    ref: str
    name: str
    digest: str
    compressed_bytes: int
    base: Base
    #: The image's layers, base first (another image built on this one shares their blobs).
    layers: tuple[Layer, ...] = ()

    @property
    def pinned(self) -> str:
        """``name@digest``: the reference a spec pins."""
        return f"{self.name}@{self.digest}"


def runtime_version(repo: Path) -> str:
    return str(tomllib.loads((repo / "runtime/pyproject.toml").read_text())["project"]["version"])


def runtime_sources(repo: Path, *, locks: tuple[str, ...] = (RUNTIME_LOCK,)) -> list[str]:
    """The runtime's tracked-or-new files and ``locks`` (names relative to ``repo``): what reaches the image."""
    listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-co", "--exclude-standard", "--",
                             *RUNTIME_SOURCES, *locks], capture_output=True, text=True, check=True).stdout
    return sorted(name for name in set(listed.split()) if (repo / name).is_file() and "__pycache__" not in name)


def sources_revision(repo: Path, *, locks: tuple[str, ...] = (RUNTIME_LOCK,)) -> str:
    """sha256 over :func:`runtime_sources` (names and bytes): changes exactly when the image would."""
    digest = hashlib.sha256()
    for name in runtime_sources(repo, locks=locks):
        digest.update(name.encode() + b"\0" + (repo / name).read_bytes() + b"\0")
    return "sha256:" + digest.hexdigest()


def copy_runtime_project(*, repo: Path, into: Path) -> Path:
    """The runtime project's sources alone in ``into``: the wheel is built from exactly the files the revision
    hashes, never from a ``build/`` directory left in the checkout (setuptools would pack its stale modules)."""
    for name in runtime_sources(repo):
        if name.startswith("runtime/"):
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo / name, target)  # follows runtime/LICENSE, a link to the repository's
    return into / "runtime"


def created_at(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_runtime_image(*, repo: Path, layout: Layout, epoch: int = DEFAULT_EPOCH) -> BuiltImage:
    """Build the runtime image into ``layout`` (ref ``runtime``) and return what was built."""
    base = debian_base(name="python", epoch=epoch)
    version = runtime_version(repo)
    with tempfile.TemporaryDirectory(prefix="asya-runtime-image-") as scratch:
        prefix = Path(scratch) / "usr-local"
        project = copy_runtime_project(repo=repo, into=Path(scratch) / "src")
        wheel = build_wheel(project=project, out=Path(scratch) / "wheel", epoch=epoch)
        install(prefix=prefix, requirements=repo / RUNTIME_LOCK)
        install(prefix=prefix, wheels=[wheel])
        write_entry_script(prefix=prefix, name="asya-sidecar", module="asya_runtime.sidecar")
        packages = finish_layer(layout=layout, base=base, prefix=prefix, epoch=epoch,
                                comment=f"asya-runtime {version} and {RUNTIME_LOCK}")
    base_layer = base_layer_of(layout=layout, base=base)
    labels = image_labels(repo=repo, title="asya-runtime", description="asya sidecar and sinks (asya-sidecar)",
                          base=base)
    config = ImageConfig(entrypoint=["asya-sidecar"], user=f"{USER_ID}:{USER_ID}", env=PYTHON_ENV,
                         labels=labels, exposed_ports=[METRICS_PORT])
    return add_image(layout=layout, ref="runtime", name=f"{RUNTIME_REPOSITORY}:{version}",
                     layers=[base_layer, packages], config=config, epoch=epoch, base=base)


def image_labels(*, repo: Path, title: str, description: str, base: Base,
                 locks: tuple[str, ...] = (RUNTIME_LOCK,)) -> dict[str, str]:
    """The OCI labels of an image built from the runtime's sources and ``locks``."""
    return {
        "org.opencontainers.image.title": title,
        "org.opencontainers.image.description": description,
        "org.opencontainers.image.source": SOURCE_URL,
        "org.opencontainers.image.revision": sources_revision(repo, locks=locks),
        "org.opencontainers.image.version": runtime_version(repo),
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.base.name": f"debian:bookworm ({base.sha256[:16]})",
    }


def finish_layer(*, layout: Layout, base: Base, prefix: Path, epoch: int, comment: str) -> Layer:
    """``prefix`` (a tree for ``/usr/local``) compiled with the base's interpreter, modes normalised, as a layer."""
    compile_python(root=base.root, paths=[f"/usr/local/{SITE_PACKAGES}"], usr_local=prefix)
    normalize_modes(prefix)
    return layout.add_layer(tar=tar_bytes(root=prefix, epoch=epoch, prefix="usr/local"), comment=comment)


def base_layer_of(*, layout: Layout, base: Base) -> Layer:
    """The base's cached, already compressed layer as a blob of ``layout``."""
    return layout.add_compressed_layer(gzipped=base.layer_gz.read_bytes(), diff_id=f"sha256:{base.sha256}",
                                       comment=f"debian bookworm base {base.name}")


def add_image(*, layout: Layout, ref: str, name: str, layers: list[Layer], config: ImageConfig, epoch: int,
              base: Base) -> BuiltImage:
    manifest = layout.add_image(tag=ref, layers=layers, config=config, created=created_at(epoch))
    size = sum(layer.blob.size for layer in layers)
    return BuiltImage(ref=ref, name=name, digest=manifest.digest, compressed_bytes=size, base=base,
                      layers=tuple(layers))

