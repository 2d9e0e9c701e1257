"""What ``asya render`` does with a program once its config is read: run it under mocks, then show, write, check.

Runs in-process with :class:`~asya_pulumi.checks.mocked.MockedDeployment` (the same recorder the infra tests use), so
the plan shows exactly what the tests assert on: every registered resource, its inputs and its parent. Secrets are
redacted everywhere the plan shows or writes a value (``secrets_redacted``): a Pulumi secret and every value of a
Kubernetes Secret are written as ``<redacted>``.
"""

from __future__ import annotations

import json
import runpy
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pydantic import ValidationError
from rich.console import Console
from rich.tree import Tree

from asya_pulumi.checks.mocked import MockedDeployment, Registered, integers_restored, secrets_redacted
from asya_pulumi.checks.quotas import QuotaFinding, quota_findings
from asya_pulumi.checks.validate import validate_objects
from asya_pulumi.spec import ClusterSpec, MeshSpec
from asya_pulumi.spec.errors import describe, known_field_names

#: Inputs worth showing next to a resource in the tree (when present), in this order.
KEY_INPUTS = (
    "name", "bucket", "bucketPrefix", "instanceTypes", "amiType", "capacityType", "scalingConfig", "taints",
    "visibilityTimeoutSeconds", "messageRetentionSeconds", "chart", "version", "addonName", "cidrBlock",
    "availabilityZone",
)
_HELM_RELEASE = "kubernetes:helm.sh/v3:Release"


class ProgramFailed(Exception):
    """The Pulumi program raised while it ran under mocks (a bad config value, a spec error, a bug)."""


def render_plan(*, entry: Path, stack: str, config: dict[str, Any]) -> RenderPlan:
    """Run ``entry`` (a Pulumi program's ``__main__.py``) under mocks with ``config`` as the stack's config."""
    deployment = MockedDeployment.start(project=_project_name(entry.parent), stack=stack)
    pulumi.runtime.set_all_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
    sys.path.insert(0, str(entry.parent.resolve()))
    try:
        deployment.run(lambda: runpy.run_path(str(entry), run_name="__main__"))
    except Exception as exc:  # the program's own error: report it as one line, it is the user's to fix
        raise ProgramFailed(_one_line(exc)) from exc
    finally:
        sys.path.remove(str(entry.parent.resolve()))
    return RenderPlan(registered=list(deployment.registered), kubernetes_objects=deployment.kubernetes_objects())


def _one_line(exc: Exception) -> str:
    """The error as one line; a spec model's validation error as its ``field: problem and fix`` lines joined."""
    if isinstance(exc, ValidationError):
        problems = describe(exc, vocabulary=known_field_names([MeshSpec, ClusterSpec]))
        text = f"invalid {exc.title}: " + "; ".join(problems)
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())


def _project_name(program_dir: Path) -> str:
    project_file = program_dir / "Pulumi.yaml"
    if project_file.is_file():
        document = yaml.safe_load(project_file.read_text(encoding="utf-8")) or {}
        if isinstance(document, dict) and isinstance(document.get("name"), str):
            return str(document["name"])
    return "asya"


@dataclass(frozen=True)
class RenderPlan:
    registered: list[Registered]
    kubernetes_objects: list[dict[str, Any]]

    def print_tree(self, console: Console | None = None) -> None:
        """Every resource under its parent component: type, name and its key inputs; siblings sorted by type and
        name (the registration order varies from run to run: Outputs resolve in any order)."""
        console = console or _console()
        root = Tree(f"[bold]{len(self.registered)} resources[/bold] (what `pulumi up` would create)")
        _add_children(root, self._by_parent(), "")
        console.print(root)

    def summary(self) -> dict[str, Any]:
        """The same on every run: how many resources, each top-level resource (the stack's components) with how
        many it holds, and the count per provider (``asya render --json``'s first keys)."""
        by_parent = self._by_parent()
        providers: dict[str, int] = {}
        for record in self.registered:
            provider = record.type.split(":", 1)[0]
            providers[provider] = providers.get(provider, 0) + 1
        return {
            "resources": len(self.registered),
            "components": [{"type": r.type, "name": r.name, "inside": _descendants(by_parent, r.urn)}
                           for r in by_parent.get("", [])],
            "by_provider": dict(sorted(providers.items())),
        }

    def print_summary(self, console: Console | None = None) -> None:
        """:meth:`summary` as a few lines; :meth:`print_tree` lists every resource."""
        console = console or _console()
        summary = self.summary()
        console.print(f"[bold]{summary['resources']} resources[/bold] (what `pulumi up` would create; "
                      "`--tree` lists each):")
        for component in summary["components"]:
            console.print(f"  {component['type']}  [cyan]{component['name']}[/cyan]  {component['inside']} inside")
        console.print("  by provider: " + ", ".join(f"{name} {n}" for name, n in summary["by_provider"].items()))

    def _by_parent(self) -> dict[str, list[Registered]]:
        """Each parent's URN (``""``: the stack) → its children, sorted by type and name."""
        by_parent: dict[str, list[Registered]] = {}
        known = {r.urn for r in self.registered}
        for record in self.registered:
            by_parent.setdefault(record.parent if record.parent in known else "", []).append(record)
        for children in by_parent.values():
            children.sort(key=lambda r: (r.type, r.name))
        return by_parent

    def write_objects(self, out: Path) -> list[Path]:
        """Each Kubernetes object as ``out/<namespace or _cluster>/<kind>-<name>.yaml``; returns the paths."""
        written: list[Path] = []
        for obj in self.kubernetes_objects:
            metadata = obj.get("metadata") or {}
            folder = out / str(metadata.get("namespace") or "_cluster")
            folder.mkdir(parents=True, exist_ok=True)
            stem = f"{str(obj.get('kind', 'object')).lower()}-{metadata.get('name', 'unnamed')}"
            path = folder / f"{stem}.yaml"
            if path in written:  # two objects with one kind and name: keep both, the validator will say which
                path = folder / f"{stem}-{sum(p.name.startswith(stem) for p in written) + 1}.yaml"
            path.write_text(yaml.safe_dump(obj, sort_keys=False), encoding="utf-8")
            written.append(path)
        return written

    def quotas(self) -> list[QuotaFinding]:
        """AWS quotas the whole program reaches (IAM roles, Pod Identity associations, inline policy size)."""
        return quota_findings(registered=self.registered)

    def validate(self) -> list[str]:
        """One line per invalid object, naming the object, the field and the rule (empty: all valid)."""
        return validate_objects(self.kubernetes_objects)


def _console() -> Console:
    return Console(width=None if sys.stdout.isatty() else 160)


def _descendants(by_parent: dict[str, list[Registered]], parent: str) -> int:
    return sum(1 + _descendants(by_parent, child.urn) for child in by_parent.get(parent, []))


def _add_children(node: Tree, by_parent: dict[str, list[Registered]], parent: str) -> None:
    for record in by_parent.get(parent, []):
        child = node.add(_label(record))
        _add_children(child, by_parent, record.urn)


def _label(record: Registered) -> str:
    if record.type.startswith("kubernetes:") and record.type != _HELM_RELEASE and "metadata" in record.inputs:
        metadata = record.inputs.get("metadata") or {}
        where = "/".join(str(p) for p in (metadata.get("namespace"), metadata.get("name")) if p)
        return f"{record.type} [cyan]{record.name}[/cyan]  {where}"
    shown = [
        f"{key}={_short(secrets_redacted(integers_restored(record.inputs[key])))}"
        for key in KEY_INPUTS
        if key in record.inputs
    ]
    return f"{record.type} [cyan]{record.name}[/cyan]  {' '.join(shown)}".rstrip()


def _short(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"
