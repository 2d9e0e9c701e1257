"""The ``asya`` entry point: parse the command line, run one command, turn user mistakes into exit status 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from asya_pulumi.cli import dev, dlq, render, send, status
from asya_pulumi.cli.errors import UsageError, report_usage_error
from asya_pulumi.local.broker import BrokerError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``asya: error:`` line (with the command) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("asya").strip()
        sys.exit(report_usage_error(f"{command}: {message}" if command else message))


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="asya", description="Run, inspect and render asya actor meshes (see docs/cli.md).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for module in (dev, send, status, dlq, render):
        module.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except (UsageError, BrokerError) as exc:  # a broker that cannot start is a setup problem with a stated fix
        return report_usage_error(str(exc))
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
