"""Every name derived from a (namespace, actor) pair — one module, so the scheme can be audited in one place.

The scheme: ``asya-{namespace}_{actor}``, with ``_`` between the two parts. Namespaces and actors are DNS-1123
labels, which never contain ``_``, so the first ``_`` of a name says exactly where the namespace ends:

* no two (namespace, actor) pairs give the same name (``a`` + ``b-x`` is ``asya-a_b-x``; ``a-b`` + ``x`` is
  ``asya-a-b_x``), and
* the IAM wildcard ``asya-{namespace}_*`` matches the queues of that mesh and of no other, whatever the two
  namespaces are (``asya-a_*`` cannot match ``asya-a-b_x``: the character after ``asya-a`` differs).

Dead-letter queues end in ``_dlq`` (``asya-{namespace}_{actor}_dlq``), which no actor's queue can (actors have no
``_``), so a route can never name a DLQ; ``asya-{namespace}_*_dlq`` matches exactly one mesh's DLQs.
"""

from __future__ import annotations

import hashlib
import re
import uuid

#: The two sink actors every mesh has. Users may not name an actor like this.
SUCCESS_SINK = "success-sink"
ERROR_SINK = "error-sink"
SINKS = (SUCCESS_SINK, ERROR_SINK)
#: Key prefix of each sink's records in the mesh's bucket (``{prefix}/{id}.json``).
SINK_RECORD_PREFIXES = {SUCCESS_SINK: "succeeded", ERROR_SINK: "failed"}
#: Where either sink keeps a body that is no envelope at all (it is a failure whichever sink received it).
MALFORMED_RECORD_PREFIX = SINK_RECORD_PREFIXES[ERROR_SINK]


def malformed_record_id(message_id: str) -> str:
    """The record id of an SQS message that holds no usable envelope, derived from its MessageId: a redelivery of
    the same bad message overwrites its record instead of adding one (actors' error records and sinks alike)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"sqs-message/{message_id}"))


def malformed_record_key(message_id: str) -> str:
    """Where a sink stores the record of such a message: ``failed/{malformed_record_id}.json``."""
    return f"{MALFORMED_RECORD_PREFIX}/{malformed_record_id(message_id)}.json"

#: SQS queue names are at most 80 characters (letters, digits, ``-`` and ``_``).
SQS_QUEUE_NAME_MAX = 80
#: IAM role and policy names are at most 64 characters.
IAM_ROLE_NAME_MAX = 64
#: Separates namespace from actor, and actor from a derived suffix; never part of a DNS-1123 label.
SEPARATOR = "_"
DLQ_SUFFIX = f"{SEPARATOR}dlq"
#: Actor names may not end like this: ``store-dlq`` beside ``store`` reads as a dead-letter queue in every listing.
RESERVED_ACTOR_SUFFIX = "-dlq"
PREFIX = "asya-"
_ROLE_DIGEST_LEN = 10

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def mesh_prefix(*, namespace: str) -> str:
    """``asya-{namespace}_``: the start of every queue name of the mesh, and of no other mesh's."""
    return f"{PREFIX}{namespace}{SEPARATOR}"


def queue_name(*, namespace: str, actor: str) -> str:
    """``asya-{namespace}_{actor}``: the actor's queue (``actor="*"`` gives the mesh's IAM wildcard)."""
    return f"{mesh_prefix(namespace=namespace)}{actor}"


def dlq_name(*, namespace: str, actor: str) -> str:
    """``asya-{namespace}_{actor}_dlq``: the actor's dead-letter queue."""
    return queue_name(namespace=namespace, actor=actor) + DLQ_SUFFIX


def actor_of_queue(*, namespace: str, name: str) -> str | None:
    """The actor whose (non-DLQ) queue ``name`` is in mesh ``namespace``, or None when it is not one."""
    prefix = mesh_prefix(namespace=namespace)
    if not name.startswith(prefix) or name.endswith(DLQ_SUFFIX):
        return None
    actor = name[len(prefix) :]
    return actor if _DNS_LABEL.fullmatch(actor) else None


def role_name(*, namespace: str, actor: str, region: str) -> str:
    """``asya-{namespace}_{actor}_{region}``: the actor's IAM role, always within IAM's 64 characters.

    IAM names are global to the account, so the region is part of it (one namespace may run in two regions of one
    account). A name that would be longer keeps its first 53 characters and ends in ``-`` plus 10 hex digits of the
    full name's SHA-256: still unique, still readable in CloudTrail, and the same on every run. (Role names appear in
    no policy as a wildcard, so cutting them cannot widen anything.)
    """
    full = f"{queue_name(namespace=namespace, actor=actor)}{SEPARATOR}{region}"
    if len(full) <= IAM_ROLE_NAME_MAX:
        return full
    digest = hashlib.sha256(full.encode()).hexdigest()[:_ROLE_DIGEST_LEN]
    return f"{full[: IAM_ROLE_NAME_MAX - _ROLE_DIGEST_LEN - 1]}-{digest}"


def check_dns_label(value: str, *, what: str, max_len: int = 63) -> str:
    """Return ``value`` if it is a DNS-1123 label (Kubernetes object and queue names), else explain the fix."""
    if len(value) > max_len:
        raise ValueError(f"{what} {value!r} is {len(value)} characters; use at most {max_len}")
    if not _DNS_LABEL.fullmatch(value):
        suggestion = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-")
        raise ValueError(
            f"{what} {value!r} is not a DNS-1123 label; use lowercase letters, digits and '-', "
            f"starting and ending with a letter or digit (e.g. {suggestion!r})"
        )
    return value


def check_actor_name(value: str) -> str:
    """A DNS-1123 label that is neither a sink's name nor ends in the reserved ``-dlq``."""
    check_dns_label(value, what="actor name")
    if value in SINKS:
        raise ValueError(f"actor name {value!r} is reserved for the mesh's built-in sink; choose another name")
    if value.endswith(RESERVED_ACTOR_SUFFIX):
        raise ValueError(
            f"actor name {value!r} ends in {RESERVED_ACTOR_SUFFIX!r}, which is reserved (it reads as a dead-letter "
            f"queue in every listing); choose another name, e.g. {value[: -len(RESERVED_ACTOR_SUFFIX)] + '-retry'!r}"
        )
    return value


def check_names_fit(*, namespace: str, actor: str) -> None:
    """Raise if the actor's queue names would pass SQS's 80 characters; the message says how many characters are
    left for the actor name. (IAM role names always fit: :func:`role_name`.)"""
    name = dlq_name(namespace=namespace, actor=actor)
    if len(name) > SQS_QUEUE_NAME_MAX:
        spare = SQS_QUEUE_NAME_MAX - len(dlq_name(namespace=namespace, actor=""))
        raise ValueError(
            f"actor {actor!r} in namespace {namespace!r} gives the queue name {name!r} ({len(name)} characters), "
            f"over SQS's {SQS_QUEUE_NAME_MAX}-character limit; shorten the actor name to at most {spare} characters "
            f"or the namespace"
        )


#: Suffix of the mesh's status table (the front door's store, :mod:`asya_runtime.status`). An actor may still be
#: called ``status``: its queue ``asya-{namespace}_status`` is an SQS name, the table a DynamoDB one, and every IAM
#: grant names its service's ARNs (``arn:aws:sqs:...`` vs ``arn:aws:dynamodb:...:table/...``), so neither reaches
#: the other.
STATUS_TABLE_SUFFIX = "status"


def status_table_name(namespace: str) -> str:
    """``asya-{namespace}_status``: the mesh's DynamoDB status table. The ``_`` keeps it apart from any other mesh's,
    as for queues (``asya-a_status`` is never ``asya-a-b``'s), and its IAM grant names this one table only."""
    return f"{mesh_prefix(namespace=namespace)}{STATUS_TABLE_SUFFIX}"
