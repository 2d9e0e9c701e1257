"""Reproducible layers and OCI image layouts, written byte for byte by us rather than by a container engine.

Why not umoci or buildah: every byte that reaches a digest is decided here — tar entries sorted by name, one fixed
mtime (``SOURCE_DATE_EPOCH``), numeric owners, no device nodes, gzip without a name or timestamp — so two builds from
the same inputs give the same manifest digest whatever tool versions the machine has (only zlib's output for a
given level matters). The layout is the OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``) that
``podman pull oci:DIR:TAG`` and ``skopeo copy`` read; :func:`write_docker_archive` writes the ``docker load`` tar.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import stat
import tarfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MANIFEST_TYPE = "application/vnd.oci.image.manifest.v1+json"
CONFIG_TYPE = "application/vnd.oci.image.config.v1+json"
LAYER_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip"
REF_NAME = "org.opencontainers.image.ref.name"
#: zlib level of every layer: the digest depends on it, so it is part of the format, not a tuning knob.
GZIP_LEVEL = 6
#: Directories whose contents a container runtime provides; the layer keeps them empty.
RUNTIME_MOUNTS = ("dev", "proc", "sys", "run")


@dataclass(frozen=True)
class Blob:
    """One content-addressed blob: its bytes' sha256 and size, and its media type."""

    digest: str
    size: int
    media_type: str

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Layer:
    """A gzipped layer tar (``blob``) and the sha256 of the uncompressed tar (``diff_id``, the config's name)."""

    blob: Blob
    diff_id: str
    comment: str


@dataclass
class ImageConfig:
    """What the image runs and says about itself: OCI config fields, labels doubling as manifest annotations."""

    entrypoint: list[str]
    user: str
    env: dict[str, str] = field(default_factory=dict)
    working_dir: str = "/"
    labels: dict[str, str] = field(default_factory=dict)
    exposed_ports: list[int] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)


def tar_bytes(*, root: Path, epoch: int, prefix: str = "") -> bytes:
    """The tree under ``root`` as an uncompressed tar: entries sorted, every mtime ``epoch``, owners numeric as on
    disk (uid/gid, no names), sockets and device nodes left out, hard links kept as links to the first name.

    ``prefix`` places the tree below a directory of the image (``usr/local``), whose parents are added too.
    """
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        parts = [p for p in prefix.strip("/").split("/") if p]
        for depth in range(1, len(parts) + 1):
            info = tarfile.TarInfo("/".join(parts[:depth]))
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, epoch
            tar.addfile(info)
        seen: dict[tuple[int, int], str] = {}
        for path in _walk_sorted(root):
            relative = path.relative_to(root).as_posix()
            name = "/".join([*parts, relative])
            st = path.lstat()
            if stat.S_ISSOCK(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                continue
            if stat.S_ISFIFO(st.st_mode):
                continue
            info = tarfile.TarInfo(name)
            info.mode, info.uid, info.gid, info.mtime = stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, epoch
            if stat.S_ISDIR(st.st_mode):
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif stat.S_ISLNK(st.st_mode):
                info.type, info.linkname = tarfile.SYMTYPE, os.readlink(path)
                tar.addfile(info)
            elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen:
                info.type, info.linkname = tarfile.LNKTYPE, seen[(st.st_dev, st.st_ino)]
                tar.addfile(info)
            else:
                if st.st_nlink > 1:
                    seen[(st.st_dev, st.st_ino)] = name
                info.size = st.st_size
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
    return buffer.getvalue()


def _walk_sorted(directory: Path, *, top: bool = True) -> Iterable[Path]:
    """Every path under ``directory`` depth first in byte order of names; runtime mount points' contents skipped."""
    for entry in sorted(os.scandir(directory), key=lambda e: e.name.encode()):
        path = Path(entry.path)
        yield path
        if entry.is_dir(follow_symlinks=False) and not (top and entry.name in RUNTIME_MOUNTS):
            yield from _walk_sorted(path, top=False)


def gzip_layer(tar: bytes) -> bytes:
    """gzip without a file name or timestamp, at the one level every layer uses."""
    return gzip.compress(tar, compresslevel=GZIP_LEVEL, mtime=0)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Layout:
    """An OCI image layout directory; blobs are shared by every image tagged in it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
        index = root / "index.json"
        self._manifests: list[dict[str, Any]] = (
            json.loads(index.read_text())["manifests"] if index.exists() else []
        )

    def put(self, data: bytes, *, media_type: str) -> Blob:
        digest = sha256(data)
        path = self.blob_path(digest)
        if not path.exists():
            path.write_bytes(data)
        return Blob(digest=digest, size=len(data), media_type=media_type)

    def blob_path(self, digest: str) -> Path:
        return self.root / "blobs" / "sha256" / digest.removeprefix("sha256:")

    def add_layer(self, *, tar: bytes, comment: str) -> Layer:
        """Gzip ``tar`` (no file name, mtime 0) into a blob."""
        return self.add_compressed_layer(gzipped=gzip_layer(tar), diff_id=sha256(tar), comment=comment)

    def add_compressed_layer(self, *, gzipped: bytes, diff_id: str, comment: str) -> Layer:
        """A layer compressed earlier by :func:`gzip_layer` (a cached base), with its tar's ``diff_id``."""
        return Layer(blob=self.put(gzipped, media_type=LAYER_TYPE), diff_id=diff_id, comment=comment)

    def add_image(self, *, tag: str, layers: list[Layer], config: ImageConfig, created: str) -> Blob:
        """Write the config and manifest of an image and tag it in ``index.json`` (replacing the tag); returns the
        manifest blob, whose digest is the image's digest."""
        config_json = {
            "created": created,
            "architecture": "amd64",
            "os": "linux",
            "config": _config_fields(config),
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": layer.comment} for layer in layers],
        }
        config_blob = self.put(_canonical(config_json), media_type=CONFIG_TYPE)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MANIFEST_TYPE,
            "config": config_blob.descriptor(),
            "layers": [layer.blob.descriptor() for layer in layers],
            "annotations": dict(sorted(config.labels.items())),
        }
        manifest_blob = self.put(_canonical(manifest), media_type=MANIFEST_TYPE)
        self._manifests = [m for m in self._manifests if m.get("annotations", {}).get(REF_NAME) != tag]
        self._manifests.append(manifest_blob.descriptor(annotations={REF_NAME: tag}))
        self._manifests.sort(key=lambda m: m["annotations"][REF_NAME])
        (self.root / "index.json").write_bytes(_canonical({"schemaVersion": 2, "manifests": self._manifests}))
        return manifest_blob

    def digest_of(self, tag: str) -> str:
        for manifest in self._manifests:
            if manifest["annotations"][REF_NAME] == tag:
                return str(manifest["digest"])
        raise KeyError(tag)


def _config_fields(config: ImageConfig) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "User": config.user,
        "Env": [f"{k}={v}" for k, v in sorted(config.env.items())],
        "Entrypoint": config.entrypoint,
        "WorkingDir": config.working_dir,
        "Labels": dict(sorted(config.labels.items())),
    }
    if config.cmd:
        fields["Cmd"] = config.cmd
    if config.exposed_ports:
        fields["ExposedPorts"] = {f"{port}/tcp": {} for port in sorted(config.exposed_ports)}
    return fields


def _canonical(value: Mapping[str, Any] | list[Any]) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode()


def write_docker_archive(*, layout: Layout, tag: str, out: Path, repo_tag: str) -> None:
    """The image ``tag`` of ``layout`` as a ``docker load`` tar (``manifest.json`` + the same blobs), tagged
    ``repo_tag``; entries fixed as in :func:`tar_bytes`, so the archive is as reproducible as the layout."""
    manifest = json.loads(layout.blob_path(layout.digest_of(tag)).read_bytes())
    config = manifest["config"]["digest"]
    layers = [layer["digest"] for layer in manifest["layers"]]
    entries = {f"blobs/sha256/{d.removeprefix('sha256:')}": layout.blob_path(d) for d in [config, *layers]}
    docker_manifest = [
        {"Config": f"blobs/sha256/{config.removeprefix('sha256:')}", "RepoTags": [repo_tag],
         "Layers": [f"blobs/sha256/{d.removeprefix('sha256:')}" for d in layers]}
    ]
    with tarfile.open(out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [("manifest.json", _canonical(docker_manifest))] + [
            (name, path.read_bytes()) for name, path in sorted(entries.items())
        ]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            tar.addfile(info, io.BytesIO(data))

