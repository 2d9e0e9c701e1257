"""Names shared by the sidecar (which routes by them) and the components (which create what they name)."""

from __future__ import annotations

import re

#: The two sink actors every mesh has. Users may not name an actor like this.
SUCCESS_SINK = "success-sink"
ERROR_SINK = "error-sink"
SINKS = (SUCCESS_SINK, ERROR_SINK)

#: SQS queue names are at most 80 characters.
SQS_QUEUE_NAME_MAX = 80
DLQ_SUFFIX = "-dlq"

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def queue_name(*, namespace: str, actor: str) -> str:
    """``asya-{namespace}-{actor}``: two namespaces of one account never share a queue."""
    return f"asya-{namespace}-{actor}"


def dlq_name(*, namespace: str, actor: str) -> str:
    return queue_name(namespace=namespace, actor=actor) + DLQ_SUFFIX


def check_dns_label(value: str, *, what: str, max_len: int = 63) -> str:
    """Return ``value`` if it is a DNS-1123 label (Kubernetes object and queue names), else explain the fix."""
    if len(value) > max_len:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; use at most {max_len}")
    if not _DNS_LABEL.match(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 label; use lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit (e.g. {suggestion!r})"
        )
    return value


def check_queue_fits(*, namespace: str, actor: str) -> None:
    """Raise if the actor's DLQ name would exceed SQS's 80-character limit."""
    name = dlq_name(namespace=namespace, actor=actor)
    if len(name) > SQS_QUEUE_NAME_MAX:
        spare = SQS_QUEUE_NAME_MAX - len(dlq_name(namespace=namespace, actor=""))
        raise ValueError(
            f"actor {actor!r} in namespace {namespace!r} gives the queue name {name!r} ({len(name)} characters), "
            f"over SQS's {SQS_QUEUE_NAME_MAX}-character limit; shorten the actor name to at most {spare} characters "
            f"or the namespace"
        )
