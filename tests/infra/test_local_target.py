"""The local control plane applies a mesh's objects as ``pulumi up`` renders them, but for KEDA's auth and endpoint.

``asya_pulumi.kube.local_target.for_local_broker`` is the one place that changes anything; this test diffs its
output against the rendering and allows exactly the documented differences (docs/kube.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from asya_pulumi.kube.errors import KubeError
from asya_pulumi.kube.local_target import LOCAL_CREDENTIALS_SECRET, for_local_broker, mesh_objects
from asya_pulumi.spec import load_pipeline_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"
ENDPOINT = "http://127.0.0.1:4566"


def _paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of ``value`` by its dotted path."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _paths(item, f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in _paths(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def test_only_keda_authentication_and_endpoint_differ_from_the_rendering() -> None:
    rendered = mesh_objects(load_pipeline_dir(EXAMPLE))
    queues = {o["spec"]["triggers"][0]["metadata"]["queueURL"].rsplit("/", 1)[1]
              for o in rendered if o["kind"] == "ScaledObject"}
    urls = {name: f"{ENDPOINT}/000000000000/{name}" for name in queues}
    local = for_local_broker(rendered, endpoint=ENDPOINT, queue_urls=urls, access_key_id="test",
                             secret_access_key="test")

    added = [o for o in local if o["kind"] == "Secret"]
    assert [o["metadata"] for o in added] == [{"name": LOCAL_CREDENTIALS_SECRET, "namespace": "image-scoring"}]
    changed = [o for o in local if o["kind"] != "Secret"]
    assert len(changed) == len(rendered)
    differences = set()
    for before, after in zip(rendered, changed, strict=True):
        old, new = _paths(before), _paths(after)
        differences |= {(before["kind"], path.split("[")[0] if before["kind"] == "TriggerAuthentication" else path)
                        for path in old.keys() | new.keys() if old.get(path) != new.get(path)}
    kinds_paths = {(kind, path.replace("[0]", "[]")) for kind, path in differences}
    assert kinds_paths == {
        ("TriggerAuthentication", ".spec.podIdentity.provider"),
        ("TriggerAuthentication", ".spec.podIdentity.identityOwner"),
        ("TriggerAuthentication", ".spec.secretTargetRef"),
        ("ScaledObject", ".spec.triggers[].metadata.queueURL"),
        ("ScaledObject", ".spec.triggers[].metadata.awsEndpoint"),
    }


def test_a_scaledobject_whose_queue_the_broker_lacks_is_named() -> None:
    rendered = mesh_objects(load_pipeline_dir(EXAMPLE))
    with pytest.raises(KubeError, match=r"ScaledObject image-scoring/\S+ reads queue asya-image-scoring_\S+, which the "
                                        r"local broker does not have"):
        for_local_broker(rendered, endpoint=ENDPOINT, queue_urls={}, access_key_id="a", secret_access_key="b")
