"""Fan-in's state in the mesh's bucket: one actor's ``fanin/{actor}/{parent_id}/`` prefixes, and the error sink's
records it reads (the layout and why: :mod:`asya_runtime.sidecar.fanin`).

Every request goes through :meth:`~asya_runtime.sidecar.aws.BrokerClient.call_s3` (counted, transient errors retried
for ``within_s``); what is left raises and the caller hands its message back to SQS.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from asya_runtime.config import FANIN_PREFIX
from asya_runtime.naming import ERROR_SINK, SINK_RECORD_PREFIXES
from asya_runtime.sidecar.aws import BrokerClient, error_code
from asya_runtime.sidecar.inflight import Received

__all__ = ["CLAIM", "OPEN", "FanInState", "Listing"]

OPEN = "open.json"
CLAIM = "claim.json"
#: Objects read at once (a parent's child records when its aggregate is made; error records a tick looks up).
READ_CONCURRENCY = 16
#: S3's answers to a conditional write that lost: the object exists (412), or another conditional write of the same
#: key is under way (409).
_TAKEN = {"PreconditionFailed", "ConditionalRequestConflict", "412", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


@dataclass
class Listing:
    """What a parent's prefix holds: the child indexes present and the control objects (``open.json``...)."""

    indexes: set[int] = field(default_factory=set)
    control: set[str] = field(default_factory=set)


class FanInState:
    def __init__(self, *, broker: BrokerClient, bucket: str, actor: str, within_s: float) -> None:
        self.broker = broker
        self.bucket = bucket
        self.actor = actor
        self.within_s = within_s
        #: One-writer objects this sidecar is creating right now: a sibling that finds its key here leaves it to
        #: that attempt (whose message stays in flight until it is over), so a received batch of one parent's
        #: children makes one conditional write, not one each.
        self._creating: set[str] = set()

    def prefix(self, parent_id: str) -> str:
        return f"{FANIN_PREFIX}/{self.actor}/{parent_id}/"

    @staticmethod
    def record_key(prefix: str, index: int) -> str:
        return f"{prefix}{index:06d}.json"

    async def hold(self, key: str, message: Received, *, exists: bool, **fields: Any) -> dict[str, Any] | None:
        """The one-writer object ``key`` when ``message`` holds it — it created it now (``If-None-Match: *``, with
        ``fields`` and its MessageId as ``holder``), or, being a redelivery, earlier — else None. ``exists``: the
        caller knows it exists (or leaves its creation to a sibling), so only a redelivery reads it. A message
        received for the first time cannot have created it before."""
        if not exists and key not in self._creating:
            document = {"holder": message.message_id, **fields}
            self._creating.add(key)
            try:
                await self._call("put_object", Bucket=self.bucket, Key=key, Body=json.dumps(document).encode(),
                                 ContentType="application/json", IfNoneMatch="*")
                return document
            except ClientError as exc:
                if error_code(exc) not in _TAKEN:
                    raise
            finally:
                self._creating.discard(key)
        if message.receive_count <= 1:
            return None
        current = await self.read(key)
        return current if current is not None and current.get("holder") == message.message_id else None

    async def records(self, prefix: str, total: int) -> dict[int, dict[str, Any]]:
        """The child records present of indexes ``0 .. total-1``, by index."""
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def read(index: int) -> tuple[int, dict[str, Any] | None]:
            async with limit:
                return index, await self.read(self.record_key(prefix, index))

        pairs = await asyncio.gather(*(read(index) for index in range(total)))
        return {index: record for index, record in pairs if record is not None}

    async def errors_of(self, ids: dict[int, str]) -> dict[int, dict[str, Any]]:
        """The error sink's ``status.error`` of each child in ``ids`` (index → child id) that has a record there.

        Listed first (``failed/{id}.json`` as the prefix): without ``s3:ListBucket`` S3 answers a get of a missing
        key with 403, so the listing is also what tells "not there" from "not allowed"."""
        limit = asyncio.Semaphore(READ_CONCURRENCY)

        async def look(index: int) -> tuple[int, dict[str, Any] | None]:
            key = f"{SINK_RECORD_PREFIXES[ERROR_SINK]}/{ids[index]}.json"
            async with limit:
                page = await self._call("list_objects_v2", Bucket=self.bucket, Prefix=key, MaxKeys=1)
                if not page.get("KeyCount"):
                    return index, None
                record = await self.read(key)
            status = (record or {}).get("status") or {}
            fallback = {"type": "ErrorEnded", "message": "the child error-ended", "reason": "unknown"}
            return index, status.get("error") or fallback

        found = await asyncio.gather(*(look(index) for index in ids))
        return {index: error for index, error in found if error is not None}

    async def list(self, prefix: str) -> Listing:
        listing = Listing()
        token: dict[str, str] = {}
        while True:
            page = await self._call("list_objects_v2", Bucket=self.bucket, Prefix=prefix, **token)
            for item in page.get("Contents", []):
                name = str(item["Key"])[len(prefix):]
                stem = name.removesuffix(".json")
                if stem.isdigit():
                    listing.indexes.add(int(stem))
                else:
                    listing.control.add(name)
            if not page.get("IsTruncated"):
                return listing
            token = {"ContinuationToken": page["NextContinuationToken"]}

    async def put(self, key: str, document: dict[str, Any]) -> None:
        body = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
        await self._call("put_object", Bucket=self.bucket, Key=key, Body=body, ContentType="application/json")

    async def read(self, key: str) -> dict[str, Any] | None:
        try:
            result = await self._call("get_object", Bucket=self.bucket, Key=key)
            async with result["Body"] as stream:
                data: bytes = await stream.read()
        except ClientError as exc:
            if error_code(exc) in _MISSING:
                return None
            raise
        document = json.loads(data)
        return document if isinstance(document, dict) else None

    async def _call(self, api: str, **params: Any) -> dict[str, Any]:
        return await self.broker.call_s3(api, within_s=self.within_s, **params)
