"""No mesh can reach another, whatever their names: every IAM statement of one mesh, wildcards expanded the way IAM
expands them, is matched against every ARN of every other mesh — and matches none.

The namespaces are chosen to break prefix-based schemes: ``a`` is a prefix of ``a-b``, which is a prefix of a
40-character namespace; ``a`` has an actor ``b-x`` and ``a-b`` an actor ``x`` (``asya-a-b-x`` under the old
``asya-{ns}-{actor}`` scheme for both). Every mesh has its front door on: its status table (and its ``by_status``
index) is one more resource no other mesh may reach, and its gateway's role one more set of statements. Every mesh
has triggers too (an S3 trigger on its own bucket and one on a named bucket, a schedule): the scheduler's role is
one more role whose statements are checked, and no trigger can send to another mesh's queue. Every mesh's ``store``
actor has a rate limit: its bucket statement (``UpdateItem`` on its own item of its own table) is matched like every
other, and its leading key names that actor's bucket alone.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from functools import cache
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Deployment

from asya_pulumi.components import ActorMesh, Keda
from asya_pulumi.objects.status_table import index_arn
from asya_pulumi.spec import AsyncActorSpec, MeshSpec
from asya_runtime.config import FANIN_PREFIX, OFFLOAD_PREFIX
from asya_runtime.naming import SINK_RECORD_PREFIXES
from asya_runtime.status.schema import rate_limit_key

LONG = "a-b-" + "c" * 36
MESHES = {"a": ["b-x", "x", "store"], "a-b": ["x", "b-x", "store"], LONG: ["x", "store", "c" * 30]}
MESH_TAG = "asya.sh/mesh"
#: The actor with ``fanIn`` in every mesh (the same name in ``a`` and ``a-b``): its state prefix is checked too.
FANIN_ACTOR = "x"
#: The actor of every mesh with ``rateLimit``.
RATE_LIMITED = "store"


def spec(namespace: str, actors: list[str]) -> MeshSpec:
    return MeshSpec(
        namespace=namespace,
        region=REGION,
        actors=[AsyncActorSpec(name=a, image="img:1", handler="handlers.run",
                               fan_in={"timeout": "1m"} if a == FANIN_ACTOR else None,
                               rate_limit={"perSecond": 10} if a == RATE_LIMITED else None) for a in actors],
        routes={"go": actors[:2]},
        gateway={"auth": {"issuer": "https://issuer.example.com", "audience": "asya-gateway"}},
        triggers=[
            {"name": "drop", "route": "go", "s3": {}},
            {"name": "data", "route": "go", "s3": {"bucket": f"data-{namespace}", "prefix": "in/"}},
            {"name": "tick", "route": "go", "schedule": {"expression": "rate(1 hour)"}},
        ],
    )


@pytest.fixture
def meshes(deployment: Deployment) -> Deployment:
    def program() -> None:
        for index, (namespace, actors) in enumerate(MESHES.items()):
            keda = Keda(f"keda-{index}", cluster_name="c1", region=REGION, namespace=f"keda-{index}",
                        mesh_namespaces=[namespace])
            ActorMesh(f"mesh-{index}", spec=spec(namespace, actors), cluster_name="c1", keda=keda)

    deployment.run(program)
    return deployment


@cache
def iam_pattern(resource: str) -> re.Pattern[str]:
    """IAM resource matching: ``*`` is any run of characters (``/`` and ``:`` included), ``?`` any one character."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource) + r"\Z")


def arns_by_mesh(deployment: Deployment) -> dict[str, set[str]]:
    """Every ARN a mesh owns: its queues and DLQs, its bucket, objects under every key prefix a sink or an actor
    writes (offloaded envelopes) or its S3 triggers watch (its named bucket's too), its actors', sinks' and
    gateway's roles (which its sinks read: who sent a record), and its status table with its index."""
    found: dict[str, set[str]] = defaultdict(set)
    for mesh in MESHES:
        found[mesh] |= {f"arn:aws:s3:::data-{mesh}", f"arn:aws:s3:::data-{mesh}/in/x.json"}
    for typ in ("aws:sqs/queue:Queue", "aws:s3/bucket:Bucket", "aws:iam/role:Role", "aws:dynamodb/table:Table"):
        for record in deployment.of_type(typ):
            if MESH_TAG not in (record.inputs.get("tags") or {}):
                continue  # KEDA's role, the cluster's and the nodes': no mesh's
            arn = record.outputs["arn"]
            found[record.inputs["tags"][MESH_TAG]].add(arn)
            if typ == "aws:s3/bucket:Bucket":
                prefixes = [*SINK_RECORD_PREFIXES.values(), OFFLOAD_PREFIX, "triggers/drop"]  # the S3 trigger's too
                mesh = record.inputs["tags"][MESH_TAG]
                found[mesh] |= {f"{arn}/{p}/x.json" for p in prefixes}
                found[mesh] |= {f"{arn}/{FANIN_PREFIX}/{actor}/p/000000.json" for actor in MESHES[mesh]}
            if typ == "aws:dynamodb/table:Table":
                found[record.inputs["tags"][MESH_TAG]].add(index_arn(arn))
    return found


def statements_by_mesh(deployment: Deployment) -> dict[str, list[dict[str, Any]]]:
    """The Allow statements of every role of a mesh (the role's tag says which mesh it belongs to)."""
    mesh_of_role = {r.outputs["name"]: r.inputs["tags"][MESH_TAG] for r in deployment.of_type("aws:iam/role:Role")
                    if MESH_TAG in (r.inputs.get("tags") or {})}
    found: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for policy in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        mesh = mesh_of_role.get(policy.inputs["role"])
        if mesh is not None:
            statements = json.loads(policy.inputs["policy"])["Statement"]
            found[mesh] += [s for s in statements if s["Effect"] == "Allow"]
    return found


def resources(statement: dict[str, Any]) -> list[str]:
    value = statement["Resource"]
    return [value] if isinstance(value, str) else list(value)


def test_no_statement_of_one_mesh_matches_any_resource_of_another(meshes: Deployment) -> None:
    arns = arns_by_mesh(meshes)
    statements = statements_by_mesh(meshes)
    assert set(arns) == set(statements) == set(MESHES)
    checked = 0
    for mesh, own_statements in statements.items():
        assert len(own_statements) >= 2 * (len(MESHES[mesh]) + 2)  # every actor and sink contributed
        for statement in own_statements:
            for pattern in map(iam_pattern, resources(statement)):
                for other, other_arns in arns.items():
                    matched = sorted(arn for arn in other_arns if pattern.match(arn))
                    if other != mesh:
                        assert not matched, (mesh, statement["Sid"], pattern.pattern, other, matched)
                    checked += len(other_arns)
    assert checked > 1000


def test_every_statement_reaches_something_of_its_own_mesh(meshes: Deployment) -> None:
    """The matcher is not vacuous: each statement matches at least one of its own mesh's ARNs."""
    arns = arns_by_mesh(meshes)
    for mesh, own_statements in statements_by_mesh(meshes).items():
        for statement in own_statements:
            assert any(iam_pattern(r).match(arn) for r in resources(statement) for arn in arns[mesh]), statement


def test_a_rate_limited_actor_may_update_its_own_bucket_item_only(meshes: Deployment) -> None:
    """The one DynamoDB statement with a condition: the store's bucket in its own mesh's table, no other key."""
    tables = {t.inputs["tags"][MESH_TAG]: t.outputs["arn"] for t in meshes.of_type("aws:dynamodb/table:Table")}
    found = []
    for mesh, own_statements in statements_by_mesh(meshes).items():
        for statement in own_statements:
            if "Condition" not in statement or not any(a.startswith("dynamodb:") for a in statement["Action"]):
                continue
            assert statement["Sid"] == "RateLimitBucket", statement
            assert statement["Resource"] == tables[mesh] and statement["Action"] == ["dynamodb:UpdateItem"]
            keys = statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:LeadingKeys"]
            assert keys == [rate_limit_key(RATE_LIMITED)]
            found.append(mesh)
    assert sorted(found) == sorted(MESHES)  # one per mesh: its store's role, nobody else's


def test_the_old_prefix_scheme_would_have_failed_this_check() -> None:
    """The shape of wildcard the old scheme used (``asya-a-*``) matches mesh ``a-b``'s queue — what we guard against."""
    assert iam_pattern("arn:aws:sqs:us-east-1:1:asya-a-*").match("arn:aws:sqs:us-east-1:1:asya-a-b-x")
    assert not iam_pattern("arn:aws:sqs:us-east-1:1:asya-a_*").match("arn:aws:sqs:us-east-1:1:asya-a-b_x")


def test_keda_of_one_mesh_reads_no_queue_of_another(meshes: Deployment) -> None:
    arns = arns_by_mesh(meshes)
    for index, mesh in enumerate(MESHES):
        record = meshes.one("aws:iam/rolePolicy:RolePolicy", f"keda-{index}-operator-policy")
        policy = json.loads(record.inputs["policy"])
        patterns = [iam_pattern(r) for s in policy["Statement"] for r in resources(s)]
        for other, other_arns in arns.items():
            reached = {arn for arn in other_arns if any(p.match(arn) for p in patterns)}
            assert bool(reached) == (other == mesh), (mesh, other, reached)


def test_every_role_trusts_only_its_own_mesh_namespace(meshes: Deployment) -> None:
    for role in meshes.of_type("aws:iam/role:Role"):
        mesh = (role.inputs.get("tags") or {}).get(MESH_TAG)
        if mesh is None:
            continue
        (statement,) = json.loads(role.inputs["assumeRolePolicy"])["Statement"]
        if statement["Principal"] == {"Service": "scheduler.amazonaws.com"}:  # a schedule trigger's role
            schedule = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            assert schedule == f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/asya-{mesh}_tick"
            assert len(role.inputs["name"]) <= 64, role.inputs["name"]
            continue
        condition = statement["Condition"]["StringEquals"]
        assert condition["aws:RequestTag/kubernetes-namespace"] == mesh
        assert len(role.inputs["name"]) <= 64, role.inputs["name"]


def test_every_mesh_has_its_own_table_and_gateway_role(meshes: Deployment) -> None:
    """The resources the checks above cover for the front door exist, one of each per mesh."""
    tables = {t.inputs["tags"][MESH_TAG]: t.inputs["name"] for t in meshes.of_type("aws:dynamodb/table:Table")}
    assert tables == {mesh: f"asya-{mesh}_status" for mesh in MESHES}
    gateways = [r for r in meshes.of_type("aws:iam/role:Role") if r.inputs.get("name", "").endswith("_gateway")]
    assert sorted(r.inputs["tags"][MESH_TAG] for r in gateways) == sorted(MESHES)


def test_no_two_resources_of_any_meshes_share_a_name(meshes: Deployment) -> None:
    for typ in ("aws:sqs/queue:Queue", "aws:iam/role:Role", "aws:dynamodb/table:Table",
                "aws:scheduler/schedule:Schedule"):
        names = [r.inputs["name"] for r in meshes.of_type(typ) if r.inputs.get("name")]
        assert len(names) == len(set(names)), typ


def mesh_of_queue(deployment: Deployment) -> dict[str, str]:
    return {q.outputs["arn"]: q.inputs["tags"][MESH_TAG] for q in deployment.of_type("aws:sqs/queue:Queue")}


def test_no_trigger_of_one_mesh_sends_to_a_queue_of_another(meshes: Deployment) -> None:
    """Each schedule targets its own mesh's queue with its own mesh's role; each bucket notification of a mesh's
    own bucket or of its named bucket names only queues of that mesh."""
    owner = mesh_of_queue(meshes)
    role_mesh = {r.outputs["arn"]: r.inputs["tags"][MESH_TAG] for r in meshes.of_type("aws:iam/role:Role")
                 if MESH_TAG in (r.inputs.get("tags") or {})}
    schedules = meshes.of_type("aws:scheduler/schedule:Schedule")
    assert len(schedules) == len(MESHES)
    for schedule in schedules:
        mesh = schedule.inputs["name"].removeprefix("asya-").split("_")[0]
        assert owner[schedule.inputs["target"]["arn"]] == mesh
        assert role_mesh[schedule.inputs["target"]["roleArn"]] == mesh
    bucket_mesh = {b.outputs["bucket"]: b.inputs["tags"][MESH_TAG] for b in meshes.of_type("aws:s3/bucket:Bucket")}
    bucket_mesh |= {f"data-{mesh}": mesh for mesh in MESHES}
    notifications = meshes.of_type("aws:s3/bucketNotification:BucketNotification")
    assert len(notifications) == 2 * len(MESHES)
    for notification in notifications:
        mesh = bucket_mesh[notification.inputs["bucket"]]
        for queue in notification.inputs["queues"]:
            assert owner[queue["queueArn"]] == mesh, (notification.name, queue)
            assert queue["id"].startswith(f"asya-{mesh}_")


def test_a_queue_policy_lets_s3_send_to_that_queue_alone_for_its_own_meshs_buckets(meshes: Deployment) -> None:
    """Every Allow in a queue policy names exactly the queue it is on, and a bucket (SourceArn) of that queue's
    mesh; no other mesh's bucket ARN matches it, wildcards expanded as IAM expands them."""
    owner = mesh_of_queue(meshes)
    arns = arns_by_mesh(meshes)
    allowed = 0
    for policy in meshes.of_type("aws:sqs/queuePolicy:QueuePolicy"):
        for statement in json.loads(policy.inputs["policy"])["Statement"]:
            if statement["Effect"] != "Allow":
                continue
            allowed += 1
            mesh = owner[statement["Resource"]]
            assert policy.inputs["queueUrl"].endswith("/" + statement["Resource"].split(":")[-1])
            assert statement["Principal"] == {"Service": "s3.amazonaws.com"}
            assert statement["Action"] == "sqs:SendMessage"
            assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
            source = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            assert source in arns[mesh] | {f"arn:aws:s3:::data-{mesh}"}
            for other, other_arns in arns.items():
                if other != mesh:
                    assert not [arn for arn in other_arns if iam_pattern(source).match(arn)]
                    assert not iam_pattern(statement["Resource"]).match(f"arn:aws:s3:::data-{other}")
    assert allowed == 2 * len(MESHES)
