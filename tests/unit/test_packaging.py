"""What the two distributions declare: one version, one license, and `asya render` without its extra."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

import asya_pulumi
import asya_runtime
from asya_pulumi.cli.errors import EXIT_USAGE
from asya_pulumi.cli.main import main

REPO = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
RUNTIME = tomllib.loads((REPO / "runtime" / "pyproject.toml").read_text())["project"]


def test_the_runtime_pin_is_the_project_version_and_the_modules_report_it():
    pins = [dep for dep in PROJECT["dependencies"] if dep.startswith("asya-runtime")]
    assert pins == [f"asya-runtime=={PROJECT['version']}"]  # released together: the pin can never lag
    assert RUNTIME["version"] == PROJECT["version"]
    assert asya_pulumi.__version__ == asya_runtime.__version__ == PROJECT["version"]  # read back from metadata


def test_both_distributions_are_apache_2_with_the_license_file():
    for project_dir, project in ((REPO, PROJECT), (REPO / "runtime", RUNTIME)):
        assert project["license"] == "Apache-2.0"
        assert project["license-files"] == ["LICENSE"]
        text = (project_dir / "LICENSE").read_text()
        assert "Apache License" in text and "Version 2.0, January 2004" in text
    assert (REPO / "runtime" / "LICENSE").resolve() == (REPO / "LICENSE").resolve()  # one file, linked


def test_render_without_the_render_extra_names_the_extra_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setitem(sys.modules, "kubernetes_validate", None)  # `import kubernetes_validate` now fails
    monkeypatch.chdir(REPO)

    assert main(["render", "stacks", "--stack", "dev"]) == EXIT_USAGE

    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("asya: error: ")
    assert "pip install 'asya-pulumi[render]'" in err


def test_render_without_cel_python_names_the_extra_too(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
):
    monkeypatch.setitem(sys.modules, "celpy", None)  # the CRDs' CEL rules cannot be evaluated
    monkeypatch.chdir(REPO)

    assert main(["render", "stacks", "--stack", "dev"]) == EXIT_USAGE

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cel-python" in err and "pip install 'asya-pulumi[render]'" in err
