"""Validate rendered Kubernetes objects: built-in kinds with kubernetes-validate (strict, Kubernetes
``KUBERNETES_VERSION``), KEDA's ScaledObject/TriggerAuthentication and Karpenter's NodePool/EC2NodeClass against
the JSON Schemas in ``schemas/`` (written from KEDA's documented fields and Karpenter's CRDs, since
kubernetes-validate knows neither; the Prometheus operator's PodMonitor and PrometheusRule generated from its CRDs by
``scripts/crd-to-jsonschema``), and the set as a whole:
no two objects may be the same Kubernetes object (API group, kind, namespace, name), which ``pulumi up`` would
otherwise apply twice, the second overwriting the first. Used by the infra tests and by ``asya render``. Needs
the ``render`` extra (kubernetes-validate, which brings jsonschema).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from asya_pulumi.spec.eks_versions import DEFAULT_KUBERNETES_VERSION

#: The cluster's default minor (one source: asya_pulumi/spec/eks_versions.py); kubernetes-validate has it.
KUBERNETES_VERSION = f"{DEFAULT_KUBERNETES_VERSION}.0"
SCHEMA_DIR = Path(__file__).parent.with_name("schemas")  # asya_pulumi/schemas/
#: (apiVersion, kind) → the project's schema file for kinds kubernetes-validate does not know.
PROJECT_SCHEMAS = {
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh-v1alpha1.json",
    ("keda.sh/v1alpha1", "TriggerAuthentication"): "triggerauthentication.keda.sh-v1alpha1.json",
    ("karpenter.sh/v1", "NodePool"): "nodepool.karpenter.sh-v1.json",
    ("karpenter.k8s.aws/v1", "EC2NodeClass"): "ec2nodeclass.karpenter.k8s.aws-v1.json",
    ("monitoring.coreos.com/v1", "PodMonitor"): "podmonitor.monitoring.coreos.com-v1.json",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule.monitoring.coreos.com-v1.json",
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


def object_identity(obj: dict[str, Any]) -> tuple[str, str, str, str]:
    """(API group, kind, namespace, name): what the API server stores one object under.

    The group, not the whole apiVersion: ``autoscaling/v1`` and ``autoscaling/v2`` HorizontalPodAutoscalers of one
    name are one object served in two versions.
    """
    api_version = str(obj.get("apiVersion", ""))
    group = api_version.rpartition("/")[0]
    metadata = obj.get("metadata") or {}
    return group, str(obj.get("kind", "")), str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def duplicate_objects(objects: Iterable[dict[str, Any]]) -> list[str]:
    """One problem line per Kubernetes object rendered more than once (same group, kind, namespace and name)."""
    counts: dict[tuple[str, str, str, str], int] = {}
    first: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    for obj in objects:
        key = object_identity(obj)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, obj)
    return [
        f"{_describe(first[key])}: rendered {count} times (same API group, kind, namespace and name); the "
        f"last would overwrite the others: give each object its own name or namespace"
        for key, count in counts.items()
        if count > 1
    ]


def validate_objects(objects: Iterable[dict[str, Any]], *, kubernetes_version: str = KUBERNETES_VERSION) -> list[str]:
    """Validate every object, then the set; one problem line per invalid or duplicated object (empty: all valid)."""
    objects = list(objects)
    problems = []
    for obj in objects:
        try:
            validate_object(obj, kubernetes_version=kubernetes_version)
        except InvalidObject as exc:
            problems.append(str(exc))
    return problems + duplicate_objects(objects)
