"""Pulumi inputs into actors: an ``Output`` image, secrets end to end (``Output.secret`` and an AWS Secrets Manager
value through the actor's Kubernetes Secret), and the pod and KEDA options a manifest may set.

"Rendered" means what ``asya render`` shows and writes: ``MockedDeployment.kubernetes_objects()`` (the same list
``RenderPlan`` gets), its YAML files and its resource tree, and whatever the program logged.
"""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws
import pytest
from infra_mocks import ACCOUNT, REGION, Deployment
from pydantic import ValidationError
from rich.console import Console
from test_pod_hardening import restricted_violations

from asya_pulumi.checks.mocked import REDACTED
from asya_pulumi.checks.validate import validate_object, validate_objects
from asya_pulumi.cli.render_plan import RenderPlan
from asya_pulumi.components import ActorMesh, AsyncActor
from asya_pulumi.local.plan import local_env
from asya_pulumi.spec import AsyncActorSpec, MeshSpec

API_KEY = "sk-live-4f9c2e7a1b"  # an Output.secret the program holds
SECRETS_MANAGER_ID = "prod/db-password"
#: What the mocked Secrets Manager read returns for SECRETS_MANAGER_ID (asya_pulumi.checks.mocked).
DB_PASSWORD = f"mock-secret-value-of-{SECRETS_MANAGER_ID}"
IMAGE = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/scoring:1.4.2"
DEPLOYMENT = "kubernetes:apps/v1:Deployment"
SECRET = "kubernetes:core/v1:Secret"


def _secret_program(*, plain_env_secret: bool = False) -> None:
    """What an infra repo writes: an ECR repository's URL as the image, two secrets, one plain Output."""
    repository = aws.ecr.Repository("scoring", name="scoring")
    image = repository.name.apply(lambda name: f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{name}:1.4.2")
    db_password = aws.secretsmanager.get_secret_version_output(secret_id=SECRETS_MANAGER_ID).secret_string
    api_key = pulumi.Output.secret(API_KEY)
    logging.getLogger("infra").info("deploying with key %s", api_key)  # an Output prints as a placeholder
    spec = AsyncActorSpec(
        name="score",
        image=image,
        handler="handlers.score",
        env={"REPOSITORY": repository.name, **({"LEAKED": api_key} if plain_env_secret else {})},
        secret_env={"API_KEY": api_key, "DB_PASSWORD": db_password},
    )
    AsyncActor("dev-score", spec=spec, namespace="dev", region=REGION, cluster_name="c1")


def _handler(deployment: Deployment) -> dict[str, Any]:
    record = deployment.one(DEPLOYMENT, "dev-score-deployment")
    container: dict[str, Any] = record.inputs["spec"]["template"]["spec"]["containers"][0]
    return container


def test_output_image_and_secrets_reach_the_pod_but_no_rendered_object_or_log(
    deployment: Deployment, tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    deployment.run(_secret_program)
    handler = _handler(deployment)
    assert handler["image"] == IMAGE
    env = {e["name"]: e for e in handler["env"]}
    assert env["REPOSITORY"] == {"name": "REPOSITORY", "value": "scoring"}
    (secret,) = deployment.of_type(SECRET)
    secret_name = secret.outputs["metadata"]["name"]
    for name in ("API_KEY", "DB_PASSWORD"):
        assert env[name] == {"name": name, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": name}}}
    # The Secret holds both values, marked secret for Pulumi's state; the Deployment waits for it.
    raw = json.dumps(secret.inputs)
    assert API_KEY in raw and DB_PASSWORD in raw and "1b47061264138c4ac30d75fd1eb44270" in raw
    assert secret.inputs["immutable"] is True and "name" not in secret.inputs["metadata"]  # auto-named: rolls pods
    assert deployment.depends_on(deployment.one(DEPLOYMENT, "dev-score-deployment"), secret)

    # Rendered: objects, their YAML files, the resource tree, logs. Neither value anywhere; the objects still valid.
    plan = RenderPlan(registered=list(deployment.registered), kubernetes_objects=deployment.kubernetes_objects())
    rendered_secret = next(o for o in plan.kubernetes_objects if o["kind"] == "Secret")
    assert rendered_secret["stringData"] == {"API_KEY": REDACTED, "DB_PASSWORD": REDACTED}
    assert plan.validate() == []
    written = "".join(path.read_text() for path in plan.write_objects(tmp_path))
    tree = io.StringIO()
    plan.print_tree(Console(file=tree, width=200))
    logged = caplog.text + "".join(capsys.readouterr())
    shown = {"objects": json.dumps(plan.kubernetes_objects), "yaml": written, "tree": tree.getvalue(), "logs": logged}
    for where, text in shown.items():
        for value in (API_KEY, DB_PASSWORD):
            assert value not in text, f"{value!r} appears in the rendered {where}"
    assert IMAGE in written and REDACTED in written
    # No record but the Secret's own inputs (what Pulumi encrypts in its state) carries either value.
    for record in deployment.registered:
        if record is not secret:
            assert API_KEY not in json.dumps(record.inputs, default=str), record.name


def test_a_pulumi_secret_in_plain_env_is_refused(deployment: Deployment) -> None:
    with pytest.raises(Exception, match=r"env 'LEAKED' is a Pulumi secret.*secret_env") as info:
        deployment.run(lambda: _secret_program(plain_env_secret=True))
    assert API_KEY not in str(info.value)
    for record in deployment.of_type(DEPLOYMENT):
        assert API_KEY not in json.dumps(record.inputs, default=str)


# --- pod options from a manifest ------------------------------------------------------------------------------------

OPTIONS = {
    "name": "embed",
    "image": "registry.example.com/embed:2",
    "handler": "handlers.embed",
    "gpu": 1,
    "imagePullPolicy": "IfNotPresent",
    "imagePullSecrets": ["registry-creds"],
    "priorityClassName": "asya-batch",
    "env": {"MODE": "fast"},
    "valueFrom": {
        "OPENAI_KEY": {"secretKeyRef": {"name": "openai", "key": "api-key"}},
        "REGION_HINT": {"configMapKeyRef": {"name": "settings", "key": "region", "optional": True}},
    },
    "secretRefs": ["hf-token"],
    "volumes": [
        {"name": "model-cache", "mountPath": "/models", "emptyDir": {"sizeLimit": "20Gi"}},
        {"name": "weights", "mountPath": "/weights", "readOnly": True,
         "persistentVolumeClaim": {"claimName": "vit-weights", "readOnly": True}},
        {"name": "prompts", "mountPath": "/etc/prompts", "configMap": {"name": "prompts"}},
        {"name": "tls", "mountPath": "/etc/tls", "readOnly": True, "secret": {"secretName": "client-tls"}},
    ],
    "scaling": {
        "fallback": {"failureThreshold": 3, "replicas": 1},
        "advanced": {"horizontalPodAutoscalerConfig": {"behavior": {
            "scaleDown": {"stabilizationWindowSeconds": 600, "policies": [{"type": "Pods", "value": 1,
                                                                            "periodSeconds": 120}]},
            "scaleUp": {"selectPolicy": "Max"},
        }}},
    },
}


def test_pod_options_render_valid_and_restricted(deployment: Deployment) -> None:
    spec = MeshSpec.model_validate({"namespace": "opts", "actors": [OPTIONS], "routes": {"go": ["embed"]},
                                    "gpuPools": ["gpu"]})
    deployment.run(lambda: ActorMesh("opts", spec=spec, cluster_name="c1").namespace)
    objects = deployment.kubernetes_objects()
    assert validate_objects(objects) == []
    template = deployment.one(DEPLOYMENT, "opts-embed-deployment").inputs["spec"]["template"]["spec"]
    assert restricted_violations(template) == []
    assert template["imagePullSecrets"] == [{"name": "registry-creds"}]
    assert template["priorityClassName"] == "asya-batch"
    volumes = {v["name"]: v for v in template["volumes"]}
    assert volumes["model-cache"] == {"name": "model-cache", "emptyDir": {"sizeLimit": "20Gi"}}
    assert volumes["weights"]["persistentVolumeClaim"] == {"claimName": "vit-weights", "readOnly": True}
    handler, sidecar = template["containers"]
    assert handler["imagePullPolicy"] == "IfNotPresent" and sidecar["imagePullPolicy"] == "Always"
    mounts = {m["name"]: m for m in handler["volumeMounts"]}
    assert mounts["model-cache"] == {"name": "model-cache", "mountPath": "/models"}
    assert mounts["tls"] == {"name": "tls", "mountPath": "/etc/tls", "readOnly": True}
    assert not {"model-cache", "weights", "prompts", "tls"} & {m["name"] for m in sidecar["volumeMounts"]}
    env = {e["name"]: e for e in handler["env"]}
    assert env["OPENAI_KEY"]["valueFrom"] == {"secretKeyRef": {"name": "openai", "key": "api-key"}}
    assert env["REGION_HINT"]["valueFrom"]["configMapKeyRef"]["optional"] is True
    assert handler["envFrom"] == [{"secretRef": {"name": "hf-token"}}]
    # Platform variables come after envFrom's and the user's: Kubernetes lets a later env entry win.
    names = [e["name"] for e in handler["env"]]
    assert names.index("AWS_CONTAINER_CREDENTIALS_FULL_URI") > names.index("OPENAI_KEY")
    scaled = next(o for o in objects if o["kind"] == "ScaledObject" and o["metadata"]["name"] == "embed")
    assert scaled["spec"]["fallback"] == {"failureThreshold": 3, "replicas": 1}
    behavior = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["policies"] == [{"type": "Pods", "value": 1, "periodSeconds": 120}]
    assert behavior["scaleUp"] == {"selectPolicy": "Max"}
    # The schema check is not vacuous: a fallback without replicas is refused.
    broken = json.loads(json.dumps(scaled))
    del broken["spec"]["fallback"]["replicas"]
    with pytest.raises(ValueError, match="replicas"):
        validate_object(broken)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"volumes": [{"name": "host", "mountPath": "/host", "hostPath": {"path": "/"}}]},
         "hostPath: a node's filesystem breaks Pod Security `restricted`; use a persistentVolumeClaim or emptyDir"),
        ({"volumes": [{"name": "x", "mountPath": "/opt/asya/x", "emptyDir": {"sizeLimit": "1Gi"}}]},
         "mountPath '/opt/asya/x' overlaps the pod's own /opt/asya"),
        ({"volumes": [{"name": "x", "mountPath": "/x", "emptyDir": {"sizeLimit": "1Gi"}, "configMap": {"name": "c"}}]},
         "takes exactly one of emptyDir, persistentVolumeClaim, configMap, secret (2 given)"),
        ({"volumes": [{"name": "tmp", "mountPath": "/x", "emptyDir": {"sizeLimit": "1Gi"}}]},
         "volume name 'tmp' is the pod's own"),
        ({"env": {"KEY": "a"}, "secretEnv": {"KEY": "b"}}, "env ['KEY'] is set in both env and secretEnv"),
        ({"valueFrom": {"K": {"secretKeyRef": {"name": "s", "key": "k"},
                              "configMapKeyRef": {"name": "c", "key": "k"}}}},
         "valueFrom takes exactly one of secretKeyRef and configMapKeyRef"),
        ({"priorityClassName": "system-node-critical"}, "the system-* classes are for cluster components"),
        ({"imagePullSecrets": ["Bad_Name"]}, "Secret name 'Bad_Name' is not a Kubernetes object name"),
        ({"scaling": {"advanced": {"horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {"policies": [
            {"type": "Pods", "value": 1, "periodSeconds": 3600}]}}}}}}, "less than or equal to 1800"),
        ({"imagePullPolicy": "Sometimes"}, "'Always', 'IfNotPresent' or 'Never'"),
    ],
)
def test_option_mistakes_name_the_field_and_the_fix(change: dict[str, Any], expected: str) -> None:
    base = {"name": "a", "image": "a:1", "handler": "h.f"}
    with pytest.raises(ValidationError) as info:
        AsyncActorSpec.model_validate({**base, **change})
    assert expected in str(info.value)


def test_local_runs_refuse_outputs_and_never_import_pulumi() -> None:
    spec = AsyncActorSpec(name="a", image="a:1", handler="h.f", env={"X": pulumi.Output.from_input("x")})
    with pytest.raises(ValueError, match=r"env\['X'\] is a Pulumi Output .* `asya dev` needs plain text"):
        local_env(spec)
    plain = AsyncActorSpec(name="a", image="a:1", handler="h.f", env={"X": "1"}, secret_env={"K": "v"})
    assert local_env(plain) == {"X": "1", "K": "v"}
    code = ("import sys, asya_pulumi.spec, asya_pulumi.local.plan, asya_pulumi.objects.pod; "
            "m = asya_pulumi.spec.load_pipeline_dir('examples/text-chunking'); "
            "assert 'pulumi' not in sys.modules, 'pulumi imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])


def test_an_output_image_passes_through_a_mesh_spec_and_its_overrides(deployment: Deployment) -> None:
    def program() -> None:
        image = aws.ecr.Repository("embed", name="embed").name.apply(lambda name: f"{IMAGE.rsplit('/', 1)[0]}/{name}")
        actor = AsyncActorSpec(name="embed", image=image, handler="handlers.embed")
        spec = MeshSpec(namespace="outs", actors=[actor], routes={"go": ["embed"]}).with_overrides(region=REGION)
        ActorMesh("outs", spec=spec, cluster_name="c1")

    deployment.run(program)
    handler = deployment.one(DEPLOYMENT, "outs-embed-deployment").inputs["spec"]["template"]["spec"]["containers"][0]
    assert handler["image"] == f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/embed"
