"""Event-driven starts: an S3 event notification on an actor's queue becomes an envelope on a trigger's route.

S3 sends its notifications straight to the first actor's queue of a trigger's route (docs/infrastructure.md,
"Triggers"). Those messages are S3's own JSON, not envelopes, so the first actor's sidecar reads them here before
it parses an envelope. It knows its triggers from ``ASYA_S3_TRIGGERS`` (``SidecarConfig.s3_triggers``): each is
keyed by the notification's ``configurationId`` (``asya-{namespace}_{trigger}``, :func:`notification_id`), which S3
copies into every record, and names the bucket and the route. So:

* a body that holds no ``Records`` or ``Event`` key is an envelope, as before (one substring test, only on an actor
  that has triggers);
* ``s3:TestEvent`` (what S3 sends once when a notification is configured) is :data:`TEST_EVENT`: deleted, no run;
* an ``ObjectCreated:*`` record whose ``configurationId`` and bucket are one of this actor's triggers becomes a
  fresh envelope: ``route`` the trigger's, ``payload`` ``{bucket, key, size, etag, version_id, event, event_time,
  sequencer}``, header ``x-asya-trigger``. Its id is derived from the bucket, key and the record's ``sequencer``
  (S3's per-key order of events), so a redelivered notification is the same envelope (the sinks overwrite one
  record) and a second upload of the same key is a new one;
* anything else (an unknown configurationId, a record of another bucket, several records) falls through to the
  envelope parser, which error-ends it as a malformed envelope with a record, as any stray body.

The object key in a notification is URL-encoded (a space arrives as ``+``): the payload carries it decoded, as
``GetObject`` wants it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote_plus, unquote_plus

from pydantic import BaseModel, ConfigDict, Field

from asya_runtime.envelope import new_envelope
from asya_runtime.naming import mesh_prefix

__all__ = [
    "TEST_EVENT",
    "TRIGGER_HEADER",
    "S3TriggerTarget",
    "envelope_from_s3_event",
    "notification_id",
    "s3_object_created_event",
    "s3_test_event",
]

#: Header every trigger-started envelope carries: the trigger's name.
TRIGGER_HEADER = "x-asya-trigger"
#: What :func:`envelope_from_s3_event` returns for S3's ``s3:TestEvent``: delete the message, start nothing.
TEST_EVENT: Final = "s3:TestEvent"
_ID_NAMESPACE = uuid.UUID("6f1d7c1e-7a0b-4f39-9a43-3a1e5b0c2d11")


class S3TriggerTarget(BaseModel):
    """One S3 trigger as its route's first sidecar sees it (a value of ``ASYA_S3_TRIGGERS``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    trigger: str = Field(description="The trigger's name (the x-asya-trigger header).")
    bucket: str = Field(description="The bucket whose notifications it accepts.")
    route: list[str] = Field(min_length=1, description="The actors the envelope runs, this actor first.")


def notification_id(*, namespace: str, trigger: str) -> str:
    """``asya-{namespace}_{trigger}``: the S3 notification's Id, which S3 copies into each record as
    ``configurationId`` (one mesh's ids never equal another's, by the naming scheme's ``_``)."""
    return f"{mesh_prefix(namespace=namespace)}{trigger}"


def envelope_from_s3_event(body: str, *, triggers: Mapping[str, S3TriggerTarget]) -> str | None:
    """The envelope text an S3 notification ``body`` starts, :data:`TEST_EVENT` for S3's test event, or None
    when ``body`` is not a notification of one of ``triggers`` (then it is parsed as an envelope)."""
    if not triggers or ('"Records"' not in body and '"Event"' not in body):
        return None
    try:
        event = json.loads(body)
    except ValueError:
        return None
    if not isinstance(event, dict):
        return None
    if event.get("Event") == TEST_EVENT and event.get("Service") == "Amazon S3":
        return TEST_EVENT
    records = event.get("Records")
    if not isinstance(records, list) or len(records) != 1 or not isinstance(records[0], dict):
        return None  # S3 sends one record per message; anything else is not its notification
    record = records[0]
    s3 = record.get("s3")
    if record.get("eventSource") != "aws:s3" or not isinstance(s3, dict):
        return None
    target = triggers.get(str(s3.get("configurationId")))
    bucket, obj = s3.get("bucket") or {}, s3.get("object") or {}
    if (target is None or not isinstance(bucket, dict) or not isinstance(obj, dict)
            or bucket.get("name") != target.bucket or not str(record.get("eventName", "")).startswith("ObjectCreated:")
            or not isinstance(obj.get("key"), str)):
        return None
    key = unquote_plus(obj["key"])
    sequencer = str(obj.get("sequencer", ""))
    payload: dict[str, Any] = {
        "bucket": target.bucket,
        "key": key,
        "size": obj.get("size"),
        "etag": obj.get("eTag"),
        "version_id": obj.get("versionId"),
        "event": record.get("eventName"),
        "event_time": record.get("eventTime"),
        "sequencer": sequencer or None,
    }
    envelope_id = str(uuid.uuid5(_ID_NAMESPACE, f"{target.trigger}/{target.bucket}/{key}/{sequencer}"))
    envelope = new_envelope(route=target.route, payload=payload, headers={TRIGGER_HEADER: target.trigger},
                            envelope_id=envelope_id)
    return envelope.to_json()


def s3_test_event(*, bucket: str, at: datetime | None = None) -> str:
    """S3's ``s3:TestEvent`` message, as S3 sends it when a notification configuration is put on ``bucket``."""
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return json.dumps({"Service": "Amazon S3", "Event": TEST_EVENT, "Time": when, "Bucket": bucket,
                       "RequestId": uuid.uuid4().hex[:16].upper(), "HostId": "local"})


def s3_object_created_event(
    *, configuration_id: str, bucket: str, key: str, size: int, etag: str, sequencer: str,
    region: str = "us-east-1", at: datetime | None = None, version_id: str | None = None,
) -> str:
    """An ``ObjectCreated:Put`` notification in S3's event message structure (version 2.1): what ``asya dev``
    sends for an upload its S3 emulator cannot announce itself, so the sidecar reads the same shape as on AWS."""
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    obj: dict[str, Any] = {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag, "sequencer": sequencer}
    if version_id is not None:
        obj["versionId"] = version_id
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": when,
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "local"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": uuid.uuid4().hex[:16].upper(), "x-amz-id-2": "local"},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {"name": bucket, "ownerIdentity": {"principalId": "local"}, "arn": f"arn:aws:s3:::{bucket}"},
            "object": obj,
        },
    }
    return json.dumps({"Records": [record]})
