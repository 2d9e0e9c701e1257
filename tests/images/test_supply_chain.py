"""Supply chain: pip-audit over the runtime and gateway images' locked dependencies, and the Debian package lists
shipped.

pip-audit asks a vulnerability service (PyPI's JSON API / OSV); where it cannot be reached — an error, or every
dependency "not found on PyPI" (a package index without the JSON API, as here) — the audit is skipped with that
reason rather than passed. A finding is fixed by moving the lock (requirements/runtime.txt, gateway.txt) or
suppressed in ``IGNORED`` below with the reason.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from images.conftest import Built

REPO = Path(__file__).resolve().parents[2]
LOCKS = ("runtime.txt", "gateway.txt")
#: Vulnerability ids pip-audit may report without failing, each with the reason (none so far).
IGNORED: dict[str, str] = {}
_UNREACHABLE = ("ConnectionError", "Max retries exceeded", "Name or service not known", "Failed to resolve",
                "Temporary failure in name resolution", "ConnectTimeout", "Network is unreachable")


@pytest.mark.parametrize("lock", LOCKS)
def test_pip_audit_of_the_image_locks(lock: str):
    command = [sys.executable, "-m", "pip_audit", "--requirement", str(REPO / "requirements" / lock),
               "--require-hashes", "--disable-pip", "--format", "json", "--progress-spinner", "off", "--timeout", "10",
               *(f"--ignore-vuln={vuln}" for vuln in IGNORED)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0 and any(marker in done.stderr for marker in _UNREACHABLE):
        pytest.skip(f"pip-audit cannot reach its vulnerability service: {done.stderr.strip().splitlines()[-1]}")
    report = json.loads(done.stdout or "{}")
    dependencies = report.get("dependencies", [])
    unaudited = [d for d in dependencies if d.get("skip_reason")]
    if dependencies and len(unaudited) == len(dependencies):  # "not found on PyPI": its JSON API is unreachable
        pytest.skip(f"pip-audit could audit none of {len(dependencies)} dependencies: {unaudited[0]['skip_reason']}")
    assert not unaudited, [d["skip_reason"] for d in unaudited]
    found = [(d["name"], d["version"], v["id"]) for d in report.get("dependencies", []) for v in d.get("vulns", [])]
    assert done.returncode == 0 and not found, (found, done.stderr[-500:])


def test_every_image_ships_its_debian_package_list(built: Built):
    for ref in built.images:
        rows = [line.split("\t") for line in (built.out / f"{ref}.packages.tsv").read_text().splitlines()]
        assert rows and all(len(row) == 3 for row in rows), ref
        names = {row[0] for row in rows}
        assert ("nodejs" if "node" in ref else "python3") in names, ref
