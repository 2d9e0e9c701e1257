"""KEDA itself scales a mesh's actors from 0 to N on real queue depth and back to 0; the real scheduler places them.

The mesh's objects are the ``ActorMesh`` component's, rendered as for ``pulumi up`` and changed only where KEDA
must reach the local broker instead of AWS (``asya_pulumi.kube.local_target``). Queue depth is the embedded SQS
server's (over HTTP, as KEDA's aws-sqs-queue scaler reads it with the AWS SDK). Pods run on KWOK's nodes: the GPU
actor's only on the GPU pool, the CPU actor's never there.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from support.mesh import wait_for

from asya_pulumi.kube.client import KubeClient
from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.kube.local_target import for_local_broker, mesh_objects
from asya_pulumi.local.broker import LOCAL_CREDENTIALS, LocalBroker
from asya_pulumi.local.queues import create_queues, mesh_queue_settings
from asya_pulumi.spec import GPU_POOL_LABEL, ClusterSpec, MeshSpec, load_pipeline_dir

NAMESPACE = "kedascale"
COOLDOWN_S = 20
POLLING_S = 2
MANIFESTS = {
    "mesh.yaml": f"""
apiVersion: asya.sh/v1alpha1
kind: ActorMesh
metadata: {{name: {NAMESPACE}}}
spec:
  region: us-east-1
  gpuPools: [gpu]
""",
    "embed.yaml": """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: embed}
spec:
  image: example.com/embed:1
  handler: handlers.embed
  gpu: 1
  scaling: {minReplicaCount: 0, maxReplicaCount: 2, queueLength: 5, pollingInterval: POLL, cooldownPeriod: COOL}
""",
    "tokenize.yaml": """
apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: tokenize}
spec:
  image: example.com/tokenize:1
  handler: handlers.tokenize
  scaling: {minReplicaCount: 0, maxReplicaCount: 3, queueLength: 5, pollingInterval: POLL, cooldownPeriod: COOL}
""",
}


@pytest.fixture(scope="module")
def mesh(tmp_path_factory: pytest.TempPathFactory) -> MeshSpec:
    directory = tmp_path_factory.mktemp("scaling-mesh")
    for name, text in MANIFESTS.items():
        (directory / name).write_text(text.replace("POLL", str(POLLING_S)).replace("COOL", str(COOLDOWN_S)))
    (directory / "handlers.py").write_text("def embed(p):\n    return p\n\ndef tokenize(p):\n    return p\n")
    return load_pipeline_dir(Path(directory))


@pytest.fixture(scope="module")
def deployed(control_plane: ControlPlane, broker: LocalBroker, sqs: Any, mesh: MeshSpec) -> dict[str, str]:
    """The mesh applied to the control plane, its queues on the broker; ``{actor: queue URL}``."""
    settings = mesh_queue_settings(mesh)
    urls = create_queues(sqs=sqs, settings=settings)
    objects = for_local_broker(
        mesh_objects(mesh), endpoint=broker.endpoint, queue_urls={q.name: urls[q.actor] for q in settings},
        access_key_id=LOCAL_CREDENTIALS["aws_access_key_id"],
        secret_access_key=LOCAL_CREDENTIALS["aws_secret_access_key"],
    )
    client = control_plane.client()
    for obj in sorted(objects, key=lambda o: o["kind"] != "Namespace"):
        client.apply(obj)
    return urls


def _replicas(client: KubeClient, name: str) -> int:
    deployment = client.get("apps/v1", "Deployment", name, namespace=NAMESPACE)
    assert deployment is not None
    return int(deployment["spec"].get("replicas", 0))


def _bound_pods(client: KubeClient, actor: str) -> list[dict[str, Any]]:
    pods = client.list("v1", "Pod", namespace=NAMESPACE, label_selector=f"app.kubernetes.io/name={actor}")
    return [p for p in pods if p["spec"].get("nodeName") and not p["metadata"].get("deletionTimestamp")]


def _send(sqs: Any, url: str, count: int) -> None:
    for start in range(0, count, 10):
        entries = [{"Id": str(i), "MessageBody": "{}"} for i in range(start, min(start + 10, count))]
        sqs.send_message_batch(QueueUrl=url, Entries=entries)


def test_keda_scales_from_zero_places_gpu_pods_on_gpu_nodes_and_returns_to_zero(
    control_plane: ControlPlane, local_cluster: ClusterSpec, deployed: dict[str, str], sqs: Any
) -> None:
    client = control_plane.client()
    gpu_nodes = {n["metadata"]["name"] for n in client.list("v1", "Node", label_selector=f"{GPU_POOL_LABEL}=gpu")}
    assert len(gpu_nodes) == local_cluster.gpu_pools[0].max_size
    wait_for(lambda: _replicas(client, "embed") == 0 and _replicas(client, "tokenize") == 0, timeout_s=120,
             what="KEDA to scale the idle actors to 0", interval_s=1)

    _send(sqs, deployed["embed"], 20)
    _send(sqs, deployed["tokenize"], 20)
    wait_for(lambda: _replicas(client, "embed") >= 2 and _replicas(client, "tokenize") >= 2, timeout_s=180,
             what="KEDA and the HPA to scale both actors to >= 2 on 20 messages each", interval_s=1)
    gpu_pods = wait_for(lambda: len(_bound_pods(client, "embed")) >= 2 and _bound_pods(client, "embed"),
                        timeout_s=60, what="the scheduler to bind 2 GPU pods", interval_s=0.5)
    cpu_pods = wait_for(lambda: len(_bound_pods(client, "tokenize")) >= 2 and _bound_pods(client, "tokenize"),
                        timeout_s=60, what="the scheduler to bind 2 CPU pods", interval_s=0.5)
    assert {p["spec"]["nodeName"] for p in gpu_pods} <= gpu_nodes
    assert not {p["spec"]["nodeName"] for p in cpu_pods} & gpu_nodes

    # In flight keeps the actor up: take every message (invisible, not deleted) and outlast the cooldown.
    taken = []
    while len(taken) < 20:
        batch = sqs.receive_message(QueueUrl=deployed["embed"], MaxNumberOfMessages=10, VisibilityTimeout=600,
                                    WaitTimeSeconds=1).get("Messages", [])
        taken += batch
    time.sleep(COOLDOWN_S + 3 * POLLING_S)
    assert _replicas(client, "embed") >= 1, "KEDA scaled away an actor with messages in flight"

    for message in taken:
        sqs.delete_message(QueueUrl=deployed["embed"], ReceiptHandle=message["ReceiptHandle"])
    sqs.purge_queue(QueueUrl=deployed["tokenize"])
    wait_for(lambda: _replicas(client, "embed") == 0 and _replicas(client, "tokenize") == 0,
             timeout_s=COOLDOWN_S + 90, what="KEDA to scale both actors back to 0 after the cooldown", interval_s=1)
    wait_for(lambda: not _bound_pods(client, "embed") and not _bound_pods(client, "tokenize"), timeout_s=60,
             what="the pods to go", interval_s=0.5)


def test_a_delayed_retry_wakes_its_actor(
    control_plane: ControlPlane, deployed: dict[str, str], sqs: Any
) -> None:
    """``scaleOnDelayed`` (issue 11): a retry waiting out its backoff counts as depth, so the actor is up for it."""
    client = control_plane.client()
    wait_for(lambda: _replicas(client, "tokenize") == 0, timeout_s=COOLDOWN_S + 90, what="tokenize at 0",
             interval_s=1)
    sqs.send_message(QueueUrl=deployed["tokenize"], MessageBody="{}", DelaySeconds=120)
    wait_for(lambda: _replicas(client, "tokenize") >= 1, timeout_s=60,
             what="KEDA to wake tokenize for a delayed message", interval_s=1)
    sqs.purge_queue(QueueUrl=deployed["tokenize"])
