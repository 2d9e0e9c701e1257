"""The end of an ``asya dev`` run: the results file and the summary (what succeeded, what failed and why)."""

from __future__ import annotations

import json
from pathlib import Path

from asya_pulumi.cli.dev.run import RunOutcome
from asya_pulumi.records import FinalRecord

#: The summary lists at most this many failures one by one (the results file has them all).
MAX_LISTED_FAILURES = 20
#: ... and prints at most this many successful results when the run is small enough to read on screen.
MAX_PRINTED_RESULTS = 10


def write_results(*, path: Path, records: list[FinalRecord]) -> None:
    """One final envelope per line, in input order (fan-out children right after each other)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record.envelope, sort_keys=True) + "\n")


def print_summary(*, outcome: RunOutcome, results_path: Path | None, log_dir: Path | None) -> None:
    ok = [r for r in outcome.records if r.succeeded]
    failed = outcome.failed_records
    print(f"\n{len(outcome.inputs)} input(s) → {len(outcome.records)} final record(s): "
          f"{len(ok)} succeeded, {len(failed)} failed")
    if outcome.mesh_s > 0:
        rate = len(outcome.records) / outcome.mesh_s
        print(f"mesh idle {outcome.mesh_s:.2f} s after the first send ({rate:.0f} final records/s); "
              f"records read back by {outcome.elapsed_s:.2f} s")
    if len(outcome.records) <= MAX_PRINTED_RESULTS:
        for record in ok:
            print(f"  ok   {record.id}  {_route(record)}  {json.dumps(record.envelope.get('payload'))[:160]}")
    for record in failed[:MAX_LISTED_FAILURES]:
        error = record.error
        print(f"  FAIL {record.id}  at {error.get('actor', '?')}: {error.get('type', '?')}: "
              f"{error.get('message', '')[:200]} ({error.get('reason', 'no reason')})")
    if len(failed) > MAX_LISTED_FAILURES:
        print(f"  ... and {len(failed) - MAX_LISTED_FAILURES} more failures (see the results file)")
    for envelope in outcome.missing[:MAX_LISTED_FAILURES]:
        print(f"  LOST {envelope.id}  route {envelope.route.curr}→{'→'.join(envelope.route.next)}: no final record")
    for problem in outcome.problems:
        print(f"  problem: {problem}")
    if results_path is not None:
        print(f"results: {results_path}")
    if log_dir is not None:
        print(f"process logs: {log_dir}")


def _route(record: FinalRecord) -> str:
    route = record.envelope.get("route") or {}
    return "→".join(route.get("prev") or [])
