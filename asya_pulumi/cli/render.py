"""``asya render [PROGRAM_DIR] [--stack dev] [--out DIR]``: the offline plan of a Pulumi program (under mocks).

Runs ``PROGRAM_DIR/__main__.py`` with the stack's config (``PROGRAM_DIR/Pulumi.<stack>.yaml``) under Pulumi's mocks
(:mod:`asya_pulumi.checks.mocked`): no cloud credentials, no Pulumi CLI, no engine. Prints the resource tree that
``pulumi up`` would create, writes every Kubernetes object as YAML (``DIR/<namespace>/<kind>-<name>.yaml``, for
GitOps), and validates each against the Kubernetes schemas and the CRD schemas generated from KEDA's, Karpenter's
and the Prometheus operator's CRDs (:mod:`asya_pulumi.checks.validate`), and refuses two objects that are one
Kubernetes object. Warns of the AWS quotas the whole program nears (IAM roles per account, Pod Identity
associations per cluster) and refuses a role whose inline policies pass IAM's size limit
(:mod:`asya_pulumi.checks.quotas`). Exit 0 when everything is valid; 1 naming each invalid or duplicated object and
field, or the limit passed; 1 with one line (no traceback) when the program fails, e.g. a spec past an AWS or
Kubernetes limit (:mod:`asya_pulumi.spec.limits`) or a manifest over the YAML budgets; 2 (one line) when the
``render`` extra (kubernetes-validate, cel-python) is not installed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from asya_pulumi.cli.output import add_json_option
from asya_pulumi.extras import require


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "render",
        help="offline plan: resources, Kubernetes YAML, validation",
        description="Run the Pulumi program in PROGRAM_DIR under Pulumi's mocks (no credentials, no Pulumi CLI), "
        "print a summary of the resources (--tree: every one), write every Kubernetes object as YAML under --out "
        "and validate them.",
    )
    parser.add_argument("program_dir", nargs="?", default=".", metavar="PROGRAM_DIR",
                        help="a Pulumi Python program's directory (default: the current one)")
    parser.add_argument("--stack", default="dev", help="stack whose Pulumi.<stack>.yaml config to use (dev)")
    parser.add_argument("--tree", action="store_true",
                        help="print every resource under its parent (default: a summary per component)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="write Kubernetes objects as YAML under DIR")
    add_json_option(parser, what="the summary, what was written, quota findings and validation")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    program_dir = Path(args.program_dir)
    entry = program_dir / "__main__.py"
    if not program_dir.is_dir():
        raise UsageError(f"program directory {str(program_dir)!r} does not exist")
    if not entry.is_file():
        raise UsageError(
            f"{str(program_dir)!r} has no __main__.py; pass PROGRAM_DIR, a Pulumi Python program's directory "
            "(in the asya-pulumi repository: stacks)"
        )
    config = _stack_config(program_dir, args.stack)
    require("render", needed_by="asya render")

    from asya_pulumi.cli.render_plan import ProgramFailed, render_plan  # pulumi: heavy, only past the checks

    report: dict[str, Any] = {"stack": args.stack}

    def finish(code: int) -> int:
        if args.json:
            print(json.dumps({**report, "ok": code == EXIT_OK}, indent=2))
        return code

    def say(line: str) -> None:
        if not args.json:
            print(line)

    try:
        plan = render_plan(entry=entry, stack=args.stack, config=config)
    except ProgramFailed as exc:
        report["error"] = str(exc)
        say(f"asya render: the program failed under mocks: {exc}")
        return finish(EXIT_FAILED)
    report.update(plan.summary())
    if args.json:
        pass  # printed once, at the end
    elif args.tree:
        plan.print_tree()
    else:
        plan.print_summary()
    if args.out is not None:
        written = plan.write_objects(args.out)
        report["written"] = {"directory": str(args.out), "objects": len(written)}
        say(f"wrote {len(written)} Kubernetes object(s) under {args.out}")
    findings = plan.quotas()
    report["quotas"] = [{"error": f.error, "message": f.message()} for f in findings]
    for finding in findings:
        say(f"{'over a limit' if finding.error else 'warning'}: {finding.message()}")
    if any(finding.error for finding in findings):
        return finish(EXIT_FAILED)
    problems = plan.validate()
    report["kubernetes_objects"], report["invalid"] = len(plan.kubernetes_objects), problems
    if problems:
        for problem in problems:
            say(f"invalid: {problem}")
        say(f"{len(problems)} of {len(plan.kubernetes_objects)} Kubernetes object(s) are invalid")
        return finish(EXIT_FAILED)
    say(f"{len(plan.registered)} resources; all {len(plan.kubernetes_objects)} Kubernetes objects are valid")
    return finish(EXIT_OK)


def _stack_config(program_dir: Path, stack: str) -> dict[str, Any]:
    """The stack's ``config:`` mapping, read within the manifest budgets (size, aliases, expansion)."""
    from asya_pulumi.cli.stack_config import read_stack_config

    return read_stack_config(program_dir / f"Pulumi.{stack}.yaml")
