"""Image-scoring pipeline handlers: plain functions, no import from asya (contract 2).

preprocess → score-image (GPU pool in the cloud; no real model here, the score is a deterministic function of the
input so the pipeline runs anywhere) → judge, which routes each image to `store` or `human-review`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

#: Above this confidence an image is stored without a human looking at it.
AUTO_ACCEPT_CONFIDENCE = 0.9


def preprocess(payload: dict[str, Any]) -> dict[str, Any]:
    """Normalise the raw pixel values (0..255) to 0..1; an image without pixels is refused."""
    pixels = payload.get("pixels")
    if not isinstance(pixels, list) or not pixels:
        raise ValueError("payload needs 'pixels': a non-empty list of 0..255 values")
    if any(not isinstance(p, (int, float)) or not 0 <= p <= 255 for p in pixels):
        raise ValueError("every pixel must be a number in 0..255")
    return {"image_id": str(payload.get("image_id", "")), "pixels": [p / 255 for p in pixels]}


def score_image(payload: dict[str, Any]) -> dict[str, Any]:
    """Stand-in for a GPU model: label and confidence derived deterministically from the pixels and the id."""
    pixels = payload["pixels"]
    brightness = sum(pixels) / len(pixels)
    digest = hashlib.sha256(payload["image_id"].encode()).digest()
    confidence = round(0.5 * brightness + 0.5 * digest[0] / 255, 4)
    label = "cat" if digest[1] % 2 == 0 else "dog"
    return {"image_id": payload["image_id"], "label": label, "confidence": confidence}


def judge(payload: dict[str, Any]) -> Iterator[Any]:
    """Route on confidence: sure results are stored, the rest go to a human (a dynamic route, set per envelope)."""
    target = "store" if payload["confidence"] > AUTO_ACCEPT_CONFIDENCE else "human-review"
    yield "SET", ".route.next", [target]
    yield payload


def store(payload: dict[str, Any]) -> dict[str, Any]:
    """Accept the label; the success sink persists the final envelope."""
    return {**payload, "decision": "accepted"}


def human_review(payload: dict[str, Any]) -> dict[str, Any]:
    """Queue the image for review; the success sink persists it, a reviewer picks it up from the bucket."""
    return {**payload, "decision": "needs-review"}
