"""The Deployments ``asya render`` writes, run as podman pods with the built images against the embedded broker.

Each pod is the rendered YAML with only the changes podman needs here (asya_pulumi/images/pods.py lists them;
docs/runtime.md too): the images, commands, env, user, read-only root, dropped capabilities, the handler-server
ConfigMap and the socket emptyDir are as rendered. Probes are run by hand as the kubelet would run them.
"""

from __future__ import annotations

import importlib.util
import json
import time
from types import ModuleType
from typing import Any

import httpx
import pytest
from support.mesh import wait_for
from support.moto_server import MotoServer
from support.oidc_issuer import Issuer
from support.status_table import create_status_table, dynamodb_server  # noqa: F401  (pytest fixture)

from asya_pulumi.images.pods import play, playable, remove, wait_probes
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker, free_port
from asya_pulumi.ops.records import records_of
from asya_pulumi.spec.gateway import GATEWAY_NAME
from asya_runtime.envelope import new_envelope
from images.conftest import RENDERED_NAMESPACE, RENDERED_PIPELINE, Built, Rendered

pytestmark = pytest.mark.usefixtures("no_pods_left")


def broker_env(broker: LocalBroker, **more: str) -> dict[str, str]:
    """What the pod's sidecar (and the gateway) gets here in place of AWS: the broker's endpoint and static
    credentials, and ``more`` (the status store's endpoint, the OIDC issuer)."""
    return {"ASYA_SQS_ENDPOINT": broker.endpoint, "ASYA_S3_ENDPOINT": broker.endpoint,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"], **more}


def handlers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scoring_handlers", RENDERED_PIPELINE / "handlers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_pods(*, names: list[str], rendered: Rendered, env: dict[str, str],
               ports: dict[str, int] | None = None) -> dict[str, float]:
    """Play the rendered Deployments ``names`` (one pod each, with the ConfigMap; ``env`` in place of AWS's), wait
    for their probes; the seconds from play to ready per pod. ``ports``: a pod's own port, where the test needs it."""
    ports = {name: free_port() for name in names} | (ports or {})
    documents = [*rendered.config_maps, *(
        playable(deployment=rendered.deployments[name], pod_name=name, metrics_port=ports[name], runtime_env=env)
        for name in names)]
    started = time.monotonic()
    play(documents=documents)
    ready = {}
    for name in names:
        wait_probes(pod_name=name, deployment=rendered.deployments[name], metrics_port=ports[name], timeout_s=120)
        ready[name] = time.monotonic() - started
    return ready


def receive_all(sqs: Any, url: str, *, count: int, timeout_s: float) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while len(bodies) < count and time.monotonic() < deadline:
        answer = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in answer.get("Messages", []):
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def test_a_rendered_actor_pod_processes_envelopes(loaded: Built, rendered: Rendered, broker: LocalBroker, sqs: Any,
                                                  rendered_queues: dict[str, str]):
    """preprocess's pod, alone: its outputs land on the success sink's queue, its failure on the error sink's."""
    deployment = rendered.deployments["preprocess"]
    containers = {c["name"]: c for c in deployment["spec"]["template"]["spec"]["containers"]}
    assert containers["sidecar"]["image"] == loaded.images["runtime"].pinned  # the pin, as rendered
    assert containers["handler"]["image"] == loaded.images["example-image-scoring-0.1.0"].name
    ready = start_pods(names=["preprocess"], rendered=rendered, env=broker_env(broker))
    print(f"preprocess pod: play to probes passing {ready['preprocess']:.2f} s")

    good = [new_envelope(route=["preprocess"], payload={"image_id": f"img-{i}", "pixels": [0, 51, 255]})
            for i in range(5)]
    bad = new_envelope(route=["preprocess"], payload={"image_id": "broken", "pixels": []})
    for envelope in [*good, bad]:
        sqs.send_message(QueueUrl=rendered_queues["preprocess"], MessageBody=envelope.to_json())

    done = receive_all(sqs, rendered_queues["success-sink"], count=len(good), timeout_s=60)
    assert sorted(b["id"] for b in done) == sorted(e.id for e in good)
    assert all(b["payload"]["pixels"] == [0.0, 0.2, 1.0] for b in done)
    assert all(b["route"]["prev"] == ["preprocess"] and b["hops"][-1]["outcome"] == "ok" for b in done)
    failed = receive_all(sqs, rendered_queues["error-sink"], count=1, timeout_s=60)
    assert [b["id"] for b in failed] == [bad.id]
    assert failed[0]["status"]["error"]["type"] == "ValueError"
    remove(pod_names=["preprocess"])


def test_the_whole_rendered_mesh_runs_as_pods(loaded: Built, rendered: Rendered, broker: LocalBroker, sqs: Any,
                                              s3: Any, rendered_queues: dict[str, str],
                                              dynamodb_server: MotoServer):  # noqa: F811  (the fixture)
    """Every Deployment of the dev stack's mesh as its pod — five actors, both sinks and the gateway — on the
    embedded broker and moto's DynamoDB: each input ends as the final record the handlers say, stored by the success
    sink's pod; the inputs submitted through the gateway's pod (with a token of the OIDC issuer, which stands in for
    EKS's) also end ``succeeded`` in the status store with that final payload, read back through the gateway."""
    names = sorted(rendered.deployments)
    assert {"preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink",
            GATEWAY_NAME} == set(names)
    gateway = rendered.deployments[GATEWAY_NAME]["spec"]["template"]["spec"]["containers"][0]
    rendered_env = {e["name"]: e.get("value") for e in gateway["env"]}
    assert rendered_env["ASYA_GATEWAY_AUTH"] == "oidc"  # as rendered: only the issuer is this test's
    issuer = Issuer(audience=str(rendered_env["ASYA_GATEWAY_OIDC_AUDIENCE"]))
    table = create_status_table(endpoint=dynamodb_server.url, namespace=RENDERED_NAMESPACE)
    port = free_port()
    try:
        ready = start_pods(names=names, rendered=rendered, ports={GATEWAY_NAME: port},
                           env=broker_env(broker, ASYA_DYNAMODB_ENDPOINT=table.endpoint,
                                          ASYA_GATEWAY_OIDC_ISSUER=issuer.url))
        print(f"{len(names)} pods ready {max(ready.values()):.1f} s after kube play")
        module = handlers()
        inputs = [json.loads(line)["payload"] for line in (RENDERED_PIPELINE / "input.jsonl").read_text().splitlines()
                  if line]
        direct, through_gateway = inputs[::2], inputs[1::2]
        assert direct and through_gateway
        envelopes = [new_envelope(route=["preprocess", "score-image", "judge"], payload=p) for p in direct]
        for envelope in envelopes:
            sqs.send_message(QueueUrl=rendered_queues["preprocess"], MessageBody=envelope.to_json())
        url = f"http://127.0.0.1:{port}"
        auth = {"Authorization": f"Bearer {issuer.token()}"}
        assert httpx.post(f"{url}/api/v1/mesh/", params={"route": "score"}, json={"payload": {}}).status_code == 401
        submitted = {}
        for payload in through_gateway:
            answer = httpx.post(f"{url}/api/v1/mesh/", params={"route": "score"}, json={"payload": payload},
                                headers=auth, timeout=10)
            assert answer.status_code == 201, answer.text
            submitted[answer.json()["id"]] = payload
        payloads = {e.id: e.payload for e in envelopes} | submitted

        def finished() -> dict[str, Any]:
            found = {id: records_of(s3=s3, bucket=rendered.bucket, envelope_id=id) for id in payloads}
            return found if all(found.values()) else {}

        found = wait_for(finished, timeout_s=120, what="a final record of every input", interval_s=0.5)
        for id, payload in payloads.items():
            (record,) = found[id]
            expected = module.score_image(module.preprocess(payload))
            decided = "store" if expected["confidence"] > module.AUTO_ACCEPT_CONFIDENCE else "human-review"
            assert record.envelope["status"]["error"] is None
            assert record.envelope["route"]["prev"] == ["preprocess", "score-image", "judge", decided]
            assert record.envelope["payload"] == getattr(module, decided.replace("-", "_"))(expected)
            if id in submitted:
                view = httpx.get(f"{url}/api/v1/mesh/{id}", headers=auth, timeout=10).json()
                assert view["status"] == "succeeded", view
                assert view["data"]["payload"] == record.envelope["payload"]
            else:
                assert table.item(id) is None  # sent to the queue directly: not tracked, no record, no writes
    finally:
        remove(pod_names=names)
        issuer.close()


def test_the_runtime_container_answers_healthz_soon_after_start(loaded: Built, rendered: Rendered,
                                                                broker: LocalBroker, rendered_queues: dict[str, str]):
    """The success sink's pod (the runtime image alone): time from ``kube play`` to a ready /healthz."""
    ready = start_pods(names=["success-sink"], rendered=rendered, env=broker_env(broker))
    print(f"runtime container: /healthz ready {ready['success-sink']:.2f} s after kube play")
    assert ready["success-sink"] < 30
    remove(pod_names=["success-sink"])

