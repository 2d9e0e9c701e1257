"""The one error the ops library raises for something its caller can fix."""

from __future__ import annotations

from asya_pulumi.errors import AsyaError


class OpsError(AsyaError):
    """A request the mesh cannot answer as asked (no result bucket, an unknown actor or queue, a bad time); the
    message says what to change. An :class:`~asya_pulumi.errors.AsyaError`, so the CLI prints it as one line; the web
    UI shows the message."""
