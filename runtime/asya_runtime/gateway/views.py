"""A status record as the Mesh API shows it: ``{id, status, created_at, updated_at, data}``.

``data.payload`` is a succeeded envelope's final payload: from the record itself when it was small enough to be
kept there, else read from the success sink's record in the result bucket (``payload_ref``, the whole final
envelope). A fan-out parent's ``data.children`` lists its children with their statuses; their ids derive from the
parent's ``fanout`` (:func:`asya_runtime.envelope.child_id`), so no list of them is stored anywhere.
"""

from __future__ import annotations

import json
from typing import Any

from asya_runtime.envelope import child_id
from asya_runtime.naming import SINK_RECORD_PREFIXES, SUCCESS_SINK
from asya_runtime.status import StatusRecord, StatusStore

__all__ = ["MAX_CHILDREN_SHOWN", "RecordViews"]

#: Children listed in one answer; ``data.children_total`` says how many there are.
MAX_CHILDREN_SHOWN = 1000


class RecordViews:
    """Renders records for one mesh: its store (children) and its result bucket (payloads by reference)."""

    def __init__(self, *, store: StatusStore, s3: Any, result_bucket: str | None) -> None:
        self._store = store
        self._s3 = s3
        self._bucket = result_bucket

    async def render(self, record: StatusRecord, *, children: bool = True, by_reference: bool = True) -> dict[str, Any]:
        """The API shape of ``record``: a succeeded one's ``data.payload`` (read from the bucket when it is kept by
        reference and ``by_reference``; a listing leaves that out rather than read an object per item) and a fan-out
        parent's children (when ``children``)."""
        view = record.to_api()
        data = view.setdefault("data", {})
        data.pop("result", None)  # the store's name for the inline payload; the Mesh API's is `payload`
        if record.status == "succeeded":
            payload = await self.final_payload(record, by_reference=by_reference)
            if payload is not _MISSING:
                data["payload"] = payload
        if children and record.fanout:
            data.update(await self._children(record))
        return view

    async def final_payload(self, record: StatusRecord, *, by_reference: bool = True) -> Any:
        """The final payload of a succeeded record (``_MISSING`` when it has none that can be read)."""
        if record.payload is not None:
            return json.loads(record.payload)
        if by_reference and record.payload_ref and self._s3 is not None and self._bucket:
            key = f"{SINK_RECORD_PREFIXES[SUCCESS_SINK]}/{record.id}.json"
            if record.payload_ref != f"s3://{self._bucket}/{key}":
                return _MISSING  # a reference outside this mesh's own sink record is never followed
            try:
                answer = await self._s3.get_object(Bucket=self._bucket, Key=key)
                async with answer["Body"] as stream:
                    envelope = json.loads(await stream.read())
            except Exception:  # gone (expired) or unreadable: the status still answers
                return _MISSING
            return envelope.get("payload") if isinstance(envelope, dict) else _MISSING
        return _MISSING

    async def _children(self, record: StatusRecord) -> dict[str, Any]:
        fanout = record.fanout or {}
        actor, count = str(fanout.get("actor", "")), int(fanout.get("count", 0))
        ids = [child_id(parent_id=record.id, actor=actor, index=i) for i in range(min(count, MAX_CHILDREN_SHOWN))]
        found = await self._store.get_many(ids=ids) if ids else {}
        listed = [
            {"id": cid, "status": found[cid].status if cid in found else "pending",
             **({"updated_at": found[cid].updated_at} if cid in found else {})}
            for cid in ids
        ]
        return {"children": listed, "children_total": count}


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()
