"""The A2A cases (``a2a_sdk_cases.py``: a2a-sdk's own client against the gateway), run by pytest in a fresh
interpreter.

Why apart: a2a-sdk's client loads googleapis' ``google/rpc/status.proto`` and the Pulumi SDK, which the
infrastructure tests load in this same process, registers its own copy of ``google.rpc.Status``; protobuf's one
descriptor pool refuses the second (``duplicate symbol 'google.rpc.Status'``), whichever comes first. The gateway
itself never imports Pulumi, so only the test process has to keep them apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

CASES = Path(__file__).with_name("a2a_sdk_cases.py")
TESTS = Path(__file__).resolve().parents[1]


def test_a2a_sdk_cases_in_a_fresh_interpreter() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(TESTS.parent), str(CASES)],
        capture_output=True, text=True, timeout=600, cwd=TESTS.parent, env={**os.environ},
    )
    print(done.stdout[-3000:])
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    assert " passed" in done.stdout and " failed" not in done.stdout


def test_no_other_test_module_loads_the_a2a_client() -> None:
    """The rule above, kept: a module pytest collects in the main process that imports ``a2a.client`` fails there
    the moment any infrastructure test has loaded Pulumi (CI's order), yet passes when run alone."""
    fresh = {CASES, TESTS / "support" / "a2a_probe.py"}
    loaders = [path.relative_to(TESTS) for path in TESTS.rglob("*.py") if path not in fresh
               and re.search(r"^\s*(from a2a[.\w]* import|import a2a)", path.read_text(), re.MULTILINE)]
    assert loaders == [], f"run these a2a-sdk cases in a fresh interpreter (a2a_sdk_cases.py): {loaders}"
