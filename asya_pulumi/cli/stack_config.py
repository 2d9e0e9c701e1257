"""A Pulumi stack's config file (``Pulumi.<stack>.yaml``), read without the Pulumi CLI.

Two commands read it: ``asya render`` (the whole ``config:`` mapping, for the program under mocks) and the commands
that talk to a running mesh (``--stack``: its namespace and region, so an operator need not repeat them). The file
is found where Pulumi looks: the program directory, or the ``stackConfigDir`` its ``Pulumi.yaml`` names (the
repo's root ``Pulumi.yaml`` points at ``stacks/``). It is parsed within the manifest budgets
(:mod:`asya_pulumi.spec.yamlload`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from asya_pulumi.cli.errors import UsageError
from asya_pulumi.spec.yamlload import YamlRefused, load_yaml, read_yaml_text

#: The keys the stacks' programs read (stacks/__main__.py, stacks/platform, stacks/team).
NAMESPACE_KEY = "asya:namespace"
PIPELINE_KEY = "asya:pipeline"
REGION_KEY = "aws:region"


@dataclass(frozen=True)
class MeshLocation:
    """Where a stack's mesh runs, as far as its config says: either may be None when the config leaves it out."""

    namespace: str | None
    region: str | None
    path: Path
    #: The pipeline directory ``asya:pipeline`` names, resolved (None when the config names none): its routes.
    pipeline: Path | None = None


def stack_config_path(program_dir: Path, stack: str) -> Path:
    """``Pulumi.<stack>.yaml`` of the program in ``program_dir`` (following ``stackConfigDir``), or ``stack`` itself
    when it is a path to such a file."""
    if stack.endswith((".yaml", ".yml")) or "/" in stack:
        return Path(stack)
    return _config_dir(program_dir) / f"Pulumi.{stack}.yaml"


def read_stack_config(path: Path) -> dict[str, Any]:
    """The stack file's ``config:`` mapping; a missing, unreadable or oversized file is a :class:`UsageError`."""
    if not path.is_file():
        stacks = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in path.parent.glob("Pulumi.*.yaml"))
        raise UsageError(f"no stack config {str(path)!r}; stacks here: {', '.join(stacks) or 'none'}")
    document = _read_yaml(path)
    config = document.get("config") if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise UsageError(f"{path}: needs a top-level 'config:' mapping of namespaced keys (e.g. aws:region)")
    return config


def mesh_location(path: Path) -> MeshLocation:
    """The mesh namespace and region of the stack file at ``path``.

    The namespace is ``asya:namespace``; without it the programs use the pipeline's ``ActorMesh`` name, so the
    pipeline directory ``asya:pipeline`` names (relative to the repository root, i.e. the nearest directory above
    the stack file that holds it) is loaded for it. The region is ``aws:region``. That directory is also the
    location's ``pipeline``: the commands read the mesh's routes from it.
    """
    config = read_stack_config(path)
    region = config.get(REGION_KEY)
    namespace = config.get(NAMESPACE_KEY)
    pipeline = _pipeline_dir(path, config[PIPELINE_KEY]) if isinstance(config.get(PIPELINE_KEY), str) else None
    if namespace is None and pipeline is not None:
        namespace = _pipeline_namespace(path, pipeline)
    elif namespace is None and isinstance(config.get(PIPELINE_KEY), str):
        raise UsageError(
            f"{path}: has no {NAMESPACE_KEY}, and its {PIPELINE_KEY} {config[PIPELINE_KEY]!r} is not found above it; "
            f"add {NAMESPACE_KEY} to the stack config or pass --namespace"
        )
    for key, value in ((NAMESPACE_KEY, namespace), (REGION_KEY, region)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{path}: {key} must be a string, not {type(value).__name__}")
    return MeshLocation(namespace=namespace, region=region, path=path, pipeline=pipeline)


def _config_dir(program_dir: Path) -> Path:
    project = program_dir / "Pulumi.yaml"
    if not project.is_file():
        return program_dir
    document = _read_yaml(project)
    configured = document.get("stackConfigDir") if isinstance(document, dict) else None
    return program_dir / configured if isinstance(configured, str) else program_dir


def _pipeline_dir(path: Path, pipeline: str) -> Path | None:
    """``asya:pipeline`` resolved against the nearest directory above the stack file that holds it (the repository
    root), or None when none does."""
    return next((root / pipeline for root in path.resolve().parents if (root / pipeline).is_dir()), None)


def _pipeline_namespace(path: Path, pipeline: Path) -> str:
    from asya_pulumi.spec import SpecError, load_pipeline_dir

    try:
        return load_pipeline_dir(pipeline).namespace
    except SpecError as exc:
        raise UsageError(f"{path}: {PIPELINE_KEY} {str(pipeline)!r}: {exc}") from None


def _read_yaml(path: Path) -> Any:
    try:
        return load_yaml(read_yaml_text(path)) or {}
    except YamlRefused as exc:
        raise UsageError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
