"""20 meshes under mocks: the render completes and registers the IAM roles and Pod Identity associations the
formula says (docs/scale.md), and ``asya render``'s quota check fires exactly when the roles near IAM's 1,000.

The size docs/scale.md discusses, 20 meshes × 100 actors (2,041 roles, 28,826 resources), took 271 s and
1.6 GiB on a 2-core machine, so by default this renders 20 meshes × 3 actors (~15 s); ``ASYA_SCALE=20x100``
runs the full size. Prints time and peak memory; asserts only behaviour (timings vary with the machine).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from asya_pulumi.checks.quotas import IAM_ROLES_PER_ACCOUNT, WARN_AT

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_twenty_meshes_render_with_the_roles_the_formula_says() -> None:
    meshes, actors = (int(n) for n in os.environ.get("ASYA_SCALE", "20x3").split("x"))
    done = subprocess.run([sys.executable, "-m", "bench.scale_render", str(meshes), str(actors)], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=3600, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"\n{meshes} meshes x {actors} actors: {result['resources']} resources in {result['seconds']} s, "
          f"peak RSS {result['peak_rss_mib']} MiB ({result['rss_before_render_mib']} MiB before the render)")
    roles = meshes * (actors + 2) + 1  # every actor and both sinks of every mesh, and KEDA's operator
    assert result["iam_roles"] == roles
    assert result["pod_identity_associations"] == roles  # one association per role, all in one cluster
    iam_warnings = [m for m in result["quota_findings"] if m.startswith(IAM_ROLES_PER_ACCOUNT.name)]
    assert bool(iam_warnings) == (roles >= WARN_AT * IAM_ROLES_PER_ACCOUNT.limit)
