"""``asya dev --json``: the run's summary as one JSON object on stdout, everything else on stderr.

With ``--json`` every line ``asya dev`` prints for people (the broker starting, progress, the summary) goes to
stderr instead (:func:`people_to_stderr`), and once the run is over :func:`emit_run` writes the one object to the
real stdout — so ``asya dev DIR --json | jq`` reads exactly the object. Handler servers and sidecars write to their
log files, never to the terminal, so nothing else can reach stdout. The keys (docs/cli.md, *``asya dev --json``*)
are stable: scripts read them.

A run that cannot start (a usage error, a handler the pre-flight refuses) prints no object: it is one
``asya: error:`` line on stderr and exit status 2, as for every command. ``--json`` describes one run, so it does not
go with ``--watch``, ``--keep-running`` or ``--ui`` (which keep the mesh up after it).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from asya_pulumi.cli.errors import EXIT_FAILED, EXIT_OK, UsageError

if TYPE_CHECKING:  # the command imports this module before boto3 (which cli.dev.run needs) is loaded
    from asya_pulumi.cli.dev.run import RunOutcome
    from asya_pulumi.records import FinalRecord
    from asya_runtime.envelope import Envelope

#: Where the object goes while :func:`people_to_stderr` sends ``print`` to stderr (set on ``args``).
_STREAM = "_json_stream"


def check_json_options(args: argparse.Namespace) -> None:
    """``--json`` summarizes one run and exits: refuse the options that keep the mesh up after it."""
    if not getattr(args, "json", False):
        return
    staying = [f"--{name.replace('_', '-')}" for name in ("watch", "keep_running", "ui") if getattr(args, name, False)]
    if staying:
        raise UsageError(
            f"--json prints the summary of one run and exits; {' and '.join(staying)} keep the mesh up after it: "
            "drop one or the other"
        )


@contextlib.contextmanager
def people_to_stderr(args: argparse.Namespace) -> Iterator[None]:
    """With ``--json``, everything printed for people goes to stderr for the duration; stdout is kept for
    :func:`emit_run`. Without ``--json``, nothing changes."""
    if not getattr(args, "json", False):
        yield
        return
    setattr(args, _STREAM, sys.stdout)
    with contextlib.redirect_stdout(sys.stderr):
        yield


def emit_run(
    args: argparse.Namespace, *, outcome: RunOutcome, namespace: str, endpoint: str | None, log_dir: Path | None
) -> int:
    """Write the run's object to the real stdout (with ``--json``) and return the run's exit status (0: every
    final record a success, no input lost, no problem; else 1)."""
    code = EXIT_OK if outcome.succeeded else EXIT_FAILED
    stream: TextIO | None = getattr(args, _STREAM, None)
    if stream is not None:
        data = run_object(outcome=outcome, namespace=namespace, endpoint=endpoint, results=args.results,
                          log_dir=log_dir, code=code)
        print(json.dumps(data, indent=2), file=stream, flush=True)
    return code


def run_object(
    *, outcome: RunOutcome, namespace: str, endpoint: str | None, results: Path | None, log_dir: Path | None,
    code: int,
) -> dict[str, Any]:
    """The ``--json`` object of one run: per envelope (final records, in input order, then inputs without one) its
    id, the input it descends from, its status, the actors it passed, the record's key and the error; the totals."""
    succeeded = sum(1 for r in outcome.records if r.succeeded)
    envelopes = [_record(r, input_id=outcome.owners.get(r.id, r.id)) for r in outcome.records]
    envelopes += [_lost(e) for e in outcome.missing]
    return {
        "namespace": namespace,
        "endpoint": endpoint,
        "ok": code == EXIT_OK,
        "exit": code,
        "inputs": len(outcome.inputs),
        "records": len(outcome.records),
        "succeeded": succeeded,
        "failed": len(outcome.records) - succeeded,
        "lost": len(outcome.missing),
        "mesh_s": round(outcome.mesh_s, 3),
        "elapsed_s": round(outcome.elapsed_s, 3),
        "envelopes": envelopes,
        "problems": list(outcome.problems),
        "results": str(results) if results is not None else None,
        "logs": str(log_dir) if log_dir is not None else None,
    }


def _record(record: FinalRecord, *, input_id: str) -> dict[str, Any]:
    error = record.error
    return {
        "id": record.id,
        "input": input_id,
        "status": "succeeded" if record.succeeded else "failed",
        "route": list((record.envelope.get("route") or {}).get("prev") or []),
        "key": record.key,
        "error": None if record.succeeded else {
            "actor": error.get("actor"),
            "type": error.get("type"),
            "message": error.get("message"),
            "reason": error.get("reason"),
        },
    }


def _lost(envelope: Envelope) -> dict[str, Any]:
    return {
        "id": envelope.id,
        "input": envelope.id,
        "status": "lost",
        "route": [envelope.route.curr, *envelope.route.next],
        "key": None,
        "error": None,
    }
