"""The objects the control plane installs from upstream's own release files, not from copies of ours.

* CRDs: every manifest of :data:`~asya_pulumi.kube.versions.CRD_SOURCES` (KEDA, Karpenter, the Prometheus
  operator), read from the Go module cache at the pinned versions.
* KEDA: its namespace, ServiceAccount and RBAC (``config/general``, ``config/service_account``, ``config/rbac``,
  ``config/metrics-server``), the ``v1beta1.external.metrics.k8s.io`` APIService and the ValidatingWebhookConfiguration
  (``config/webhooks``) of the same KEDA release the ``Keda`` component's chart installs.

What differs from a cluster, because KEDA runs here as host processes rather than Pods (:func:`keda_objects`):
the APIService's Service is an ``ExternalName`` pointing at 127.0.0.1 with the adapter's port (the aggregator then
dials the host process and checks its certificate for ``keda-metrics-apiserver.keda.svc``), and the webhooks'
``clientConfig`` is a URL on 127.0.0.1 instead of a Service; both carry the local CA as ``caBundle``.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from asya_pulumi.kube.build import module_source
from asya_pulumi.kube.versions import CRD_SOURCES, KEDA_VERSION, KWOK_VERSION, TOOLS

__all__ = ["crd_objects", "keda_objects", "kwok_stages"]

KEDA_NAMESPACE = "keda"
KEDA_MODULE = TOOLS["keda"].module
#: KEDA's release files, in the order they apply (the namespace first).
KEDA_FILES = (
    "config/general/namespace.yaml", "config/service_account/service_account.yaml", "config/rbac/role.yaml",
    "config/rbac/role_binding.yaml", "config/metrics-server/role.yaml", "config/metrics-server/role_binding.yaml",
)
#: KWOK's stages: nodes become Ready (and keep a lease), pods become Running, finish, and go when deleted.
KWOK_STAGES = (
    "kustomize/stage/node/fast/node-initialize.yaml",
    "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
    "kustomize/stage/pod/fast/pod-ready.yaml", "kustomize/stage/pod/fast/pod-complete.yaml",
    "kustomize/stage/pod/fast/pod-delete.yaml",
)


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if isinstance(doc, dict)]


def crd_objects() -> list[dict[str, Any]]:
    """Every upstream CRD the stacks' objects need, as its release ships it."""
    objects: list[dict[str, Any]] = []
    for source in CRD_SOURCES:
        root = module_source(source.module, source.version)
        for relative in source.paths:
            objects += _documents(root / relative)
    return objects


def keda_objects(*, ca: Path, adapter_port: int, webhook_port: int) -> list[dict[str, Any]]:
    """KEDA's namespace, RBAC, APIService and webhook configuration, wired to KEDA's host processes."""
    root = module_source(KEDA_MODULE, KEDA_VERSION)
    ca_bundle = base64.b64encode(ca.read_bytes()).decode()
    objects: list[dict[str, Any]] = []
    for relative in KEDA_FILES:
        for doc in _documents(root / relative):
            if doc["kind"] in ("ServiceAccount", "Role", "RoleBinding") and not doc["metadata"].get("namespace"):
                doc["metadata"]["namespace"] = KEDA_NAMESPACE  # what the release's kustomization sets
            objects.append(doc)
    (api_service,) = _documents(root / "config/metrics-server/api_service.yaml")
    service = api_service["spec"]["service"]
    service["port"] = adapter_port
    api_service["spec"]["caBundle"] = ca_bundle
    objects.append({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": service["name"], "namespace": service["namespace"]},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1",
                 "ports": [{"name": "https", "port": adapter_port, "targetPort": adapter_port}]},
    })
    objects.append(api_service)
    (webhooks,) = _documents(root / "config/webhooks/validation_webhooks.yaml")
    for webhook in webhooks["webhooks"]:
        path = webhook["clientConfig"]["service"]["path"]
        webhook["clientConfig"] = {"url": f"https://127.0.0.1:{webhook_port}{path}", "caBundle": ca_bundle}
    objects.append(webhooks)
    return objects


def kwok_stages() -> str:
    """KWOK's ``--config``: its own fast node and pod stages, one multi-document YAML."""
    root = module_source(TOOLS["kwok"].module, KWOK_VERSION)
    return "\n---\n".join((root / relative).read_text(encoding="utf-8") for relative in KWOK_STAGES)
