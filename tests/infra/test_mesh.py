"""ActorMesh and Keda under mocks: the whole image-scoring example, its sinks, bucket, outputs and ordering."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Deployment
from support.pods import plain_env

from asya_pulumi.checks.validate import InvalidObject, validate_object, validate_objects
from asya_pulumi.components import ActorMesh, Keda
from asya_pulumi.spec import ResultRetentionSpec, load_pipeline_dir
from asya_runtime.config import SidecarConfig

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"
ACTORS = ["success-sink", "error-sink", "human-review", "judge", "preprocess", "score-image", "store"]


def build_mesh(deployment: Deployment) -> dict[str, Any]:
    outputs: dict[str, Any] = {}

    def program() -> Any:
        keda = Keda("keda", cluster_name="c1", region=REGION, mesh_namespaces=["image-scoring"])
        mesh = ActorMesh("scoring", spec=load_pipeline_dir(EXAMPLE), cluster_name="c1", keda=keda)
        return mesh.queue_urls.apply(lambda urls: outputs.update(queue_urls=urls)).apply(
            lambda _: mesh.bucket_name.apply(lambda b: outputs.update(bucket=b))
        )

    deployment.run(program)
    return outputs


def test_mesh_outputs_name_every_queue_and_the_bucket(deployment: Deployment) -> None:
    outputs = build_mesh(deployment)
    assert sorted(outputs["queue_urls"]) == sorted(ACTORS)
    assert outputs["queue_urls"]["judge"] == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/asya-image-scoring_judge"
    bucket = deployment.one("aws:s3/bucket:Bucket", "scoring-results")
    assert outputs["bucket"] == bucket.outputs["bucket"] and outputs["bucket"].startswith("asya-image-scoring-results-")
    queues = sorted(q.inputs["name"] for q in deployment.of_type("aws:sqs/queue:Queue"))
    expected = [f"asya-image-scoring_{a}{suffix}" for a in ACTORS for suffix in ("", "_dlq")]
    assert queues == sorted(expected)


def test_sinks_run_the_runtime_image_and_may_only_put_results(deployment: Deployment) -> None:
    build_mesh(deployment)
    bucket = deployment.one("aws:s3/bucket:Bucket", "scoring-results").outputs
    prefixes = {"success-sink": ["failed", "succeeded"], "error-sink": ["failed"]}
    for sink in ("success-sink", "error-sink"):
        pod = deployment.one("kubernetes:apps/v1:Deployment", f"scoring-{sink}-deployment").inputs["spec"]["template"]
        (sidecar,) = pod["spec"]["containers"]
        config = SidecarConfig.from_env(plain_env(sidecar))
        assert (config.mode, config.result_bucket) == (sink, bucket["bucket"])
        assert sidecar["image"].startswith("ghcr.io/asya-sh/asya-runtime:")
        policy = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", f"scoring-{sink}-policy").inputs["policy"])
        write = [s for s in policy["Statement"] if s["Sid"] == "WriteResults"]
        assert write == [{"Sid": "WriteResults", "Effect": "Allow", "Action": ["s3:PutObject"],
                          "Resource": [f"{bucket['arn']}/{prefix}/*" for prefix in prefixes[sink]]}]
        sends = [s for s in policy["Statement"] if "sqs:SendMessage" in s["Action"] and s["Effect"] == "Allow"]
        assert [s["Resource"] for s in sends] == [f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-image-scoring_{sink}"]
    judge = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", "scoring-judge-policy").inputs["policy"])
    s3 = [s for s in judge["Statement"] if any(a.startswith("s3:") for a in s["Action"])]
    assert [s["Resource"] for s in s3] == [f"{bucket['arn']}/offload/*"]  # claim-check only, never the records


def test_bucket_is_encrypted_private_and_tls_only(deployment: Deployment) -> None:
    build_mesh(deployment)
    sse_type = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    (sse,) = deployment.of_type(sse_type)
    assert sse.inputs["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    (block,) = deployment.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    flags = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    assert all(block.inputs[f] is True for f in flags)
    (policy,) = deployment.of_type("aws:s3/bucketPolicy:BucketPolicy")
    (statement,) = json.loads(policy.inputs["policy"])["Statement"]
    assert statement["Effect"] == "Deny" and statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_keda_operator_may_only_read_queue_attributes_of_the_mesh(deployment: Deployment) -> None:
    build_mesh(deployment)
    release = deployment.one("kubernetes:helm.sh/v3:Release", "keda-release")
    assert release.inputs["chart"] == "keda" and release.inputs["version"] == "2.18.1"
    assert release.inputs["namespace"] == "keda"
    policy = json.loads(deployment.one("aws:iam/rolePolicy:RolePolicy", "keda-operator-policy").inputs["policy"])
    assert policy["Statement"] == [
        {
            "Sid": "ReadQueueDepth",
            "Effect": "Allow",
            "Action": ["sqs:GetQueueAttributes"],
            "Resource": [f"arn:aws:sqs:{REGION}:{ACCOUNT}:asya-image-scoring_*"],
        }
    ]
    association = deployment.one("aws:eks/podIdentityAssociation:PodIdentityAssociation", "keda-operator-pod-identity")
    assert (association.inputs["namespace"], association.inputs["serviceAccount"]) == ("keda", "keda-operator")
    assert deployment.depends_on(release, association)


def test_every_scaled_object_waits_for_keda_and_only_they_do(deployment: Deployment) -> None:
    build_mesh(deployment)
    release = deployment.one("kubernetes:helm.sh/v3:Release", "keda-release")
    scaled = deployment.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject")
    assert len(scaled) == len(ACTORS)
    assert all(deployment.depends_on(s, release) for s in scaled)
    assert not any(deployment.depends_on(d, release) for d in deployment.of_type("kubernetes:apps/v1:Deployment"))


def test_gpu_actor_lands_on_the_gpu_pool_and_cpu_actors_do_not(deployment: Deployment) -> None:
    build_mesh(deployment)
    for record in deployment.of_type("kubernetes:apps/v1:Deployment"):
        pod = record.inputs["spec"]["template"]["spec"]
        if record.name == "scoring-score-image-deployment":
            assert pod["nodeSelector"] == {"asya.sh/gpu-pool": "gpu"}
        else:
            assert "nodeSelector" not in pod, record.name


def test_every_kubernetes_object_validates(deployment: Deployment) -> None:
    build_mesh(deployment)
    objects = deployment.kubernetes_objects()
    kinds = sorted({o["kind"] for o in objects})
    assert kinds == [
        "ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "ResourceQuota", "ScaledObject",
        "ServiceAccount", "TriggerAuthentication",
    ]
    assert validate_objects(objects) == []


def test_the_keda_schema_rejects_a_broken_scaled_object(deployment: Deployment) -> None:
    build_mesh(deployment)
    scaled = next(o for o in deployment.kubernetes_objects() if o["kind"] == "ScaledObject")
    validate_object(scaled)
    broken = copy.deepcopy(scaled)
    broken["spec"]["triggers"][0]["metadata"]["queueLength"] = 5  # KEDA wants strings in trigger metadata
    with pytest.raises(InvalidObject, match=r"ScaledObject .*: spec.triggers.0.metadata.queueLength: 5 is not of type"):
        validate_object(broken)
    typo = copy.deepcopy(scaled)
    typo["spec"]["maxReplicas"] = typo["spec"].pop("maxReplicaCount")
    with pytest.raises(InvalidObject, match="'maxReplicas' was unexpected"):
        validate_object(typo)
    no_region = copy.deepcopy(scaled)
    del no_region["spec"]["triggers"][0]["metadata"]["awsRegion"]
    # Not in KEDA's CRD (trigger metadata is a map of strings): the aws-sqs-queue scaler's own rules, in validate.py
    with pytest.raises(InvalidObject, match=r"spec.triggers.0.metadata: KEDA's aws-sqs-queue scaler needs awsRegion"):
        validate_object(no_region)
    for key, value, says in [("queueLength", "5.5", "as an integer"), ("scaleOnInFlight", "yes", "as a boolean")]:
        bad = copy.deepcopy(scaled)
        bad["spec"]["triggers"][0]["metadata"][key] = value
        with pytest.raises(InvalidObject, match=rf"spec.triggers.0.metadata.{key}: KEDA parses {key} {says}"):
            validate_object(bad)
    no_queue = copy.deepcopy(scaled)
    del no_queue["spec"]["triggers"][0]["metadata"]["queueURL"]
    with pytest.raises(InvalidObject, match="needs queueURL"):
        validate_object(no_queue)


def test_strict_kubernetes_validation_rejects_a_misspelt_field(deployment: Deployment) -> None:
    build_mesh(deployment)
    deploy = next(o for o in deployment.kubernetes_objects() if o["kind"] == "Deployment")
    broken = copy.deepcopy(deploy)
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    with pytest.raises(InvalidObject, match="imagePullPolcy"):
        validate_object(broken)
    bad_auth = {"apiVersion": "keda.sh/v1alpha1", "kind": "TriggerAuthentication", "metadata": {"name": "a"},
                "spec": {"podIdentity": {"provider": "aws-iam"}}}
    with pytest.raises(InvalidObject, match=r"spec\.podIdentity\.provider"):
        validate_object(bad_auth)


def test_actors_share_one_handler_server_and_one_trigger_authentication(deployment: Deployment) -> None:
    build_mesh(deployment)
    (config_map,) = deployment.of_type("kubernetes:core/v1:ConfigMap")
    (auth,) = deployment.of_type("kubernetes:keda.sh/v1alpha1:TriggerAuthentication")
    assert config_map.inputs["metadata"]["name"] == "asya-handler-server"
    assert auth.inputs["metadata"]["name"] == "asya-sqs"
    for record in deployment.of_type("kubernetes:apps/v1:Deployment"):
        volumes = {v["name"]: v for v in record.inputs["spec"]["template"]["spec"]["volumes"]}
        is_sink = record.name.endswith("sink-deployment")
        assert ("handler-server" in volumes) is not is_sink, record.name
        if not is_sink:
            assert volumes["handler-server"]["configMap"]["name"] == "asya-handler-server"
            assert deployment.depends_on(record, config_map)
    for scaled in deployment.of_type("kubernetes:keda.sh/v1alpha1:ScaledObject"):
        assert scaled.inputs["spec"]["triggers"][0]["authenticationRef"] == {"name": "asya-sqs"}
        assert deployment.depends_on(scaled, auth)


def test_a_mesh_keda_may_not_read_is_refused(deployment: Deployment) -> None:
    def program() -> None:
        keda = Keda("keda", cluster_name="c1", region=REGION, mesh_namespaces=["other"])
        ActorMesh("scoring", spec=load_pipeline_dir(EXAMPLE), cluster_name="c1", keda=keda)

    with pytest.raises(ValueError, match=r"mesh 'image-scoring' would never scale; add 'image-scoring' to Keda"):
        deployment.run(program)


def test_the_mesh_spec_sets_the_result_bucket_lifecycle(deployment: Deployment) -> None:
    spec = load_pipeline_dir(EXAMPLE).model_copy(
        update={"result_retention": ResultRetentionSpec.model_validate({"expireAfterDays": 7})}
    )
    deployment.run(lambda: ActorMesh("scoring", spec=spec, cluster_name="c1", keda=[]))
    (lifecycle,) = deployment.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    expiring = [r for r in lifecycle.inputs["rules"] if "days" in (r.get("expiration") or {})]
    # The records' 7 days, claim-check's backstop on offload/ and fan-in's state (S3 applies the shorter where they
    # overlap).
    assert [(r["filter"]["prefix"], r["expiration"]["days"]) for r in expiring] == [
        ("", 7), ("offload/", 15), ("fanin/", 15)
    ]


def test_actors_get_the_mesh_bucket_and_their_offload_threshold(deployment: Deployment) -> None:
    spec = load_pipeline_dir(EXAMPLE)
    judge = next(a for a in spec.actors if a.name == "judge")
    actors = [a.model_copy(update={"offload_threshold": 100_000}) if a is judge else a for a in spec.actors]
    deployment.run(lambda: ActorMesh("scoring", spec=spec.model_copy(update={"actors": actors}), cluster_name="c1",
                                     keda=[]))
    bucket = deployment.one("aws:s3/bucket:Bucket", "scoring-results").outputs["bucket"]

    def sidecar_config(actor: str) -> SidecarConfig:
        pod = deployment.one("kubernetes:apps/v1:Deployment", f"scoring-{actor}-deployment").inputs["spec"]["template"]
        (sidecar,) = [c for c in pod["spec"]["containers"] if c["name"] == "sidecar"]
        return SidecarConfig.from_env(plain_env(sidecar))

    assert (sidecar_config("judge").result_bucket, sidecar_config("judge").offload_threshold) == (bucket, 100_000)
    assert sidecar_config("store").offload_threshold == 7 * 64 * 1024  # the default: offloading is on


def test_the_mesh_hop_budget_reaches_every_sidecar(deployment: Deployment) -> None:
    spec = load_pipeline_dir(EXAMPLE).with_overrides(hop_budget=77)

    def program() -> None:
        ActorMesh("scoring", spec=spec, cluster_name="c1", keda=())

    deployment.run(program)
    sidecars = [c for o in deployment.kubernetes_objects() if o["kind"] == "Deployment"
                for c in o["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar"]
    assert len(sidecars) == len(spec.actors) + 2
    assert {plain_env(c).get("ASYA_HOP_BUDGET") for c in sidecars} == {"77"}


def test_deployed_sinks_verify_who_sent_each_record_and_actors_do_not(deployment: Deployment) -> None:
    """On AWS, SQS's SenderId is a real role: the sinks check it (runtime sidecar/sinks.py); their policy lets them
    read their own mesh's roles, which the check needs."""
    spec = load_pipeline_dir(EXAMPLE)

    def program() -> None:
        ActorMesh("scoring", spec=spec, cluster_name="c1", keda=())

    deployment.run(program)
    verifying = {
        o["metadata"]["name"]: SidecarConfig.from_env(plain_env(c)).verify_senders
        for o in deployment.kubernetes_objects() if o["kind"] == "Deployment"
        for c in o["spec"]["template"]["spec"]["containers"] if c["name"] == "sidecar"
    }
    assert verifying == {"success-sink": True, "error-sink": True} | {a.name: False for a in spec.actors}
    sink_policies = [json.loads(r.inputs["policy"]) for r in deployment.of_type("aws:iam/rolePolicy:RolePolicy")
                     if "sink" in r.name]
    assert len(sink_policies) == 2
    reads = [s["Resource"] for p in sink_policies for s in p["Statement"] if s["Sid"] == "ReadMeshRoles"]
    assert reads == [f"arn:aws:iam::{ACCOUNT}:role/asya-{spec.namespace}_*"] * 2
