"""What a final record is and where it is stored: the record type, the sinks' key prefixes, the trace header that
ties a record to its input, and the local result bucket's name — plain data, no AWS client, no sidecar import.

The sinks persist each final envelope under ``{status}/{id}.json``; the prefixes are the runtime's own
(:data:`asya_runtime.naming.SINK_RECORD_PREFIXES`, the table the sinks' key function reads), so nothing here retypes
them. ``asya dev`` (:mod:`asya_pulumi.local.results`), the ops library (:mod:`asya_pulumi.ops.records`) and the web
UI all read records through :class:`FinalRecord`; ``asya trace`` therefore loads no aiobotocore for two strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from asya_runtime.envelope import Envelope
from asya_runtime.naming import ERROR_SINK, SINK_RECORD_PREFIXES, SUCCESS_SINK

_TRACEPARENT = "traceparent"

#: Key prefixes the sinks write (``succeeded``/``failed``); anything else in the bucket is not a final record.
SUCCESS_PREFIX = SINK_RECORD_PREFIXES[SUCCESS_SINK]
ERROR_PREFIX = SINK_RECORD_PREFIXES[ERROR_SINK]


def result_bucket_name(*, namespace: str) -> str:
    """The bucket the local mesh's sinks write to: one per namespace, so parallel runs never mix records."""
    return f"asya-{namespace}-results"


@dataclass(frozen=True)
class FinalRecord:
    """One final envelope as a sink stored it; ``succeeded`` is False for the error sink's records."""

    key: str
    envelope: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.envelope.get("id"))

    @property
    def parent_id(self) -> str | None:
        parent = self.envelope.get("parent_id")
        return str(parent) if parent else None

    @property
    def succeeded(self) -> bool:
        return self.key.startswith(SUCCESS_PREFIX + "/")

    @property
    def error(self) -> dict[str, Any]:
        status = self.envelope.get("status") or {}
        return dict(status.get("error") or {})

    @property
    def trace_id(self) -> str | None:
        return trace_id_of(self.envelope.get("headers") or {})


def traceparent_for(envelope_id: str) -> str:
    """A W3C traceparent whose trace-id is the envelope's id (a uuid has exactly the 32 hex digits a trace-id has)."""
    return f"00-{envelope_id.replace('-', '').lower():0>32.32}-{'0' * 15}1-01"


def trace_id_of(headers: dict[str, Any]) -> str | None:
    parts = str(headers.get(_TRACEPARENT, "")).split("-")
    return parts[1].lower() if len(parts) == 4 and len(parts[1]) == 32 else None


def with_trace(envelope: Envelope) -> Envelope:
    """``envelope`` with a traceparent rooted at its id, unless the sender already set one."""
    if _TRACEPARENT in envelope.headers:
        return envelope
    return envelope.model_copy(update={"headers": {**envelope.headers, _TRACEPARENT: traceparent_for(envelope.id)}})
