"""The runtime image as scripts/build-image writes it: reproducible, non-root, labelled, answering ``--version``,
no compilers or package manager inside, and its SBOM, Debian package list and base checksum beside it."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from asya_pulumi.images.oci import Layout
from asya_pulumi.images.podman import podman
from asya_pulumi.images.rootfs import base_key, debian_base
from asya_runtime import __version__ as RUNTIME_VERSION
from images.conftest import Built, build_into

#: Programs that must not be in any image: compilers, build tools and package managers.
FORBIDDEN = ("apt", "apt-get", "dpkg", "gcc", "cc", "c++", "g++", "make", "ld", "as", "pip", "pip3")


def _manifest(layout: Path, digest: str) -> dict:
    return json.loads(Layout(layout).blob_path(digest).read_bytes())


def _config(layout: Path, digest: str) -> dict:
    return json.loads(Layout(layout).blob_path(_manifest(layout, digest)["config"]["digest"]).read_bytes())


def _names(layout: Path, digest: str) -> set[str]:
    names: set[str] = set()
    for layer in _manifest(layout, digest)["layers"]:
        data = gzip.decompress(Layout(layout).blob_path(layer["digest"]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            names.update(tar.getnames())
    return names


def test_two_builds_give_the_same_digests(built: Built, tmp_path: Path):
    started = time.monotonic()
    again = build_into(tmp_path / "again")
    print(f"second build (cached bases): {time.monotonic() - started:.1f} s")
    assert {ref: i.digest for ref, i in again.images.items()} == {ref: i.digest for ref, i in built.images.items()}
    assert again.listed() == built.listed()


def test_a_fresh_base_is_the_same_layer(built: Built, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """mmdebstrap again, into an empty cache: the same bytes (while the archive has not moved)."""
    cached = built.images["runtime"].base
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    fresh = debian_base(name="python", epoch=1700000000)
    assert fresh.root.parent.name == f"python-{base_key(name='python', epoch=1700000000)}"
    assert fresh.packages == cached.packages
    assert fresh.sha256 == cached.sha256


def test_config_labels_user_and_entrypoint(built: Built):
    runtime = built.images["runtime"]
    config = _config(built.layout, runtime.digest)["config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["asya-sidecar"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == RUNTIME_VERSION
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
    assert labels["org.opencontainers.image.revision"].startswith("sha256:")
    assert _manifest(built.layout, runtime.digest)["annotations"] == labels
    print(f"runtime image: {runtime.pinned}, {runtime.compressed_bytes / 1e6:.1f} MB compressed")
    assert runtime.compressed_bytes < 80e6


def test_no_compiler_or_package_manager_in_any_image(built: Built):
    for ref, image in built.images.items():
        names = _names(built.layout, image.digest)
        found = sorted(n for n in names if n.rsplit("/", 1)[-1] in FORBIDDEN and n.startswith(("usr/bin", "usr/sbin",
                                                                                             "usr/local/bin")))
        assert not found, f"{ref}: {found}"
        assert not any(n.startswith("var/lib/dpkg/") for n in names), ref
        assert not any(n.endswith(".pyc") and "__pycache__" not in n for n in names), ref


def test_sbom_packages_and_checksum_beside_the_image(built: Built):
    sbom = json.loads((built.out / "runtime.cdx.json").read_text())
    assert sbom["bomFormat"] == "CycloneDX"
    names = {c["name"] for c in sbom["components"]}
    assert {"aiobotocore", "botocore", "pydantic", "prometheus-client"} <= names
    assert sbom["metadata"]["component"]["name"] == "asya-runtime"
    packages = (built.out / "runtime.packages.tsv").read_text().splitlines()
    assert any(line.startswith("python3.11\t") for line in packages)
    assert not any(line.startswith(("gcc-12\t", "apt\t")) for line in packages)
    base = built.images["runtime"].base
    assert (built.out / "runtime.rootfs.sha256").read_text().split()[0] == base.sha256
    assert f"sha256:{base.sha256}" == _config(built.layout, built.images["runtime"].digest)["rootfs"]["diff_ids"][0]


def test_the_image_runs_as_non_root_and_prints_its_version(loaded: Built):
    name = loaded.images["runtime"].pinned  # name:tag@sha256:… resolves to the loaded layout
    assert podman("run", "--rm", "--pull", "never", "--read-only", name, "--version").stdout.strip() == (
        f"asya-sidecar {RUNTIME_VERSION}")
    ident = podman("run", "--rm", "--pull", "never", "--entrypoint", "id", name).stdout
    assert ident.startswith("uid=10001(asya) gid=10001(asya)")
    for ref in ("example-image-scoring-0.1.0", "example-text-chunking-node-0.1.0"):
        image = loaded.images[ref]
        answer = podman("run", "--rm", "--pull", "never", image.name, "--version").stdout
        assert answer.startswith("v18." if "node" in ref else "Python 3.11"), (ref, answer)


def test_the_unpacked_image_prints_its_version_without_podman(built: Built, tmp_path: Path):
    """The acceptance check that needs no container engine: unpack the layers, chroot as uid 10001."""
    root = tmp_path / "root"
    root.mkdir()
    for layer in _manifest(built.layout, built.images["runtime"].digest)["layers"]:
        with tarfile.open(Layout(built.layout).blob_path(layer["digest"])) as tar:
            # our own image's layers: trusted as they are (Python < 3.11.4, e.g. Debian's 3.11.2, has no filter=;
            # its extractall already behaves as "fully_trusted")
            tar.extractall(root, **({"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}))
    command = ["/usr/sbin/chroot", "--userspec=10001:10001", str(root), "/usr/local/bin/asya-sidecar", "--version"]
    done = subprocess.run(command, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=60)
    assert done.stdout.strip() == f"asya-sidecar {RUNTIME_VERSION}", done.stderr
