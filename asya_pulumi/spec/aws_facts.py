"""AWS facts a spec is checked against, kept in one place like the EKS version calendar (``eks_versions.py``).

Each table says where it comes from and when it was read; a fact that changes (a new region, a new GPU family) is
one line here. What the tables cannot know (an account's own quotas, which AZ letters an account sees in
``us-east-1``) is left to AWS, and the docs say so: the tables refuse what no account could ever get.

Sources, read 2026-12: the EC2 *Regions and Zones* page and ``aws ec2 describe-availability-zones`` per region;
the EC2 *Accelerated computing instance* specifications (GPUs per size); *Amazon EKS service quotas*; the EBS
volume-size limits; the VPC *CIDR blocks* page.
"""

from __future__ import annotations

import difflib
import ipaddress
import re
from dataclasses import dataclass
from typing import Literal

# ---------------------------------------------------------------- regions and their availability zones
#: Every public AWS region (commercial, GovCloud, China) and the AZ letters that exist in it for some account.
REGION_ZONES: dict[str, str] = {
    "us-east-1": "abcdef", "us-east-2": "abc", "us-west-1": "abc", "us-west-2": "abcd",
    "ca-central-1": "abd", "ca-west-1": "abc", "mx-central-1": "abc", "sa-east-1": "abc",
    "eu-west-1": "abc", "eu-west-2": "abc", "eu-west-3": "abc", "eu-central-1": "abc", "eu-central-2": "abc",
    "eu-north-1": "abc", "eu-south-1": "abc", "eu-south-2": "abc",
    "il-central-1": "abc", "me-south-1": "abc", "me-central-1": "abc", "af-south-1": "abc",
    "ap-east-1": "abc", "ap-east-2": "abc", "ap-south-1": "abc", "ap-south-2": "abc",
    "ap-southeast-1": "abc", "ap-southeast-2": "abc", "ap-southeast-3": "abc", "ap-southeast-4": "abc",
    "ap-southeast-5": "abc", "ap-southeast-6": "abc", "ap-southeast-7": "abc",
    "ap-northeast-1": "acd", "ap-northeast-2": "abcd", "ap-northeast-3": "abc",
    "us-gov-west-1": "abc", "us-gov-east-1": "abc", "cn-north-1": "abd", "cn-northwest-1": "abc",
}


def check_region(value: str) -> str:
    """A region that exists (``us-east-7`` fits the name pattern, and every AWS call would fail on it)."""
    if value not in REGION_ZONES:
        close = difflib.get_close_matches(value, REGION_ZONES, n=1, cutoff=0.75)
        hint = f"did you mean {close[0]!r}?" if close else "write one such as 'us-east-1'"
        raise ValueError(f"region {value!r} is not an AWS region; {hint} (asya_pulumi/spec/aws_facts.py lists them)")
    return value


def check_zones_in(*, zones: list[str], region: str) -> None:
    """Every AZ is one of ``region``'s (an AZ of another region, or a Local Zone, cannot hold EKS subnets)."""
    letters = REGION_ZONES.get(region, "")
    wrong = [z for z in zones if not (z[:-1] == region and len(z) == len(region) + 1 and z[-1] in letters)]
    if wrong:
        valid = ", ".join(region + letter for letter in letters)
        raise ValueError(
            f"availabilityZones {wrong} are not availability zones of {region} ({valid}); EKS subnets must be in "
            f"the cluster's region, so name zones of {region} or deploy to the region those zones are in"
        )


# ---------------------------------------------------------------- EC2 instance types
Architecture = Literal["x86_64", "arm64"]


@dataclass(frozen=True)
class GpuFamily:
    """An NVIDIA GPU instance family: the GPUs of each size (sizes not listed do not exist)."""

    gpus: dict[str, int]
    architecture: Architecture = "x86_64"


def _sizes(one_gpu: str, **more: int) -> dict[str, int]:
    sizes = {size: 1 for size in one_gpu.split()}
    sizes.update({size.replace("_", "-"): count for size, count in more.items()})
    return sizes


_G_SIZES = "xlarge 2xlarge 4xlarge 8xlarge 16xlarge"
#: NVIDIA GPU families and their GPUs per size (AMD's g4ad, Inferentia and Trainium carry no ``nvidia.com/gpu``).
NVIDIA_GPU_FAMILIES: dict[str, GpuFamily] = {
    "g4dn": GpuFamily(_sizes(_G_SIZES, **{"12xlarge": 4, "metal": 8})),
    "g5": GpuFamily(_sizes(_G_SIZES, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "g5g": GpuFamily(_sizes(_G_SIZES, metal=2), architecture="arm64"),
    "g6": GpuFamily(_sizes(_G_SIZES, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "g6e": GpuFamily(_sizes(_G_SIZES, **{"12xlarge": 4, "24xlarge": 4, "48xlarge": 8})),
    "g6f": GpuFamily(_sizes("large xlarge 2xlarge 4xlarge")),
    "gr6": GpuFamily(_sizes("4xlarge 8xlarge")),
    "p3": GpuFamily({"2xlarge": 1, "8xlarge": 4, "16xlarge": 8}),
    "p3dn": GpuFamily({"24xlarge": 8}),
    "p4d": GpuFamily({"24xlarge": 8}),
    "p4de": GpuFamily({"24xlarge": 8}),
    "p5": GpuFamily({"4xlarge": 1, "48xlarge": 8}),
    "p5e": GpuFamily({"48xlarge": 8}),
    "p5en": GpuFamily({"48xlarge": 8}),
    "p6-b200": GpuFamily({"48xlarge": 8}),
}
#: The most NVIDIA GPUs any instance type has (a pod asking for more can never be scheduled).
MAX_GPUS_PER_INSTANCE = max(count for family in NVIDIA_GPU_FAMILIES.values() for count in family.gpus.values())
#: The largest EC2 instance (u7in-32tb.224xlarge): no container can be given more than this.
LARGEST_INSTANCE_VCPUS = 896
LARGEST_INSTANCE_MEMORY_GIB = 32 * 1024
#: Current families without NVIDIA GPUs (for the "does this instance type exist" check; sizes checked by form).
_OTHER_FAMILY_NAMES = (
    "t2 t3 t3a t4g m5 m5a m5ad m5d m5dn m5n m5zn m6a m6g m6gd m6i m6id m6idn m6in m7a m7g m7gd m7i m7i-flex m8g m8gd "
    "m8a m8i c5 c5a c5ad c5d c5n c6a c6g c6gd c6gn c6i c6id c6in c7a c7g c7gd c7gn c7i c7i-flex c8g c8gd c8gn c8a c8i "
    "r5 r5a r5ad r5b r5d r5dn r5n r6a r6g r6gd r6i r6id r6idn r6in r7a r7g r7gd r7i r7iz r8g r8gd r8a r8i x1 x1e x2gd "
    "x2idn x2iedn x2iezn x8g z1d u7i-6tb u7i-8tb u7i-12tb i3 i3en i4g i4i i7i i7ie i8g im4gn is4gen d3 d3en h1 "
    "g4ad inf1 inf2 trn1 trn1n trn2 dl1 dl2q f1 f2 vt1 hpc6a hpc6id hpc7a hpc7g"
)
OTHER_FAMILIES = frozenset(_OTHER_FAMILY_NAMES.split())
#: Sizes by form: nano … 48xlarge, metal, metal-48xl.
_SIZE = re.compile(r"(nano|micro|small|medium|large|[1-9][0-9]?xlarge|xlarge|metal(-[0-9]+xl)?)")


def _split(instance_type: str) -> tuple[str, str]:
    family, _, size = instance_type.partition(".")
    return family, size


def check_instance_type(value: str) -> str:
    """An EC2 instance type that exists: a known family, and a size of the right form (and listed, for GPUs)."""
    family, size = _split(value)
    gpu = NVIDIA_GPU_FAMILIES.get(family)
    known = gpu is not None or family in OTHER_FAMILIES
    if not known or not _SIZE.fullmatch(size) or (gpu is not None and size not in gpu.gpus):
        families = [*NVIDIA_GPU_FAMILIES, *OTHER_FAMILIES]
        close = difflib.get_close_matches(family, families, n=1, cutoff=0.6) if not known else []
        if gpu is not None:
            hint = f"{family} comes in {', '.join(f'{family}.{s}' for s in gpu.gpus)}"
        else:
            hint = f"did you mean {close[0]}.{size or 'xlarge'}?" if close else "write e.g. 'm7i.large' or 'g5.xlarge'"
        raise ValueError(f"instance type {value!r} is not an EC2 instance type; {hint}")
    return value


def gpus_of(instance_type: str) -> int:
    """NVIDIA GPUs on ``instance_type`` (0 when it has none)."""
    family, size = _split(instance_type)
    gpu = NVIDIA_GPU_FAMILIES.get(family)
    return gpu.gpus.get(size, 0) if gpu else 0


def architecture_of(instance_type: str) -> Architecture:
    """``arm64`` for Graviton families (``…g``, ``…gd``, ``…gn``, ``g5g``), else ``x86_64``."""
    family, _ = _split(instance_type)
    gpu = NVIDIA_GPU_FAMILIES.get(family)
    if gpu is not None:
        return gpu.architecture
    return "arm64" if re.fullmatch(r"[a-z]+[0-9]+g[a-z]*", family) else "x86_64"


# ---------------------------------------------------------------- quotas and hard limits
#: EKS: nodes per managed node group (default quota; raise it in Service Quotas, "Nodes per managed node group").
EKS_NODES_PER_MANAGED_NODE_GROUP = 450
#: EKS: managed node groups per cluster (default quota).
EKS_MANAGED_NODE_GROUPS_PER_CLUSTER = 30
#: EBS gp3: the largest volume, GiB (a hard limit).
EBS_GP3_MAX_GIB = 16_384
#: VPC: the netmasks a VPC's primary IPv4 CIDR may have.
VPC_PREFIX_MIN, VPC_PREFIX_MAX = 16, 28


def check_vpc_cidr(value: str) -> ipaddress.IPv4Network:
    """An IPv4 network AWS accepts as a VPC's CIDR: /16 to /28, written as its network address."""
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as exc:
        raise ValueError(f"{value!r} is not an IPv4 CIDR block ({exc}); write e.g. '10.40.0.0/16'") from None
    if not VPC_PREFIX_MIN <= network.prefixlen <= VPC_PREFIX_MAX:
        raise ValueError(
            f"{value!r} is a /{network.prefixlen}; a VPC's CIDR must be /{VPC_PREFIX_MIN} to /{VPC_PREFIX_MAX}, e.g. "
            f"'{network.network_address}/16'"
        )
    return network


#: An IAM role or user ARN, the principals an EKS access entry takes.
_PRINCIPAL_ARN = re.compile(r"arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:(role|user)/[\w+=,.@/-]{1,512}")


def check_principal_arn(value: str) -> str:
    """An IAM role or user ARN (what ``aws eks create-access-entry`` accepts as ``principalArn``)."""
    if not _PRINCIPAL_ARN.fullmatch(value):
        raise ValueError(
            f"{value!r} is not an IAM role or user ARN; write e.g. 'arn:aws:iam::123456789012:role/platform-admin' "
            "(an access entry needs the role's ARN, not its name or an assumed-role session ARN)"
        )
    return value
