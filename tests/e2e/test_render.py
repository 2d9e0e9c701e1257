"""``asya render``: the committed dev stack renders, writes valid YAML and exits 0; a broken program exits 1 naming
the object and the field; a missing stack config is a usage error."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from asya_pulumi.checks.validate import validate_objects
from e2e.conftest import REPO, run_asya

_BROKEN_PROGRAM = '''
import pulumi
import pulumi_kubernetes as k8s

name = pulumi.Config("app").require("name")
k8s.apps.v1.Deployment(
    "web",
    metadata={"name": name, "namespace": "shop"},
    spec={
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": [{"name": "web", "image": "nginx", "ports": [{"containerPort": "http"}]}]},
        },
    },
)
'''


def test_dev_stack_renders_valid_yaml(tmp_path: Path):
    out = tmp_path / "render"
    run = run_asya("render", "stacks", "--stack", "dev", "--out", str(out))

    assert run.returncode == 0, run.stdout + run.stderr
    files = sorted(out.rglob("*.yaml"))
    objects = [yaml.safe_load(f.read_text()) for f in files]
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ScaledObject", "TriggerAuthentication", "ServiceAccount", "ConfigMap"} <= kinds
    assert validate_objects(objects) == []  # what was written is what was validated: re-check from disk
    config = yaml.safe_load((REPO / "stacks" / "Pulumi.dev.yaml").read_text())["config"]
    deployments = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    assert {"preprocess", "score-image", "judge", "store", "human-review", "success-sink", "error-sink"} <= deployments
    assert all(o["metadata"]["namespace"] == config["asya:namespace"] for o in objects if o["kind"] == "Deployment")
    summary = run.stdout.splitlines()
    assert summary[0].endswith("resources (what `pulumi up` would create; `--tree` lists each):")
    assert [line.split()[0] for line in summary[1:4]] == ["asya:index:ActorMesh", "asya:index:AsyaCluster",
                                                          "asya:index:Keda"]  # one line per component, sorted
    assert summary[4].startswith("  by provider: asya ") and " aws " in summary[4]
    assert "aws:sqs/queue:Queue" not in run.stdout  # the whole tree only behind --tree
    assert "are valid" in run.stdout


def test_render_json_is_one_object_with_the_summary_and_the_validation(tmp_path: Path):
    run = run_asya("render", "stacks", "--stack", "dev", "--out", str(tmp_path / "out"), "--json")

    assert run.returncode == 0, run.stdout + run.stderr
    report = json.loads(run.stdout)  # the whole of stdout
    assert set(report) == {"stack", "resources", "components", "by_provider", "written", "quotas",
                           "kubernetes_objects", "invalid", "ok"}
    assert report["ok"] is True and report["invalid"] == [] and report["stack"] == "dev"
    assert [c["type"] for c in report["components"]] == ["asya:index:ActorMesh", "asya:index:AsyaCluster",
                                                         "asya:index:Keda"]
    assert report["written"]["objects"] == report["kubernetes_objects"] == len(list((tmp_path / "out").rglob("*.yaml")))
    assert sum(report["by_provider"].values()) == report["resources"]


def test_the_tree_lists_every_resource_in_the_same_order_on_every_run():
    first, second = (run_asya("render", "stacks", "--stack", "dev", "--tree") for _ in range(2))

    assert first.returncode == second.returncode == 0, first.stdout + first.stderr
    assert "aws:sqs/queue:Queue" in first.stdout and "asya:index:ActorMesh" in first.stdout
    assert first.stdout == second.stdout  # siblings sorted, inputs with sorted keys: Outputs resolve in any order


def test_invalid_object_names_object_and_field(tmp_path: Path):
    (tmp_path / "__main__.py").write_text(_BROKEN_PROGRAM)
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  app:name: web\n")

    run = run_asya("render", str(tmp_path), "--out", str(tmp_path / "out"))

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Deployment shop/web: spec.template.spec.containers.0.ports.0.containerPort" in run.stdout
    assert (tmp_path / "out" / "shop" / "deployment-web.yaml").is_file()  # written, so it can be inspected


def test_program_error_is_reported_in_one_line(tmp_path: Path):
    (tmp_path / "__main__.py").write_text("import pulumi\npulumi.Config('app').require('name')\n")
    (tmp_path / "Pulumi.dev.yaml").write_text("config:\n  app:other: x\n")

    run = run_asya("render", str(tmp_path))

    assert run.returncode == 1, run.stdout + run.stderr
    assert "the program failed under mocks" in run.stdout and "app:name" in run.stdout
    assert "Traceback" not in run.stdout + run.stderr


def test_missing_stack_config_is_a_usage_error(tmp_path: Path):
    (tmp_path / "__main__.py").write_text("")
    run = run_asya("render", str(tmp_path), "--stack", "prod")
    assert run.returncode == 2
    assert run.stderr.strip() == f"asya: error: no stack config '{tmp_path}/Pulumi.prod.yaml'; stacks here: none"


_BAD_ACTOR = """apiVersion: asya.sh/v1alpha1
kind: AsyncActor
metadata: {name: bad}
spec:
  image: "  "
  handler: handlers.bad
  env: {OPTIONS: {depth: 3}}
  resources:
    requests: {memory: 2Gi}
    limits: {memory: 1Gi}
  resiliency:
    policies:
      default: {maxAttempts: 5000, initialInterval: .nan}
"""


def test_spec_past_aws_and_kubernetes_limits_exits_1_in_one_line(tmp_path: Path):
    """The real stacks program, pointed at one bad pipeline directory: every problem named, in one line."""
    pipeline = tmp_path / "pipeline"
    pipeline.mkdir()
    (pipeline / "mesh.yaml").write_text(
        "apiVersion: asya.sh/v1alpha1\nkind: ActorMesh\nmetadata: {name: scoring}\nspec: {region: us-east-1}\n"
    )
    (pipeline / "bad.yaml").write_text(_BAD_ACTOR)
    program = tmp_path / "program"
    program.mkdir()
    (program / "__main__.py").write_text((REPO / "stacks" / "__main__.py").read_text())
    config = {"config": {"aws:region": "us-east-1", "asya:pipeline": str(pipeline), "asya:cluster": {"name": "c"}}}
    (program / "Pulumi.dev.yaml").write_text(yaml.safe_dump(config))

    run = run_asya("render", str(program))

    assert run.returncode == 1, run.stdout + run.stderr
    assert "Traceback" not in run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("asya render: the program failed under mocks:")
    bad = f"{pipeline / 'bad.yaml'}: spec."
    for expected in (
        f"{bad}image: image is blank; name the container image",
        f"{bad}env: env 'OPTIONS' is a map",
        f"{bad}resources: requests.memory 2Gi is above limits.memory 1Gi",
        f"{bad}resiliency.policies.default.maxAttempts: maxAttempts 5000 derives the queue's RedrivePolicy "
        "maxReceiveCount 5002 (maxAttempts + 2), over SQS's limit of 1000; use at most 998 attempts",
        f"{bad}resiliency.policies.default.initialInterval: nan is not a finite duration",
    ):
        assert expected in lines[0]


_OVER_QUOTA_PROGRAM = '''
import json
import pulumi_aws as aws

for i in range(800):
    aws.iam.Role(f"r{i}", name=f"r{i}", assume_role_policy="{}")
statement = {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "arn:aws:sqs:us-east-1:1:" + "q" * 10240}
aws.iam.RolePolicy("big", role="r0", policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]}))
'''


def test_quotas_of_the_whole_program_warn_and_a_hard_limit_fails(tmp_path: Path):
    """800 roles (80 % of IAM's default 1,000 per account) warn, naming the quota and how to raise it; an inline
    policy past IAM's 10,240 characters exits 1 (asya_pulumi/checks/quotas.py)."""
    (tmp_path / "__main__.py").write_text(_OVER_QUOTA_PROGRAM)
    (tmp_path / "Pulumi.dev.yaml").write_text("config: {}\n")

    run = run_asya("render", str(tmp_path))

    assert run.returncode == 1, run.stdout + run.stderr
    assert "warning: IAM roles per account: the program (its account) uses 800 of 1,000" in run.stdout
    assert "Service Quotas" in run.stdout
    assert "over a limit: IAM inline policy characters per role" in run.stdout and "role r0" in run.stdout
