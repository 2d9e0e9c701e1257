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

``--preflight DIR`` times the handler pre-flight alone (every handler imported in a throwaway process before the
broker starts; the servers import them again): wall time, and the CPU its processes use, per handler.

``--reloads N`` times something else: how long a misspelled handler takes to be reported (the pre-flight), and N
``--watch`` reloads of every actor's module, from the save to ``reloaded`` (target ≤ 1.5 s).

Targets (issue 14, 2-core machine): the image-scoring example ≤ 6 s command to exit, 20 actors ready ≤ 5 s. The
machine's load at the start of each run is printed: other work on a shared machine slows every phase.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


def time_to_fail(*, actors: int) -> float:
    """Seconds until ``asya dev`` reports a misspelled handler (actor a1's ``steps.stpe``): the pre-flight's
    answer, before any broker or process starts (exit 2, one line)."""
    with tempfile.TemporaryDirectory(prefix="asya-phases-") as tmp:
        pipeline = Path(tmp) / "pipeline"
        write_pipeline(pipeline, actors=actors)
        (pipeline / "a1.yaml").write_text(_ACTOR.format(name="a1").replace("steps.step", "steps.stpe"))
        started = time.monotonic()
        done = subprocess.run([ASYA, "dev", str(pipeline), "--send", "go", '{"hops": 0}'], capture_output=True,
                              text=True, timeout=120)
        elapsed = time.monotonic() - started
    if done.returncode != 2 or "did you mean 'step'" not in done.stderr:
        raise RuntimeError(f"expected the pre-flight's one line (exit 2), got exit {done.returncode}:\n{done.stderr}")
    return elapsed


def reload_times(*, actors: int, reloads: int) -> list[float]:
    """``asya dev --watch`` on the chain; each time ``steps.py`` (every actor's module) is saved, the seconds until
    ``reloaded`` is printed: the file poll (every 0.3 s, then 0.2 s to settle), the old servers stopping and the
    new ones answering ``health``."""
    with tempfile.TemporaryDirectory(prefix="asya-phases-") as tmp:
        pipeline = Path(tmp) / "pipeline"
        write_pipeline(pipeline, actors=actors)
        process = subprocess.Popen(
            [ASYA, "dev", str(pipeline), "--send", "go", '{"hops": 0}', "--watch"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        assert process.stdout is not None
        lines: list[str] = []
        try:
            _until(process.stdout, "watching", lines)
            times = []
            for index in range(reloads):
                steps = pipeline / "steps.py"
                mtime = steps.stat().st_mtime_ns + 2_000_000_000
                started = time.monotonic()
                body = f"    return {{**payload, 'hops': payload['hops'] + 1, 'v': {index}}}\n"
                steps.write_text("def step(payload):\n" + body)
                os.utime(steps, ns=(mtime, mtime))
                _until(process.stdout, "reloaded", lines)
                times.append(time.monotonic() - started)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}:\n{''.join(lines)}") from None
        finally:
            process.send_signal(signal.SIGINT)
            process.wait(timeout=60)
    return times


def _until(stream: IO[str], text: str, lines: list[str]) -> None:
    for line in stream:
        lines.append(line)
        if line.startswith(text):
            return
        if line.startswith("reload of"):
            raise RuntimeError(f"asya dev: {line.strip()}")
    raise RuntimeError(f"asya dev ended before printing {text!r}")


def preflight_cost(*, pipeline: Path, runs: int) -> tuple[float, float, int]:
    """The handler pre-flight of ``pipeline`` alone (:func:`asya_pulumi.checks.handlers.check_handlers`, strict, as
    ``asya dev`` runs it before the broker): the median wall seconds of ``runs`` runs, the CPU seconds its check
    processes used per run (what importing every handler a second time costs: the servers import them again), and
    how many check processes one run starts."""
    import resource

    from asya_pulumi.checks.handlers import check_handlers
    from asya_pulumi.spec.manifest import load_pipeline

    loaded = load_pipeline(pipeline)
    walls, cpus = [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        checks = check_handlers(actors=loaded.mesh.actors, pipeline_dir=loaded.directory, manifests=loaded.manifests,
                                strict=True)
        walls.append(time.monotonic() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
        if any(c.problem for c in checks):
            raise RuntimeError(f"{pipeline}: {[c.problem for c in checks if c.problem]}")
    distinct = len({(a.handler, a.runtime) for a in loaded.mesh.actors})
    return statistics.median(walls), statistics.median(cpus), distinct


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
    parser.add_argument("--reloads", type=int, default=0, metavar="N",
                        help="instead: time N --watch reloads of every actor's module, and a misspelled handler")
    parser.add_argument("--preflight", type=Path, action="append", metavar="DIR",
                        help="instead: time the handler pre-flight of this pipeline directory (repeatable)")
    args = parser.parse_args()
    if args.preflight:
        for pipeline in args.preflight:
            wall, cpu, handlers = preflight_cost(pipeline=pipeline, runs=args.runs)
            print(f"{pipeline}: pre-flight of {handlers} handler(s) {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms "
                  f"CPU ({cpu * 1000 / handlers:.0f} ms per handler); load {os.getloadavg()[0]:.1f}", flush=True)
        return 0
    if args.reloads:
        for actors in args.actors or [5]:
            fail = time_to_fail(actors=actors)
            times = reload_times(actors=actors, reloads=args.reloads)
            print(f"{actors} actors, load {os.getloadavg()[0]:.1f}: a misspelled handler reported in {fail:.2f} s; "
                  f"save → reloaded: {', '.join(f'{t:.2f}' for t in times)} s "
                  f"(median {statistics.median(times):.2f}; target ≤ 1.5 s)", flush=True)
        return 0
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
