"""The one error the ops library raises for something its caller can fix."""

from __future__ import annotations

from asya_pulumi.cli.errors import UsageError


class OpsError(UsageError):
    """A request the mesh cannot answer as asked (no result bucket, an unknown actor, a bad time); the message says
    what to change. A :class:`UsageError`, so the CLI prints it as one line; the web UI shows the message."""
