"""The library's one error root: :class:`AsyaError` is something the caller can fix, and its message says what.

Every error the library raises for a mistake in its inputs or its surroundings derives from :class:`AsyaError`,
in documented groups (``httpx._exceptions``'s shape):

- :class:`~asya_pulumi.spec.errors.SpecError` — a spec or manifest is wrong (also a ``ValueError``);
- :class:`~asya_pulumi.ops.errors.OpsError` — a request to a running mesh cannot be answered as asked (no result
  bucket, an unknown actor or queue, a bad time);
- :class:`~asya_pulumi.local.broker.BrokerError` — the embedded broker could not be found, started or reached
  (also a ``RuntimeError``);
- :class:`~asya_pulumi.images.errors.ImageError` — an image could not be built here (a missing tool, a failed
  package install, a handler module not in the pipeline directory).

A caller catches the group it understands, or the root. The ``asya`` command maps the root to one ``asya: error:``
line and exit status 2 (:mod:`asya_pulumi.cli.main`); the web UI shows the message. No library error derives from
a command-line error: the CLI's own :class:`~asya_pulumi.cli.errors.UsageError` derives from this root, not the
other way round. Anything that is not an :class:`AsyaError` (or a failure to reach AWS) is a bug.
"""

from __future__ import annotations


class AsyaError(Exception):
    """Something the caller can fix; the message names the problem and, where possible, the fix."""
