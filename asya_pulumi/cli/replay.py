"""``asya replay``: send failed envelopes back into the mesh after the cause was fixed.

A thin layer over :mod:`asya_pulumi.ops.replay`: select error-sink records (``--actor``, ``--error-type``,
``--since``/``--until``, ``--id``) or DLQ messages (``--from-dlq ACTOR``), show the plan, and send it unless
``--dry-run``. Every replay gets attempts reset, ``replay_of`` = the original id, a deterministic id, and a marker
``replays/{original id}.json`` in the bucket, so the same failure is never replayed twice (docs/cli.md). Exit status
0 when everything selected was sent (or, with ``--dry-run``, could be), 1 when the broker refused some.
"""

from __future__ import annotations

import argparse
import json
import time

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from asya_pulumi.cli.common import add_mesh_options
from asya_pulumi.cli.completion import completes_names
from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError
from asya_pulumi.cli.trace import add_bucket_option, open_mesh_records
from asya_pulumi.ops import replay
from asya_pulumi.ops.records import RecordQuery, parse_time


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "replay",
        help="send failed envelopes (error records or DLQ messages) again",
        description="Send error-sink records (or, with --from-dlq, an actor's DLQ messages) back into the actor "
        "that failed them, or into --to ACTOR: attempts reset, the original id kept as replay_of, each replay "
        "recorded under replays/ in the bucket so it is never sent twice.",
    )
    chosen = parser.add_argument_group("which failures (at least one, or --all)")
    chosen.add_argument("--actor", metavar="ACTOR", help="records whose error came from ACTOR")
    chosen.add_argument("--error-type", metavar="TYPE", help="records whose error type is TYPE, e.g. ValueError")
    chosen.add_argument("--since", metavar="TIME", help="records written since TIME: '2h' ago or ISO 8601 (UTC)")
    chosen.add_argument("--until", metavar="TIME", help="records written until TIME (same forms)")
    chosen.add_argument("--id", dest="ids", action="append", default=[], metavar="ID", help="this envelope (repeats)")
    completes_names(chosen.add_argument("--from-dlq", metavar="ACTOR",
                                        help="ACTOR's DLQ messages instead of error records"))
    chosen.add_argument("--all", action="store_true", help="every error record not yet replayed")
    chosen.add_argument("--limit", type=int, metavar="N", help="at most N records, newest first")
    completes_names(parser.add_argument("--to", metavar="ACTOR",
                                        help="send into ACTOR instead of the actor that failed each one"))
    parser.add_argument("--dry-run", action="store_true", help="show what would be sent; send nothing")
    parser.add_argument("--json", action="store_true", help="print the plan (or what was sent) as JSON")
    add_bucket_option(parser)
    add_mesh_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    _check_selection(args)
    queues, s3, bucket = open_mesh_records(args)
    now = time.time()
    since = parse_time(args.since, now=now) if args.since else None
    until = parse_time(args.until, now=now) if args.until else None
    if args.from_dlq:
        plan = replay.plan_dlq(
            s3=s3, bucket=bucket, queues=queues, actor=args.from_dlq, ids=args.ids, since=since, until=until,
            to=args.to,
        )
    else:
        query = RecordQuery(
            actor=args.actor, error_type=args.error_type, since=since, until=until, ids=tuple(args.ids),
            limit=args.limit,
        )
        plan = replay.plan_records(s3=s3, bucket=bucket, queues=queues, query=query, to=args.to)
    console = Console(width=160)
    if args.dry_run:
        replay.release(plan, queues=queues)
        if args.json:
            print(json.dumps({"dry_run": True, **plan.to_json()}, indent=2))
        else:
            _print_plan(plan, console=console, dry_run=True)
        return EXIT_OK
    result = replay.send(plan, s3=s3, bucket=bucket, queues=queues)
    if args.json:
        print(json.dumps({"dry_run": False, **result.to_json(), "skip": plan.to_json()["skip"]}, indent=2))
    else:
        _print_plan(plan, console=console, dry_run=False)
        console.print(
            f"sent {len(result.sent)} replay(s); each is recorded as replays/<original id>.json in bucket {bucket}"
        )
        for item, reason in result.refused:
            console.print(f"not sent: {item.original_id} → {item.to}: {escape(reason)}")
    return EXIT_FAILED if result.refused else EXIT_OK


def _check_selection(args: argparse.Namespace) -> None:
    if args.from_dlq and (args.actor or args.error_type or args.limit):
        raise UsageError(
            "--from-dlq takes DLQ messages, which carry no error: use --id/--since/--until with it, not "
            "--actor/--error-type/--limit"
        )
    if not (args.actor or args.error_type or args.since or args.until or args.ids or args.from_dlq or args.all):
        raise UsageError(
            "say which failures to replay: --actor ACTOR, --error-type TYPE, --since/--until TIME, --id ID, "
            "--from-dlq ACTOR, or --all for every error record not yet replayed"
        )
    if args.limit is not None and args.limit < 1:
        raise UsageError(f"--limit must be at least 1, not {args.limit}")


def _print_plan(plan: replay.ReplayPlan, *, console: Console, dry_run: bool) -> None:
    verb = "would send" if dry_run else "sending"
    table = Table(title=f"{verb} {len(plan.to_send)} replay(s), skipping {len(plan.skipped)}", title_justify="left")
    for column in ("original id", "source", "error", "to", "replay id / why skipped"):
        table.add_column(column)
    for item in plan.items:
        table.add_row(
            item.original_id,
            escape(item.source),
            escape(item.error_type or ""),
            escape(item.to or ""),
            escape(item.skipped) if item.skipped else item.replay_id,
        )
    console.print(table)
