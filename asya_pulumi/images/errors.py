"""``ImageError``: an image could not be built or run here (a missing tool, a failed package install, a handler
module that is not in the pipeline directory) — something the caller can fix, and the message says how."""

from __future__ import annotations

from asya_pulumi.errors import AsyaError


class ImageError(AsyaError):
    """An image build step failed for a reason the caller can fix; the message names the step and the fix."""
