"""The ML pipeline's handlers (tests/e2e/test_ml_pipeline.py). Each appends one JSON line per call to
``$ML_E2E_MARKS/{actor}.jsonl`` (when set): the time, the document and, for embed, the batch's size, so a test can
prove batching, spacing and order from what really ran, not only from what the records say."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def _mark(actor: str, **fields: Any) -> None:
    marks = os.environ.get("ML_E2E_MARKS")
    if marks:
        with Path(marks, f"{actor}.jsonl").open("a") as out:  # one short write per line: whole lines
            out.write(json.dumps({"t": time.time(), **fields}) + "\n")


def _document(payload: dict[str, Any]) -> str:
    """The document's name: the submitted `doc`, or the uploaded object's key (an S3 trigger's payload)."""
    return str(payload.get("doc") or payload.get("key") or "untitled")


def split(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """One child per chunk: the payload's `texts`, else `chunks` (default 3) numbered parts of the document."""
    doc = _document(payload)
    texts = payload.get("texts") or [f"{doc} part {i}" for i in range(int(payload.get("chunks", 3)))]
    _mark("split", doc=doc, chunks=len(texts))
    for index, text in enumerate(texts):
        yield {"doc": doc, "index": index, "text": text}


def embed(payloads: list[dict[str, Any]]) -> list[Any]:
    """A batched model: one result per chunk, in order; the chunk whose text is "poison" fails alone."""
    _mark("embed", size=len(payloads), docs=sorted({str(p.get("doc")) for p in payloads}))
    return [ValueError(f"cannot embed chunk {p.get('index')}") if p.get("text") == "poison"
            else {**p, "vector": [len(str(p.get("text"))), sum(map(ord, str(p.get("text")))) % 97]}
            for p in payloads]


def join(items: list[dict[str, Any]]) -> dict[str, Any]:
    """One document from its chunks, in emission order; a failed chunk (an error item) is counted, not dropped."""
    failed = [item["asya_error"]["index"] for item in items if "asya_error" in item]
    good = [item for item in items if "asya_error" not in item]
    doc = good[0]["doc"] if good else "untitled"
    _mark("join", doc=doc, items=len(items), failed=failed)
    return {"doc": doc, "chunks": [item.get("index", item.get("asya_error", {}).get("index")) for item in items],
            "vectors": [item.get("vector") for item in items], "failed": failed,
            "errors": [item["asya_error"].get("type") for item in items if "asya_error" in item]}


def call_api(payload: dict[str, Any]) -> dict[str, Any]:
    """A paid API, rate limited by the mesh: records when it was called."""
    _mark("call-api", doc=payload.get("doc"))
    return {**payload, "indexed": True}
