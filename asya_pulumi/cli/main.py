"""The ``asya`` entry point: parse the command line, settle where the mesh is (``--stack``, environment), run one
command, and turn user mistakes into exit status 2 and failures to talk to AWS into one line and exit status 4
(:func:`asya_pulumi.cli.aws.describe_aws_error`); anything else is a bug and keeps its traceback.

Only the module of the command being run is imported: ``asya --help``, ``asya render`` or a usage error do not pay
for boto3 or the sidecar runtime (about a second on a busy 2-core machine), and ``asya dev`` imports boto3 only
while its broker and processes start (see :mod:`asya_pulumi.cli.dev.start`).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import re
import sys
from collections.abc import Sequence
from typing import NoReturn

from asya_pulumi import __version__
from asya_pulumi.cli.errors import EXIT_AWS, EXIT_OK, report_error, report_usage_error
from asya_pulumi.errors import AsyaError

#: Every command: the module that defines it (``add_parser`` and ``run``) and its line in ``asya --help`` (the
#: module's own ``help=`` is not shown: argparse prints a command's help only in the parent's listing).
COMMANDS: dict[str, tuple[str, str]] = {
    "dev": ("asya_pulumi.cli.dev.command", "run a pipeline locally and wait for its results"),
    "send": ("asya_pulumi.cli.send", "send one envelope to a running mesh"),
    "status": ("asya_pulumi.cli.status", "queue depth, in flight and DLQ depth per actor"),
    "dlq": ("asya_pulumi.cli.dlq", "dead-letter queue operations"),
    "trace": ("asya_pulumi.cli.trace", "an envelope's hops, timings and errors"),
    "replay": ("asya_pulumi.cli.replay", "send failed envelopes (error records or DLQ messages) again"),
    "ui": ("asya_pulumi.cli.ui", "a local web page: the mesh graph, records, traces, replay"),
    "kube": ("asya_pulumi.cli.kube", "a local Kubernetes control plane with KEDA (up, down, status)"),
    "render": ("asya_pulumi.cli.render", "offline plan: resources, Kubernetes YAML, validation"),
    "build": ("asya_pulumi.cli.build", "build a pipeline's handler images (OCI layout)"),
    "init": ("asya_pulumi.cli.init", "create a pipeline directory (mesh, one actor, handler, inputs)"),
    "completion": ("asya_pulumi.cli.completion", "print a shell completion script (bash, zsh, fish)"),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad command line is one ``asya: error:`` line (with the command and, for a mistyped command
    or option, the closest one) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("asya").strip()
        message += _closest(message, options=_option_strings(self))
        sys.exit(report_usage_error(f"{command}: {message}" if command else message))


def _closest(message: str, *, options: Sequence[str]) -> str:
    """``; did you mean X?`` for argparse's invalid-choice and unrecognized-option messages, when one is close."""
    choice = re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message)
    if choice:
        wrong, candidates = choice.group(1), re.findall(r"'([^']*)'", choice.group(2))
    elif unknown := re.match(r"unrecognized arguments: (.*)", message):
        flags = [token.split("=", 1)[0] for token in unknown.group(1).split() if token.startswith("--")]
        if not flags:
            return ""
        wrong, candidates = flags[0], list(options)
    else:
        return ""
    close = difflib.get_close_matches(wrong, candidates, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    """Every ``--option`` of ``parser`` and of the subcommands it holds (only the chosen command has its options)."""
    found: list[str] = []
    for action in parser._actions:
        found += [option for option in action.option_strings if option.startswith("--")]
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                found += _option_strings(sub)
    return found


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with the full options of the command ``argv`` names (every command when None); the others are
    listed with their help line only, so their modules are not imported."""
    chosen = _chosen_command(argv)
    parser = _Parser(
        prog="asya", description="Run, inspect and render asya actor meshes; `asya COMMAND --help` for its options."
    )
    parser.add_argument("--version", action="version", version=f"asya {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name, (module, help_line) in COMMANDS.items():
        if argv is None or name == chosen:
            importlib.import_module(module).add_parser(commands)
        else:
            commands.add_parser(name, help=help_line, add_help=False)
    return parser


def _chosen_command(argv: Sequence[str] | None) -> str | None:
    """The first argument that is not an option, if it names a command."""
    first = next((a for a in argv or () if not a.startswith("-")), None)
    return first if first in COMMANDS else None


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:  # `asya` alone: what it can do, not an error
        build_parser(arguments).print_help()
        return EXIT_OK
    args = build_parser(arguments).parse_args(arguments)
    try:
        if settle := getattr(args, "settle", None):  # --stack, environment and defaults of the mesh options
            settle(args)
        code: int = args.run(args)
    except AsyaError as exc:  # UsageError, SpecError, OpsError, BrokerError: the library's root
        return report_usage_error(str(exc))
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # the reader went away (`asya render --tree | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's exit flush must not fail again
        return 141  # 128 + SIGPIPE, the status a shell reports for a tool killed by it
    except Exception as exc:
        message = _aws_failure(exc, args)
        if message is None:
            raise
        return report_error(message, code=EXIT_AWS)
    return code


def _aws_failure(exc: Exception, args: argparse.Namespace) -> str | None:
    """The one-line report of an error boto3 raised talking to AWS or the endpoint; None for anything else (a bug).
    Only a command that loaded botocore can raise one, so the others never import it here."""
    if "botocore" not in sys.modules:
        return None
    from asya_pulumi.cli.aws import describe_aws_error

    return describe_aws_error(exc, region=getattr(args, "region", None), endpoint=getattr(args, "sqs_endpoint", None))


if __name__ == "__main__":
    sys.exit(main())
