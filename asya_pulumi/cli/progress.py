"""Live progress of ``asya dev``: a rich table on a terminal, plain lines otherwise (CI logs, pipes).

The view only renders a :class:`Snapshot`; gathering the numbers (queue depths, final records) is ``dev``'s job.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

#: Plain mode prints at most one line per this many seconds (and always the last one).
PLAIN_INTERVAL_S = 2.0


@dataclass(frozen=True)
class ActorRow:
    """One actor's line: its queue (waiting / in flight / delayed retries / DLQ) and the envelopes it has seen end."""

    actor: str
    replicas: int
    waiting: int
    in_flight: int
    delayed: int
    dead_lettered: int
    done: int
    failed: int
    restarts: int


@dataclass(frozen=True)
class Snapshot:
    rows: list[ActorRow]
    inputs_total: int
    inputs_finished: int
    records_ok: int
    records_failed: int
    elapsed_s: float

    @property
    def rate(self) -> float:
        """Final records per second since the inputs were sent."""
        return (self.records_ok + self.records_failed) / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def headline(self) -> str:
        return (
            f"inputs {self.inputs_finished}/{self.inputs_total} with results · records {self.records_ok} ok, "
            f"{self.records_failed} failed · {self.rate:.0f}/s · {self.elapsed_s:.1f}s"
        )


class ProgressView:
    """``update(snapshot)`` as often as you like; a context manager that leaves the last frame on screen."""

    def __init__(self, *, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.console = Console(file=self.stream)
        self.live = self.console.is_terminal if live is None else live
        self._live: Live | None = None
        self._last_plain = 0.0
        self._pending: Snapshot | None = None

    def __enter__(self) -> ProgressView:
        if self.live:
            self._live = Live(console=self.console, refresh_per_second=4, transient=False)
            self._live.__enter__()
        return self

    def update(self, snapshot: Snapshot) -> None:
        if self._live is not None:
            self._live.update(render(snapshot))
            return
        self._pending = snapshot
        now = time.monotonic()
        if now - self._last_plain >= PLAIN_INTERVAL_S:
            self._print_plain()
            self._last_plain = now

    def _print_plain(self) -> None:
        if self._pending is None:
            return
        queues = " ".join(
            f"{r.actor}={r.waiting}+{r.in_flight}×{r.replicas}"
            + (f"(dlq {r.dead_lettered})" if r.dead_lettered else "")
            for r in self._pending.rows
        )
        line = f"progress: {self._pending.headline()} · queues waiting+in-flight×replicas: {queues}"
        print(line, file=self.stream, flush=True)
        self._pending = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._live is not None:
            self._live.__exit__(exc_type, exc, tb)
        else:
            self._print_plain()


def render(snapshot: Snapshot) -> Group:
    """The live frame: a progress bar with the headline, then one row per actor."""
    table = Table(expand=False, box=None, padding=(0, 1))
    table.add_column("actor", no_wrap=True, min_width=max((len(r.actor) for r in snapshot.rows), default=5))
    for column in ("replicas", "waiting", "in flight", "delayed", "DLQ", "done", "failed", "restarts"):
        table.add_column(column, justify="right")
    for row in snapshot.rows:
        table.add_row(
            row.actor,
            str(row.replicas),
            str(row.waiting),
            str(row.in_flight),
            str(row.delayed),
            Text(str(row.dead_lettered), style="red" if row.dead_lettered else ""),
            Text(str(row.done), style="green"),
            Text(str(row.failed), style="red" if row.failed else ""),
            str(row.restarts),
        )
    bar = ProgressBar(total=max(snapshot.inputs_total, 1), completed=snapshot.inputs_finished, width=40)
    return Group(_row(bar, snapshot), table)


def _row(bar: ProgressBar, snapshot: Snapshot) -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_row(bar, Text(snapshot.headline()))
    return grid
