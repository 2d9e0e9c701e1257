"""Hardening settings of the cluster and the result bucket: secure by default, each one switchable.

Every default here is the behaviour a security review signs off; each field says what it causes and what turning it
off costs or opens. docs/infrastructure.md ("Cluster hardening") argues each choice.
"""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.limits import repeated

#: EKS service quota "public endpoint access CIDR ranges per cluster".
MAX_PUBLIC_ACCESS_CIDRS = 40
#: A public-access CIDR wider than this prefix is the open internet in all but name (over 16 million addresses).
WIDEST_PUBLIC_PREFIX = 8
#: The only values CloudWatch Logs accepts for a log group's retention (days).
CLOUDWATCH_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)
ControlPlaneLogType = Literal["api", "audit", "authenticator", "controllerManager", "scheduler"]
#: Who called the API, what changed, which IAM identity logged in.
DEFAULT_LOG_TYPES: tuple[ControlPlaneLogType, ...] = ("api", "audit", "authenticator")


class ApiEndpointSpec(SpecModel):
    """Who can reach the EKS API server. The private endpoint (inside the VPC) is always on.

    Default: no public endpoint at all. The API then answers only inside the cluster's VPC, so ``pulumi up`` must run
    there too (a CI runner in the VPC, a VPN or Direct Connect into it). A cluster in a VPC this stack creates has no
    such path yet, so ``ClusterSpec`` refuses that combination and asks for ``publicAccessCidrs``.
    """

    public_access_cidrs: list[str] = Field(
        default_factory=list,
        description="Empty (default): public endpoint off. Otherwise the public endpoint is on and answers only "
        "these IPv4 CIDRs (your CI's and your office's egress addresses).",
    )
    allow_public_internet: bool = Field(
        False,
        description="False (default): a CIDR wider than /8 (0.0.0.0/0 included) is refused. True: accepted; the API "
        "is then one stolen credential away from anyone on the internet.",
    )

    @field_validator("public_access_cidrs")
    @classmethod
    def _check_cidrs(cls, value: list[str]) -> list[str]:
        if len(value) > MAX_PUBLIC_ACCESS_CIDRS:
            raise ValueError(
                f"{len(value)} CIDRs; EKS allows at most {MAX_PUBLIC_ACCESS_CIDRS} public access CIDRs per cluster: "
                "merge adjacent ranges"
            )
        for cidr in value:
            try:
                network = ipaddress.ip_network(cidr, strict=False)
            except ValueError:
                raise ValueError(f"{cidr!r} is not an IPv4 CIDR such as 198.51.100.7/32") from None
            if network.version != 4:
                raise ValueError(f"{cidr!r} is IPv6; an IPv4 EKS cluster's public endpoint takes IPv4 CIDRs only")
            if str(network) != cidr:
                raise ValueError(f"{cidr!r} has host bits set; write the network, {str(network)!r}")
            if network.prefixlen >= WIDEST_PUBLIC_PREFIX and not network.is_global:
                raise ValueError(
                    f"{cidr!r} is a private or reserved range, which never reaches a public endpoint (the private "
                    "endpoint already serves the VPC); use your public egress address"
                )
        return value

    @model_validator(mode="after")
    def _check_open_internet(self) -> ApiEndpointSpec:
        wide = [c for c in self.public_access_cidrs if ipaddress.ip_network(c).prefixlen < WIDEST_PUBLIC_PREFIX]
        if wide and not self.allow_public_internet:
            raise ValueError(
                f"publicAccessCidrs {wide} opens the API server to (nearly) the whole internet; list your egress "
                "CIDRs instead, or set apiEndpoint.allowPublicInternet: true to accept that"
            )
        return self

    @property
    def public_access(self) -> bool:
        return bool(self.public_access_cidrs)


class ControlPlaneLogsSpec(SpecModel):
    """EKS control-plane logs, sent to the CloudWatch log group ``/aws/eks/<cluster>/cluster`` that we create."""

    types: list[ControlPlaneLogType] = Field(
        default_factory=lambda: list(DEFAULT_LOG_TYPES),
        description="api, audit, authenticator (default): who called the API, what changed, which IAM identity "
        "logged in. controllerManager and scheduler are optional. Empty: no logs and no log group.",
    )
    retention_days: int = Field(
        90, description="90 (default): CloudWatch deletes log events after 90 days, so logs never live forever."
    )

    @field_validator("types")
    @classmethod
    def _check_types(cls, value: list[str]) -> list[str]:
        duplicates = repeated(value)
        if duplicates:
            raise ValueError(f"log type(s) {duplicates} listed twice; list each once")
        return value

    @field_validator("retention_days")
    @classmethod
    def _check_retention(cls, value: int) -> int:
        if value not in CLOUDWATCH_RETENTION_DAYS:
            closest = min(CLOUDWATCH_RETENTION_DAYS, key=lambda allowed: abs(allowed - value))
            raise ValueError(
                f"{value} is not a retention CloudWatch Logs accepts ({', '.join(map(str, CLOUDWATCH_RETENTION_DAYS))}"
                f"); use {closest}"
            )
        return value


class NodeSecuritySpec(SpecModel):
    """What every node group's launch template enforces (system nodes and every GPU pool)."""

    imds_hop_limit: int = Field(
        1,
        ge=1,
        le=64,
        description="1 (default): IMDSv2 answers the node itself only, so a pod (one network hop further) cannot "
        "read the node role's credentials. 2: pods reach IMDS and the node role again.",
    )


class SecretsEncryptionSpec(SpecModel):
    """Envelope encryption of Kubernetes Secrets with a customer-managed KMS key the stack creates."""

    enabled: bool = Field(
        True,
        description="True (default): a KMS key with yearly rotation (about $1/month) wraps Secrets; its key policy "
        "and CloudTrail show every use. False: EKS's own AWS-owned key (Kubernetes 1.28+). EKS cannot remove "
        "envelope encryption once on: turning it off later replaces the cluster.",
    )
    deletion_window_days: int = Field(
        30, ge=7, le=30, description="30 (default): days a deleted key waits before it is gone, and Secrets with it."
    )


class ResultRetentionSpec(SpecModel):
    """Lifecycle of the mesh's result bucket, where the sinks write final envelopes."""

    expire_after_days: int | None = Field(
        90,
        ge=1,
        description="90 (default): a result or error record is deleted 90 days after it was written (a quarter for "
        "consumers to pick it up or to investigate). null: kept forever.",
    )
    noncurrent_expire_after_days: int = Field(
        7,
        ge=1,
        description="7 (default): an overwritten or expired version (a redelivery's earlier copy) is kept 7 days, "
        "then deleted; so a record is gone for good at most expireAfterDays + 7 days after it was written.",
    )
    abort_multipart_after_days: int = Field(
        1, ge=1, description="1 (default): parts of an upload that never completed are deleted after a day."
    )
