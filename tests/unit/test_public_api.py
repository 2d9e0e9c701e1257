"""The public API: ``asya_pulumi.__all__`` is the one list of its names, and every name in it resolves."""

from __future__ import annotations

import subprocess
import sys


def test_every_public_name_resolves_and_the_specs_need_no_pulumi_sdk() -> None:
    probe = (
        "import sys, asya_pulumi\n"
        "eager = sorted(m for m in sys.modules if m.split('.')[0].startswith('pulumi'))\n"
        "assert eager == [], eager\n"
        "missing = [n for n in asya_pulumi.__all__ if not hasattr(asya_pulumi, n)]\n"
        "assert missing == [], missing\n"
        "from asya_pulumi import components\n"
        "assert all(getattr(asya_pulumi, n) is getattr(components, n) for n in asya_pulumi._COMPONENTS)\n"
    )
    subprocess.run([sys.executable, "-c", probe], check=True, timeout=120)
