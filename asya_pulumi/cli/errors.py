"""User mistakes versus bugs: a :class:`UsageError` becomes one ``asya: error: ...`` line and exit status 2.

Everything the user can get wrong on the command line (a missing directory, a manifest error, an unknown actor, an
unreadable input line) is raised as :class:`UsageError` with a message that names the problem, so the CLI never
shows a traceback for it. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys

#: Exit statuses of every ``asya`` command.
EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """The command line or its inputs are wrong; the message says what and, where possible, the fix."""


def report_usage_error(message: str) -> int:
    """Print ``asya: error: message`` as one line on stderr and return the usage exit status."""
    one_line = " ".join(message.split())
    print(f"asya: error: {one_line}", file=sys.stderr)
    return EXIT_USAGE
