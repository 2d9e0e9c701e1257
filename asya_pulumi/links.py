"""Where a page of the documentation is, for text an installed package shows (help, spec descriptions, errors).

An installed wheel has no ``docs/`` folder, so such text names the published page: the ``Documentation`` URL of the
package's metadata (pyproject.toml's ``[project.urls]``, the one place it is written). A source tree that was never
installed has no metadata; there the page's path in the checkout is the right answer.
"""

from __future__ import annotations

import functools
import importlib.metadata


@functools.cache
def _documentation_root() -> str | None:
    try:
        urls = importlib.metadata.metadata("asya-pulumi").get_all("Project-URL") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    for entry in urls:
        label, _, url = entry.partition(",")
        if label.strip() == "Documentation":
            return url.strip().rstrip("/")
    return None


def docs(page: str) -> str:
    """``page`` (e.g. ``kube.md``) as a URL of the published docs, or ``docs/{page}`` in an uninstalled checkout."""
    root = _documentation_root()
    return f"{root}/{page}" if root else f"docs/{page}"
