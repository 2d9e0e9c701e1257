"""Rewrite the pinned default runtime image (``asya_pulumi/spec/runtime_pin.py``) from a build.

The pin is data in a Python module, so the spec needs no file read at import; this rewrites exactly its three
constants and leaves the rest of the module (its docstring) as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.runtime_image import BuiltImage

PIN_MODULE = "asya_pulumi/spec/runtime_pin.py"
_CONSTANTS: dict[str, Callable[[BuiltImage], str]] = {
    "RUNTIME_IMAGE_NAME": lambda image: image.name,
    "RUNTIME_IMAGE_DIGEST": lambda image: image.digest,
    "RUNTIME_IMAGE_BASE": lambda image: image.base.sha256,
}


def write_pin(*, repo: Path, image: BuiltImage) -> bool:
    """Point the default runtime image at ``image``; True when the module changed."""
    path = repo / PIN_MODULE
    text = path.read_text()
    updated = text
    for constant, value_of in _CONSTANTS.items():
        pattern = re.compile(rf'^{constant} = "[^"]*"$', re.MULTILINE)
        if not pattern.search(updated):
            raise ImageError(f"{PIN_MODULE} has no line '{constant} = \"...\"' to rewrite; restore it from git")
        updated = pattern.sub(f'{constant} = "{value_of(image)}"', updated)
    if updated != text:
        path.write_text(updated)
    return updated != text
