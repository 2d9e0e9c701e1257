"""Every Kubernetes object the stacks and the example meshes render, server-side applied to a real apiserver.

What admits or refuses them here is upstream's own code: strict field validation, the CRDs' structural schemas
(KEDA, Karpenter, the Prometheus operator, at the pinned versions), Pod Security admission (each workload's pod
template is submitted as a Pod, dry run, in its namespace), and KEDA's validating webhook. The negative controls
prove each gate is live: a privileged pod in a mesh namespace and a second ScaledObject on a scaled Deployment are
refused in the same run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from asya_pulumi.checks.mocked import REDACTED
from asya_pulumi.cli.render_plan import render_plan
from asya_pulumi.kube.client import ApplyError, KubeClient, describe
from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.kube.local_target import mesh_objects
from asya_pulumi.spec import load_pipeline_dir

ROOT = Path(__file__).resolve().parents[2]
#: (program directory, stack) of the programs that render Kubernetes objects on their own. (stacks/team reads the
#: platform stack through a StackReference; its objects are the same components' as the example meshes below.)
PROGRAMS = [("stacks", "dev"), ("stacks", "prod"), ("stacks/platform", "dev")]
PIPELINES = sorted(path.parent for path in (ROOT / "examples").glob("*/mesh.yaml"))
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job"}


def _program_objects(program: str, stack: str) -> list[dict[str, Any]]:
    directory = ROOT / program
    config = yaml.safe_load((directory / f"Pulumi.{stack}.yaml").read_text())["config"]
    return render_plan(entry=directory / "__main__.py", stack=stack, config=config).kubernetes_objects


def _unredacted(obj: dict[str, Any]) -> dict[str, Any]:
    """A rendered Secret's values are shown as ``<redacted>``; the apiserver wants base64 in ``data``."""
    if obj.get("kind") != "Secret":
        return obj
    data = {k: base64.b64encode(b"redacted").decode() if v == REDACTED else v for k, v in obj.get("data", {}).items()}
    return {**obj, "data": data}


def _apply_all(client: KubeClient, objects: list[dict[str, Any]]) -> list[str]:
    """Apply namespaces first, then the rest; every refusal, with the apiserver's message."""
    refusals = []
    for obj in sorted(objects, key=lambda o: o["kind"] != "Namespace"):
        try:
            client.apply(_unredacted(obj))
        except ApplyError as exc:
            refusals.append(str(exc))
    return refusals


def _pod_of(workload: dict[str, Any]) -> dict[str, Any]:
    """The Pod a workload's controller would create from its template (dry run: admission only)."""
    template = workload["spec"]["template"]
    metadata = {**template.get("metadata", {}), "name": f"admission-{workload['metadata']['name']}"[:63],
                "namespace": workload["metadata"].get("namespace", "default")}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


@pytest.fixture(scope="module")
def rendered(control_plane: ControlPlane) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """What each program and pipeline renders. Afterwards the namespaces this module created are deleted (and
    waited for): their GPU pods would otherwise hold the GPU nodes other tests schedule on."""
    client = control_plane.client()
    before = {n["metadata"]["name"] for n in client.list("v1", "Namespace")}
    found = {f"{program} ({stack})": _program_objects(program, stack) for program, stack in PROGRAMS}
    for pipeline in PIPELINES:
        found[f"examples/{pipeline.name}"] = mesh_objects(load_pipeline_dir(pipeline))
    yield found
    created = {n["metadata"]["name"] for n in client.list("v1", "Namespace")} - before
    for name in created:
        client.delete("v1", "Namespace", name)
    client.wait_for(lambda: not created & {n["metadata"]["name"] for n in client.list("v1", "Namespace")},
                    what=f"namespaces {sorted(created)} to be deleted", timeout_s=180, interval_s=1)


@pytest.mark.parametrize("source", [f"{p} ({s})" for p, s in PROGRAMS] + [f"examples/{p.name}" for p in PIPELINES])
def test_every_rendered_object_is_accepted_and_every_pod_admitted(
    control_plane: ControlPlane, rendered: dict[str, list[dict[str, Any]]], source: str
) -> None:
    client = control_plane.client()
    objects = rendered[source]
    assert objects, f"{source} renders no Kubernetes object"
    refusals = _apply_all(client, objects)
    for workload in (o for o in objects if o["kind"] in WORKLOADS):
        try:
            client.apply(_pod_of(workload), dry_run=True)
        except ApplyError as exc:
            refusals.append(f"pod of {describe(workload)}: {exc}")
    assert refusals == [], "\n".join(refusals)


def test_a_privileged_pod_in_a_mesh_namespace_is_refused(
    control_plane: ControlPlane, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    client = control_plane.client()
    objects = rendered[f"examples/{PIPELINES[0].name}"]
    (namespace,) = [o for o in objects if o["kind"] == "Namespace"]
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    client.apply(namespace)
    privileged = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "privileged", "namespace": namespace["metadata"]["name"]},
        "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
    }
    with pytest.raises(ApplyError, match="violates PodSecurity \"restricted:") as refused:
        client.apply(privileged, dry_run=True)
    assert refused.value.status == 403


def test_keda_webhook_refuses_a_second_scaledobject_on_one_deployment(
    control_plane: ControlPlane, rendered: dict[str, list[dict[str, Any]]]
) -> None:
    client = control_plane.client()
    objects = rendered[f"examples/{PIPELINES[0].name}"]
    assert _apply_all(client, objects) == []
    first = next(o for o in objects if o["kind"] == "ScaledObject")
    second = json.loads(json.dumps(first))
    second["metadata"]["name"] = f"{first['metadata']['name']}-twin"
    with pytest.raises(ApplyError, match="already managed by the ScaledObject") as refused:
        client.apply(second)
    assert "admission webhook" in str(refused.value)
