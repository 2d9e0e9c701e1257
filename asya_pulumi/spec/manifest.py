"""Manifests on disk: ``AsyncActor`` files, the ``ActorMesh`` file, and a pipeline directory holding both.

Every file is read within :mod:`asya_pulumi.spec.yamlload`'s budgets (size cap checked before reading, aliases,
expansion, depth), so a huge file or an alias bomb is refused in milliseconds with the file named.

A pipeline directory (e.g. ``examples/image-scoring/``) holds one ``kind: AsyncActor`` YAML file per actor and one
``kind: ActorMesh`` file (namespace, routes, GPU pools, region, runtime image). ``load_pipeline_dir`` turns it into a
:class:`MeshSpec`; ``pulumi up`` (stacks/) and ``asya dev`` both start from it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from asya_pulumi.spec.actor import AsyncActorSpec, HandlerRuntime
from asya_pulumi.spec.base import API_VERSION
from asya_pulumi.spec.errors import SpecError, describe, known_field_names
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.yamlload import YamlRefused, load_yaml, read_yaml_text

ACTOR_KIND = "AsyncActor"
MESH_KIND = "ActorMesh"
#: ``namespace`` is upstream Asya's habit; in a pipeline directory it must be the mesh's (:func:`load_pipeline_dir`).
_METADATA_KEYS = {"name", "namespace", "labels", "annotations"}


def read_manifest(source: Any) -> tuple[dict[str, Any], str]:
    """Parse ``source`` (a Path, YAML text, a ``*.yaml`` path string, or a dict) into (document, where-from)."""
    if isinstance(source, Mapping):
        return dict(source), "<dict>"
    is_path_text = isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml"))
    if isinstance(source, Path) or is_path_text:
        path = Path(source)
        where = str(path)
        try:
            text = read_yaml_text(path)
        except YamlRefused as exc:
            raise SpecError(where, [str(exc)]) from None
        except OSError as exc:
            raise SpecError(where, [f"cannot read it ({exc.strerror or exc}); check the path"]) from None
        except UnicodeDecodeError as exc:
            raise SpecError(where, [f"not UTF-8 text ({exc.reason}); save the manifest as UTF-8"]) from None
    elif isinstance(source, str):
        text, where = source, "<yaml>"
    else:
        raise TypeError(f"a manifest is YAML text, a path or a dict, not {type(source).__name__}")
    try:
        document = load_yaml(text)
    except YamlRefused as exc:
        raise SpecError(where, [str(exc)]) from None
    except yaml.YAMLError as exc:
        raise SpecError(where, [f"not valid YAML: {' '.join(str(exc).split())}"]) from None
    if not isinstance(document, dict):
        raise SpecError(where, ["a manifest is a YAML mapping with apiVersion, kind, metadata and spec"])
    return document, where


def _spec_body(document: dict[str, Any], *, kind: str, where: str) -> tuple[str, dict[str, Any]]:
    """Check the envelope of a manifest (apiVersion, kind, metadata) and return (metadata.name, spec)."""
    problems = []
    if document.get("apiVersion") != API_VERSION:
        problems.append(f"apiVersion: {document.get('apiVersion')!r} is not supported; write {API_VERSION!r}")
    if document.get("kind") != kind:
        problems.append(f"kind: {document.get('kind')!r} is not {kind!r}")
    for key in sorted(set(document) - {"apiVersion", "kind", "metadata", "spec"}):
        problems.append(f"{key}: unknown top-level field; a manifest has apiVersion, kind, metadata, spec")
    metadata = document.get("metadata") or {}
    name = metadata.get("name") if isinstance(metadata, dict) else None
    if not isinstance(name, str) or not name:
        problems.append("metadata.name: missing; every manifest needs a name")
    elif isinstance(metadata, dict):
        problems += [f"metadata.{k}: unknown field; metadata has name, namespace, labels, annotations"
                     for k in sorted(set(metadata) - _METADATA_KEYS)]
    spec = document.get("spec")
    if not isinstance(spec, dict):
        problems.append("spec: missing or not a mapping")
    if problems:
        raise SpecError(where, problems)
    assert isinstance(name, str) and isinstance(spec, dict)
    return name, spec


def _validate(model: type[BaseModel], data: dict[str, Any], *, where: str, prefix: tuple[str, ...]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SpecError(where, describe(exc, vocabulary=known_field_names([model]), prefix=prefix)) from None


def actor_from_document(document: dict[str, Any], *, where: str) -> AsyncActorSpec:
    """One actor from its manifest: ``metadata.name`` is its name, or upstream Asya's ``spec.actor``, which must then
    say the same (here one name makes the queue and the Kubernetes objects both)."""
    name, spec = _spec_body(document, kind=ACTOR_KIND, where=where)
    if "name" in spec:
        raise SpecError(where, ["spec.name: the actor's name goes in metadata.name"])
    if "actor" in spec:
        if spec["actor"] != name:
            raise SpecError(where, [f"spec.actor {spec['actor']!r} differs from metadata.name {name!r}; one name "
                                    f"makes the queue and the Kubernetes objects here: make them the same"])
        spec = {key: value for key, value in spec.items() if key != "actor"}
    result: AsyncActorSpec = _validate(AsyncActorSpec, {"name": name, **spec}, where=where, prefix=("spec",))
    return result


def load_actor_manifest(source: Any) -> AsyncActorSpec:
    """``AsyncActorSpec.from_manifest``: one ``kind: AsyncActor`` document."""
    document, where = read_manifest(source)
    return actor_from_document(document, where=where)


def runtime_in_dir(actor: AsyncActorSpec, *, pipeline_dir: Path) -> HandlerRuntime:
    """The actor's handler language: its ``runtime``; unset, ``"node"`` when the handler's module is a ``.js`` file
    of ``pipeline_dir`` and no ``.py`` file is, else ``"python"``. One rule for ``asya dev`` and the cluster."""
    if actor.runtime is not None:
        return actor.runtime
    module = actor.handler.split(".", 1)[0]
    if (pipeline_dir / f"{module}.js").is_file() and not (pipeline_dir / f"{module}.py").is_file():
        return "node"
    return "python"


@dataclass(frozen=True)
class Pipeline:
    """A loaded pipeline directory: its :class:`MeshSpec` and the manifest file each actor came from (so that a
    later check, such as importing the handlers, can name the file to fix)."""

    mesh: MeshSpec
    directory: Path
    #: actor name → its ``kind: AsyncActor`` file
    manifests: Mapping[str, str]


def load_pipeline_dir(path: str | Path) -> MeshSpec:
    """The :class:`MeshSpec` of the pipeline directory ``path`` (:func:`load_pipeline`)."""
    return load_pipeline(path).mesh


def load_pipeline(path: str | Path) -> Pipeline:
    """Load every ``*.yaml``/``*.yml`` in ``path``: exactly one ``ActorMesh`` and one ``AsyncActor`` per actor.

    The ``ActorMesh`` file's ``metadata.name`` is the mesh namespace; its ``spec`` holds ``routes``, ``gpuPools``,
    ``region`` and ``runtimeImage``. Every error found is reported, each prefixed by its file. An actor without
    ``runtime`` gets the one its handler's files say (:func:`runtime_in_dir`), so a Node.js handler deploys with
    the Node.js handler server as it runs under ``asya dev``.
    """
    directory = Path(path)
    if not directory.is_dir():
        raise SpecError(str(directory), ["not a directory; point at a pipeline directory, e.g. examples/image-scoring"])
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    actors: list[AsyncActorSpec] = []
    manifests: dict[str, str] = {}
    meshes: list[tuple[str, dict[str, Any], str]] = []
    problems: list[str] = []
    namespaces: list[tuple[Any, str]] = []  # (an actor's metadata.namespace, its file)
    for file in files:
        try:
            document, where = read_manifest(file)
            if document.get("kind") == MESH_KIND:
                name, spec = _spec_body(document, kind=MESH_KIND, where=where)
                meshes.append((name, spec, where))
            else:
                actor = actor_from_document(document, where=where)
                metadata = document.get("metadata") or {}
                if isinstance(metadata, dict) and "namespace" in metadata:
                    namespaces.append((metadata["namespace"], where))
                runtime = runtime_in_dir(actor, pipeline_dir=directory)
                actors.append(actor if actor.runtime == runtime else actor.model_copy(update={"runtime": runtime}))
                manifests.setdefault(actor.name, where)
        except SpecError as exc:
            problems += [f"{exc.source}: {p}" for p in exc.problems]
    if len(meshes) != 1:
        found = ", ".join(w for _, _, w in meshes) or "none"
        problems.append(f"{directory}: needs exactly one `kind: {MESH_KIND}` file (found: {found})")
    if len(meshes) == 1:
        problems += [f"{file}: metadata.namespace {given!r} is not the mesh's namespace {meshes[0][0]!r} (the "
                     f"ActorMesh file's metadata.name); remove it or make it the same"
                     for given, file in namespaces if given != meshes[0][0]]
    if problems:
        raise SpecError(str(directory), problems)
    namespace, spec, where = meshes[0]
    if "actors" in spec or "namespace" in spec:
        raise SpecError(where, ["spec: actors come from the AsyncActor files and the namespace from metadata.name"])
    mesh: MeshSpec = _validate(
        MeshSpec, {"namespace": namespace, "actors": actors, **spec}, where=where, prefix=("spec",)
    )
    return Pipeline(mesh=mesh, directory=directory, manifests=manifests)
