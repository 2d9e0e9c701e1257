"""The gateway image as scripts/build-image writes it: the runtime image's layers shared blob for blob, one layer
more with only what the runtime lacks, non-root, its SBOM beside it, and a container that serves ``/health``."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import time
from typing import Any

import httpx
from support.moto_server import MotoServer
from support.status_table import create_status_table, dynamodb_server  # noqa: F401  (pytest fixture)

from asya_pulumi.images.gateway_image import GATEWAY_PORT
from asya_pulumi.images.oci import Layout
from asya_pulumi.images.podman import podman
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker, free_port
from asya_runtime.gateway.config import GatewayConfig, GatewayMesh
from asya_runtime.naming import queue_name
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


def test_the_gateway_container_serves_and_submits(loaded: Built, broker: LocalBroker, sqs: Any,
                                                  dynamodb_server: MotoServer):  # noqa: F811  (the fixture)
    """The image as a pod runs it — read-only root, uid 10001, no capabilities — on the host network against the
    embedded broker and moto's DynamoDB: ``/health`` answers, a submission is stored ``pending`` and sent to the
    first actor's queue, and an unauthenticated gateway off loopback refuses to start."""
    namespace = f"gw-image-{free_port()}"
    status_table = create_status_table(endpoint=dynamodb_server.url, namespace=namespace)
    queue_url = sqs.create_queue(QueueName=queue_name(namespace=namespace, actor="first"))["QueueUrl"]
    port = free_port()
    config = GatewayConfig.model_validate({
        "namespace": namespace, "status_table": status_table.name, "port": port,
        "region": LOCAL_CREDENTIALS["region_name"], "sqs_endpoint": broker.endpoint,
        "mesh": GatewayMesh.model_validate({"namespace": namespace, "actors": ["first"]}),
    })
    env = {**config.to_env(), **status_table.env, "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
           "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]}
    image = loaded.images["gateway"].pinned
    hardened = ["--rm", "--pull", "never", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges"]
    name = f"asya-gateway-test-{port}"
    podman("run", "--detach", "--name", name, "--network", "host", *hardened,
           *(arg for key, value in env.items() for arg in ("--env", f"{key}={value}")), image)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"{url}/health", timeout=2)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise AssertionError(podman("logs", name, check=False).stdout) from None
                time.sleep(0.5)
        assert health.status_code == 200, health.text
        answer = httpx.post(f"{url}/api/v1/mesh/", params={"actor": "first"}, json={"payload": {"n": 1}}, timeout=10)
        assert answer.status_code == 201, answer.text
        envelope_id = answer.json()["id"]
        assert status_table.item(envelope_id)["status"] == {"S": "pending"}
        received = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"]
        assert [json.loads(m["Body"])["id"] for m in received] == [envelope_id]
        assert podman("exec", name, "id", "-u").stdout.strip() == "10001"
    finally:
        podman("rm", "--force", "--time", "5", name, check=False)

    refused = podman("run", *hardened, *(arg for key, value in {**env, "ASYA_GATEWAY_HOST": "0.0.0.0"}.items()
                                         for arg in ("--env", f"{key}={value}")), image, check=False)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "auth" in (refused.stdout + refused.stderr).lower()
