"""The AWS and Kubernetes limits a spec is checked against when it is built, so ``pulumi preview`` and
``asya render`` refuse what ``pulumi up`` would otherwise reach half-way and AWS or the API server would refuse.

Each ``check_*`` returns its value or raises ``ValueError`` naming the value, the limit and the fix; the spec models
call them from their validators (pydantic adds the field's path). Names derived from a (namespace, actor) pair are
measured through :mod:`asya_runtime.naming`, never re-spelled here. The namespaces the components install into
are constants here (the components import them), so the reserved list and the installs cannot drift.
"""

from __future__ import annotations

import ipaddress
import re
from collections import Counter
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation

from asya_pulumi.spec.aws_facts import EBS_GP3_MAX_GIB, LARGEST_INSTANCE_MEMORY_GIB, LARGEST_INSTANCE_VCPUS
from asya_runtime.naming import (
    IAM_ROLE_NAME_MAX,
    PREFIX,
    SINKS,
    SQS_QUEUE_NAME_MAX,
    dlq_name,
    role_name,
)


def repeated(values: Iterable[str]) -> list[str]:
    """The values that occur more than once, sorted (a list the API would refuse, or silently collapse)."""
    counts = Counter(values)
    return sorted(value for value, n in counts.items() if n > 1)


# ---------------------------------------------------------------- namespaces
#: Kubernetes' own namespace.
SYSTEM_NAMESPACE = "kube-system"
#: Where AsyaCluster installs its add-ons (NVIDIA device plugin, Cluster Autoscaler).
ADDON_NAMESPACE = SYSTEM_NAMESPACE
#: The namespace the ``Keda`` component installs KEDA into unless told otherwise.
KEDA_NAMESPACE = "keda"
#: Where Kubernetes puts objects that name no namespace.
DEFAULT_NAMESPACE = "default"
#: Kubernetes reserves every namespace starting with this (``kube-public``, ``kube-node-lease``, ...).
RESERVED_NAMESPACE_PREFIX = "kube-"
#: Namespaces a mesh may not take: its NetworkPolicy, labels and deletion would reach what else runs there.
RESERVED_NAMESPACES = tuple(dict.fromkeys((DEFAULT_NAMESPACE, SYSTEM_NAMESPACE, ADDON_NAMESPACE, KEDA_NAMESPACE)))


def check_mesh_namespace(value: str) -> str:
    """Refuse ``default``, ``kube-*`` and the namespaces the components install add-ons (KEDA) into."""
    if value in RESERVED_NAMESPACES or value.startswith(RESERVED_NAMESPACE_PREFIX):
        owner = "KEDA" if value == KEDA_NAMESPACE else "Kubernetes and the cluster add-ons"
        raise ValueError(
            f"mesh namespace {value!r} is reserved for {owner} (reserved: {', '.join(RESERVED_NAMESPACES)} and "
            f"{RESERVED_NAMESPACE_PREFIX}*); a mesh needs a namespace of its own, e.g. {'asya-' + value!r}"
        )
    return value


def _sink_limits(*, namespace: str, region: str) -> list[tuple[str, str, str, int, str]]:
    """(sink, what, derived name, limit, service) for every name a mesh's built-in sinks derive."""
    found = []
    for sink in SINKS:
        found.append((sink, "queue name", dlq_name(namespace=namespace, actor=sink), SQS_QUEUE_NAME_MAX, "SQS"))
        found.append((sink, "IAM role name", role_name(namespace=namespace, actor=sink, region=region),
                      IAM_ROLE_NAME_MAX, "IAM"))
    return found


def _sink_names_fit(*, namespace: str, region: str) -> bool:
    return all(len(name) <= limit for _, _, name, limit, _ in _sink_limits(namespace=namespace, region=region))


def max_namespace_length(*, region: str) -> int:
    """The longest namespace whose built-in sinks' queue and role names fit SQS's and IAM's limits in ``region``.

    Measured, not computed from a formula: ``role_name`` shortens long role names to fit (a hashed tail), so only
    the queue names grow with the namespace today, and the measurement stays right if the scheme changes again.
    """
    longest = 0
    while longest < LABEL_NAME_MAX and _sink_names_fit(namespace="n" * (longest + 1), region=region):
        longest += 1
    return longest


def check_namespace_fits(*, namespace: str, region: str) -> None:
    """Every mesh has the two sinks, so the namespace alone decides whether their names fit SQS's 80 / IAM's 64."""
    for sink, what, name, limit, service in _sink_limits(namespace=namespace, region=region):
        if len(name) > limit:
            raise ValueError(
                f"namespace {namespace!r} ({len(namespace)} characters) gives the built-in {sink} the {what} "
                f"{name!r} ({len(name)} characters), over {service}'s {limit}-character limit; use a namespace of "
                f"at most {max_namespace_length(region=region)} characters in {region}"
            )


# ---------------------------------------------------------------- S3
S3_BUCKET_NAME_MAX = 63
#: Pulumi's ``bucket_prefix`` appends a 26-character unique suffix (a timestamp and a counter, digits only).
BUCKET_UNIQUE_SUFFIX_LENGTH = 26
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_BUCKET_RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def result_bucket_prefix(*, namespace: str) -> str:
    """``asya-{namespace}-results-``, cut so that prefix + Pulumi's unique suffix fits S3's 63 characters."""
    return f"{PREFIX}{namespace}-results-"[: S3_BUCKET_NAME_MAX - BUCKET_UNIQUE_SUFFIX_LENGTH]


def check_bucket_name(name: str, *, fix: str = "change the namespace it derives from") -> str:
    """S3's general purpose bucket naming rules (3–63 characters, lowercase, no IP form, reserved affixes);
    ``fix`` ends the message (a derived name's fix differs from a named bucket's)."""
    problem = None
    if not 3 <= len(name) <= S3_BUCKET_NAME_MAX:
        problem = f"is {len(name)} characters; S3 allows 3 to {S3_BUCKET_NAME_MAX}"
    elif not _BUCKET_NAME.fullmatch(name) or ".." in name:
        problem = "may hold only lowercase letters, digits, '.' and '-', start and end with a letter or digit"
    elif name.startswith(_BUCKET_RESERVED_PREFIXES) or name.endswith(_BUCKET_RESERVED_SUFFIXES):
        problem = "uses a prefix or suffix S3 reserves"
    else:
        try:
            ipaddress.IPv4Address(name)
            problem = "is formatted as an IP address, which S3 refuses"
        except ValueError:
            pass
    if problem:
        raise ValueError(f"S3 bucket name {name!r} {problem}; {fix}")
    return name


def check_result_bucket(*, namespace: str) -> str:
    """The mesh's result bucket name, with the widest unique suffix, passes S3's rules; returns the prefix."""
    prefix = result_bucket_prefix(namespace=namespace)
    check_bucket_name(prefix + "0" * BUCKET_UNIQUE_SUFFIX_LENGTH)
    return prefix


# ---------------------------------------------------------------- Kubernetes names and labels
LABEL_NAME_MAX = 63
DNS_SUBDOMAIN_MAX = 253
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_FORMS = "letters, digits, '-', '_' and '.', starting and ending with a letter or digit"


def check_label_key(key: str, *, what: str) -> str:
    """A Kubernetes label key (qualified name): optional ``dns.subdomain/`` prefix, then a name of ≤ 63 characters."""
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > DNS_SUBDOMAIN_MAX or not _DNS_SUBDOMAIN.fullmatch(prefix)):
        raise ValueError(
            f"{what} {key!r}: the prefix before '/' must be a DNS subdomain of at most {DNS_SUBDOMAIN_MAX} "
            f"characters (lowercase letters, digits, '-' and '.'), e.g. 'example.com/{name or 'name'}'"
        )
    if len(name) > LABEL_NAME_MAX or not _LABEL_NAME.fullmatch(name):
        raise ValueError(
            f"{what} {key!r} is not a Kubernetes label key; its name (after any 'prefix/') has at most "
            f"{LABEL_NAME_MAX} characters: {_LABEL_FORMS}"
        )
    return key


def check_label_value(value: str, *, what: str) -> str:
    """A Kubernetes label value: empty, or at most 63 characters of the label alphabet."""
    if value and (len(value) > LABEL_NAME_MAX or not _LABEL_NAME.fullmatch(value)):
        raise ValueError(
            f"{what} {value!r} is not a Kubernetes label value; use at most {LABEL_NAME_MAX} characters: "
            f"{_LABEL_FORMS} (or leave it empty)"
        )
    return value


#: distribution/reference's grammar (what the kubelet and every registry parse): ``[host[:port]/]path[:tag][@digest]``.
_HOST_LABEL = r"[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
_IMAGE_HOST = rf"(?:{_HOST_LABEL}(?:\.{_HOST_LABEL})*|\[[0-9a-fA-F:]+\])"
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
_IMAGE_REFERENCE = re.compile(
    rf"(?:(?P<host>{_IMAGE_HOST}(?::[0-9]+)?)/)?(?P<path>{_IMAGE_PATH})(?::(?P<tag>[\w][\w.-]{{0,127}}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?"
)
#: The longest repository name (host and path) a registry takes.
IMAGE_NAME_MAX = 255
_DIGEST_HEX = {"sha256": 64, "sha512": 128}


def check_image(value: str, *, what: str) -> str:
    """A container image reference as the kubelet parses it: lowercase repository, a tag of at most 128 word
    characters, a digest whose hex fits its algorithm; no whitespace or control characters."""
    if not value.strip():
        raise ValueError(f"{what} is blank; name the container image, e.g. 'registry.example.com/scoring:1.4'")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise ValueError(f"{what} {value!r} contains whitespace or a control character, which no image reference "
                         "may; remove it")
    match = _IMAGE_REFERENCE.fullmatch(value)
    problem = None
    if match is None:
        lowered = value.lower()
        hint = f" (did you mean {lowered!r}? repositories are lowercase)" if _IMAGE_REFERENCE.fullmatch(lowered) else ""
        problem = (f"is not an image reference{hint}; write [registry/]repository[:tag][@sha256:<64 hex>], e.g. "
                   "'registry.example.com/scoring:1.4'")
    elif len((match["host"] or "") + "/" + match["path"]) > IMAGE_NAME_MAX:
        problem = f"has a repository name over {IMAGE_NAME_MAX} characters; shorten it"
    elif match["digest"]:
        algorithm, _, hexdigits = match["digest"].partition(":")
        expected = _DIGEST_HEX.get(algorithm)
        if expected is None or len(hexdigits) != expected:
            problem = (f"has the digest {match['digest']!r}; a digest is sha256: and 64 hex digits (or sha512: and "
                       "128), as `crane digest` or `docker inspect` print it")
    if problem:
        raise ValueError(f"{what} {value!r} {problem}")
    return value


# ---------------------------------------------------------------- environment variables
#: Linux's MAX_ARG_STRLEN: one ``NAME=value`` string of the environment, its NUL included, is at most 32 pages.
ENV_ENTRY_MAX_BYTES = 128 * 1024


def check_env_value(name: str, value: str) -> str:
    """An env value ``execve`` can pass: no NUL (it would end the string), and ``NAME=value`` within 128 KiB
    (past it the container's start fails with E2BIG, after the pod was scheduled)."""
    if "\0" in value:
        raise ValueError(f"env {name!r} contains a NUL character, which no environment variable can hold; remove it")
    size = len(f"{name}={value}".encode()) + 1
    if size > ENV_ENTRY_MAX_BYTES:
        raise ValueError(
            f"env {name!r} is {size} bytes as NAME=value, over Linux's {ENV_ENTRY_MAX_BYTES} bytes (128 KiB) for one "
            "variable (the container would fail to start with E2BIG); put the data in a ConfigMap volume or fetch "
            "it in the handler"
        )
    return value


# ---------------------------------------------------------------- Kubernetes quantities
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E|[eE][+-]?\d+)?$"
)
_SUFFIX = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18,
    **{unit: Decimal(2) ** (10 * (i + 1)) for i, unit in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
}
#: Kubernetes keeps quantities in a 63-bit integer of milli-units at most; larger exponents are surely mistakes.
_MAX_EXPONENT = 18


def parse_quantity(text: str, *, what: str) -> Decimal:
    """A Kubernetes resource quantity (``500m``, ``2``, ``512Mi``, ``1G``, ``1e3``) as a non-negative Decimal."""
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise ValueError(f"{what}: {text!r} is not a Kubernetes quantity; write e.g. '500m', '2', '512Mi', '1G'")
    number, suffix = Decimal(match["number"]), match["suffix"] or ""
    try:
        if suffix not in _SUFFIX:  # the exponent form, 1e3 / 1E-3 (E and Ei are units)
            exponent = int(suffix[1:])
            if abs(exponent) > _MAX_EXPONENT:
                raise InvalidOperation
            value = number.scaleb(exponent)
        else:
            value = number * _SUFFIX[suffix]
    except ArithmeticError:  # InvalidOperation, Overflow
        raise ValueError(f"{what}: {text!r} is out of range for a Kubernetes quantity; write e.g. '4Gi'") from None
    if value < 0:
        raise ValueError(f"{what}: {text!r} is negative; a resource quantity is zero or more")
    return value


#: runc refuses a memory limit below 6 MiB (the container never starts).
MIN_MEMORY_LIMIT_BYTES = 6 * 2**20


def check_resource_size(name: str, value: Decimal, *, text: str) -> Decimal:
    """A CPU or memory amount no EC2 instance is too small for (a pod asking more stays Pending forever)."""
    ceilings = {
        "cpu": (Decimal(LARGEST_INSTANCE_VCPUS), f"{LARGEST_INSTANCE_VCPUS} CPUs"),
        "memory": (Decimal(LARGEST_INSTANCE_MEMORY_GIB) * 2**30, f"{LARGEST_INSTANCE_MEMORY_GIB}Gi"),
        "ephemeral-storage": (Decimal(EBS_GP3_MAX_GIB) * 2**30, f"{EBS_GP3_MAX_GIB}Gi"),
    }
    ceiling, readable = ceilings[name]
    if value > ceiling:
        raise ValueError(
            f"{name}: {text} is more than the largest EC2 instance (or volume) has ({readable}); no node could ever "
            "run the pod: ask for what one replica needs and add replicas"
        )
    return value
