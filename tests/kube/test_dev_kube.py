"""``asya dev DIR --kube``: the example pipeline completes with KEDA deciding every actor's replicas.

The command runs as a user runs it, against the session's control plane (``ASYA_KUBE_DIR``), which it must use and
leave running. Its progress lines show each actor's replicas (``waiting+in-flight×replicas``), KEDA's decisions:
≥ 1 while an actor has work; test_scaling.py proves KEDA sets them.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from asya_pulumi.kube.control_plane import ControlPlane
from asya_pulumi.kube.local_target import mesh_objects
from asya_pulumi.spec import load_pipeline_dir

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "image-scoring"


def test_the_example_completes_with_replicas_decided_by_keda(control_plane: ControlPlane, tmp_path: Path) -> None:
    env = {**os.environ, "ASYA_KUBE_DIR": str(control_plane.directory)}
    result = subprocess.run(
        [sys.executable, "-m", "asya_pulumi.cli.main", "dev", str(EXAMPLE), "--input", str(EXAMPLE / "input.jsonl"),
         "--kube", "--timeout", "500", "--results", str(tmp_path / "results.jsonl")],
        env=env, capture_output=True, text=True, timeout=700,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 input(s) → 5 final record(s): 5 succeeded, 0 failed" in result.stdout
    assert "KEDA decides the replicas now" in result.stdout
    assert "starting the local control plane" not in result.stdout  # it used the running one
    # The replicas shown are the Deployments' (KEDA's and the HPA's to set; test_scaling.py proves they do), for
    # every actor and sink; the rendered Deployments set none of their own.
    deployments = [o for o in mesh_objects(load_pipeline_dir(EXAMPLE)) if o["kind"] == "Deployment"]
    assert deployments and all("replicas" not in o["spec"] for o in deployments)
    last = [line for line in result.stdout.splitlines() if line.startswith("progress:")][-1]
    assert all(re.search(rf"{o['metadata']['name']}=\d+\+\d+×\d+", last) for o in deployments), last
    shown = [int(n) for n in re.findall(r"score-image=\d+\+\d+×(\d+)", result.stdout)]
    assert shown and max(shown) >= 1, f"score-image's replicas in the progress lines: {shown}"
    assert control_plane.status()["readyz"].startswith("200")
    namespace = control_plane.client().get("v1", "Namespace", "image-scoring")
    assert namespace is None or namespace["metadata"].get("deletionTimestamp")  # the run cleans up after itself
