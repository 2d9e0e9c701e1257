"""``--json`` on the commands that print a result: stdout is exactly one JSON object with the documented keys.

``send`` and ``dlq redrive`` are checked against the broker (tests/e2e/test_mesh_commands.py), ``status``, ``trace``
and ``replay`` in their own tests, ``render`` in tests/e2e/test_render.py; these need nothing running.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asya_pulumi.cli.main import main


def test_init_json_names_the_directory_the_files_and_how_to_run_it(tmp_path: Path,
                                                                   capsys: pytest.CaptureFixture[str]):
    target = tmp_path / "fresh"
    assert main(["init", str(target), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result == {"directory": str(target), "files": sorted(str(p) for p in target.iterdir()),
                      "run": f"asya dev {target}"}


def test_kube_status_and_down_json_with_nothing_running(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["kube", "--dir", str(tmp_path), "status", "--json"]) == 1  # not ready: nothing runs
    status = json.loads(capsys.readouterr().out)
    assert {"kube-apiserver", "etcd", "keda-operator"} <= set(status) and set(status.values()) == {"stopped"}
    assert main(["kube", "--dir", str(tmp_path), "down", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"stopped": []}
