"""AsyncActor under mocks: the queue's derived settings, IAM, the Deployment and the KEDA objects it registers."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_mocks import ACCOUNT, REGION, Deployment
from support.pods import plain_env

from asya_pulumi.components import ActorMesh, AsyncActor
from asya_pulumi.objects.pod import handler_server_sources
from asya_pulumi.spec import AsyncActorSpec, load_pipeline_dir
from asya_runtime.config import SidecarConfig
from asya_runtime.handler_server import (
    ENV_HANDLER,
    ENV_HANDLER_CONCURRENCY,
    ENV_HANDLER_DRAIN_S,
    ENV_HANDLER_PATH,
    ENV_SOCKET_PATH,
)
from asya_runtime.resiliency import Resiliency

POD_IDENTITY = "aws:eks/podIdentityAssociation:PodIdentityAssociation"
SCORE = {
    "name": "score-image",
    "image": "scoring:1",
    "handler": "handlers.score_image",
    "gpu": 1,
    "concurrency": 2,
    "env": {"MODEL": "vit"},
    "scaling": {"maxReplicaCount": 7, "queueLength": 3, "cooldownPeriod": 600},
    "resiliency": {
        "actorTimeout": "10m",
        "policies": {"default": {"maxAttempts": 4}, "slow": {"maxAttempts": 6, "backoff": "constant"}},
        "rules": [{"errors": ["TimeoutError"], "policy": "slow"}],
    },
}


def build(deployment: Deployment, spec: dict[str, Any] = SCORE, **kwargs: Any) -> AsyncActor:
    actor_spec = AsyncActorSpec.model_validate(spec)
    kwargs.setdefault("gpu_pool", "gpu" if actor_spec.gpu else None)
    actors: list[AsyncActor] = []
    deployment.run(
        lambda: actors.append(
            AsyncActor(
                f"dev-{actor_spec.name}", spec=actor_spec, namespace="dev", region=REGION, cluster_name="c1", **kwargs
            )
        )
    )
    return actors[0]


def test_queue_settings_are_derived_from_resiliency(deployment: Deployment) -> None:
    build(deployment)
    queue = deployment.one("aws:sqs/queue:Queue", "dev-score-image-queue")
    dlq = deployment.one("aws:sqs/queue:Queue", "dev-score-image-queue-dlq")
    assert queue.inputs["name"] == "asya-dev_score-image"
    assert dlq.inputs["name"] == "asya-dev_score-image_dlq"
    # min(ceil(600), 60) + 30 and max(4, 6) + 2: see asya_runtime.resiliency
    assert queue.inputs["visibilityTimeoutSeconds"] == 90
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": dlq.outputs["arn"], "maxReceiveCount": 8}
    assert dlq.outputs["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-dev_score-image_dlq"
    assert queue.inputs["sqsManagedSseEnabled"] is True and dlq.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["messageRetentionSeconds"] > queue.inputs["messageRetentionSeconds"]


def test_queue_policies_deny_requests_without_tls(deployment: Deployment) -> None:
    build(deployment)
    policies = deployment.of_type("aws:sqs/queuePolicy:QueuePolicy")
    assert len(policies) == 2
    for record in policies:
        (statement,) = json.loads(record.inputs["policy"])["Statement"]
        assert statement["Effect"] == "Deny"
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statement["Resource"][0].startswith(f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-dev_score-image")


def test_role_trusts_pod_identity_and_grants_least_privilege(deployment: Deployment) -> None:
    build(deployment)
    role = deployment.one("aws:iam/role:Role", "dev-score-image-role")
    trust = json.loads(role.inputs["assumeRolePolicy"])
    assert role.inputs["name"] == "asya-dev_score-image_us-east-1"
    (statement,) = trust["Statement"]
    assert statement["Principal"] == {"Service": "pods.eks.amazonaws.com"}
    assert statement["Action"] == ["sts:AssumeRole", "sts:TagSession"]
    # Only this cluster's Pod Identity, for this namespace's service account of this actor, in this account.
    assert statement["Condition"] == {
        "StringEquals": {
            "aws:SourceAccount": ACCOUNT,
            "aws:RequestTag/eks-cluster-arn": f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/c1",
            "aws:RequestTag/kubernetes-namespace": "dev",
            "aws:RequestTag/kubernetes-service-account": "score-image",
        }
    }
    policy = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", "dev-score-image-policy").inputs["policy"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    assert set(statements) == {
        "ConsumeOwnQueue", "ReadOwnDeadLetterQueueDepth", "SendToMeshQueues", "NeverSendToDeadLetterQueues"
    }
    assert statements["ReadOwnDeadLetterQueueDepth"]["Action"] == ["sqs:GetQueueAttributes"]
    own = f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-dev_score-image"
    assert statements["ReadOwnDeadLetterQueueDepth"]["Resource"] == f"{own}_dlq"
    assert statements["ConsumeOwnQueue"]["Resource"] == own
    assert sorted(statements["ConsumeOwnQueue"]["Action"]) == [
        "sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl",
        "sqs:ReceiveMessage",
    ]
    assert statements["SendToMeshQueues"]["Action"] == ["sqs:SendMessage", "sqs:GetQueueUrl"]
    assert statements["SendToMeshQueues"]["Resource"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-dev_*"
    assert statements["NeverSendToDeadLetterQueues"] == {
        "Sid": "NeverSendToDeadLetterQueues", "Effect": "Deny", "Action": ["sqs:SendMessage"],
        "Resource": f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-dev_*_dlq",
    }
    assert all("*" not in action for s in policy["Statement"] for action in s["Action"])
    association = deployment.one(POD_IDENTITY, "dev-score-image-pod-identity")
    assert association.inputs["roleArn"] == role.outputs["arn"]
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("dev", "score-image")


def deployment_spec(deployment: Deployment) -> dict[str, Any]:
    return deployment.one("kubernetes:apps/v1:Deployment", "dev-score-image-deployment").inputs


def test_deployment_has_no_replicas_and_skips_await(deployment: Deployment) -> None:
    build(deployment)
    obj = deployment_spec(deployment)
    assert "replicas" not in obj["spec"]
    assert obj["metadata"]["annotations"]["pulumi.com/skipAwait"] == "true"


def test_pod_is_locked_down(deployment: Deployment) -> None:
    build(deployment)
    pod = deployment_spec(deployment)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    assert pod["terminationGracePeriodSeconds"] > 600  # actorTimeout: 10m
    assert [c["name"] for c in pod["containers"]] == ["handler", "sidecar"]
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security["capabilities"] == {"drop": ["ALL"]}
        assert container["livenessProbe"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes["socket"] and "emptyDir" in volumes["tmp"]
    assert volumes["handler-server"]["configMap"]["name"] == "score-image-handler-server"


def test_gpu_actor_is_scheduled_on_its_pool(deployment: Deployment) -> None:
    build(deployment)
    pod = deployment_spec(deployment)["spec"]["template"]["spec"]
    handler = pod["containers"][0]
    assert handler["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"asya.sh/gpu-pool": "gpu"}


def test_cpu_actor_has_no_gpu_scheduling(deployment: Deployment) -> None:
    build(deployment, {"name": "judge", "image": "j:1", "handler": "handlers.judge"})
    pod = deployment.one("kubernetes:apps/v1:Deployment", "dev-judge-deployment").inputs["spec"]["template"]["spec"]
    assert "nodeSelector" not in pod and "tolerations" not in pod
    assert "nvidia.com/gpu" not in pod["containers"][0]["resources"]["limits"]


def test_gpu_actor_without_a_pool_is_refused(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match="asks for a GPU; pass gpu_pool="):
        AsyncActor("x", spec=AsyncActorSpec.model_validate(SCORE), namespace="dev", region=REGION, cluster_name="c")


def test_sidecar_env_is_rendered_from_sidecar_config(deployment: Deployment) -> None:
    build(deployment)
    sidecar = deployment_spec(deployment)["spec"]["template"]["spec"]["containers"][1]
    config = SidecarConfig.from_env(plain_env(sidecar))
    assert config.actor == "score-image" and config.namespace == "dev" and config.mode == "actor"
    assert config.concurrency == 2 and config.region == REGION
    assert config.resiliency == Resiliency.model_validate(SCORE["resiliency"])
    assert sidecar["command"] == ["asya-sidecar"]
    # /metrics and /healthz on the pod's IP, where the kubelet probes them (loopback is the default elsewhere)
    assert {"name": "ASYA_METRICS_HOST", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}} in sidecar["env"]


def test_handler_container_runs_the_mounted_handler_server(deployment: Deployment) -> None:
    build(deployment)
    handler = deployment_spec(deployment)["spec"]["template"]["spec"]["containers"][0]
    assert handler["command"] == ["python3", "/opt/asya/handler_server.py"]
    assert handler["livenessProbe"]["exec"]["command"] == ["python3", "/opt/asya/handler_server.py", "--health"]
    env = plain_env(handler)
    assert env[ENV_HANDLER] == "handlers.score_image"
    assert env[ENV_HANDLER_CONCURRENCY] == "2"
    # actorTimeout 10m: the handler server drains a running call for 610 s, inside the pod's 651 s grace period
    # (20 s poll + 10 s slack + 600 s + 1 s + 3 x 5 s of the sidecar's shutdown waits, + 5 s margin)
    grace = deployment_spec(deployment)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
    assert 600 < float(env[ENV_HANDLER_DRAIN_S]) < grace == 651
    assert env[ENV_SOCKET_PATH] == SidecarConfig(actor="a", namespace="n").socket_path
    assert env["MODEL"] == "vit"
    config_map = deployment.one("kubernetes:core/v1:ConfigMap", "dev-score-image-handler-server")
    assert config_map.inputs["data"] == handler_server_sources()
    assert set(config_map.inputs["data"]) == {"handler_server.py", "handler_server.js"}


def test_scaled_object_fields_and_ordering(deployment: Deployment) -> None:
    keda: list[pulumi.Resource] = []

    def program() -> None:
        keda.append(pulumi.CustomResource("test:index:KedaStandIn", "keda-release", {}))
        spec = AsyncActorSpec.model_validate(SCORE)
        AsyncActor("dev-score-image", spec=spec, namespace="dev", region=REGION, cluster_name="c1",
                   gpu_pool="gpu", keda=keda)

    deployment.run(program)
    scaled = deployment.one("kubernetes:keda.sh/v1alpha1:ScaledObject", "dev-score-image-scaled-object")
    spec = scaled.inputs["spec"]
    assert spec["scaleTargetRef"]["name"] == "score-image"
    assert (spec["minReplicaCount"], spec["maxReplicaCount"], spec["cooldownPeriod"], spec["pollingInterval"]) == (
        0, 7, 600, 30
    )
    (trigger,) = spec["triggers"]
    assert trigger["type"] == "aws-sqs-queue"
    assert trigger["metadata"] == {
        "queueURL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/asya-dev_score-image",
        "queueLength": "3",
        "activationQueueLength": "0",
        "scaleOnDelayed": "true",  # a retry waiting out its backoff is work: no scale-to-zero under it
        "awsRegion": REGION,
    }
    auth = deployment.one("kubernetes:keda.sh/v1alpha1:TriggerAuthentication", "dev-score-image-trigger-auth")
    assert auth.inputs["spec"] == {"podIdentity": {"provider": "aws", "identityOwner": "keda"}}
    assert trigger["authenticationRef"] == {"name": auth.inputs["metadata"]["name"]}
    release = deployment.one("test:index:KedaStandIn", "keda-release")
    assert deployment.depends_on(scaled, release) and deployment.depends_on(auth, release)
    assert deployment.depends_on(scaled, auth)
    deploy = deployment.one("kubernetes:apps/v1:Deployment", "dev-score-image-deployment")
    association = deployment.one(POD_IDENTITY, "dev-score-image-pod-identity")
    assert deployment.depends_on(deploy, association)
    assert not deployment.depends_on(deploy, release)


def test_standalone_actor_checks_the_queue_name_length(deployment: Deployment) -> None:
    spec = AsyncActorSpec.model_validate({"name": "a" * 60, "image": "x", "handler": "h.f"})
    with pytest.raises(ValueError, match="over SQS's 80-character limit; shorten the actor name to at most 20"):
        AsyncActor("long", spec=spec, namespace="n" * 50, region=REGION, cluster_name="c")


def test_manifest_loads_from_a_path(tmp_path: Any) -> None:
    path = tmp_path / "judge.yaml"
    path.write_text("apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: judge}\n"
                    "spec: {image: 'j:1', handler: handlers.judge, concurrency: 8}\n")
    assert AsyncActorSpec.from_manifest(path).concurrency == 8
    assert AsyncActorSpec.from_manifest(str(path)).name == "judge"


# --- the handler server of the actor's runtime ------------------------------------------------------------------

TEXT_CHUNKING = Path(__file__).resolve().parents[2] / "examples" / "text-chunking"


def _render_text_chunking(deployment: Deployment) -> dict[str, dict[str, Any]]:
    """The text-chunking example as `pulumi up` would deploy it; actor → its handler container."""
    mesh = load_pipeline_dir(TEXT_CHUNKING)
    deployment.run(lambda: ActorMesh("text", spec=mesh, cluster_name="c1").namespace)
    handlers = {}
    for actor in ("chunk", "count-words", "summarize"):
        template = deployment.one("kubernetes:apps/v1:Deployment", f"text-{actor}-deployment").inputs["spec"]
        handlers[actor] = template["template"]["spec"]["containers"][0]
    return handlers


def test_a_node_actor_runs_the_node_handler_server(deployment: Deployment, tmp_path: Path) -> None:
    handlers = _render_text_chunking(deployment)
    node = handlers["count-words"]
    assert node["command"] == ["node", "/opt/asya/handler_server.js"]
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert node[probe]["exec"]["command"] == ["node", "/opt/asya/handler_server.js", "--health"]
    env = plain_env(node)
    assert env[ENV_HANDLER] == "words.js:countWords" and env[ENV_HANDLER_PATH] == "."
    assert "PYTHONDONTWRITEBYTECODE" not in env
    assert {"name": "handler-server", "mountPath": "/opt/asya", "readOnly": True} in node["volumeMounts"]
    for python_actor in ("chunk", "summarize"):
        assert handlers[python_actor]["command"] == ["python3", "/opt/asya/handler_server.py"]
    # The mesh's one ConfigMap carries both servers, and the pod template's digest covers both.
    (config_map,) = deployment.of_type("kubernetes:core/v1:ConfigMap")
    assert config_map.inputs["data"]["handler_server.js"] == handler_server_sources()["handler_server.js"]

    # What the pod would run, run here: the mounted file, the rendered env, the image's workdir holding words.js.
    if shutil.which("node") is None:
        pytest.skip("node is not installed")
    mounted = tmp_path / "opt-asya"
    mounted.mkdir()
    for name, text in config_map.inputs["data"].items():
        (mounted / name).write_text(text)
    command = [shutil.which("node"), str(mounted / "handler_server.js")]
    env = {**env, "PATH": os.environ["PATH"], ENV_SOCKET_PATH: str(tmp_path / "handler.sock")}
    server = subprocess.Popen(command, env=env, cwd=TEXT_CHUNKING, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while True:
            probe = subprocess.run([*command, "--health"], env=env, capture_output=True, timeout=30)
            if probe.returncode == 0 or time.monotonic() > deadline or server.poll() is not None:
                break
            time.sleep(0.2)
        assert probe.returncode == 0, probe.stderr
    finally:
        server.terminate()
        server.wait(timeout=30)
    # ...and the probe is not vacuous: with the server gone it fails.
    assert subprocess.run([*command, "--health"], env=env, capture_output=True, timeout=30).returncode != 0


def test_a_pipeline_directory_without_runtime_deploys_its_js_handler_with_node(
    deployment: Deployment, tmp_path: Path
) -> None:
    """The rule `asya dev` uses (the module is a .js file only) decides for the cluster too, so the two agree."""
    pipeline = tmp_path / "text-chunking"
    shutil.copytree(TEXT_CHUNKING, pipeline, ignore=shutil.ignore_patterns("node_modules"))
    manifest = pipeline / "count-words.yaml"
    manifest.write_text("\n".join(line for line in manifest.read_text().splitlines() if "runtime:" not in line))
    mesh = load_pipeline_dir(pipeline)
    assert {a.name: a.runtime for a in mesh.actors} == {"chunk": "python", "count-words": "node", "summarize": "python"}
    deployment.run(lambda: ActorMesh("text", spec=mesh, cluster_name="c1").namespace)
    template = deployment.one("kubernetes:apps/v1:Deployment", "text-count-words-deployment").inputs["spec"]
    assert template["template"]["spec"]["containers"][0]["command"] == ["node", "/opt/asya/handler_server.js"]
