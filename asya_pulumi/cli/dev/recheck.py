"""``asya dev --watch``: the handler pre-flight again, on a save, before the old handler servers are stopped.

The start's pre-flight (:mod:`asya_pulumi.checks.handlers`: import each handler in a throwaway process, check that
the function exists and takes one payload argument, "did you mean") runs again for the actors a save would reload.
An actor whose check fails is not reloaded: its one-line problem is printed and its servers keep running the code
they loaded — nothing queued waits on a handler that cannot start — until a save that passes. Only the actors that
pass are reloaded (:func:`asya_pulumi.cli.dev.watch.reload_actors`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from asya_pulumi.checks.handlers import check_handlers, problem_lines
from asya_pulumi.spec.errors import SpecError
from asya_pulumi.spec.manifest import load_pipeline
from asya_pulumi.spec.mesh import MeshSpec


@dataclass(frozen=True)
class Recheck:
    """Which of the actors asked about may be reloaded, and one line per mistake for the others."""

    passed: list[str]
    problems: list[str]
    notes: list[str]


def manifest_files(pipeline_dir: Path) -> Mapping[str, str]:
    """Actor → its manifest file, for the problem lines (read once; manifests are not watched). Empty when the
    directory no longer loads: the lines then name the actor instead."""
    try:
        return load_pipeline(pipeline_dir).manifests
    except SpecError:
        return {}


def recheck(
    *, mesh: MeshSpec, pipeline_dir: Path, actors: Sequence[str], manifests: Mapping[str, str]
) -> Recheck:
    """Check the handlers of ``actors`` as the start did (strict: they run on this machine), in parallel."""
    specs = [a for a in mesh.actors if a.name in set(actors)]
    checks = check_handlers(actors=specs, pipeline_dir=pipeline_dir, manifests=manifests, strict=True)
    failed = {c.actor for c in checks if c.problem is not None}
    return Recheck(
        passed=[a for a in actors if a not in failed],
        problems=[" ".join(line.split()) for line in problem_lines(checks)],
        notes=[c.note for c in checks if c.note],
    )
