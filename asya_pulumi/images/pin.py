"""Rewrite the pinned default runtime and gateway images (``asya_pulumi/spec/runtime_pin.py``) from a build.

The pin is data in a Python module, so the spec needs no file read at import; this rewrites exactly its constants
and leaves the rest of the module (its docstring) as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.runtime_image import BuiltImage

PIN_MODULE = "asya_pulumi/spec/runtime_pin.py"
#: Per image ref, the constants that pin it and what each takes from the build.
_CONSTANTS: dict[str, dict[str, Callable[[BuiltImage], str]]] = {
    "runtime": {
        "RUNTIME_IMAGE_NAME": lambda image: image.name,
        "RUNTIME_IMAGE_DIGEST": lambda image: image.digest,
        "RUNTIME_IMAGE_BASE": lambda image: image.base.sha256,
    },
    "gateway": {
        "GATEWAY_IMAGE_NAME": lambda image: image.name,
        "GATEWAY_IMAGE_DIGEST": lambda image: image.digest,
    },
}
PINNED_REFS = tuple(_CONSTANTS)


def write_pin(*, repo: Path, images: dict[str, BuiltImage]) -> bool:
    """Point the default runtime and gateway images at ``images`` (by ref); True when the module changed."""
    path = repo / PIN_MODULE
    text = path.read_text()
    updated = text
    pinned = [(constant, value_of, images[ref]) for ref, constants in _CONSTANTS.items()
              for constant, value_of in constants.items()]
    for constant, value_of, image in pinned:
        pattern = re.compile(rf'^{constant} = "[^"]*"$', re.MULTILINE)
        if not pattern.search(updated):
            raise ImageError(f"{PIN_MODULE} has no line '{constant} = \"...\"' to rewrite; restore it from git")
        updated = pattern.sub(f'{constant} = "{value_of(image)}"', updated)
    if updated != text:
        path.write_text(updated)
    return updated != text
