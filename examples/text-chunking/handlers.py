"""Text-chunking handlers (Python): split a document into chunks (fan-out), then summarise each counted chunk.

chunk → count-words (Node.js, words.js) → summarize. Plain functions, no import from asya (contract 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DEFAULT_CHUNK_WORDS = 8


def chunk(payload: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Yield one payload per chunk of ``chunk_words`` words; each becomes its own envelope (fan-out)."""
    text = payload.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ValueError("payload needs 'text': a non-empty string")
    size = int(payload.get("chunk_words", DEFAULT_CHUNK_WORDS))
    if size < 1:
        raise ValueError("'chunk_words' must be at least 1")
    words = text.split()
    pieces = [words[i : i + size] for i in range(0, len(words), size)]
    for index, piece in enumerate(pieces):
        yield {
            "doc_id": str(payload.get("doc_id", "")),
            "chunk_index": index,
            "chunk_count": len(pieces),
            "text": " ".join(piece),
        }


def summarize(payload: dict[str, Any]) -> dict[str, Any]:
    """One line per chunk from count-words' numbers; the success sink stores it."""
    summary = (
        f"{payload['doc_id']} chunk {payload['chunk_index'] + 1}/{payload['chunk_count']}: "
        f"{payload['words']} words, longest {payload['longest_word']!r}"
    )
    return {key: payload[key] for key in ("doc_id", "chunk_index", "chunk_count", "words")} | {"summary": summary}
