"""``asya render [PROGRAM_DIR] [--stack dev] [--out DIR]``: the offline plan of a Pulumi program (under mocks)."""

from __future__ import annotations

import argparse
from pathlib import Path

from asya_pulumi.cli.errors import UsageError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "render",
        help="offline plan: resources, Kubernetes YAML, validation",
        description="Run the Pulumi program in PROGRAM_DIR under Pulumi's mocks (no credentials, no Pulumi CLI), "
        "print the resource tree, write every Kubernetes object as YAML under --out and validate them.",
    )
    parser.add_argument("program_dir", nargs="?", default="stacks", metavar="PROGRAM_DIR", help="default: stacks")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use (dev)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write Kubernetes objects as YAML under DIR")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("render is not available yet")
