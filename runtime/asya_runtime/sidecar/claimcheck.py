"""Claim-check: an envelope too large to travel well through SQS travels through the mesh's bucket instead.

**Offload.** An outgoing envelope whose serialised size is over ``ASYA_OFFLOAD_THRESHOLD_BYTES`` is written with
PutObject to ``ASYA_RESULT_BUCKET`` at :func:`offload_key` — ``offload/{id}/{hop}-{to}-{attempt}.json``, derived
from the envelope, so a redelivered producer overwrites its own object instead of adding one — and the queue
carries a small reference (:class:`Reference`, a JSON object whose only key is ``asya_claim_check``) holding the
bucket, key and VersionId. The object is written (PutObject answered) before the reference is handed to the send
batcher, so no message ever refers to an object that was not written. A transient S3 failure is retried with the
broker client's backoff for up to half the queue's visibility timeout; after that the exception reaches
:meth:`asya_runtime.sidecar.outputs.Outputs.finish`, which hands the *source* message back to SQS — nothing is
lost, and nothing is error-ended as too large.

**Fetch.** A sidecar (actor or sink) that receives a reference reads the object (by VersionId when the reference
has one) before anything else, so handlers and sink records always see the whole envelope. An object that is gone
(``NoSuchKey``/``NoSuchVersion``) cannot come back: the message becomes an error record with reason
``offloaded payload missing`` that keeps the reference (:func:`missing_record`) — never a silent drop, never a
crash loop. A transient failure hands the message back (the receive count bounds how often).

**Cleanup.** Once a message whose body was a reference has been fully handled — every output accepted by SQS and
the source deleted — its object is deleted (:meth:`ClaimCheck.consumed`): no redelivery of that message should
follow. SQS is at-least-once, so one still can; on AWS the bucket is versioned, the delete only adds a delete
marker, and the reference's VersionId still reads the object until the offload prefix's lifecycle rule removes
noncurrent versions. Locally (fauxqs: no versioning) such a late duplicate finds nothing and ends as the error
record above. Objects whose message never finished (a crash between PutObject and send, a dead-lettered reference)
expire by the lifecycle rule on ``offload/`` — longer than the DLQ's 14-day retention, so a dead-lettered reference
can still be redriven.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from botocore.exceptions import ClientError
from pydantic import ValidationError

from asya_runtime.config import OFFLOAD_PREFIX, SidecarConfig
from asya_runtime.envelope import Envelope, EnvelopeError, ErrorInfo, Route, Status, id_problem
from asya_runtime.naming import ERROR_SINK, malformed_record_key
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.aws import BrokerClient, error_code
from asya_runtime.sidecar.routing import MALFORMED, Outgoing

#: The reference's one top-level key; a body starting with it is a reference, never an envelope (no ``route``).
REFERENCE_FIELD = "asya_claim_check"
_REFERENCE_START = '{"' + REFERENCE_FIELD + '":'
#: Error-sink reason of a reference whose object is gone.
PAYLOAD_MISSING = "offloaded payload missing"
#: Share of the queue's visibility timeout an S3 read or write may spend retrying transient errors.
S3_RETRY_SHARE_OF_VISIBILITY = 0.5
#: How long deleting a consumed object may retry: it is only tidying (the lifecycle rule is the backstop).
DELETE_WITHIN_S = 5.0
#: Longest handler answer read when offloading is on: outputs no longer have to fit a message, only memory.
OFFLOAD_ANSWER_LIMIT_BYTES = 256 * 1024 * 1024
_MISSING_CODES = {"NoSuchKey", "NoSuchVersion", "404", "NotFound"}


def answer_limit_bytes(config: SidecarConfig, *, default: int) -> int:
    """The handler client's read limit: ``default`` (a few messages' worth), or, when this sidecar offloads,
    :data:`OFFLOAD_ANSWER_LIMIT_BYTES` — an answer over it still ends as ``result too large``."""
    return max(default, OFFLOAD_ANSWER_LIMIT_BYTES) if config.offload_threshold else default


def offload_with(s3: Any, *, bucket: str, envelope: Envelope) -> str:
    """For a client (a boto3 S3 client): write ``envelope`` as an actor would and return the reference body to send
    to ``envelope.route.curr``'s queue instead (the object first, then the message)."""
    body = envelope.to_json().encode()
    key = offload_key(envelope, to=envelope.route.curr)
    put = s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    route = envelope.route.model_dump(mode="json")
    return Reference(bucket, key, put.get("VersionId"), len(body), envelope.id, route).to_body()


class PayloadMissing(LookupError):
    """The object a reference names does not exist (any more)."""


@dataclass(frozen=True)
class Reference:
    """What travels through SQS instead of an offloaded envelope."""

    bucket: str
    key: str
    version_id: str | None
    bytes: int
    #: The envelope's id and route, so that an error record can be written even if the object is gone.
    id: str
    route: dict[str, object]

    def to_body(self) -> str:
        return json.dumps({REFERENCE_FIELD: asdict(self)}, separators=(",", ":"))


def reference_in(body: str) -> Reference | None:
    """The reference ``body`` holds, or None when it is an ordinary envelope (or anything else).

    Raises :class:`EnvelopeError` for a body that claims to be a reference but is not a valid one.
    """
    if not body.startswith(_REFERENCE_START):
        return None
    try:
        fields = json.loads(body)[REFERENCE_FIELD]
        # What a producer writes holds no lone surrogate and no NaN: no record could be written from those.
        json.dumps(fields, ensure_ascii=False, allow_nan=False).encode()
        return Reference(**fields)
    except RecursionError:
        raise EnvelopeError(MALFORMED, "not a valid claim-check reference: it nests too deeply") from None
    except (ValueError, TypeError, KeyError) as exc:
        raise EnvelopeError(MALFORMED, f"not a valid claim-check reference: {type(exc).__name__}: {exc}") from None


def offload_key(envelope: Envelope, *, to: str) -> str:
    """``offload/{id}/{hop}-{to}-{attempt}.json``: the same output of the same producer always gets the same key.

    ``hop`` (actors already passed) and ``to`` keep an output's key apart from its source's — a retry has the next
    attempt, an error record goes to the error sink — so deleting the consumed source never deletes an output.
    """
    return f"{OFFLOAD_PREFIX}/{envelope.id}/{len(envelope.route.prev)}-{to}-{envelope.status.attempt}.json"


def missing_record(*, reference: Reference, actor: str, detail: str) -> Outgoing:
    """The error record of a reference whose object is gone: the reference is kept as the payload."""
    route = Route.model_validate(reference.route) if reference.route else Route(curr=actor)
    envelope = Envelope(
        id=reference.id,
        route=route,
        status=Status(error=ErrorInfo(type="PayloadMissing", message=detail, reason=PAYLOAD_MISSING, actor=actor)),
        payload={REFERENCE_FIELD: asdict(reference)},
    )
    return Outgoing(to=ERROR_SINK, envelope=envelope)


def missing_sink_record(*, reference: Reference, message_id: str, mode: str, detail: str) -> tuple[str, bytes]:
    """``(key, content)`` a sink stores for a reference whose object is gone: under ``failed/``, keyed by the SQS
    MessageId like any body that is no envelope."""
    key = malformed_record_key(message_id)
    content = {"reference": asdict(reference), "reason": PAYLOAD_MISSING, "detail": detail, "sink": mode}
    return key, json.dumps(content).encode()


class ClaimCheck:
    """Offload, fetch and delete envelopes in ``bucket`` through the sidecar's broker client (every request counted
    in ``asya_s3_requests_total``)."""

    def __init__(self, *, broker: BrokerClient, bucket: str, threshold: int, visibility_s: float) -> None:
        self.broker = broker
        self.bucket = bucket
        self.threshold = threshold
        self.within_s = visibility_s * S3_RETRY_SHARE_OF_VISIBILITY

    def over(self, size: int) -> bool:
        return 0 < self.threshold < size

    async def offload(self, hop: Outgoing, body: bytes) -> str:
        """Write ``body`` (``hop``'s serialised envelope) to the bucket; return the reference body to send instead."""
        envelope = hop.envelope
        key = offload_key(envelope, to=hop.to)
        result = await self.broker.call_s3(
            "put_object",
            within_s=self.within_s,
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType="application/json",
        )
        reference = Reference(
            bucket=self.bucket,
            key=key,
            version_id=result.get("VersionId"),
            bytes=len(body),
            id=envelope.id,
            route=envelope.route.model_dump(mode="json"),
        )
        logs.event("offloaded", id=envelope.id, to=hop.to, key=key, bytes=len(body))
        return reference.to_body()

    def untrusted(self, reference: Reference) -> str | None:
        """Why this sidecar must not follow ``reference`` (None when it may): only objects a producer of this mesh
        wrote — this bucket, one name under ``offload/{id}/`` of the envelope the reference names, a text version
        id, a route that is a route (the error record of a missing object is written with it). A forged reference would
        otherwise make the sidecar read (and, once consumed, delete) any object its role can reach; on AWS IAM
        stops other buckets, but not other prefixes of this one, and locally nothing would."""
        prefix = f"{OFFLOAD_PREFIX}/{reference.id}/" if isinstance(reference.id, str) else None
        if not isinstance(reference.bucket, str) or reference.bucket != self.bucket:
            return f"it names bucket {reference.bucket!r}, not this mesh's ({self.bucket!r})"
        if id_problem(reference.id) is not None or prefix is None:
            return f"its id is not an envelope id ({id_problem(reference.id)})"
        key = reference.key
        # The name under the prefix obeys the id rule (no '/', no control characters), as offload_key's does.
        if not isinstance(key, str) or not key.startswith(prefix) or id_problem(key[len(prefix):]) is not None or \
                key[len(prefix):] in (".", ".."):
            return f"its key {key!r} is not an offloaded envelope's ({prefix}<name>.json)"
        version = reference.version_id
        if version is not None and not (isinstance(version, str) and version.isascii() and version.isprintable()):
            return f"its version_id {version!r} is not an S3 version id"
        if reference.route:
            try:
                Route.model_validate(reference.route)
            except ValidationError as exc:
                return f"its route is not a route ({exc.errors()[0]['msg']})"
        return None

    async def fetch(self, reference: Reference) -> str:
        """The offloaded envelope's text; :class:`PayloadMissing` if the object is gone (transient errors retried);
        :class:`EnvelopeError` for a reference this sidecar must not follow (:meth:`untrusted`)."""
        problem = self.untrusted(reference)
        if problem is not None:
            raise EnvelopeError(MALFORMED, f"not a claim-check reference of this mesh: {problem}")
        version = {"VersionId": reference.version_id} if reference.version_id else {}
        try:
            result = await self.broker.call_s3(
                "get_object", within_s=self.within_s, Bucket=reference.bucket, Key=reference.key, **version
            )
            async with result["Body"] as stream:
                data: bytes = await stream.read()
        except ClientError as exc:
            if error_code(exc) in _MISSING_CODES:
                raise PayloadMissing(
                    f"s3://{reference.bucket}/{reference.key} (version {reference.version_id}) is gone: "
                    f"{error_code(exc)}; it was consumed already (a late duplicate) or expired"
                ) from None
            raise
        return data.decode()

    async def consumed(self, body: str) -> None:
        """Delete the object ``body`` refers to (if it is a reference): its message was handled and deleted.

        Without VersionId: on a versioned bucket that is a delete marker, and a late duplicate of the message can
        still read its version. A failure only leaves the object to the lifecycle rule.
        """
        try:
            reference = reference_in(body)
        except EnvelopeError:
            return
        if reference is not None and self.untrusted(reference) is not None:
            return  # never delete what a forged reference names
        if reference is None:
            return
        try:
            await self.broker.call_s3(
                "delete_object", within_s=DELETE_WITHIN_S, Bucket=reference.bucket, Key=reference.key
            )
        except Exception as exc:
            logs.warning(
                "offloaded object not deleted; the lifecycle rule will expire it",
                key=reference.key,
                error=f"{type(exc).__name__}: {exc}",
            )
