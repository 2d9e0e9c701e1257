"""Run a Pulumi program offline under mocks that record every registered resource and its dependencies.

Used by the infra tests, ``bench/mesh_build.py`` and ``asya render`` (no cloud credentials, no Pulumi CLI).

* ``new_resource`` fills the computed fields (``arn``, ``url``, ``id``, ``name``, a bucket's ``bucket``, a node
  group's ASG name, a launch template's ``latestVersion``, an EKS cluster's VPC, security group and OIDC issuer,
  ...) so no assertion can pass on a None that a real deploy would never produce.
* Dependencies: ``MockResourceArgs`` carries none, so ``RecordingMonitor`` wraps ``MockMonitor.RegisterResource``
  and keeps ``request.dependencies`` — the URNs the SDK sends to the engine for ``depends_on`` and for inputs that
  are outputs of other resources. Ordering assertions check exactly what would order a real ``pulumi up``.
* A fresh monitor, root stack and record per run (``MockedDeployment.start``); never ``preview=True``.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings

ACCOUNT = "123456789012"
REGION = "us-east-1"


@dataclass
class Registered:
    type: str
    name: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    urn: str = ""
    parent: str = ""
    dependencies: list[str] = field(default_factory=list)
    ignore_changes: list[str] = field(default_factory=list)
    provider: str = ""


def _suffix(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[:7]


class RecordingMocks(pulumi.runtime.Mocks):
    def __init__(self) -> None:
        self.registered: list[Registered] = []
        #: Records the monitor has not yet completed with URN and dependencies, by (type, name).
        self.pending: dict[tuple[str, str], Registered] = {}

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        inputs = dict(args.inputs)
        outputs = dict(inputs)
        name = inputs.get("name") or f"{args.name}-{_suffix(args.name)}"
        typ = args.typ
        resource_id = name
        if typ.startswith("aws:"):
            service = typ.split(":")[1].split("/")[0]
            outputs.setdefault("name", name)
            outputs["arn"] = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{name}"
            if typ == "aws:sqs/queue:Queue":
                outputs["url"] = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{name}"
                resource_id = outputs["url"]
            elif typ == "aws:iam/role:Role":
                outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:role/{name}"
            elif typ == "aws:dynamodb/table:Table":
                outputs["arn"] = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}"
            elif typ == "aws:iam/instanceProfile:InstanceProfile":
                outputs["arn"] = f"arn:aws:iam::{ACCOUNT}:instance-profile/{name}"
            elif typ == "aws:s3/bucket:Bucket":
                outputs["bucket"] = inputs.get("bucket") or f"{inputs.get('bucketPrefix', args.name)}{_suffix(name)}"
                outputs["arn"] = f"arn:aws:s3:::{outputs['bucket']}"
                resource_id = outputs["bucket"]
            elif typ == "aws:eks/cluster:Cluster":
                outputs["arn"] = f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{name}"
                outputs["endpoint"] = f"https://{_suffix(name)}.gr7.{REGION}.eks.amazonaws.com"
                outputs["certificateAuthority"] = {"data": "LS0tLS1CRUdJTi1DRVJU"}
                outputs["vpcConfig"] = {**dict(inputs.get("vpcConfig") or {}),
                                        "clusterSecurityGroupId": f"sg-{_suffix(name)}",
                                        "vpcId": f"vpc-{_suffix(name)}"}
                issuer = f"https://oidc.eks.{REGION}.amazonaws.com/id/{_suffix(name).upper()}"
                outputs["identities"] = [{"oidcs": [{"issuer": issuer}]}]
            elif typ == "aws:kms/key:Key":
                key_id = f"{_suffix(name)}-0000-4000-8000-000000000000"
                outputs["arn"] = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key_id}"
                outputs["keyId"] = key_id
                resource_id = key_id
            elif typ == "aws:ec2/launchTemplate:LaunchTemplate":
                outputs["latestVersion"] = 1
            elif typ == "aws:eks/nodeGroup:NodeGroup":
                outputs["resources"] = [{"autoscalingGroups": [{"name": f"eks-{args.name}-{_suffix(name)}"}]}]
        elif typ.startswith("kubernetes:") and typ != "pulumi:providers:kubernetes":
            metadata = dict(inputs.get("metadata") or {})
            metadata.setdefault("name", f"{args.name}-{_suffix(args.name)}")
            outputs["metadata"] = metadata
            if typ == "kubernetes:helm.sh/v3:Release":
                outputs.setdefault("name", name)
                outputs["status"] = {"status": "deployed", "namespace": inputs.get("namespace")}
            resource_id = f"{metadata.get('namespace', '')}/{metadata['name']}"
        record = Registered(type=typ, name=args.name, inputs=inputs, outputs=outputs)
        self.registered.append(record)
        self.pending[(typ, args.name)] = record
        return resource_id, outputs

    def call(self, args: pulumi.runtime.MockCallArgs) -> tuple[dict[str, Any], list[tuple[str, str]] | None]:
        if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
            identity = {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDA"}
            return {**identity, "id": ACCOUNT}, []
        if args.token == "aws:index/getRegion:getRegion":
            return {"name": REGION, "region": REGION, "id": REGION, "description": "US East"}, []
        if args.token == "aws:secretsmanager/getSecretVersion:getSecretVersion":
            # A stand-in value, distinct per secret, so tests can check it never reaches a rendered object.
            secret_id = str(args.args.get("secretId"))
            arn = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{secret_id}"
            return {"arn": arn, "id": arn, "secretId": secret_id, "versionId": "v1",
                    "secretString": f"mock-secret-value-of-{secret_id}", "versionStages": ["AWSCURRENT"]}, []
        if args.token == "aws:index/getPartition:getPartition":
            return {"partition": "aws", "dnsSuffix": "amazonaws.com", "id": "aws"}, []
        raise NotImplementedError(f"no mock for call {args.token}")


class RecordingMonitor(pulumi_mocks.MockMonitor):
    """Keeps the URN, parent and dependency URNs of every registration (what the engine orders deploys by)."""

    mocks: RecordingMocks

    def RegisterResource(self, request: Any) -> Any:
        response = super().RegisterResource(request)
        # Registrations run on several threads: find this one's record by type and name, not by position.
        record = self.mocks.pending.pop((request.type, request.name), None)
        if record is not None:
            record.urn, record.parent = response.urn, request.parent
            record.dependencies = list(request.dependencies)
            record.ignore_changes = list(request.ignoreChanges)
            record.provider = request.provider
        return response


class MockedDeployment:
    """One mocked ``pulumi up``: run a program, then query what it registered."""

    def __init__(self, mocks: RecordingMocks) -> None:
        self.mocks = mocks

    @classmethod
    def start(cls, *, project: str = "asya", stack: str = "mocked") -> MockedDeployment:
        """Install fresh mocks (``set_mocks`` is process-global) and a fresh root stack; never ``preview=True``.

        Pulumi's mocks run on the thread's current event loop. A caller that used ``asyncio.run`` before leaves the
        thread with none (``asyncio.run`` ends by setting it to None), so the thread gets a fresh loop if it has none.
        """
        try:
            asyncio.get_event_loop_policy().get_event_loop()
        except RuntimeError:
            asyncio.set_event_loop(asyncio.new_event_loop())
        mocks = RecordingMocks()
        settings.ROOT.set(None)
        pulumi.runtime.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=RecordingMonitor(mocks))
        return cls(mocks)

    def run(self, program: Callable[[], Any]) -> Any:
        """Run ``program`` and wait until every resource registered and every output it returned resolved."""
        result: list[Any] = []

        def body() -> Any:
            value = program()
            result.append(value)
            return value

        pulumi.runtime.test(body)()
        return result[0] if result else None

    @property
    def registered(self) -> list[Registered]:
        return self.mocks.registered

    def of_type(self, typ: str) -> list[Registered]:
        return [r for r in self.mocks.registered if r.type == typ]

    def one(self, typ: str, name: str) -> Registered:
        found = [r for r in self.mocks.registered if r.type == typ and r.name == name]
        assert len(found) == 1, f"{typ} {name}: {len(found)} registered; names: {[r.name for r in self.of_type(typ)]}"
        return found[0]

    def depends_on(self, resource: Registered, other: Registered) -> bool:
        return other.urn in resource.dependencies

    def kubernetes_objects(self) -> list[dict[str, Any]]:
        """Every Kubernetes object's inputs (apiVersion/kind/metadata/spec...), integers restored from floats,
        secrets redacted (:func:`secrets_redacted`): what tests assert on and ``asya render`` writes."""
        objects = []
        for r in self.mocks.registered:
            is_object = r.type.startswith("kubernetes:") and "apiVersion" in r.inputs
            if is_object and r.type != "kubernetes:helm.sh/v3:Release":
                objects.append(secrets_redacted(integers_restored(r.inputs)))
        return objects


#: What a secret value is shown as in rendered objects and the plan's tree.
REDACTED = "<redacted>"
#: Pulumi's wire protocol (``pulumi.runtime.rpc``, private there): a secret input reaches the mock as
#: ``{SIG_KEY: SECRET_SIG, "value": ...}``, an output value as ``{SIG_KEY: OUTPUT_VALUE_SIG, "secret": true, ...}``.
_SIG_KEY = "4dabf18193072939515e22adb298388d"
_SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"
_OUTPUT_VALUE_SIG = "d0e6a833031e9bbcd3f4e8bde6ca49a4"


def _is_secret_marker(value: dict[str, Any]) -> bool:
    sig = value.get(_SIG_KEY)
    return sig == _SECRET_SIG or (sig == _OUTPUT_VALUE_SIG and value.get("secret") is True)


def secrets_redacted(value: Any) -> Any:
    """``value`` with every Pulumi secret replaced by ``REDACTED``, and every value of a Kubernetes Secret's
    ``data`` / ``stringData`` too (a Secret's content is secret whether or not Pulumi was told so).

    A value the program marked (``Output.secret``, a provider's secret output) becomes ``REDACTED``; a marked
    map keeps its keys (a Secret's key names are not secret, and the object stays valid against its schema).
    """
    if isinstance(value, dict):
        if _is_secret_marker(value):
            inner = value.get("value")
            return {k: REDACTED for k in inner} if isinstance(inner, dict) else REDACTED
        redacted = {k: secrets_redacted(v) for k, v in value.items()}
        if value.get("kind") == "Secret" and value.get("apiVersion") == "v1":
            for field_name in ("data", "stringData"):
                if isinstance(redacted.get(field_name), dict):
                    redacted[field_name] = {k: REDACTED for k in redacted[field_name]}
                elif field_name in redacted:
                    redacted[field_name] = REDACTED
        return redacted
    if isinstance(value, list):
        return [secrets_redacted(v) for v in value]
    return value


def integers_restored(value: Any) -> Any:
    """The mock's wire format turns every number into a float; JSON Schema ``integer`` wants 3, not 3.0."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integers_restored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integers_restored(v) for v in value]
    return value
