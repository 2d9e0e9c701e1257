"""Validate rendered Kubernetes objects: built-in kinds with kubernetes-validate (strict, Kubernetes
``KUBERNETES_VERSION``), KEDA's ScaledObject/TriggerAuthentication against the JSON Schemas in ``schemas/``
(written from KEDA's documented fields, since kubernetes-validate has no KEDA schema). Used by the infra tests
and by ``asya render``. Needs the ``render`` extra (kubernetes-validate, which brings jsonschema).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

KUBERNETES_VERSION = "1.33.0"
SCHEMA_DIR = Path(__file__).with_name("schemas")
#: (apiVersion, kind) → the project's schema file for kinds kubernetes-validate does not know.
PROJECT_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication.keda.sh-v1alpha1.json",
}


class InvalidObject(ValueError):
    """A rendered object failed validation; the message names the object, the field path and the rule."""


@functools.cache
def project_schema(file_name: str) -> dict[str, Any]:
    text = (SCHEMA_DIR / file_name).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


def _describe(obj: dict[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    where = "/".join(p for p in (metadata.get("namespace"), metadata.get("name")) if isinstance(p, str) and p)
    return f"{obj.get('kind', '?')} {where or '(unnamed)'}"


def validate_object(obj: dict[str, Any], *, kubernetes_version: str = KUBERNETES_VERSION) -> None:
    """Raise :class:`InvalidObject` unless ``obj`` is valid (unknown fields are errors: strict)."""
    import jsonschema
    import kubernetes_validate

    key = (obj.get("apiVersion"), obj.get("kind"))
    try:
        if key in PROJECT_SCHEMAS:
            schema = project_schema(PROJECT_SCHEMAS[key])
            jsonschema.Draft202012Validator(schema).validate(obj)
        else:
            kubernetes_validate.validate(obj, kubernetes_version, strict=True)
    except jsonschema.ValidationError as exc:
        path = ".".join(str(p) for p in exc.absolute_path) or "(top level)"
        raise InvalidObject(f"{_describe(obj)}: {path}: {exc.message}") from None
    except kubernetes_validate.SchemaNotFoundError as exc:
        raise InvalidObject(f"{_describe(obj)}: no schema for {key[0]} {key[1]} ({exc})") from None


def validate_objects(objects: Iterable[dict[str, Any]], *, kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """Validate every object; return one problem line per invalid object (empty: all valid)."""
    problems = []
    for obj in objects:
        try:
            validate_object(obj, kubernetes_version=kubernetes_version)
        except InvalidObject as exc:
            problems.append(str(exc))
    return problems
