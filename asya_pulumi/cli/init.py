"""``asya init NAME``: a new pipeline directory that ``asya dev NAME`` runs as it is.

The directory holds a mesh (``mesh.yaml``, namespace = the directory's name, one named route), one actor
(``hello.yaml``), its handler (``handlers.py``), inputs (``input.jsonl``, which ``asya dev`` reads when given no
``--input``) and a Dockerfile for the handler image. The files are rendered from the package's templates
(``asya_pulumi/cli/templates/init``) into a scratch directory and loaded there with :func:`load_pipeline_dir`, the
loader ``asya dev`` and the stacks use, before anything is written: a NAME the spec refuses (not a DNS label, queue
names too long) is a usage error naming the rule and the fix, and nothing is created.
"""

from __future__ import annotations

import argparse
import shutil
import string
import tempfile
from importlib import resources
from pathlib import Path

from asya_pulumi.cli.errors import EXIT_OK, UsageError
from asya_pulumi.cli.output import add_json_option, emit

_TEMPLATES = "templates/init"
_SUFFIX = ".tmpl"


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "init",
        help="create a pipeline directory (mesh, one actor, handler, inputs)",
        description="Create directory NAME with a one-actor pipeline that `asya dev NAME` runs as it is. The "
        "directory's name is the mesh namespace (a DNS label: lowercase letters, digits, '-').",
    )
    parser.add_argument("path", metavar="NAME", help="the new directory; its last part is the mesh namespace")
    add_json_option(parser, what="the directory and the files written")
    parser.set_defaults(run=run)


def scaffold(*, target: Path) -> list[Path]:
    """Write the pipeline files into ``target`` (which must not exist, or be empty) and return their paths."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{str(target)!r} already exists and is not an empty directory; choose a new NAME")
    name = target.resolve().name
    with tempfile.TemporaryDirectory(prefix="asya-init-") as scratch:
        rendered = Path(scratch) / name
        _render(rendered, values={"name": name, "path": str(target)})
        _check_loads(rendered, name=name)
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for source in sorted(rendered.iterdir()):
            written.append(Path(shutil.copy2(source, target / source.name)))
    return written


def _render(directory: Path, *, values: dict[str, str]) -> None:
    directory.mkdir()
    for template in resources.files("asya_pulumi.cli").joinpath(_TEMPLATES).iterdir():
        if template.name.endswith(_SUFFIX):
            text = string.Template(template.read_text(encoding="utf-8")).substitute(values)
            (directory / template.name.removesuffix(_SUFFIX)).write_text(text, encoding="utf-8")


def _check_loads(directory: Path, *, name: str) -> None:
    from asya_pulumi.spec import SpecError, load_pipeline_dir
    from asya_pulumi.spec.mesh import check_namespace

    try:  # the name first: every other file derives from it, so its own rule is the message that helps
        check_namespace(name)
    except ValueError as exc:
        raise UsageError(f"NAME {name!r} is the mesh namespace, and {exc}") from None
    try:
        load_pipeline_dir(directory)
    except SpecError as exc:
        problem = exc.problems[0] if exc.problems else str(exc)
        raise UsageError(f"NAME {name!r} is the mesh namespace, and {problem}") from None


def run(args: argparse.Namespace) -> int:
    target = Path(args.path)
    written = scaffold(target=target)
    text = (
        f"created {target}/: {', '.join(p.name for p in written)}\n"
        f"run it:  asya dev {target}\n"
        f"then edit {target / 'handlers.py'} and try `asya dev {target} --watch`"
    )
    emit(args, data={"directory": str(target), "files": [str(p) for p in written], "run": f"asya dev {target}"},
         text=text)
    return EXIT_OK
