"""The cluster's and the result bucket's hardening defaults, and each switch, as registered under mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
from infra_mocks import REGION, Deployment, Registered
from pydantic import ValidationError

from asya_pulumi.components import AsyaCluster, ResultBucket
from asya_pulumi.spec import ClusterSpec, ResultRetentionSpec
from asya_pulumi.spec.hardening import CLOUDWATCH_RETENTION_DAYS

BYO = {"subnetIds": ["subnet-a", "subnet-b"]}
CLUSTER = "eks"


def build(deployment: Deployment, **fields: Any) -> Registered:
    spec = ClusterSpec.model_validate({"name": CLUSTER, **fields})
    deployment.run(lambda: AsyaCluster(CLUSTER, spec=spec, region=REGION).kubeconfig)
    return deployment.one("aws:eks/cluster:Cluster", CLUSTER)


def error_of(fields: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        ClusterSpec.model_validate({"name": CLUSTER, **BYO, **fields})
    return str(caught.value)


# --- API endpoint ---------------------------------------------------------------------------------------------------


def test_default_endpoint_is_private_only(deployment: Deployment) -> None:
    vpc = build(deployment, **BYO).inputs["vpcConfig"]
    assert vpc["endpointPrivateAccess"] is True
    assert vpc["endpointPublicAccess"] is False
    assert "publicAccessCidrs" not in vpc


def test_public_access_cidrs_open_the_public_endpoint_to_them_only(deployment: Deployment) -> None:
    cidrs = ["8.8.8.0/24", "1.1.1.1/32"]
    vpc = build(deployment, **BYO, apiEndpoint={"publicAccessCidrs": cidrs}).inputs["vpcConfig"]
    assert (vpc["endpointPublicAccess"], vpc["endpointPrivateAccess"], vpc["publicAccessCidrs"]) == (True, True, cidrs)


def test_a_private_cluster_in_a_new_vpc_warns_that_the_deployer_cannot_reach_it(
    deployment: Deployment, monkeypatch: pytest.MonkeyPatch
) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda message, **_: warnings.append(message))
    build(deployment)
    assert len(warnings) == 1 and "apiEndpoint.publicAccessCidrs" in warnings[0]
    warnings.clear()
    spec = ClusterSpec.model_validate({"name": "open", "apiEndpoint": {"publicAccessCidrs": ["8.8.8.8/32"]}})
    deployment.run(lambda: AsyaCluster("open", spec=spec, region=REGION).kubeconfig)
    assert warnings == []


def test_the_open_internet_needs_the_explicit_flag(deployment: Deployment) -> None:
    for wide in ("0.0.0.0/0", "0.0.0.0/1", "8.0.0.0/7"):
        message = error_of({"apiEndpoint": {"publicAccessCidrs": ["8.8.8.8/32", wide]}})
        assert "apiEndpoint" in message and f"publicAccessCidrs ['{wide}']" in message
        assert "allowPublicInternet: true" in message
    vpc = build(deployment, **BYO, apiEndpoint={"publicAccessCidrs": ["0.0.0.0/0"], "allowPublicInternet": True})
    assert vpc.inputs["vpcConfig"]["publicAccessCidrs"] == ["0.0.0.0/0"]


@pytest.mark.parametrize(
    ("cidr", "expected"),
    [
        ("10.0.0.0/16", "private or reserved range"),
        ("192.168.1.0/24", "private or reserved range"),
        ("198.51.100.7/32", "private or reserved range"),  # RFC 5737 documentation range: no real client has it
        ("8.8.8.8/24", "host bits set; write the network, '8.8.8.0/24'"),
        ("2001:db8::/32", "is IPv6"),
        ("my-office", "is not an IPv4 CIDR"),
    ],
)
def test_a_public_access_cidr_no_client_could_come_from_is_refused(cidr: str, expected: str) -> None:
    message = error_of({"apiEndpoint": {"publicAccessCidrs": [cidr]}})
    assert "apiEndpoint.publicAccessCidrs" in message and expected in message


def test_more_cidrs_than_eks_allows_are_refused() -> None:
    cidrs = [f"8.8.{i}.0/24" for i in range(41)]
    assert "EKS allows at most 40 public access CIDRs" in error_of({"apiEndpoint": {"publicAccessCidrs": cidrs}})


# --- control-plane logs ---------------------------------------------------------------------------------------------


def test_control_plane_logs_go_to_a_log_group_with_retention_made_before_the_cluster(deployment: Deployment) -> None:
    cluster = build(deployment, **BYO)
    assert cluster.inputs["enabledClusterLogTypes"] == ["api", "audit", "authenticator"]
    (group,) = deployment.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert group.inputs["name"] == f"/aws/eks/{CLUSTER}/cluster"
    assert group.inputs["retentionInDays"] == 90
    # Otherwise EKS creates the group first, with no expiry, and ours fails with "already exists".
    assert deployment.depends_on(cluster, group)


def test_control_plane_logs_are_configurable_and_switch_off(deployment: Deployment) -> None:
    cluster = build(deployment, **BYO, controlPlaneLogs={"types": [], "retentionDays": 7})
    assert cluster.inputs.get("enabledClusterLogTypes", []) == []
    assert deployment.of_type("aws:cloudwatch/logGroup:LogGroup") == []


def test_a_retention_cloudwatch_refuses_is_refused_with_the_closest_allowed() -> None:
    assert 45 not in CLOUDWATCH_RETENTION_DAYS
    message = error_of({"controlPlaneLogs": {"retentionDays": 45}})
    assert "controlPlaneLogs.retentionDays" in message and "not a retention CloudWatch Logs accepts" in message
    assert "use 30" in message
    assert "listed twice" in error_of({"controlPlaneLogs": {"types": ["audit", "audit"]}})
    assert "controlPlaneLogs.types" in error_of({"controlPlaneLogs": {"types": ["audits"]}})


# --- Secrets envelope encryption ------------------------------------------------------------------------------------


def test_secrets_are_wrapped_by_a_rotated_customer_key_only_the_cluster_role_may_use(deployment: Deployment) -> None:
    cluster = build(deployment, **BYO)
    key = deployment.one("aws:kms/key:Key", f"{CLUSTER}-secrets")
    assert key.inputs["enableKeyRotation"] is True and key.inputs["deletionWindowInDays"] == 30
    assert cluster.inputs["encryptionConfig"] == {"resources": ["secrets"], "provider": {"keyArn": key.outputs["arn"]}}
    grant = deployment.one("aws:iam/rolePolicy:RolePolicy", f"{CLUSTER}-cluster-role-secrets-key")
    role = deployment.one("aws:iam/role:Role", f"{CLUSTER}-cluster-role")
    assert grant.inputs["role"] == role.outputs["name"]  # the mock's id of a role is its name
    (statement,) = json.loads(grant.inputs["policy"])["Statement"]
    assert statement["Resource"] == key.outputs["arn"]
    assert all(not action.endswith("*") for action in statement["Action"])
    # EKS checks at creation that the cluster role may use the key.
    assert deployment.depends_on(cluster, grant)


def test_secrets_encryption_switches_off(deployment: Deployment) -> None:
    cluster = build(deployment, **BYO, secretsEncryption={"enabled": False})
    assert cluster.inputs.get("encryptionConfig") is None
    assert deployment.of_type("aws:kms/key:Key") == []


# --- node groups: IMDSv2, hop limit 1, encrypted volumes ------------------------------------------------------------

POOLS = [
    {"name": "gpu", "diskSize": 150},
    {"name": "rocket", "amiType": "BOTTLEROCKET_x86_64_NVIDIA", "diskSize": 120},
]


def template_of(deployment: Deployment, group: Registered) -> Registered:
    (template,) = [
        t for t in deployment.of_type("aws:ec2/launchTemplate:LaunchTemplate")
        if t.outputs["name"] == group.inputs["launchTemplate"]["id"]  # the mock's id of a resource is its name
    ]
    assert group.inputs["launchTemplate"]["version"] == str(template.outputs["latestVersion"])
    return template


def test_every_node_group_requires_imdsv2_with_hop_limit_one(deployment: Deployment) -> None:
    build(deployment, **BYO, gpuPools=POOLS)
    groups = deployment.of_type("aws:eks/nodeGroup:NodeGroup")
    assert sorted(g.name for g in groups) == [f"{CLUSTER}-gpu-gpu", f"{CLUSTER}-gpu-rocket", f"{CLUSTER}-system"]
    templates = {template_of(deployment, g).urn for g in groups}
    assert len(templates) == 3  # one template per group
    for group in groups:
        metadata = template_of(deployment, group).inputs["metadataOptions"]
        assert metadata == {
            "httpEndpoint": "enabled", "httpTokens": "required", "httpPutResponseHopLimit": 1,
            "instanceMetadataTags": "disabled",
        }
        # EKS refuses diskSize next to a launch template; the size moved into the template.
        assert "diskSize" not in group.inputs
        assert "imageId" not in template_of(deployment, group).inputs  # EKS still picks the amiType's image


def test_node_volumes_are_encrypted_gp3_of_the_spec_size_on_the_image_volume(deployment: Deployment) -> None:
    build(deployment, **BYO, gpuPools=POOLS)

    def volumes(name: str) -> dict[str, dict[str, Any]]:
        template = template_of(deployment, deployment.one("aws:eks/nodeGroup:NodeGroup", name))
        return {m["deviceName"]: m["ebs"] for m in template.inputs["blockDeviceMappings"]}

    encrypted = {"volumeType": "gp3", "encrypted": "true", "deleteOnTermination": "true"}
    assert volumes(f"{CLUSTER}-system") == {"/dev/xvda": {**encrypted, "volumeSize": 40}}
    assert volumes(f"{CLUSTER}-gpu-gpu") == {"/dev/xvda": {**encrypted, "volumeSize": 150}}
    # Bottlerocket keeps images on its data volume; its OS volume keeps the AMI's size, encrypted too.
    assert volumes(f"{CLUSTER}-gpu-rocket") == {"/dev/xvda": encrypted, "/dev/xvdb": {**encrypted, "volumeSize": 120}}


def test_the_hop_limit_is_a_switch(deployment: Deployment) -> None:
    build(deployment, **BYO, nodeSecurity={"imdsHopLimit": 2})
    (template,) = deployment.of_type("aws:ec2/launchTemplate:LaunchTemplate")
    assert template.inputs["metadataOptions"]["httpPutResponseHopLimit"] == 2
    assert template.inputs["metadataOptions"]["httpTokens"] == "required"
    assert "nodeSecurity.imdsHopLimit" in error_of({"nodeSecurity": {"imdsHopLimit": 0}})


# --- result bucket lifecycle ----------------------------------------------------------------------------------------


def lifecycle(deployment: Deployment, retention: ResultRetentionSpec | None) -> dict[str, dict[str, Any]]:
    deployment.run(lambda: ResultBucket("results", namespace="m", tags={}, retention=retention).bucket.arn)
    (config,) = deployment.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")
    bucket = deployment.one("aws:s3/bucket:Bucket", "results")
    assert config.inputs["bucket"] == bucket.outputs["bucket"]  # the mock's id of a bucket is its name
    versioning = deployment.one("aws:s3/bucketVersioning:BucketVersioning", "results-versioning")
    assert deployment.depends_on(config, versioning)
    rules = {rule["id"]: rule for rule in config.inputs["rules"]}
    offloaded = rules.pop("expire-offloaded-envelopes")
    assert offloaded == {  # claim-check's backstop, whatever the retention
        "id": "expire-offloaded-envelopes",
        "status": "Enabled",
        "filter": {"prefix": "offload/"},
        "expiration": {"days": 15},  # the DLQ keeps a reference 14 days: it can still be redriven
        "noncurrentVersionExpiration": {"noncurrentDays": 1},
    }
    fanin_state = rules.pop("expire-fanin-state")
    assert fanin_state == {  # a late duplicate child (a DLQ redrive) still finds its parent finished
        "id": "expire-fanin-state",
        "status": "Enabled",
        "filter": {"prefix": "fanin/"},
        "expiration": {"days": 15},
        "noncurrentVersionExpiration": {"noncurrentDays": 1},
    }
    assert all(rule["status"] == "Enabled" and rule["filter"] == {"prefix": ""} for rule in rules.values())
    return rules


def test_results_expire_and_old_versions_and_uploads_are_cleaned_up(deployment: Deployment) -> None:
    rules = lifecycle(deployment, None)
    records = rules["expire-records"]
    assert records["expiration"] == {"days": 90}
    assert records["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    assert records["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert rules["remove-expired-delete-markers"]["expiration"] == {"expiredObjectDeleteMarker": True}


def test_result_retention_is_configurable_and_expiry_can_be_off(deployment: Deployment) -> None:
    rules = lifecycle(deployment, ResultRetentionSpec(expire_after_days=None, noncurrent_expire_after_days=30))
    assert "expiration" not in rules["expire-records"]
    assert rules["expire-records"]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    with pytest.raises(ValidationError, match="expireAfterDays"):
        ResultRetentionSpec.model_validate({"expireAfterDays": 0})


# --- docs -----------------------------------------------------------------------------------------------------------


def test_every_hardening_default_is_documented_with_its_value() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "infrastructure.md").read_text()

    def shown(value: object) -> str:
        if isinstance(value, bool):
            return f"`{str(value).lower()}`"
        if isinstance(value, list):
            return f"`[{', '.join(map(str, value))}]`"
        return str(value)

    spec = ClusterSpec(name=CLUSTER)
    for group in ("api_endpoint", "control_plane_logs", "node_security", "secrets_encryption"):
        settings = getattr(spec, group)
        prefix = ClusterSpec.model_fields[group].alias
        for name, field in type(settings).model_fields.items():
            if name == "deletion_window_days":
                continue  # stated in the secretsEncryption row
            row = f"| `{prefix}.{field.alias}` | {shown(getattr(settings, name))} |"
            assert row in doc, f"docs/infrastructure.md lacks the row {row!r}"
    retention = ResultRetentionSpec()
    for name, field in ResultRetentionSpec.model_fields.items():
        row = f"| `{field.alias}` | {getattr(retention, name)} |"
        assert row in doc, f"docs/infrastructure.md lacks the row {row!r}"


# --- trust and admin ------------------------------------------------------------------------------------------------


def test_eks_may_assume_the_cluster_role_for_this_cluster_of_this_account_only(deployment: Deployment) -> None:
    build(deployment, **BYO)
    (statement,) = json.loads(deployment.one("aws:iam/role:Role", f"{CLUSTER}-cluster-role").inputs[
        "assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "eks.amazonaws.com"}
    account = statement["Condition"]["StringEquals"]["aws:SourceAccount"]
    assert account.isdigit() and len(account) == 12
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:eks:{REGION}:{account}:cluster/{CLUSTER}"


@pytest.mark.parametrize("creator_admin", [True, False])
def test_the_creators_admin_access_is_a_switch(deployment: Deployment, creator_admin: bool) -> None:
    cluster = build(deployment, **BYO, creatorAdmin=creator_admin)
    assert cluster.inputs["accessConfig"]["bootstrapClusterCreatorAdminPermissions"] is creator_admin
