"""What the two distributions declare: one version, one license, the extras, and each command without its extra."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import asya_pulumi
import asya_runtime
from asya_pulumi.cli.errors import EXIT_USAGE
from asya_pulumi.cli.main import main
from asya_pulumi.extras import EXTRAS

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


def _names(requirements: list[str]) -> set[str]:
    """Distribution names of requirement strings, with ``asya-pulumi[x]`` and ``asya-runtime[x]`` expanded to extra
    ``x``'s."""
    names: set[str] = set()
    for requirement in requirements:
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        project = {PROJECT["name"]: PROJECT, RUNTIME["name"]: RUNTIME}.get(name)
        if project is not None and "[" in requirement:
            (extra,) = re.findall(r"\[(\w+)\]", requirement)
            names |= _names(project["optional-dependencies"][extra])
        else:
            names.add(name)
    return names


def test_the_extras_named_in_errors_are_the_extras_pyproject_declares():
    declared = {extra: _names(reqs) for extra, reqs in PROJECT["optional-dependencies"].items()}
    assert declared == {extra: set(modules) for extra, modules in EXTRAS.items()}
    assert not _names(PROJECT["dependencies"]) & declared["deploy"]  # a plain install has no Pulumi


def test_the_components_without_pulumi_are_one_error_naming_the_deploy_extra():
    blocked = "import sys; sys.modules['pulumi_aws'] = None; import asya_pulumi.components"
    done = subprocess.run([sys.executable, "-c", blocked], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("asya_pulumi.extras.MissingExtra: the Pulumi components (asya_pulumi.components) needs")
    assert "pulumi-aws, not installed; install the deploy extra: pip install 'asya-pulumi[deploy]'" in last


def test_asya_kube_without_its_extra_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]):
    monkeypatch.setitem(sys.modules, "cryptography", None)
    assert main(["kube", "status"]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "asya kube status needs cryptography" in err and "'asya-pulumi[kube]'" in err


def test_installed_text_links_the_published_docs_not_a_checkout_path():
    from asya_pulumi.links import docs

    assert docs("kube.md") == f"{PROJECT['urls']['Documentation']}/kube.md"
    assert (REPO / "docs" / "kube.md").is_file()  # the page the link names exists


def test_the_localstack_line_an_installed_user_gets_matches_the_tested_pins(monkeypatch: pytest.MonkeyPatch):
    from asya_pulumi.local import broker

    pins = [line for line in (REPO / "requirements" / "broker.in").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins[0] == broker.LOCALSTACK_REQUIREMENT
    monkeypatch.delenv("ASYA_BROKER_PYTHON", raising=False)
    monkeypatch.setattr(broker, "_REPO_ROOT", REPO / "no-checkout-here")  # as from a wheel: no checkout around
    with pytest.raises(broker.BrokerError) as refused:
        broker.broker_python()
    assert all(f"'{pin}'" in str(refused.value) or pin in str(refused.value) for pin in pins)
    assert "scripts/setup" not in str(refused.value) and "ASYA_BROKER_PYTHON" in str(refused.value)
