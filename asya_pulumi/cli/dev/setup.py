"""Everything ``asya dev`` checks before it starts a process: the pipeline, the inputs and ``--replicas``.

Each mistake is a :class:`UsageError` (one line, exit 2), so nothing is started for a run that cannot work.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from pydantic import ValidationError

from asya_pulumi.cli.errors import UsageError
from asya_pulumi.cli.inputs import envelope_from_arguments, read_input_file
from asya_pulumi.spec.errors import SpecError
from asya_pulumi.spec.manifest import Pipeline, load_pipeline
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.envelope import Envelope
from asya_runtime.naming import SINKS, check_dns_label

#: Replicas above this on one machine only thrash it.
MAX_LOCAL_REPLICAS = 16
#: The inputs a pipeline directory may carry (``asya init`` writes one); read when nothing else says what to send.
DEFAULT_INPUT = "input.jsonl"


def load_mesh(directory: str, *, namespace: str | None) -> tuple[MeshSpec, Pipeline]:
    """The pipeline's :class:`MeshSpec` (namespace replaced when given) and the pipeline as loaded (its resolved
    directory, each actor's manifest file)."""
    path = Path(directory)
    if not path.exists():
        raise UsageError(f"pipeline directory {directory!r} does not exist")
    if not path.is_dir():
        raise UsageError(f"{directory!r} is not a directory; pass a pipeline directory (e.g. examples/image-scoring)")
    try:
        pipeline = load_pipeline(path)
    except SpecError as exc:
        extra = f" (and {len(exc.problems) - 1} more)" if len(exc.problems) > 1 else ""
        raise UsageError(f"invalid pipeline: {exc.problems[0] if exc.problems else exc}{extra}") from None
    mesh = pipeline.mesh
    if namespace is not None:
        try:
            check_dns_label(namespace, what="--namespace", max_len=40)
            mesh = MeshSpec.model_validate({**mesh.model_dump(), "namespace": namespace})
        except ValidationError as exc:
            raise UsageError(f"--namespace {namespace}: {exc.errors()[0]['msg']}") from None
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    return mesh, dataclasses.replace(pipeline, directory=path.resolve())


def check_handlers_first(pipeline: Pipeline, *, strict: bool) -> None:
    """Import every handler in a throwaway process (:mod:`asya_pulumi.checks.handlers`) before the broker or any
    process starts: a misspelled function, a missing module or a failing import is one line each, and no wait.

    ``strict`` is False for ``--containers``, whose handlers run in their images (what this machine lacks may be
    there). Each problem is printed as its own ``asya: error:`` line, the last one raised as the UsageError.
    """
    from asya_pulumi.checks.handlers import check_handlers, problem_lines

    checks = check_handlers(
        actors=pipeline.mesh.actors, pipeline_dir=pipeline.directory, manifests=pipeline.manifests, strict=strict
    )
    for check in checks:
        if check.note:
            print(f"asya dev: {check.note}", flush=True)
    problems = problem_lines(checks)
    for problem in problems[:-1]:
        print(f"asya: error: {' '.join(problem.split())}", file=sys.stderr)
    if problems:
        raise UsageError(problems[-1])


def read_inputs(args: argparse.Namespace, mesh: MeshSpec) -> list[Envelope]:
    """The envelopes of ``--input`` or ``--send``; with neither, of the pipeline directory's ``input.jsonl`` unless
    the mesh is only to stay up (``--keep-running`` without inputs starts an empty mesh). ``--watch`` reads it: its
    re-sends need inputs, and the file is read again at each (edits count)."""
    actors = {a.name for a in mesh.actors}
    default = Path(args.pipeline_dir) / DEFAULT_INPUT
    fires = bool(getattr(args, "fire", None))  # --fire alone runs the fired schedules, not the default inputs
    if args.input is None and args.send is None and not args.keep_running and not fires and default.is_file():
        print(f"input: {default} (no --input or --send given)")
        args.input = default
    if args.input is not None:
        return read_input_file(args.input, actors=actors, routes=mesh.routes)
    if args.send is not None:
        route, payload = args.send
        return [envelope_from_arguments(route=route, payload=payload, actors=actors, routes=mesh.routes)]
    return []


def fired_inputs(args: argparse.Namespace, mesh: MeshSpec) -> list[Envelope]:
    """``--fire NAME``: the envelope each named schedule trigger sends, fired now (``local/triggers.py``)."""
    from asya_pulumi.local.triggers import fired_envelope

    try:
        return [fired_envelope(mesh=mesh, name=name, region=args.region or mesh.region) for name in args.fire]
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def parse_replicas(values: list[str], mesh: MeshSpec) -> dict[str, int]:
    """``--replicas N`` (every actor) and ``--replicas ACTOR=N`` (one actor; wins over N) → ``{actor: count}``.

    Without either, an actor runs one replica, or its ``replicas`` when its ``scaling.enabled`` is false (as its
    Deployment does in the cluster).
    """
    names = [a.name for a in mesh.actors]
    counts = dict.fromkeys([*names, *SINKS], 1)
    counts |= {a.name: min(a.replicas, MAX_LOCAL_REPLICAS) for a in mesh.actors if not a.scaling.enabled}
    specific: dict[str, int] = {}
    for value in values:
        actor, _, number = value.rpartition("=")
        count = _count(number, value)
        if not actor:
            counts.update(dict.fromkeys(names, count))
        elif actor in counts:
            specific[actor] = count
        else:
            raise UsageError(f"--replicas {value}: unknown actor {actor!r}; the mesh's actors are {', '.join(names)}")
    return counts | specific


def _count(number: str, value: str) -> int:
    try:
        count = int(number)
    except ValueError:
        raise UsageError(f"--replicas {value}: write N or ACTOR=N with N a whole number") from None
    if not 1 <= count <= MAX_LOCAL_REPLICAS:
        raise UsageError(f"--replicas {value}: N must be between 1 and {MAX_LOCAL_REPLICAS}")
    return count
