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

import pytest
from support.mesh import wait_for

from asya_pulumi.images.pods import play, playable, remove, wait_probes
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker, free_port
from asya_pulumi.ops.records import records_of
from asya_pulumi.spec.gateway import GATEWAY_NAME
from asya_runtime.envelope import new_envelope
from images.conftest import RENDERED_PIPELINE, Built, Rendered

pytestmark = pytest.mark.usefixtures("no_pods_left")


def broker_env(broker: LocalBroker) -> dict[str, str]:
    """What the pod's sidecar gets here in place of AWS: the broker's endpoint and static credentials."""
    return {"ASYA_SQS_ENDPOINT": broker.endpoint, "ASYA_S3_ENDPOINT": broker.endpoint,
            "AWS_ACCESS_KEY_ID": LOCAL_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": LOCAL_CREDENTIALS["aws_secret_access_key"]}


def handlers() -> ModuleType:
    spec = importlib.util.spec_from_file_location("scoring_handlers", RENDERED_PIPELINE / "handlers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def start_pods(*, names: list[str], rendered: Rendered, broker: LocalBroker) -> dict[str, float]:
    """Play the rendered Deployments ``names`` (one pod each, with the ConfigMap), wait for their probes; the seconds
    from play to ready per pod."""
    ports = {name: free_port() for name in names}
    documents = [*rendered.config_maps, *(
        playable(deployment=rendered.deployments[name], pod_name=name, metrics_port=ports[name],
                 sidecar_env=broker_env(broker)) for name in names)]
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
    ready = start_pods(names=["preprocess"], rendered=rendered, broker=broker)
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
                                              s3: Any, rendered_queues: dict[str, str]):
    """Every actor Deployment of the dev stack's mesh (five actors and both sinks) as its pod: each input ends as
    the final record the handlers say, stored by the success sink's pod. (The one other Deployment, the gateway's,
    is not played here: test_gateway_image.py runs its container as the pod would.)"""
    names = sorted(set(rendered.deployments) - {GATEWAY_NAME})
    assert {"preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"} == set(names)
    assert GATEWAY_NAME in rendered.deployments
    ready = start_pods(names=names, rendered=rendered, broker=broker)
    print(f"{len(names)} pods ready {max(ready.values()):.1f} s after kube play")
    module = handlers()
    inputs = [json.loads(line) for line in (RENDERED_PIPELINE / "input.jsonl").read_text().splitlines() if line]
    envelopes = [new_envelope(route=["preprocess", "score-image", "judge"], payload=line["payload"])
                 for line in inputs]
    for envelope in envelopes:
        sqs.send_message(QueueUrl=rendered_queues["preprocess"], MessageBody=envelope.to_json())

    def finished() -> dict[str, Any]:
        found = {e.id: records_of(s3=s3, bucket=rendered.bucket, envelope_id=e.id) for e in envelopes}
        return found if all(found.values()) else {}

    found = wait_for(finished, timeout_s=120, what="a final record of every input", interval_s=0.5)
    for envelope in envelopes:
        (record,) = found[envelope.id]
        expected = module.score_image(module.preprocess(envelope.payload))
        decided = "store" if expected["confidence"] > module.AUTO_ACCEPT_CONFIDENCE else "human-review"
        assert record.envelope["status"]["error"] is None
        assert record.envelope["route"]["prev"] == ["preprocess", "score-image", "judge", decided]
        assert record.envelope["payload"] == getattr(module, decided.replace("-", "_"))(expected)
    remove(pod_names=names)


def test_the_runtime_container_answers_healthz_soon_after_start(loaded: Built, rendered: Rendered,
                                                                broker: LocalBroker, rendered_queues: dict[str, str]):
    """The success sink's pod (the runtime image alone): time from ``kube play`` to a ready /healthz."""
    ready = start_pods(names=["success-sink"], rendered=rendered, broker=broker)
    print(f"runtime container: /healthz ready {ready['success-sink']:.2f} s after kube play")
    assert ready["success-sink"] < 30
    remove(pod_names=["success-sink"])

