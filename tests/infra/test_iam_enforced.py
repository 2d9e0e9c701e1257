"""Isolation proven by a policy engine we did not write: moto's server, with IAM enforcement on.

``test_isolation.py`` expands our own IAM statements with our own matcher; this test hands the rendered roles and
policies of two meshes whose namespaces are prefixes of each other (``a`` and ``a-b``; ``a`` has an actor ``b-x``
and ``a-b`` an actor ``x``), both with their front door on (the status table and the gateway), to moto 5.2.5
running as an HTTP server (``INITIAL_NO_AUTH_ACTION_COUNT=0``: every call is signed and authorised), assumes each
role — every actor's, sink's and gateway's, and KEDA's — through moto's STS and tries, with the role's own
credentials, every SQS action on every queue and DLQ of both meshes, every S3 object action under every record and
offload prefix of both buckets, ``ListBucket``, every DynamoDB item action on both status tables (``Query`` on their
``by_status`` index, one ``BatchGetItem`` over both tables at once, and ``UpdateItem`` on the rate-limit bucket item
of actor ``x``, which has ``rateLimit`` in both meshes), and ``iam:GetRole`` on every actor's and
sink's role (the sinks' sender check). The expected outcome of each call comes from the design stated in
:mod:`asya_pulumi.objects.iam` (written out here as ``expected_queue``, ``expected_object`` and
``expected_table``), not from the policies under test: every cross-mesh call must be refused with AccessDenied,
every call the role is meant to make must succeed.

What moto does and does not evaluate (moto 5.2.5, ``moto/iam/access_control.py``), and what this test does about it:

* Identity policies are evaluated: Allow, explicit Deny (which wins), ``*`` wildcards in actions and resources.
  ``test_an_over_broad_wildcard_is_allowed_across_meshes`` shows it: ``asya-a*`` instead of ``asya-a_*`` lets mesh
  ``a``'s actor send to mesh ``a-b``'s queue, and the matrix reports it.
* Conditions in identity policies are ignored (a condition key without an incoming value passes), so the leading-key
  condition that keeps a rate-limited actor to its own bucket item is checked offline (``test_isolation.py``,
  ``test_rate_limit_render.py``); here the bucket item is one more item of each table that no other mesh reaches.
  Resource policies (the bucket's TLS-only policy) are not evaluated. Those stay with the offline expansion
  (``test_isolation.py``) and ``test_iam.py``.
* Trust policies are evaluated only for an ``AWS`` principal: the rendered trust policies name the service
  principal ``pods.eks.amazonaws.com`` with session-tag conditions, which no caller of moto can be. So each role is
  created in moto under its rendered name with its rendered permission policy, but with a test-only trust policy
  that lets the test's user assume it. The permission policies — what isolation rests on — are exactly the rendered
  ones; the trust policies are checked offline (``test_every_role_trusts_only_its_own_mesh_namespace``).
* ``sqs:GetQueueUrl`` is authorised against ``*`` (moto finds no queue URL in the request), so a queue-scoped
  Allow never matches it: not tried here. moto authorises DynamoDB calls against ``*`` as well; the server here is
  started through ``moto_table_arns.py``, which gives moto's DynamoDB handler the table (or index) ARN a request
  names, as AWS authorises it (``*`` for a batch over several tables), and changes nothing else.
* The mock deployment (``asya_pulumi.checks.mocked``) gives resources moto's default account (123456789012) and
  region, so moto's ARNs are the rendered ones; the test asserts that rather than rewriting policies.

Skipped only when moto cannot be imported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from infra_mocks import ACCOUNT, REGION, Deployment
from pulumi.runtime import settings
from support.moto_server import MotoServer

from asya_pulumi.components import ActorMesh, Keda
from asya_pulumi.local.broker import free_port
from asya_pulumi.objects.gateway import gateway_role_name
from asya_pulumi.spec import AsyncActorSpec, MeshSpec
from asya_runtime.config import OFFLOAD_PREFIX
from asya_runtime.naming import (
    MALFORMED_RECORD_PREFIX,
    SINK_RECORD_PREFIXES,
    SINKS,
    SUCCESS_SINK,
    dlq_name,
    queue_name,
    role_name,
)
from asya_runtime.status.schema import rate_limit_key

pytest.importorskip("moto", reason="moto[server] (requirements/dev.txt) is the policy engine this test runs")
boto3 = pytest.importorskip("boto3")
from botocore.config import Config  # noqa: E402  (after the skip: botocore comes with boto3)
from botocore.exceptions import ClientError  # noqa: E402

MESHES = {"a": ["b-x", "x"], "a-b": ["x"]}
#: moto's server with DynamoDB authorised per table (see the module docstring).
MOTO_LAUNCHER = str(Path(__file__).with_name("moto_table_arns.py"))
ADMIN = "test-admin"
#: moto's server closes each connection; a fresh client per role is cheap, a retry would only hide a refusal.
NO_RETRIES: dict[str, Any] = {"retries": {"max_attempts": 1}}
QUEUE_ACTIONS = ("SendMessage", "ReceiveMessage", "GetQueueAttributes", "ChangeMessageVisibility", "DeleteMessage")
OBJECT_ACTIONS = ("PutObject", "GetObject", "GetObjectVersion", "DeleteObject")
TABLE_ACTIONS = ("DescribeTable", "PutItem", "UpdateItem", "UpdateBucket", "GetItem", "BatchGetItem", "Query", "Scan",
                 "DeleteItem")
#: The actor with ``rateLimit`` in both meshes (its bucket item: ``UpdateBucket``, an UpdateItem on that key).
RATE_LIMITED = "x"
#: What each kind of role may do on its own mesh's status table (asya_pulumi/objects/iam.py; Query on the index).
OWN_TABLE = {"actor": {"UpdateItem", "UpdateBucket", "BatchGetItem"},
             "sink": {"UpdateItem", "UpdateBucket", "BatchGetItem", "GetItem"},
             "gateway": {"PutItem", "UpdateItem", "UpdateBucket", "GetItem", "BatchGetItem", "Query"}, "keda": set()}
GATEWAY = {"auth": {"issuer": "https://issuer.example.com", "audience": "asya-gateway"}}
PREFIXES = (*SINK_RECORD_PREFIXES.values(), OFFLOAD_PREFIX)
CONSUME = frozenset(QUEUE_ACTIONS)  # own queue: consume, and send (retries; a sink's shutdown requeue)


@dataclass(frozen=True)
class Actor:
    """Who a role is meant to be: ``kind`` is ``actor``, ``sink``, ``gateway`` or ``keda``; ``name`` the actor or
    sink."""

    mesh: str
    kind: str
    name: str = ""


@dataclass
class Probe:
    """One call tried with a role's credentials: what, on what, what the design expects, what moto answered."""

    service: str
    action: str
    resource: str
    expected: bool
    allowed: bool | None = None


@dataclass
class Mesh:
    namespace: str
    queues: dict[str, str] = field(default_factory=dict)  # queue name -> URL, DLQs included
    bucket: str = ""
    table: str = ""
    roles: list[str] = field(default_factory=list)  # its actors' and sinks' roles


def expected_queue(who: Actor, *, mesh: str, queue: str, action: str) -> bool:
    """The design (asya_pulumi/objects/iam.py), written out: which SQS calls a role may make on ``queue``."""
    if mesh != who.mesh:
        return False
    is_dlq = queue.endswith("_dlq")
    if who.kind == "keda":
        return action == "GetQueueAttributes"
    if who.kind == "gateway":  # submits into its mesh's actor queues: no sink's, no DLQ, nothing but sending
        sinks = {queue_name(namespace=mesh, actor=sink) for sink in SINKS}
        return action == "SendMessage" and not is_dlq and queue not in sinks
    own = queue_name(namespace=mesh, actor=who.name)
    if queue == own:
        return action in CONSUME
    if queue == dlq_name(namespace=mesh, actor=who.name):
        return action == "GetQueueAttributes"
    return who.kind == "actor" and not is_dlq and action == "SendMessage"


def expected_object(who: Actor, *, mesh: str, prefix: str, action: str) -> bool:
    """Actors put, get and delete offloaded envelopes; sinks write their own records (and malformed ones under
    ``failed/``) and read and delete offloaded envelopes; nobody lists; KEDA touches no object."""
    if mesh != who.mesh or who.kind == "keda":
        return False
    if who.kind == "gateway":  # reads a success record (a payload_ref), nothing else
        return action == "GetObject" and prefix == SINK_RECORD_PREFIXES[SUCCESS_SINK]
    if prefix == OFFLOAD_PREFIX:
        return who.kind == "actor" or action != "PutObject"
    return who.kind == "sink" and action == "PutObject" and prefix in {SINK_RECORD_PREFIXES[who.name],
                                                                        MALFORMED_RECORD_PREFIX}


def expected_table(who: Actor, *, mesh: str, action: str) -> bool:
    """Sidecars update and batch-read their own mesh's status table, sinks also get one item, the gateway creates,
    updates, reads and lists (Query on ``by_status``); nobody describes, scans or deletes; no other mesh's table."""
    return mesh == who.mesh and action in OWN_TABLE[who.kind]


class TableAwareMoto(MotoServer):
    """:class:`MotoServer` started through ``moto_table_arns.py`` (DynamoDB authorised per table), IAM enforced."""

    def __init__(self, *, region: str, ready_within_s: float = 60.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "AWS_DEFAULT_REGION": region, "INITIAL_NO_AUTH_ACTION_COUNT": "0"}
        self.process = subprocess.Popen(
            [sys.executable, MOTO_LAUNCHER, "-H", "127.0.0.1", "-p", str(self.port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            self._wait_ready(ready_within_s)
        except BaseException:
            self.close()
            raise


class Moto:
    """moto's server on a free loopback port, IAM enforced from the first call; a bootstrap admin user."""

    def __init__(self) -> None:
        self.server = TableAwareMoto(region=REGION)
        self.url = self.server.url
        self.admin = self._bootstrap_admin()

    def _bootstrap_admin(self) -> dict[str, str]:
        """With enforcement on from the start no call can create the first user, so three calls (CreateUser,
        PutUserPolicy, CreateAccessKey) are let through unauthenticated (``/moto-api/reset-auth``); every call
        after them is signed and authorised, the admin's included."""
        request = urllib.request.Request(f"{self.url}/moto-api/reset-auth", data=b"3", method="POST",
                                         headers={"Content-Type": "text/plain"})
        urllib.request.urlopen(request, timeout=10).close()
        iam = self.client("iam", aws_access_key_id="AKIABOOTSTRAP", aws_secret_access_key="bootstrap")
        iam.create_user(UserName=ADMIN)
        iam.put_user_policy(UserName=ADMIN, PolicyName="all", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
        return {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}

    def client(self, service: str, **credentials: str) -> Any:
        return boto3.client(service, endpoint_url=self.url, region_name=REGION,
                            config=Config(**NO_RETRIES), **(credentials or self.admin))

    def assume(self, role: str) -> dict[str, str]:
        creds = self.client("sts").assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
                                               RoleSessionName="isolation-test")["Credentials"]
        return {"aws_access_key_id": creds["AccessKeyId"], "aws_secret_access_key": creds["SecretAccessKey"],
                "aws_session_token": creds["SessionToken"]}

    def create_role(self, *, name: str, policy: str) -> None:
        """``name`` with the rendered permission ``policy`` and a test-only trust policy (see the module's
        docstring: moto cannot evaluate Pod Identity's service principal)."""
        trust = {"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:user/{ADMIN}"},
            "Action": "sts:AssumeRole"}]}
        iam = self.client("iam")
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        iam.put_role_policy(RoleName=name, PolicyName="rendered", PolicyDocument=policy)

    def close(self) -> None:
        self.server.close()


def refused(error: ClientError) -> bool:
    """AccessDenied, however moto spells it (its SQS JSON answers carry the XML error in the message)."""
    body = f"{error.response['Error'].get('Code', '')} {error.response['Error'].get('Message', '')}"
    return error.response["ResponseMetadata"]["HTTPStatusCode"] == 403 and "AccessDenied" in body


def attempt(client: Any, method: str, **params: Any) -> bool:
    """True when ``client.method(**params)`` was authorised (whatever it then answered), False when refused."""
    try:
        getattr(client, method)(**params)
    except ClientError as error:
        if refused(error):
            return False
        raise
    return True


@dataclass
class World:
    moto: Moto
    meshes: dict[str, Mesh]
    roles: dict[str, Actor]  # role name -> who it is
    policies: dict[str, str]  # role name -> rendered policy document


def render() -> tuple[Deployment, dict[str, str]]:
    """Both meshes and their KEDA operators under mocks, the way the components render them; role -> policy."""
    deployment = Deployment.start(stack="iam-enforced")
    try:
        def program() -> None:
            for index, (namespace, actors) in enumerate(MESHES.items()):
                keda = Keda(f"keda-{index}", cluster_name="c1", region=REGION, namespace=f"keda-{index}",
                            mesh_namespaces=[namespace])
                spec = MeshSpec(namespace=namespace, region=REGION, routes={"go": actors}, gateway=GATEWAY, actors=[
                    AsyncActorSpec(name=a, image="img:1", handler="handlers.run",
                                   rate_limit={"perSecond": 5} if a == RATE_LIMITED else None) for a in actors])
                ActorMesh(f"mesh-{index}", spec=spec, cluster_name="c1", keda=keda)

        deployment.run(program)
    finally:
        settings.ROOT.set(None)
    policies: dict[str, str] = {}
    for record in deployment.of_type("aws:iam/rolePolicy:RolePolicy"):
        assert record.inputs["role"] not in policies, record.inputs["role"]
        policies[record.inputs["role"]] = record.inputs["policy"]
    return deployment, policies


def intended_roles() -> dict[str, Actor]:
    roles = {f"keda-{i}-operator-role": Actor(mesh=ns, kind="keda") for i, ns in enumerate(MESHES)}
    for namespace, actors in MESHES.items():
        roles[gateway_role_name(namespace=namespace, region=REGION)] = Actor(mesh=namespace, kind="gateway")
        for name in (*SINKS, *actors):
            kind = "sink" if name in SINKS else "actor"
            roles[role_name(namespace=namespace, actor=name, region=REGION)] = Actor(mesh=namespace, kind=kind,
                                                                                     name=name)
    return roles


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    deployment, policies = render()
    intended = intended_roles()
    # KEDA's role has no explicit name (Pulumi adds a suffix); every other role is named by role_name().
    records = {r.inputs.get("name") or r.name: r for r in deployment.of_type("aws:iam/role:Role")}
    assert set(records) == set(intended)  # every rendered role is probed, and only those
    roles = {records[key].outputs["name"]: who for key, who in intended.items()}
    moto = Moto()
    try:
        meshes = {ns: Mesh(namespace=ns) for ns in MESHES}
        sqs, s3, dynamodb = moto.client("sqs"), moto.client("s3"), moto.client("dynamodb")
        for record in deployment.of_type("aws:sqs/queue:Queue"):
            url = sqs.create_queue(QueueName=record.outputs["name"])["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            assert arn == record.outputs["arn"]  # moto's ARNs are the rendered ones: the policies apply as rendered
            meshes[record.inputs["tags"]["asya.sh/mesh"]].queues[record.outputs["name"]] = url
        for record in deployment.of_type("aws:s3/bucket:Bucket"):
            s3.create_bucket(Bucket=record.outputs["bucket"])
            s3.put_bucket_versioning(Bucket=record.outputs["bucket"], VersioningConfiguration={"Status": "Enabled"})
            meshes[record.inputs["tags"]["asya.sh/mesh"]].bucket = record.outputs["bucket"]
        for record in deployment.of_type("aws:dynamodb/table:Table"):  # each mesh's status table, as rendered
            create_table(dynamodb, record)
            arn = dynamodb.describe_table(TableName=record.outputs["name"])["Table"]["TableArn"]
            assert arn == record.outputs["arn"]  # the policies name moto's ARNs
            meshes[record.inputs["tags"]["asya.sh/mesh"]].table = record.outputs["name"]
        assert all(mesh.table for mesh in meshes.values())
        assert all(len(m.queues) == 2 * (len(MESHES[m.namespace]) + len(SINKS)) for m in meshes.values())
        for name, who in roles.items():
            moto.create_role(name=name, policy=policies[name])
            if who.kind in ("actor", "sink"):
                meshes[who.mesh].roles.append(name)
        yield World(moto=moto, meshes=meshes, roles=roles, policies=policies)
    finally:
        moto.close()


def create_table(dynamodb: Any, record: Any) -> None:
    """The rendered ``aws.dynamodb.Table`` in moto: its name, key, attributes and ``by_status`` index."""
    inputs = record.inputs
    (index,) = inputs["globalSecondaryIndexes"]
    dynamodb.create_table(
        TableName=record.outputs["name"], BillingMode=inputs["billingMode"],
        AttributeDefinitions=[{"AttributeName": a["name"], "AttributeType": a["type"]} for a in inputs["attributes"]],
        KeySchema=[{"AttributeName": inputs["hashKey"], "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[{
            "IndexName": index["name"],
            "KeySchema": [{"AttributeName": k["attributeName"], "KeyType": k["keyType"]} for k in index["keySchemas"]],
            "Projection": {"ProjectionType": index["projectionType"]},
        }],
    )


def table_calls(table: str) -> dict[str, tuple[str, dict[str, Any]]]:
    key = {"id": {"S": "probe"}}
    return {
        "DescribeTable": ("describe_table", {"TableName": table}),
        "PutItem": ("put_item", {"TableName": table, "Item": {**key, "status": {"S": "pending"},
                                                               "created_at": {"S": "2026-12-07T00:00:00.000Z"}}}),
        "UpdateItem": ("update_item", {"TableName": table, "Key": key, "UpdateExpression": "SET #s = :s",
                                       "ExpressionAttributeNames": {"#s": "status"},
                                       "ExpressionAttributeValues": {":s": {"S": "running"}}}),
        "UpdateBucket": ("update_item", {"TableName": table, "Key": {"id": {"S": rate_limit_key(RATE_LIMITED)}},
                                         "UpdateExpression": "SET #t = :t", "ExpressionAttributeNames": {"#t": "tat"},
                                         "ExpressionAttributeValues": {":t": {"N": "1"}}}),
        "GetItem": ("get_item", {"TableName": table, "Key": key}),
        "BatchGetItem": ("batch_get_item", {"RequestItems": {table: {"Keys": [key]}}}),
        "Query": ("query", {"TableName": table, "IndexName": "by_status", "KeyConditionExpression": "#s = :s",
                            "ExpressionAttributeNames": {"#s": "status"},
                            "ExpressionAttributeValues": {":s": {"S": "running"}}}),
        "Scan": ("scan", {"TableName": table}),
        "DeleteItem": ("delete_item", {"TableName": table, "Key": key}),
    }


def probe_all(world: World, *, who: Actor, credentials: dict[str, str]) -> list[Probe]:
    """Every SQS, S3 and DynamoDB call on every resource of both meshes, and GetRole on their roles, with
    ``credentials``."""
    moto = world.moto
    admin_sqs, admin_s3 = moto.client("sqs"), moto.client("s3")
    sqs, s3 = moto.client("sqs", **credentials), moto.client("s3", **credentials)
    dynamodb, iam = moto.client("dynamodb", **credentials), moto.client("iam", **credentials)
    probes: list[Probe] = []
    for mesh in world.meshes.values():
        for queue, url in mesh.queues.items():
            admin_sqs.send_message(QueueUrl=url, MessageBody="probe")
            (message,) = admin_sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1)["Messages"]
            handle = {"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}
            queue_calls: dict[str, tuple[str, dict[str, Any]]] = {
                "SendMessage": ("send_message", {"QueueUrl": url, "MessageBody": "probe"}),
                "ReceiveMessage": ("receive_message", {"QueueUrl": url, "MaxNumberOfMessages": 1}),
                "GetQueueAttributes": ("get_queue_attributes", {"QueueUrl": url, "AttributeNames": ["All"]}),
                "ChangeMessageVisibility": ("change_message_visibility", {**handle, "VisibilityTimeout": 0}),
                "DeleteMessage": ("delete_message", handle),
            }
            for action in QUEUE_ACTIONS:
                method, params = queue_calls[action]
                expected = expected_queue(who, mesh=mesh.namespace, queue=queue, action=action)
                probes.append(Probe("sqs", action, queue, expected, attempt(sqs, method, **params)))
        for prefix in PREFIXES:
            key = {"Bucket": mesh.bucket, "Key": f"{prefix}/probe.json"}
            version = admin_s3.put_object(**key, Body=b"{}")["VersionId"]
            object_calls: dict[str, tuple[str, dict[str, Any]]] = {
                "PutObject": ("put_object", {**key, "Body": b"{}"}),
                "GetObject": ("get_object", key),
                "GetObjectVersion": ("get_object", {**key, "VersionId": version}),
                "DeleteObject": ("delete_object", key),
            }
            for action in OBJECT_ACTIONS:
                method, params = object_calls[action]
                expected = expected_object(who, mesh=mesh.namespace, prefix=prefix, action=action)
                probes.append(Probe("s3", action, f"{mesh.bucket}/{key['Key']}", expected,
                                    attempt(s3, method, **params)))
        probes.append(Probe("s3", "ListBucket", mesh.bucket, False, attempt(s3, "list_objects_v2",
                                                                             Bucket=mesh.bucket)))
        calls = table_calls(mesh.table)
        for action in TABLE_ACTIONS:
            method, params = calls[action]
            expected = expected_table(who, mesh=mesh.namespace, action=action)
            probes.append(Probe("dynamodb", action, mesh.table, expected, attempt(dynamodb, method, **params)))
        for role in mesh.roles:  # a sink reads its own mesh's roles: who sent a record (runtime sidecar/sinks.py)
            expected = who.kind == "sink" and mesh.namespace == who.mesh
            probes.append(Probe("iam", "GetRole", role, expected, attempt(iam, "get_role", RoleName=role)))
    both = {mesh.table: {"Keys": [{"id": {"S": "probe"}}]} for mesh in world.meshes.values()}
    probes.append(Probe("dynamodb", "BatchGetItem", f"both tables: {', '.join(sorted(both))}", False,
                        attempt(dynamodb, "batch_get_item", RequestItems=both)))
    return probes


def mismatches(probes: list[Probe]) -> list[Probe]:
    return [p for p in probes if p.allowed != p.expected]


def test_enforcement_is_on(world: World) -> None:
    """Unknown keys are refused, and a role with no permission policy can do nothing: the engine is not open."""
    stranger = world.moto.client("sqs", aws_access_key_id="AKIASTRANGER", aws_secret_access_key="x")
    with pytest.raises(ClientError):
        stranger.list_queues()
    world.moto.create_role(name="no-permissions", policy=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:GetCallerIdentity",
                                                 "Resource": "*"}]}))
    sqs = world.moto.client("sqs", **world.moto.assume("no-permissions"))
    url = next(iter(world.meshes["a"].queues.values()))
    assert not attempt(sqs, "send_message", QueueUrl=url, MessageBody="x")


def test_every_cross_mesh_call_is_refused_and_every_own_call_allowed(world: World) -> None:
    found: list[tuple[str, Probe]] = []
    counts = {"allowed": 0, "denied": 0, "denied cross-mesh": 0}
    for role, who in sorted(world.roles.items()):
        probes = probe_all(world, who=who, credentials=world.moto.assume(role))
        found += [(role, p) for p in mismatches(probes)]
        counts["allowed"] += sum(p.expected for p in probes)
        counts["denied"] += sum(not p.expected for p in probes)
        counts["denied cross-mesh"] += sum(not p.expected and not p.resource.startswith(
            (f"asya-{who.mesh}_", f"asya-{who.mesh}-results-")) for p in probes)
    print(f"\nmoto IAM: {len(world.roles)} roles, {counts}")
    assert not found, "\n".join(f"role {role}: {p.service}:{p.action} on {p.resource}: expected "
                                f"{'allowed' if p.expected else 'denied'}" for role, p in found)
    per_mesh = {m.namespace: len(m.queues) * len(QUEUE_ACTIONS) + len(PREFIXES) * len(OBJECT_ACTIONS) + 1
                + len(TABLE_ACTIONS) + len(m.roles) for m in world.meshes.values()}
    batches_over_both = len(world.roles)  # one per role, on both meshes' tables: cross-mesh for every role
    assert counts["denied cross-mesh"] == sum(per_mesh[other] for who in world.roles.values()
                                              for other in per_mesh if other != who.mesh) + batches_over_both
    kinds = {who.kind for who in world.roles.values()}
    assert kinds == {"actor", "sink", "gateway", "keda"}
    assert counts["allowed"] > 50


def test_an_over_broad_wildcard_is_allowed_across_meshes(world: World) -> None:
    """The test can fail: mesh ``a``'s actor ``x`` with ``asya-a*`` for ``asya-a_*`` reaches mesh ``a-b``."""
    rendered = world.policies[role_name(namespace="a", actor="x", region=REGION)]
    assert "asya-a_*" in rendered
    world.moto.create_role(name="over-broad", policy=rendered.replace("asya-a_*", "asya-a*"))
    probes = probe_all(world, who=Actor(mesh="a", kind="actor", name="x"),
                       credentials=world.moto.assume("over-broad"))
    crossing = {(p.action, p.resource) for p in mismatches(probes)}
    assert ("SendMessage", queue_name(namespace="a-b", actor="x")) in crossing
    assert all(resource.startswith("asya-a-b_") for _, resource in crossing), crossing


def test_an_over_broad_table_grant_is_allowed_across_meshes(world: World) -> None:
    """The table probes can fail too: mesh ``a``'s gateway with ``table/asya-a*`` for its own table reaches mesh
    ``a-b``'s status table (moto evaluates the table ARN a request names: ``moto_table_arns.py``)."""
    rendered = world.policies[gateway_role_name(namespace="a", region=REGION)]
    assert "table/asya-a_status" in rendered
    world.moto.create_role(name="over-broad-gateway", policy=rendered.replace("table/asya-a_status", "table/asya-a*"))
    probes = probe_all(world, who=Actor(mesh="a", kind="gateway"),
                       credentials=world.moto.assume("over-broad-gateway"))
    crossing = {(p.action, p.resource) for p in mismatches(probes)}
    assert ("PutItem", "asya-a-b_status") in crossing and ("Query", "asya-a-b_status") in crossing
    assert all(resource == "asya-a-b_status" for _, resource in crossing), crossing
