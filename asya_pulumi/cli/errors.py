"""Exit statuses, and user mistakes versus bugs: a :class:`UsageError` becomes one ``asya: error: ...`` line.

Everything the user can get wrong on the command line (a missing directory, a manifest error, an unknown actor, an
unreadable input line) is raised as :class:`UsageError` with a message that names the problem, so the CLI never
shows a traceback for it. A failure to talk to AWS (credentials, network, region, permission) is one line too, with
its own exit status (see :func:`asya_pulumi.cli.aws.describe_aws_error`). Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys

from asya_pulumi.errors import AsyaError

#: Exit statuses of every ``asya`` command (docs/cli.md lists them; cron checks rely on them).
EXIT_OK = 0
#: The run or the check failed: an envelope ended in the error sink, an object is invalid, a timeout.
EXIT_FAILED = 1
#: The command line or its inputs are wrong.
EXIT_USAGE = 2
#: ``asya status``: every queue was read, and at least one dead-letter queue holds messages.
EXIT_DLQ_NOT_EMPTY = 3
#: AWS (or the ``--sqs-endpoint`` server) could not be asked: credentials, network, region or permission.
EXIT_AWS = 4


class UsageError(AsyaError):
    """The command line or its inputs are wrong; the message says what and, where possible, the fix. An
    :class:`~asya_pulumi.errors.AsyaError` like every library error, so :mod:`asya_pulumi.cli.main` maps them all
    alike; no library module raises it (the library raises its own groups under that root)."""


def report_error(message: str, *, code: int) -> int:
    """Print ``asya: error: message`` as one line on stderr and return ``code``."""
    one_line = " ".join(message.split())
    print(f"asya: error: {one_line}", file=sys.stderr)
    return code


def report_usage_error(message: str) -> int:
    """Print ``asya: error: message`` as one line on stderr and return the usage exit status."""
    return report_error(message, code=EXIT_USAGE)
