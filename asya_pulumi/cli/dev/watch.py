"""``asya dev --watch``: keep the broker, the queues and the sidecars up; reload a handler when its file changes.

What is watched: each actor's handler module (``handler: mod.func`` → ``mod.py``, or ``mod.js`` for a Node.js
handler) reloads that actor's handler servers; any other ``.py``/``.js`` file directly in the pipeline directory
(a helper the handlers import) reloads every actor. Files are polled for changes of modification time or size
every :data:`POLL_S` (no file-watching dependency: a pipeline has a handful of files).

A reload stops the actor's handler servers (SIGTERM: calls in progress finish, idle connections are closed, so a
server with nothing running exits at once) and starts new ones; the sidecar keeps its queue and reconnects.
**Handler state in memory (a loaded model, a cache) is lost on every reload.**
Before anything is stopped, a save runs the start's pre-flight for the actors it would reload
(:mod:`asya_pulumi.cli.dev.recheck`): a handler that would not load (a syntax or import error, a missing function, a
wrong signature) is one line, and its old servers keep running — nothing is lost — until a save that passes. A
server that passes the check but still fails to start is reported with the end of its log and kept stopped (its
queue keeps what arrives), and the next save tries again.

Re-sending: Enter re-sends the inputs (``--input`` is read again, so edits to it count; ``--send`` sends its one
envelope again), a number then Enter re-sends that line of the input file, and ``--resend`` re-sends after every
successful reload. Each run after the first prints what changed against the previous run, input by input.
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asya_pulumi.cli.dev.recheck import manifest_files, recheck
from asya_pulumi.cli.dev.run import RunOutcome
from asya_pulumi.cli.dev.session import MeshRunner
from asya_pulumi.cli.dev.setup import read_inputs
from asya_pulumi.cli.dev.start import Launch
from asya_pulumi.cli.errors import EXIT_OK, UsageError
from asya_pulumi.local.plan import handler_language
from asya_pulumi.local.processes import Supervisor
from asya_pulumi.records import FinalRecord
from asya_pulumi.spec.mesh import MeshSpec

#: How often the watched files' modification times are read.
POLL_S = 0.3
#: After a change, wait until the files stay unchanged this long (editors write in several steps).
SETTLE_S = 0.2
#: How long a reloaded handler server may take to answer ``health`` (its imports, on a busy machine).
RELOAD_TIMEOUT_S = 60.0
#: Lines of a failed handler server's log shown after a reload.
ERROR_LINES = 12


def watched_files(mesh: MeshSpec, pipeline_dir: Path) -> dict[Path, list[str]]:
    """Every watched file and the actors a change to it reloads (helpers: every actor)."""
    everyone = [a.name for a in mesh.actors]
    files: dict[Path, list[str]] = {
        path: everyone for pattern in ("*.py", "*.js") for path in sorted(pipeline_dir.glob(pattern))
    }
    own: dict[Path, list[str]] = {}
    for actor in mesh.actors:
        language = handler_language(actor=actor, pipeline_dir=pipeline_dir)
        module = actor.handler.split(".", 1)[0]
        path = pipeline_dir / f"{module}.{'js' if language == 'node' else 'py'}"
        own.setdefault(path, []).append(actor.name)
    return files | own


class FilePoller:
    """Reports files whose modification time or size changed since the last look (or that appeared or vanished)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        self._seen = self._stat()

    def _stat(self) -> dict[Path, tuple[int, int] | None]:
        stats: dict[Path, tuple[int, int] | None] = {}
        for path in self.paths:
            try:
                info = path.stat()
                stats[path] = (info.st_mtime_ns, info.st_size)
            except OSError:
                stats[path] = None
        return stats

    def changed(self) -> list[Path]:
        now = self._stat()
        if now == self._seen:
            return []
        while True:  # let the editor finish writing
            time.sleep(SETTLE_S)
            settled = self._stat()
            if settled == now:
                break
            now = settled
        changed = [p for p in self.paths if now[p] != self._seen[p]]
        self._seen = now
        return changed


@dataclass(frozen=True)
class Reload:
    actor: str
    ok: bool
    error: str = ""


def reload_actors(
    supervisor: Supervisor, actors: Sequence[str], *, timeout_s: float = RELOAD_TIMEOUT_S
) -> list[Reload]:
    """Restart the handler servers of ``actors`` (all at once) and wait until they answer; one :class:`Reload` per
    actor, in order. An actor whose server fails to start is kept stopped, with its log, until the next save.

    A server stops at once unless a call is running (it closes its idle connections, docs/protocol.md *Lifecycle*):
    the sidecar's call in flight is answered by the old code, the next goes to the new server, none is lost or
    made twice.
    """
    names = {actor: [n for n in supervisor.names(group=actor) if n.endswith("-handler")] for actor in actors}
    every = [name for group in names.values() for name in group]
    exits = {n: len(supervisor.exit_statuses(n)) for n in every}
    supervisor.replace_processes(every, timeout_s=10)
    deadline = time.monotonic() + timeout_s
    results: dict[str, Reload] = {}
    while len(results) < len(names):
        for actor, group in names.items():
            if actor in results:
                continue
            failed = [n for n in group if len(supervisor.exit_statuses(n)) > exits[n]]
            if failed:
                log = supervisor.log_since_start(failed[0]) or supervisor.log_path(failed[0]).read_text(
                    errors="replace"
                )
                for name in group:
                    supervisor.stop_process(name, timeout_s=5)  # kept stopped until the next save
                results[actor] = Reload(actor=actor, ok=False, error=_tail(log))
            elif all(supervisor.is_ready(n) for n in group):
                results[actor] = Reload(actor=actor, ok=True)
            elif time.monotonic() > deadline:
                results[actor] = Reload(actor=actor, ok=False, error=f"not answering after {timeout_s:g} s")
        time.sleep(0.02)
    return [results[actor] for actor in actors]


def _tail(log: str) -> str:
    """The last lines of a handler server's log, its JSON events shown as their message and traceback."""
    lines: list[str] = []
    for line in log.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            event = None
        if isinstance(event, dict) and ("message" in event or "traceback" in event):
            lines += [f"  {event.get('message', event.get('event', ''))}"]
            lines += [f"  {t}" for t in str(event.get("traceback", "")).splitlines()[-6:]]
        elif line.strip():
            lines.append(f"  {line}")
    return "\n".join(lines[-ERROR_LINES:])


def record_lines(outcome: RunOutcome) -> list[list[str]]:
    """Per input (in order), its final records as comparable lines: status, route and payload, or the error."""
    position = {e.id: i for i, e in enumerate(outcome.inputs)}
    lines: list[list[str]] = [[] for _ in outcome.inputs]
    for record in outcome.records:
        owner = outcome.owners.get(record.id, record.id)
        if owner in position:
            lines[position[owner]].append(_describe(record))
    for envelope in outcome.missing:
        lines[position[envelope.id]].append("LOST: no final record")
    return [sorted(group) for group in lines]


def _describe(record: FinalRecord) -> str:
    route = "→".join((record.envelope.get("route") or {}).get("prev") or [])
    if record.succeeded:
        return f"ok   {route}  {json.dumps(record.envelope.get('payload'), sort_keys=True)[:200]}"
    error = record.error
    return f"FAIL at {error.get('actor', '?')}: {error.get('type', '?')}: {str(error.get('message', ''))[:160]}"


def print_diff(
    *, before: Sequence[Sequence[str]] | None, after: Sequence[Sequence[str]], labels: Sequence[str]
) -> None:
    """What changed, input by input, against the previous run (everything, when there was none to compare)."""
    changed = 0
    for index, lines in enumerate(after):
        old = list(before[index]) if before is not None else None
        if old == list(lines):
            continue
        changed += 1
        print(f"  {labels[index]}:")
        for line in old or []:
            print(f"    - {line}")
        for line in lines:
            print(f"    + {line}")
    print(f"{changed} input(s) changed, {len(after) - changed} unchanged since the previous run", flush=True)


class KeyReader(threading.Thread):
    """Reads lines from stdin in the background: an empty line or a line number asks for a re-send."""

    def __init__(self) -> None:
        super().__init__(name="asya-keys", daemon=True)
        self.lines: queue.Queue[str] = queue.Queue()

    def run(self) -> None:
        for line in sys.stdin:
            self.lines.put(line.strip())

    def next(self) -> str | None:
        try:
            return self.lines.get_nowait()
        except queue.Empty:
            return None


def watch(args: argparse.Namespace, *, launched: Launch, runner: MeshRunner, last: RunOutcome | None) -> int:
    """Reload handlers on save and re-send on request, until Ctrl-C (then exit 0)."""
    files = watched_files(launched.mesh, launched.plan.pipeline_dir)
    manifests = manifest_files(launched.plan.pipeline_dir)  # for the pre-flight's lines on a save
    poller = FilePoller(list(files))
    keys = KeyReader()
    keys.start()
    before: list[list[str]] | None = record_lines(last) if last is not None else None
    down: set[str] = set()  # actors whose reload failed: their handler servers are stopped
    try:  # from the line that says so on, Ctrl-C is the documented way out (exit 0), not an interruption
        print(
            f"watching {len(files)} file(s) in {launched.plan.pipeline_dir}; save a handler to reload it "
            f"(its in-memory state is lost); Enter re-sends the inputs, N Enter the N-th"
            f"{', and every successful reload re-sends' if args.resend else ''}; Ctrl-C stops. "
            f"Mesh {launched.mesh.namespace!r} at {launched.sqs_endpoint} (also for `asya send`/`status`)",
            flush=True,
        )
        while True:
            request = keys.next()
            changed = poller.changed()
            reloaded = False
            if changed:
                reloaded = _reload_changed(changed, files=files, down=down, launched=launched, manifests=manifests)
            if request is None and not (reloaded and args.resend):
                time.sleep(POLL_S)
                continue
            if down:
                print(f"not re-sending: {', '.join(sorted(down))} cannot start (see above)", flush=True)
                continue
            sent = _resend(args, launched.mesh, runner, line=request)
            if sent is None:
                continue
            outcome, indices, total = sent
            after = record_lines(outcome)
            comparable = before is not None and len(before) == total  # same number of inputs as last time
            previous = [before[i] for i in indices] if before is not None and comparable else None
            print_diff(before=previous, after=after, labels=[f"input {i + 1}" for i in indices])
            if before is not None and comparable:
                for i, lines in zip(indices, after, strict=True):
                    before[i] = lines
            elif len(indices) == total:
                before = after
    except KeyboardInterrupt:
        print("asya dev: stopped watching; stopping every process", flush=True)
        return EXIT_OK


def _reload_changed(
    changed: Sequence[Path],
    *,
    files: Mapping[Path, list[str]],
    down: set[str],
    launched: Launch,
    manifests: Mapping[str, str],
) -> bool:
    """Pre-flight, then reload, the actors a save touches (and those still down); True when all of them reloaded.
    ``down`` is updated: actors whose new server failed to start."""
    actors = sorted({a for path in changed for a in files[path]} | (down & _all(files)))
    print(f"changed: {', '.join(p.name for p in changed)}; reloading {', '.join(actors)} ...", flush=True)
    checked = recheck(mesh=launched.mesh, pipeline_dir=launched.plan.pipeline_dir, actors=actors, manifests=manifests)
    for line in [*checked.notes, *checked.problems]:
        print(f"asya dev: {line}", flush=True)
    refused = [a for a in actors if a not in checked.passed]
    if running := [a for a in refused if a not in down]:
        print(f"not reloaded: {', '.join(running)} (the running code stays; nothing is lost); fix it and save again",
              flush=True)
    if stopped := [a for a in refused if a in down]:
        print(f"still stopped: {', '.join(stopped)} (its queue keeps what arrives); fix it and save again", flush=True)
    results = reload_actors(launched.supervisor, checked.passed) if checked.passed else []
    for result in results:
        if result.ok:
            down.discard(result.actor)
        else:
            down.add(result.actor)
            print(f"reload of {result.actor!r} failed; fix it and save again:\n{result.error}", flush=True)
    if results and all(r.ok for r in results):
        print(f"reloaded {', '.join(checked.passed)}", flush=True)
    return bool(results) and all(r.ok for r in results) and not refused


def _all(files: Mapping[Path, list[str]]) -> set[str]:
    return {a for actors in files.values() for a in actors}


def _resend(
    args: argparse.Namespace, mesh: MeshSpec, runner: MeshRunner, *, line: str | None
) -> tuple[RunOutcome, list[int], int] | None:
    """Read the inputs again and send them all (or only the ``line``-th): the outcome, the positions sent and how
    many inputs there are; None when there is nothing valid to send."""
    try:
        envelopes = read_inputs(args, mesh)
    except UsageError as exc:
        print(f"not re-sending: {exc}", flush=True)
        return None
    if not envelopes:
        print("nothing to re-send: pass --input FILE.jsonl or --send ROUTE PAYLOAD_JSON", flush=True)
        return None
    indices = list(range(len(envelopes)))
    if line:
        if not line.isdigit() or not 1 <= int(line) <= len(envelopes):
            print(f"press Enter for every input, or type a number from 1 to {len(envelopes)} and Enter", flush=True)
            return None
        indices = [int(line) - 1]
    return runner.run([envelopes[i] for i in indices]), indices, len(envelopes)
