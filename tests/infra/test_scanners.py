"""Real scanners over what the dev and prod stacks would deploy: checkov (Kubernetes objects) and parliament (IAM).

Both stacks run under mocks exactly as ``asya render`` runs them (``render_plan``); checkov scans every Kubernetes
object written as YAML, parliament lints every identity policy (``aws:iam/rolePolicy`` inputs; trust policies have no
``Resource`` and would all come out MALFORMED). The scanners live in ``.venv-scan`` (``scripts/setup``): checkov pins
a botocore the project cannot share. Any finding not in ``scanner_suppressions.yaml`` fails, and so does a
suppression no finding needs. A canary (a privileged pod, an ``s3:*`` on ``*`` policy) rides along in each scan, so a
scanner that silently checks nothing fails too.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from asya_pulumi.cli.render_plan import RenderPlan, render_plan

ROOT = Path(__file__).resolve().parents[2]
SCAN_BIN = ROOT / ".venv-scan" / "bin"
SUPPRESSIONS = Path(__file__).with_name("scanner_suppressions.yaml")
STACKS = ("dev", "prod")
CANARY_NAMESPACE = "scanner-canary"
CANARY_POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "canary", "namespace": CANARY_NAMESPACE},
    "spec": {"containers": [{"name": "c", "image": "busybox", "securityContext": {"privileged": True}}]},
}
CANARY_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Finding:
    scanner: str
    check: str
    resource: str
    title: str


def scanner(name: str) -> Path:
    path = SCAN_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run scripts/setup (it builds .venv-scan from requirements/scan.txt)")
    return path


@pytest.fixture(scope="module")
def plans() -> dict[str, RenderPlan]:
    """Each stack rendered once, as ``asya render --stack`` renders it."""
    rendered = {}
    for stack in STACKS:
        config = yaml.safe_load((ROOT / "stacks" / f"Pulumi.{stack}.yaml").read_text())["config"]
        rendered[stack] = render_plan(entry=ROOT / "stacks" / "__main__.py", stack=stack, config=config)
    return rendered


def suppressions() -> dict[str, dict[str, str]]:
    document: dict[str, dict[str, str]] = yaml.safe_load(SUPPRESSIONS.read_text())
    return document


def suppressed(finding: Finding, rules: dict[str, str]) -> str | None:
    """The suppression key that covers ``finding`` (its check id, or check id @ its resource), if any."""
    for key in (finding.check, f"{finding.check}@{finding.resource}"):
        if key in rules:
            return key
    return None


def run_checkov(directory: Path) -> tuple[int, list[Finding]]:
    result = subprocess.run(
        [str(scanner("checkov")), "-d", str(directory), "--framework", "kubernetes", "-o", "json", "--quiet",
         "--skip-download"],
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode in (0, 1), f"checkov failed to run (rc {result.returncode}): {result.stderr[-2000:]}"
    report: Any = json.loads(result.stdout)
    (report,) = report if isinstance(report, list) else [report]
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    findings = [
        Finding("checkov", f["check_id"], f["resource"], f["check_name"]) for f in report["results"]["failed_checks"]
    ]
    return report["summary"]["passed"], findings


def run_parliament(directory: Path) -> list[Finding]:
    result = subprocess.run(
        [str(scanner("parliament")), "--directory", str(directory), "--include_policy_extension", "json", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode in (0, 1), f"parliament failed to run (rc {result.returncode}): {result.stderr[-2000:]}"
    findings = []
    for line in result.stdout.splitlines():
        issue = json.loads(line)
        # files are "<stack>--<resource name>.json": the resource name is what a suppression may name
        resource = Path(issue["location"]["filepath"]).stem.split("--", 1)[1]
        findings.append(Finding("parliament", issue["issue"], resource, f"{issue['title']}: {issue['detail']}"))
    return findings


@pytest.fixture(scope="module")
def checkov_report(plans: dict[str, RenderPlan], tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[Finding]]:
    out = tmp_path_factory.mktemp("checkov")
    for stack, plan in plans.items():
        assert plan.validate() == [], stack
        plan.write_objects(out / stack)
    (out / "canary.yaml").write_text(yaml.safe_dump(CANARY_POD))
    return run_checkov(out)


@pytest.fixture(scope="module")
def parliament_report(plans: dict[str, RenderPlan], tmp_path_factory: pytest.TempPathFactory) -> list[Finding]:
    out = tmp_path_factory.mktemp("parliament")
    for stack, plan in plans.items():
        policies = [r for r in plan.registered if r.type == "aws:iam/rolePolicy:RolePolicy"]
        assert len(policies) >= 9, (stack, [p.name for p in policies])  # 7 actors and sinks, KEDA, autoscaler
        for record in policies:
            (out / f"{stack}--{record.name}.json").write_text(record.inputs["policy"])
    (out / "canary--canary-policy.json").write_text(json.dumps(CANARY_POLICY))
    return run_parliament(out)


def _unsuppressed(findings: list[Finding], rules: dict[str, str]) -> list[str]:
    return sorted(
        f"{f.check} on {f.resource}: {f.title}" for f in findings if suppressed(f, rules) is None
    )


def test_checkov_finds_nothing_unsuppressed_in_either_stack(checkov_report: tuple[int, list[Finding]]) -> None:
    passed, findings = checkov_report
    canary = [f for f in findings if f.resource.startswith(f"Pod.{CANARY_NAMESPACE}.")]
    assert "CKV_K8S_16" in {f.check for f in canary}, "checkov did not flag a privileged container: is it scanning?"
    stacks = [f for f in findings if f not in canary]
    assert passed > 1200, passed  # both stacks: ~80 objects, ~640 checks each
    assert _unsuppressed(stacks, suppressions()["checkov"]) == []


def test_parliament_finds_nothing_unsuppressed_in_any_identity_policy(parliament_report: list[Finding]) -> None:
    canary = [f for f in parliament_report if f.resource == "canary-policy"]
    assert canary, "parliament did not flag s3:* on *: is it linting?"
    stacks = [f for f in parliament_report if f not in canary]
    assert _unsuppressed(stacks, suppressions()["parliament"]) == []


def test_every_suppression_has_a_reason_and_is_still_needed(
    checkov_report: tuple[int, list[Finding]], parliament_report: list[Finding]
) -> None:
    rules = suppressions()
    assert set(rules) == {"checkov", "parliament"}
    found = {"checkov": checkov_report[1], "parliament": parliament_report}
    for tool, entries in rules.items():
        for key, reason in entries.items():
            assert isinstance(reason, str) and reason.strip() and "\n" not in reason, f"{tool} {key}: one-line reason"
            used = any(suppressed(f, {key: reason}) for f in found[tool] if "canary" not in f.resource)
            assert used, f"{tool} {key} suppresses nothing any more: delete it from {SUPPRESSIONS.name}"
