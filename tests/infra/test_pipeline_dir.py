"""``load_pipeline_dir`` turns a directory of manifests into a MeshSpec (used by stacks/ and `asya dev`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asya_pulumi.spec import SpecError, load_pipeline_dir

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"


def test_image_scoring_example_loads_as_one_mesh() -> None:
    mesh = load_pipeline_dir(EXAMPLE)
    assert mesh.namespace == "image-scoring"
    assert sorted(a.name for a in mesh.actors) == ["human-review", "judge", "preprocess", "score-image", "store"]
    assert mesh.routes == {"score": ["preprocess", "score-image", "judge"]}
    score = mesh.actor("score-image")
    assert score.gpu is not None and score.gpu.count == 1
    assert mesh.gpu_pool_of(score) == "gpu"
    assert mesh.gpu_pool_of(mesh.actor("judge")) is None


def test_overrides_are_validated(tmp_path: Path) -> None:
    mesh = load_pipeline_dir(EXAMPLE)
    assert mesh.with_overrides(namespace="scoring-dev").namespace == "scoring-dev"
    with pytest.raises(ValueError, match="no GPU node pool"):
        mesh.with_overrides(gpu_pools=[])


def test_every_broken_file_is_reported_with_its_path(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n"
                                     "spec: {image: x, handler: h.f, scalng: {}}\n")
    (tmp_path / "b.yaml").write_text("apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: b}\n"
                                     "spec: {image: x, handler: nodot}\n")
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'a.yaml'}: spec.scalng: unknown field" in message
    assert f"{tmp_path / 'b.yaml'}: spec.handler: handler 'nodot'" in message
    assert "needs exactly one `kind: ActorMesh` file (found: none)" in message


def test_mesh_file_errors_name_the_spec_field(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("apiVersion: asya.sh/v1alpha1\nkind: AsyncActor\nmetadata: {name: a}\n"
                                     "spec: {image: x, handler: h.f}\n")
    (tmp_path / "mesh.yaml").write_text("apiVersion: asya.sh/v1alpha1\nkind: ActorMesh\nmetadata: {name: m}\n"
                                        "spec: {routes: {go: [a, b]}, gpuPool: [gpu]}\n")
    with pytest.raises(SpecError) as info:
        load_pipeline_dir(tmp_path)
    assert "spec.gpuPool: unknown field 'gpuPool'; did you mean 'gpuPools'?" in str(info.value)
