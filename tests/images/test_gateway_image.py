"""The gateway image as scripts/build-image writes it: the runtime image's layers shared blob for blob, one layer
more with only what the runtime lacks, non-root, its SBOM beside it, and a container that serves ``/health``."""

from __future__ import annotations

import gzip
import io
import json
import tarfile

from asya_pulumi.images.gateway_image import GATEWAY_PORT
from asya_pulumi.images.oci import Layout
from images.conftest import Built


def _manifest(built: Built, ref: str) -> dict:
    return json.loads(Layout(built.layout).blob_path(built.images[ref].digest).read_bytes())


def _layer_names(built: Built, digest: str) -> set[str]:
    data = gzip.decompress(Layout(built.layout).blob_path(digest).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {name for name in tar.getnames() if not tar.getmember(name).isdir()}


def test_the_gateway_image_is_the_runtime_image_and_one_layer(built: Built):
    runtime, gateway = _manifest(built, "runtime"), _manifest(built, "gateway")
    runtime_layers = [layer["digest"] for layer in runtime["layers"]]
    gateway_layers = [layer["digest"] for layer in gateway["layers"]]
    assert gateway_layers[:-1] == runtime_layers
    own = gateway["layers"][-1]
    print(f"gateway layer: {own['size'] / 1e6:.1f} MB compressed (runtime image "
          f"{built.images['runtime'].compressed_bytes / 1e6:.1f} MB)")
    names = _layer_names(built, own["digest"])
    assert "usr/local/bin/asya-gateway" in names
    assert any("/mcp/" in name for name in names) and any("/a2a/" in name for name in names)
    # nothing of the runtime layer again: the layer adds distributions, it never replaces one
    assert not names & _layer_names(built, runtime_layers[-1]) - {"usr/local/bin"}


def test_config_user_entrypoint_and_port(built: Built):
    config = json.loads(Layout(built.layout).blob_path(_manifest(built, "gateway")["config"]["digest"]).read_bytes())
    assert config["config"]["User"] == "10001:10001"
    assert config["config"]["Entrypoint"] == ["asya-gateway"]
    assert config["config"]["ExposedPorts"] == {f"{GATEWAY_PORT}/tcp": {}}
    assert config["config"]["Labels"]["org.opencontainers.image.title"] == "asya-gateway"


def test_sbom_beside_the_gateway_image(built: Built):
    sbom = json.loads((built.out / "gateway.cdx.json").read_text())
    names = {c["name"] for c in sbom["components"]}
    assert {"mcp", "a2a-sdk", "starlette", "uvicorn", "aiobotocore"} <= names
