"""Where ``asya dev``'s wall time goes, by phase, for a 5-actor and a 20-actor pipeline (not a timed test).

    .venv/bin/python -m bench.dev_phases                  # 5 and 20 actors, 3 runs each, the median run
    .venv/bin/python -m bench.dev_phases --actors 20 --runs 1

Each run is the real ``asya dev`` command on a throwaway chain of pass-through Python actors (a1 → a2 → … → aN,
one handler module), with one input, starting its own embedded broker. The phases are read off the moments the
command prints its lines (stdout is a pipe: every line is flushed as it is printed):

- **CLI import**: from the command's start to its first line (Python start-up, imports, manifests, inputs);
- **broker + queues**: until ``created … queues`` (the broker, spawned at once, is healthy and every queue exists;
  the handler servers started meanwhile);
- **processes ready**: until ``sent`` (the sidecar process has all its sidecars polling, every handler answers);
- **results**: until the summary's last line (the input went through every actor and its final record was read);
- **exit**: until the process ended (every process stopped, the broker last).

Targets (issue 14, 2-core machine): the image-scoring example ≤ 6 s command to exit, 20 actors ready ≤ 5 s. The
machine's load at the start of each run is printed: other work on a shared machine slows every phase.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ASYA = str(Path(sys.executable).parent / "asya")
PHASES = ("CLI import", "broker + queues", "processes ready", "results", "exit")
#: The line that ends each phase but the last (which ends when the process does).
_MARKERS = ("starting the embedded broker", "created ", "sent ", "mesh idle")
READY_TARGET_S = {20: 5.0}

_HEAD = "apiVersion: asya.sh/v1alpha1\n"
_MESH = _HEAD + "kind: ActorMesh\nmetadata: {{name: phases}}\nspec:\n  routes: {{go: [{route}]}}\n"
_ACTOR = _HEAD + "kind: AsyncActor\nmetadata: {{name: {name}}}\nspec: {{image: x, handler: steps.step}}\n"


@dataclass(frozen=True)
class Run:
    actors: int
    processes: int
    phases: tuple[float, ...]  # seconds spent in each of PHASES
    load: float

    @property
    def total(self) -> float:
        return sum(self.phases)

    @property
    def ready(self) -> float:
        """Command start until the mesh took its input: what a user waits before anything happens."""
        return sum(self.phases[:3])


def write_pipeline(directory: Path, *, actors: int) -> None:
    names = [f"a{i}" for i in range(1, actors + 1)]
    directory.mkdir(parents=True)
    (directory / "mesh.yaml").write_text(_MESH.format(route=", ".join(names)))
    for name in names:
        (directory / f"{name}.yaml").write_text(_ACTOR.format(name=name))
    (directory / "steps.py").write_text("def step(payload):\n    return {**payload, 'hops': payload['hops'] + 1}\n")


def run_once(*, actors: int, pipeline: Path | None = None, input_file: Path | None = None) -> Run:
    """One ``asya dev`` run; its phases. ``pipeline``/``input_file`` run an existing pipeline instead."""
    with tempfile.TemporaryDirectory(prefix="asya-phases-") as tmp:
        if pipeline is None:
            pipeline = Path(tmp) / "pipeline"
            write_pipeline(pipeline, actors=actors)
        command = [ASYA, "dev", str(pipeline)]
        command += ["--input", str(input_file)] if input_file else ["--send", "go", '{"hops": 0}']
        load = os.getloadavg()[0]
        started = time.monotonic()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert process.stdout is not None
        moments: dict[str, float] = {}
        lines = []
        processes = 0
        for line in process.stdout:
            lines.append(line)
            for marker in _MARKERS:
                if line.startswith(marker) and marker not in moments:
                    moments[marker] = time.monotonic()
            if line.startswith("starting ") and "processes" in line:
                processes = int(line.split()[1])
        code = process.wait()
        ended = time.monotonic()
    if code != 0 or len(moments) != len(_MARKERS):
        raise RuntimeError(f"asya dev failed (exit {code}):\n{''.join(lines)}")
    edges = [started, *(moments[m] for m in _MARKERS), ended]
    phases = tuple(b - a for a, b in itertools.pairwise(edges))
    return Run(actors=actors, processes=processes, phases=phases, load=load)


def table(runs: list[Run]) -> str:
    header = f"| actors | processes | {' | '.join(PHASES)} | ready | total | load (1 min) |"
    rows = [header, "|" + "---|" * (len(PHASES) + 5)]
    for run in runs:
        cells = " | ".join(f"{s:.2f}" for s in run.phases)
        name = str(run.actors) if run.actors else "example"
        rows.append(f"| {name} | {run.processes} | {cells} | {run.ready:.2f} | {run.total:.2f} | {run.load:.1f} |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--actors", type=int, action="append", help="actors in the chain (default: 5 and 20)")
    parser.add_argument("--runs", type=int, default=3, help="runs per size; the median run (by total) is shown")
    parser.add_argument("--example", type=Path, help="also time this pipeline directory with its input.jsonl")
    args = parser.parse_args()
    print(f"asya dev by phase, seconds; cpus={os.cpu_count()}")
    medians: list[Run] = []
    for actors in args.actors or [5, 20]:
        runs = sorted((run_once(actors=actors) for _ in range(args.runs)), key=lambda r: r.total)
        medians.append(runs[len(runs) // 2])
        print(f"  {actors} actors: totals {', '.join(f'{r.total:.2f}' for r in runs)} s "
              f"(median {statistics.median(r.total for r in runs):.2f})", flush=True)
    if args.example:
        inputs = args.example / "input.jsonl"
        runs = sorted(
            (run_once(actors=0, pipeline=args.example, input_file=inputs) for _ in range(args.runs)),
            key=lambda r: r.total,
        )
        medians.append(runs[len(runs) // 2])
        print(f"  {args.example.name}: totals {', '.join(f'{r.total:.2f}' for r in runs)} s", flush=True)
    print(table(medians))
    for run in medians:
        target = READY_TARGET_S.get(run.actors)
        if target is not None:
            print(f"{run.actors} actors ready in {run.ready:.2f} s (target ≤ {target:g} s: "
                  f"{'met' if run.ready <= target else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
