"""Pre-flight: import every actor's handler in a throwaway process before anything starts, and word each mistake as
one line that names the manifest, the handler, what is missing, a "did you mean" and the fix.

Each actor's check is its handler server's own ``--check`` (``handler_server.py --check``, ``handler_server.js
--check``): the command, environment, working directory and search path ``asya dev`` would start the server with
(:func:`asya_pulumi.local.plan.actor_handler_process`), so resolving ``module.Class.method`` or ``file.js:export``
has one home, the servers. It loads the handler as serving would — a class's method is looked up on the class, not
on a new instance — checks that it takes one payload argument, prints one JSON line and exits. Checks run in
parallel, one process per actor (a module's import side effects stay in that process; actors whose check would be
the very same process share it), each under a timeout.

Two strengths:

- ``strict`` (``asya dev``): the handlers run on this machine, so every problem is an error — a missing module or
  function, an import that raises (a missing dependency, a syntax error), a constructor that raises, a signature
  that refuses one argument. A check that outlives the timeout (a model downloaded at import) is let through with a
  note: the server will find out for itself.
- not strict (``asya render``, ``pulumi preview``/``up`` through ``stacks/``): the handlers run in their image. An
  actor whose handler module is not a file of the pipeline directory (the image alone holds it), or whose language's
  runtime is not installed here, is skipped without a word; so is a problem this machine may cause rather than the
  code (a dependency not installed here, an import or a constructor that raises here). What the code itself gets
  wrong — a syntax error, a name the module lacks, a signature, a class or a value named as the function — is an
  error everywhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from asya_pulumi.local.plan import actor_handler_process
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.errors import SpecError
from asya_pulumi.spec.manifest import load_pipeline, runtime_in_dir
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.handler_server import close_match

if TYPE_CHECKING:
    from asya_pulumi.local.processes import ProcessSpec

#: How long one handler's import may take before its check is given up (an import that downloads a model).
CHECK_TIMEOUT_S = 20.0
#: Problems a handler's code causes wherever it runs; the others (``module``, ``import``, ``constructor``,
#: ``config``) may be this machine's, not the image's.
CODE_PROBLEMS = frozenset({"syntax", "attribute", "signature", "target", "spec"})
#: The most names listed when no close one is found.
_LISTED = 8


@dataclass(frozen=True)
class HandlerCheck:
    """The outcome of one actor's check: ``problem`` is the one line (None: fine, or skipped), ``note`` a remark
    that stops nothing (a check given up at its timeout)."""

    actor: str
    problem: str | None = None
    note: str | None = None
    #: The manifest named by ``problem``.
    manifest: str = ""
    #: For a problem of the module rather than of this actor's handler (its import raised, it does not compile, it
    #: is not found): the server's words, which every actor naming that module shares (:func:`problem_lines`).
    module_problem: str | None = None


def problem_lines(checks: Sequence[HandlerCheck]) -> list[str]:
    """One line per mistake: actors whose handlers share a module that fails to import are one mistake, reported
    once with the other manifests named."""
    lines: list[str] = []
    seen: dict[str, int] = {}  # module problem → its line's index
    others: dict[int, list[str]] = {}
    for check in checks:
        if check.problem is None:
            continue
        if check.module_problem is not None and check.module_problem in seen:
            others.setdefault(seen[check.module_problem], []).append(Path(check.manifest).name)
            continue
        if check.module_problem is not None:
            seen[check.module_problem] = len(lines)
        lines.append(check.problem)
    for index, names in others.items():
        lines[index] += f" (the same module: {', '.join(names)})"
    return lines


def check_handlers(
    *,
    actors: Sequence[AsyncActorSpec],
    pipeline_dir: Path,
    manifests: Mapping[str, str],
    strict: bool,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> list[HandlerCheck]:
    """Check every actor's handler (see the module docstring for ``strict``), in parallel; one result per actor
    checked, in ``actors``' order. ``manifests`` maps an actor to the file its line names.

    Actors whose check would be the very same process (command, directory, environment: the same handler with the
    same settings, as in a chain of pass-through actors) share one check: its answer is each one's."""
    pipeline_dir = pipeline_dir.resolve()  # the check runs in it: a relative search path would point below itself
    runnable = [actor for actor in actors if strict or _source_is_here(actor, pipeline_dir=pipeline_dir)]
    if not runnable:
        return []
    processes: dict[str, ProcessSpec | Exception] = {}
    for actor in runnable:
        try:
            processes[actor.name] = actor_handler_process(
                actor=actor, pipeline_dir=pipeline_dir, name=f"{actor.name}-check", socket_path=os.devnull
            )
        except (RuntimeError, ValueError) as exc:  # no `node` here; an env value known only at deploy time
            processes[actor.name] = exc
    distinct = {_same_check(p): p for p in processes.values() if not isinstance(p, Exception)}
    workers = min(max(len(distinct), 1), max(4, 2 * (os.cpu_count() or 1)))
    children: list[subprocess.Popen[str]] = []
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="asya-preflight") as pool:
        futures = {
            key: pool.submit(_run_check, process, timeout_s=timeout_s, children=children)
            for key, process in distinct.items()
        }
        try:
            ran = {key: future.result() for key, future in futures.items()}
        except BaseException:  # Ctrl-C: the checks run in sessions of their own, which the terminal does not signal
            for child in list(children):
                _kill_group(child)
            raise
    checks = []
    for actor in runnable:
        manifest = manifests.get(actor.name, actor.name)
        process = processes[actor.name]
        if isinstance(process, Exception):
            checks.append(HandlerCheck(actor.name, problem=f"{manifest}: {process}" if strict else None,
                                       manifest=manifest))
        else:
            checks.append(_judge(actor, ran[_same_check(process)], manifest=manifest, strict=strict,
                                 timeout_s=timeout_s))
    return checks


def _same_check(process: ProcessSpec) -> str:
    """What makes two checks the same process: its command, working directory and environment."""
    return json.dumps([list(process.argv), str(process.cwd), sorted(process.env.items())])


def _source_is_here(actor: AsyncActorSpec, *, pipeline_dir: Path) -> bool:
    """Whether the handler's module is a file (or package) of the pipeline directory, not only in its image."""
    module = actor.handler.split(".", 1)[0]
    if runtime_in_dir(actor, pipeline_dir=pipeline_dir) == "node":
        return (pipeline_dir / f"{module}.js").is_file()
    return (pipeline_dir / f"{module}.py").is_file() or (pipeline_dir / module / "__init__.py").is_file()


def _kill_group(child: subprocess.Popen[str]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)  # its own group: whatever the import started goes too


@dataclass(frozen=True)
class _Ran:
    """What one ``--check`` process left: its answer (None: it died without one), stderr and exit status, or that
    it outlived the timeout."""

    answer: dict[str, Any] | None
    stderr: str = ""
    returncode: int | None = None
    timed_out: bool = False


def _run_check(process: ProcessSpec, *, timeout_s: float, children: list[subprocess.Popen[str]]) -> _Ran:
    child = subprocess.Popen(
        [*process.argv, "--check"], cwd=process.cwd, env=dict(process.env), stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )
    children.append(child)
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(child)
        child.communicate()
        return _Ran(answer=None, timed_out=True)
    return _Ran(answer=_answer(stdout), stderr=stderr or "", returncode=child.returncode)


def _judge(actor: AsyncActorSpec, ran: _Ran, *, manifest: str, strict: bool, timeout_s: float) -> HandlerCheck:
    """The check's verdict for one actor, from what its ``--check`` process said."""
    if ran.timed_out:
        note = f"{manifest}: handler {actor.handler!r} took over {timeout_s:g} s to import; not checked"
        return HandlerCheck(actor.name, note=note)
    answer = ran.answer
    if answer is None:  # the process died without answering (a handler that exits at import)
        tail = " ".join(ran.stderr.split())[-300:] or f"exit status {ran.returncode}"
        line = f"{manifest}: handler {actor.handler!r}: importing it ended the process ({tail})"
        return HandlerCheck(actor.name, problem=line if strict else None, manifest=manifest)
    if answer.get("ok") or (not strict and answer.get("problem") not in CODE_PROBLEMS):
        return HandlerCheck(actor.name)
    module_wide = answer.get("problem") in ("module", "import", "syntax")
    return HandlerCheck(
        actor.name, problem=describe_problem(answer, handler=actor.handler, manifest=manifest), manifest=manifest,
        module_problem=str(answer.get("message")) if module_wide else None,
    )


def _answer(stdout: str) -> dict[str, Any] | None:
    """The ``--check`` answer: the last line of stdout that is a JSON object (a handler may print at import)."""
    for line in reversed(stdout.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict) and "ok" in answer:
            return answer
    return None


def describe_problem(answer: Mapping[str, Any], *, handler: str, manifest: str) -> str:
    """One line for a failed ``--check`` answer: the manifest, the handler as the manifest writes it, what the
    server found (``message``), and — when a name was not found — the closest one it has and the handler to write.

    The server's names are in its own form (the Node.js server's ``words.js``); the manifest's are without ``.js``.
    """
    message = " ".join(str(answer.get("message", "")).split())
    missing = answer.get("missing")
    line = f"{manifest}: handler {handler!r}: {message}"
    if not isinstance(missing, str) or answer.get("problem") not in ("attribute", "module"):
        return line
    missing = _manifest_name(missing)
    parts = handler.split(".")
    if missing not in parts:  # a dependency the module imports, not a part of the handler
        return line
    candidates = [_manifest_name(str(name)) for name in answer.get("candidates") or []]
    close = close_match(missing, candidates)
    if close is None:
        listed = ", ".join(candidates[:_LISTED])
        return line if not listed or listed in line else f"{line}; it has: {listed}"
    index = len(parts) - 1 - parts[::-1].index(missing)
    fixed = ".".join([*parts[:index], close, *parts[index + 1 :]])
    suggestion = f"did you mean {close!r}?"
    line = line.removesuffix(f"; {suggestion}")  # the Python server words it too
    return f"{line}; {suggestion} Set `handler: {fixed}` in {Path(manifest).name}"


def _manifest_name(name: str) -> str:
    """A module as a manifest names it: ``words.js`` → ``words``."""
    for suffix in (".js", ".mjs", ".cjs"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def load_checked_pipeline(path: str | Path) -> MeshSpec:
    """The pipeline directory's :class:`MeshSpec` (:func:`~asya_pulumi.spec.manifest.load_pipeline_dir`) with its
    handlers checked for deploy (:func:`require_handlers`): what a Pulumi program (``stacks/``, so ``asya render``
    and ``pulumi preview``) loads, so that a misspelled handler fails the preview rather than the pods."""
    pipeline = load_pipeline(path)
    require_handlers(actors=pipeline.mesh.actors, directory=pipeline.directory, manifests=pipeline.manifests)
    return pipeline.mesh


def require_handlers(*, actors: Sequence[AsyncActorSpec], directory: Path, manifests: Mapping[str, str]) -> None:
    """Check the handlers of ``actors`` whose modules are files of ``directory``, for deploy (not strict); a
    problem is a :class:`SpecError` with one line per manifest to fix."""
    checks = check_handlers(actors=actors, pipeline_dir=directory, manifests=manifests, strict=False)
    problems = problem_lines(checks)
    if problems:
        raise SpecError(str(directory), problems)
