"""Dashboards and alerts as code: what ``ActorMesh(observability=...)`` / ``Observability`` really registers under
Pulumi's mocks, every PromQL expression checked against the sidecar's real metrics registry and the PodMonitor's
relabelings, the PodMonitor and PrometheusRule against the Prometheus operator's CRD schemas, the dashboard model
against its structure, and the new objects through checkov.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml
from infra_mocks import Deployment, Registered
from prometheus_client.metrics import MetricWrapperBase
from test_scanners import _unsuppressed, run_checkov, suppressions

from asya_pulumi.checks.validate import InvalidObject, validate_object, validate_objects
from asya_pulumi.components import ActorMesh
from asya_pulumi.components.network_policy import MeshNetworkPolicy
from asya_pulumi.components.observability import Observability, ObservabilityArgs, dashboard_file
from asya_pulumi.objects import pod
from asya_pulumi.observability import ObservabilitySettings, dashboard, promql_check, scrape
from asya_pulumi.spec import load_pipeline_dir
from asya_runtime.sidecar.metrics import Metrics

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "image-scoring"
MESH = "image-scoring"
POD_MONITOR = "kubernetes:monitoring.coreos.com/v1:PodMonitor"
RULE = "kubernetes:monitoring.coreos.com/v1:PrometheusRule"
CONFIG_MAP = "kubernetes:core/v1:ConfigMap"
SCRAPE_FROM = MeshNetworkPolicy(metrics_from={"kubernetes.io/metadata.name": "monitoring"})
ALERTS = {
    "AsyaDeadLetterQueueNotEmpty", "AsyaErrorSinkRateHigh", "AsyaHandlerLatencyNearTimeout",
    "AsyaOldestMessageAgeRising",
}


def build(deployment: Deployment, settings: ObservabilitySettings | None = None) -> None:
    spec = load_pipeline_dir(EXAMPLE)
    deployment.run(
        lambda: ActorMesh(
            "scoring", spec=spec, cluster_name="c1", keda=[], network_policy=SCRAPE_FROM,
            observability=settings or ObservabilitySettings(),
        )
    )


def sidecar_series() -> dict[str, frozenset[str]]:
    """Every series the sidecar exports, from a real ``Metrics()`` registry (labelled metrics included)."""
    metrics = Metrics()
    collectors = [v for v in vars(metrics).values() if isinstance(v, MetricWrapperBase)]
    registered = {family.name for family in metrics.registry.collect()}
    assert {c._name.removesuffix("_total") for c in collectors} == registered, "a metric outside Metrics' attributes"
    return promql_check.exported_series(collectors)


def dashboard_model(deployment: Deployment) -> dict[str, Any]:
    config_map = deployment.one(CONFIG_MAP, "scoring-observability-dashboard")
    (text,) = config_map.inputs["data"].values()
    model: dict[str, Any] = json.loads(text)
    return model


def rule_expressions(rule: Registered) -> list[tuple[str, str]]:
    return [(f"alert {r['alert']}", r["expr"]) for group in rule.inputs["spec"]["groups"] for r in group["rules"]]


def problems_of(expressions: list[tuple[str, str]], *, pod_monitor: Registered) -> dict[str, list[str]]:
    series = sidecar_series()
    targets = scrape.series_target_labels(pod_monitor.inputs["spec"])
    found = {where: promql_check.expression_problems(e, series=series, target_labels=targets)
             for where, e in expressions}
    return {where: problems for where, problems in found.items() if problems}


def test_the_mesh_flag_registers_monitor_rules_and_dashboard_under_one_component(deployment: Deployment) -> None:
    settings = ObservabilitySettings(
        monitor_labels={"release": "kube-prometheus-stack"}, dashboard_folder="ML pipelines",
        dashboard_namespace="monitoring", dashboard_labels={"grafana_dashboard": "yes"},
    )
    build(deployment, settings)
    monitor, rule = deployment.one(POD_MONITOR, "scoring-observability-pod-monitor"), deployment.one(
        RULE, "scoring-observability-rules"
    )
    board = deployment.one(CONFIG_MAP, "scoring-observability-dashboard")
    for record in (monitor, rule, board):
        assert record.parent.endswith("$asya:index:Observability::scoring-observability"), record.parent
    for record in (monitor, rule):
        metadata = record.inputs["metadata"]
        assert (metadata["name"], metadata["namespace"]) == (f"asya-{MESH}", MESH)
        assert metadata["labels"]["release"] == "kube-prometheus-stack"
    metadata = board.inputs["metadata"]
    assert (metadata["name"], metadata["namespace"]) == (f"asya-{MESH}-dashboard", "monitoring")
    assert metadata["labels"]["grafana_dashboard"] == "yes"
    assert metadata["annotations"] == {"grafana_folder": "ML pipelines"}
    assert list(board.inputs["data"]) == [dashboard_file(MESH)]
    assert dashboard_model(deployment)["uid"] == f"asya-{MESH}"


def test_no_flag_no_monitoring_objects(deployment: Deployment) -> None:
    deployment.run(lambda: ActorMesh("scoring", spec=load_pipeline_dir(EXAMPLE), cluster_name="c1", keda=[]))
    assert deployment.of_type(POD_MONITOR) == deployment.of_type(RULE) == []
    assert [c.name for c in deployment.of_type(CONFIG_MAP)] == ["scoring-handler-server"]


def test_observability_behind_a_network_policy_that_blocks_scrapes_is_refused(deployment: Deployment) -> None:
    with pytest.raises(ValueError, match=r"network_policy\.metrics_from is None.*MeshNetworkPolicy\(metrics_from="):
        deployment.run(
            lambda: ActorMesh("scoring", spec=load_pipeline_dir(EXAMPLE), cluster_name="c1", keda=[],
                              observability=ObservabilitySettings())
        )


def test_the_pod_monitor_scrapes_every_actor_and_sink_sidecar_and_labels_its_series(deployment: Deployment) -> None:
    build(deployment)
    spec = deployment.one(POD_MONITOR, "scoring-observability-pod-monitor").inputs["spec"]
    selector = spec["selector"]["matchLabels"]
    (endpoint,) = spec["podMetricsEndpoints"]
    deployments = deployment.of_type("kubernetes:apps/v1:Deployment")
    assert len(deployments) == 7  # five actors, two sinks
    for record in deployments:
        template = record.inputs["spec"]["template"]
        pod_labels = template["metadata"]["labels"]
        assert selector.items() <= pod_labels.items(), record.name
        sidecar = next(c for c in template["spec"]["containers"] if c["name"] == pod.SIDECAR_CONTAINER)
        ports = {p["name"]: p["containerPort"] for p in sidecar["ports"]}
        assert ports[endpoint["port"]] == pod.METRICS_PORT, record.name
        # Each relabeling reads a pod label every actor pod carries: the series get the actor's and mesh's names.
        relabeled = {}
        for rule in endpoint["relabelings"]:
            (source,) = rule["sourceLabels"]
            pod_label = next(k for k in pod_labels if scrape.discovered_pod_label(k) == source)
            relabeled[rule["targetLabel"]] = pod_labels[pod_label]
        assert relabeled == {"actor": record.inputs["metadata"]["name"], "mesh": MESH}


def test_every_promql_expression_names_only_real_sidecar_metrics_and_labels(deployment: Deployment) -> None:
    build(deployment)
    monitor = deployment.one(POD_MONITOR, "scoring-observability-pod-monitor")
    rules = rule_expressions(deployment.one(RULE, "scoring-observability-rules"))
    panels = dashboard.expressions(dashboard_model(deployment))
    assert {where.removeprefix("alert ") for where, _ in rules} == ALERTS
    assert len(panels) == 14  # 13 panel targets and the actor variable's selector
    assert problems_of(rules + panels, pod_monitor=monitor) == {}
    used = {name for _, expr in rules + panels for name in sidecar_series() if name in expr}
    assert {"asya_queue_messages", "asya_queue_oldest_message_age_seconds", "asya_actor_timeout_seconds",
            "asya_handler_duration_seconds_bucket", "asya_messages_dead_lettered_total"} <= used


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("asya_messages_received_total", "asya_messages_recieved_total", "'asya_messages_recieved_total' is not exp"),
        ("asya_queue_messages{", "asya_queue_depth{", "metric 'asya_queue_depth' is not exported"),
        ("sum by (mesh, actor) (rate(asya_messages_retried_total", "sum by (mesh, actr) (rate("
         "asya_messages_retried_total", r"by (mesh, actr): label(s) ['actr']"),
        ('queue="dlq"', 'queue_name="dlq"', "label(s) ['queue_name']"),
        ("asya_handler_duration_seconds_bucket", "asya_handler_duration_seconds_count", "['le'] are on none"),
        ("histogram_quantile(0.99,", "histogram_quantile(0.99,,", "does not parse"),
    ],
)
def test_a_planted_bad_name_fails_the_check(deployment: Deployment, old: str, new: str, expected: str) -> None:
    build(deployment)
    monitor = deployment.one(POD_MONITOR, "scoring-observability-pod-monitor")
    expressions = rule_expressions(deployment.one(RULE, "scoring-observability-rules")) + dashboard.expressions(
        dashboard_model(deployment)
    )
    planted = [(where, expr.replace(old, new)) for where, expr in expressions]
    assert planted != expressions, f"{old!r} is in no expression: the plant tests nothing"
    problems = problems_of(planted, pod_monitor=monitor)
    assert problems and all(
        any(expected in line for line in lines) for lines in problems.values()
    ), problems


def test_a_label_only_the_pod_monitor_adds_is_known_only_while_it_adds_it(deployment: Deployment) -> None:
    build(deployment)
    monitor = deployment.one(POD_MONITOR, "scoring-observability-pod-monitor")
    rules = rule_expressions(deployment.one(RULE, "scoring-observability-rules"))
    without_mesh = copy.deepcopy(monitor)
    endpoint = without_mesh.inputs["spec"]["podMetricsEndpoints"][0]
    endpoint["relabelings"] = [r for r in endpoint["relabelings"] if r["targetLabel"] != "mesh"]
    problems = problems_of(rules, pod_monitor=without_mesh)
    assert set(problems) == {f"alert {name}" for name in ALERTS}
    assert all("['mesh']" in line for lines in problems.values() for line in lines)


def test_monitoring_objects_validate_against_the_prometheus_operator_crds(deployment: Deployment) -> None:
    build(deployment)
    objects = deployment.kubernetes_objects()
    assert {"PodMonitor", "PrometheusRule"} <= {o["kind"] for o in objects}
    assert validate_objects(objects) == []
    monitor = next(o for o in objects if o["kind"] == "PodMonitor")
    typo = copy.deepcopy(monitor)
    typo["spec"]["podMetricsEndpoints"][0]["prot"] = typo["spec"]["podMetricsEndpoints"][0].pop("port")
    with pytest.raises(InvalidObject, match=r"PodMonitor image-scoring/asya-image-scoring: spec.podMetricsEndpoints.0:"
                                            r" Additional properties are not allowed \('prot' was unexpected\)"):
        validate_object(typo)
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    slow = copy.deepcopy(rule)
    slow["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    with pytest.raises(InvalidObject, match=r"spec.groups.0.rules.0.for: 'ten minutes' does not match"):
        validate_object(slow)
    nameless = copy.deepcopy(rule)
    del nameless["spec"]["groups"][0]["name"]
    with pytest.raises(InvalidObject, match="'name' is a required property"):
        validate_object(nameless)


def test_the_dashboard_has_every_panel_and_a_sound_structure(deployment: Deployment) -> None:
    build(deployment)
    model = dashboard_model(deployment)
    assert dashboard.dashboard_problems(model) == []
    titles = [p["title"] for p in model["panels"]]
    assert titles == [
        "Throughput", "Handler latency p50 / p99 vs actorTimeout", "Retries", "Errors", "Queue depth",
        "Age of the oldest waiting message", "DLQ depth", "Replicas", "In flight",
    ]
    latency = model["panels"][1]["targets"]
    assert [t["legendFormat"] for t in latency] == ["{{actor}} p50", "{{actor}} p99", "{{actor}} actorTimeout"]
    mesh = next(v for v in model["templating"]["list"] if v["name"] == "mesh")
    assert (mesh["type"], mesh["query"], mesh["hide"]) == ("constant", MESH, 2)


def test_a_broken_dashboard_structure_is_reported(deployment: Deployment) -> None:
    build(deployment)
    model = dashboard_model(deployment)
    overlap = copy.deepcopy(model)
    overlap["panels"][1]["gridPos"]["x"] = 6
    assert any("overlaps panel 'Throughput'" in p for p in dashboard.dashboard_problems(overlap))
    undefined = copy.deepcopy(model)
    undefined["panels"][0]["targets"][0]["expr"] = undefined["panels"][0]["targets"][0]["expr"].replace(
        "$actor", "$actors"
    )
    assert any("$actors is used" in p for p in dashboard.dashboard_problems(undefined))
    twice = copy.deepcopy(model)
    twice["panels"][2]["id"] = 1
    assert dashboard.dashboard_problems(twice) == ["panel id 1 is used twice"]
    typo = copy.deepcopy(model)
    typo["panels"][0]["gridpos"] = typo["panels"][0].pop("gridPos")
    assert any("'gridPos' is a required property" in p for p in dashboard.dashboard_problems(typo))


def test_alert_thresholds_and_labels_come_from_the_settings(deployment: Deployment) -> None:
    settings = ObservabilitySettings(
        error_rate_per_minute=3, latency_ratio=0.5, oldest_age_seconds=120, alert_for="20m",
        alert_labels={"team": "ml"},
    )
    build(deployment, settings)
    (group,) = deployment.one(RULE, "scoring-observability-rules").inputs["spec"]["groups"]
    assert group["name"] == f"asya-{MESH}"
    rules = {r["alert"]: r for r in group["rules"]}
    assert set(rules) == ALERTS
    assert rules["AsyaErrorSinkRateHigh"]["expr"].endswith("* 60 > 3")
    assert "> 0.5 * max by (mesh, actor) (asya_actor_timeout_seconds" in rules["AsyaHandlerLatencyNearTimeout"]["expr"]
    assert "asya_queue_oldest_message_age_seconds{mesh=\"image-scoring\"}) > 120 and" in rules[
        "AsyaOldestMessageAgeRising"]["expr"]
    assert rules["AsyaDeadLetterQueueNotEmpty"]["for"] == "1m"
    assert {r["for"] for name, r in rules.items() if name != "AsyaDeadLetterQueueNotEmpty"} == {"20m"}
    assert all(r["labels"] == {"severity": "warning", "team": "ml"} for r in rules.values())
    assert all(f'mesh="{MESH}"' in r["expr"] for r in rules.values())


def test_the_component_alone_takes_the_mesh_name_as_an_output(deployment: Deployment) -> None:
    outputs: dict[str, Any] = {}

    def program() -> Any:
        mesh_name = pulumi.Output.from_input("late-mesh").apply(lambda name: name)
        observability = Observability("obs", ObservabilityArgs(mesh=mesh_name, namespace="ml"))
        return observability.dashboard_uid.apply(lambda uid: outputs.update(uid=uid))

    deployment.run(program)
    assert outputs["uid"] == "asya-late-mesh"
    monitor = deployment.one(POD_MONITOR, "obs-pod-monitor").inputs
    assert (monitor["metadata"]["name"], monitor["metadata"]["namespace"]) == ("asya-late-mesh", "ml")
    assert monitor["spec"]["selector"]["matchLabels"]["asya.sh/mesh"] == "late-mesh"
    board = deployment.one(CONFIG_MAP, "obs-dashboard").inputs
    assert board["metadata"]["namespace"] == "ml" and list(board["data"]) == ["asya-late-mesh.json"]


def test_a_long_mesh_name_still_gives_a_grafana_uid() -> None:
    uid = dashboard.dashboard_uid("m" * 63)
    assert len(uid) == dashboard.UID_MAX and uid.startswith("asya-mmm")
    assert uid != dashboard.dashboard_uid("m" * 62 + "n")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"scrape_interval": "30 seconds"}, r"observability.scrape_interval: '30 seconds' is not a Prometheus"),
        ({"latency_ratio": 1.5}, r"observability.latency_ratio: 1.5 is outside \(0, 1\]"),
        ({"dashboard_labels": {}}, r"observability.dashboard_labels is empty"),
        ({"oldest_age_seconds": 0}, r"observability.oldest_age_seconds must be above 0, e.g. 300"),
        ({"alert_labels": {"team-name": "x"}}, r"observability.alert_labels: 'team-name' is not a Prometheus label"),
    ],
)
def test_bad_settings_name_the_field_and_the_fix(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ObservabilitySettings(**changes)


def test_checkov_finds_nothing_unsuppressed_in_the_monitoring_objects(
    deployment: Deployment, tmp_path: Path
) -> None:
    build(deployment)
    new = [o for o in deployment.kubernetes_objects() if o["kind"] in ("PodMonitor", "PrometheusRule")
           or o["metadata"]["name"].endswith("-dashboard")]
    assert len(new) == 3
    for index, obj in enumerate(new):
        (tmp_path / f"{index}-{obj['kind']}.yaml").write_text(yaml.safe_dump(obj))
    # Canary: checkov has no checks for the operator's CRDs; it does check ConfigMaps (CKV_K8S_21, default namespace),
    # so the dashboard in the default namespace must be flagged, or checkov did not look at the dashboard at all.
    board = next(o for o in new if o["kind"] == "ConfigMap")
    canary = {**board, "metadata": {**board["metadata"], "namespace": "default"}}
    (tmp_path / "canary.yaml").write_text(yaml.safe_dump(canary))
    passed, findings = run_checkov(tmp_path)
    flagged = [f for f in findings if f.resource == f"ConfigMap.default.{board['metadata']['name']}"]
    assert [f.check for f in flagged] == ["CKV_K8S_21"], findings
    assert passed >= 1 and _unsuppressed([f for f in findings if f not in flagged], suppressions()["checkov"]) == []


@pytest.fixture(scope="module")
def promtool() -> str:
    """Prometheus's own rule checker and evaluator: ``$ASYA_PROMTOOL`` or ``promtool`` on PATH (Debian: ``apt-get
    install prometheus``, or ``apt-get download prometheus && dpkg-deb -x prometheus_*.deb DIR``, no root)."""
    found = os.environ.get("ASYA_PROMTOOL") or shutil.which("promtool")
    if not found:
        pytest.skip("promtool not found: set ASYA_PROMTOOL or put Prometheus's promtool on PATH")
    return found


def _promtool(promtool: str, *args: str, cwd: Path) -> str:
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_prometheus_loads_the_rules_and_fires_each_alert_only_when_it_should(
    deployment: Deployment, promtool: str, tmp_path: Path
) -> None:
    """Prometheus's own engine (promtool test rules) evaluates the deployed rules over synthetic sidecar series: each
    alert fires for the actor in trouble, after its ``for``, and not for a healthy one beside it."""
    build(deployment)
    groups = deployment.one(RULE, "scoring-observability-rules").inputs["spec"]["groups"]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    assert "SUCCESS" in _promtool(promtool, "check", "rules", "rules.yaml", cwd=tmp_path)
    # Annotations are templates of $value; the expectations below are about when and for whom alerts fire.
    bare = [{**g, "rules": [{k: v for k, v in r.items() if k != "annotations"} for r in g["rules"]]} for g in groups]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump({"groups": bare}))

    def series(metric: str, actor: str, values: str, **labels: str) -> dict[str, str]:
        matchers = ", ".join(f'{k}="{v}"' for k, v in {"mesh": MESH, "actor": actor, "pod": f"{actor}-1",
                                                          **labels}.items())
        return {"series": f"{metric}{{{matchers}}}", "values": values}

    dlq = {"queue": "dlq", "state": "visible"}
    inputs = [
        # "poison": 2 messages in the DLQ, then the actor scales to zero (no more samples): still alerting.
        series("asya_queue_messages", "poison", "0 0 2 2 2 _ _ _ _ _ _ _ _ _ _", **dlq),
        # "redriven": its DLQ emptied while a replica still ran: the last value is 0, no alert.
        series("asya_queue_messages", "redriven", "2 2 2 0 0 0 0 0 0 0 0 0 0 0 0", **dlq),
        # "failing" sends 5 envelopes a minute to the error sink; "fine" none.
        series("asya_messages_dead_lettered_total", "failing", "0+5x40"),
        series("asya_messages_dead_lettered_total", "fine", "0x40"),
        # "slow": every call between 10 and 30 s with actorTimeout 30; "quick": every call under 1 s.
        series("asya_handler_duration_seconds_bucket", "slow", "0x40", le="10"),
        series("asya_handler_duration_seconds_bucket", "slow", "0+10x40", le="30"),
        series("asya_handler_duration_seconds_bucket", "slow", "0+10x40", le="+Inf"),
        series("asya_handler_duration_seconds_bucket", "quick", "0+10x40", le="1"),
        series("asya_handler_duration_seconds_bucket", "quick", "0+10x40", le="+Inf"),
        series("asya_actor_timeout_seconds", "slow", "30x40"),
        series("asya_actor_timeout_seconds", "quick", "30x40"),
        # "behind": the oldest message ages a minute per minute; "steady" waited long, but no longer growing.
        series("asya_queue_oldest_message_age_seconds", "behind", "0+60x40"),
        series("asya_queue_oldest_message_age_seconds", "steady", "400x40"),
    ]

    def fired(*actors: str) -> list[dict[str, Any]]:
        return [{"exp_labels": {"mesh": MESH, "actor": a, "severity": "warning"}} for a in actors]

    checks = [
        (5, "AsyaDeadLetterQueueNotEmpty", fired("poison")),
        (14, "AsyaDeadLetterQueueNotEmpty", fired("poison")),  # scaled to zero 10 minutes ago
        (5, "AsyaErrorSinkRateHigh", []),  # not yet for 10m
        (25, "AsyaErrorSinkRateHigh", fired("failing")),
        (25, "AsyaHandlerLatencyNearTimeout", fired("slow")),
        (25, "AsyaOldestMessageAgeRising", fired("behind")),
    ]
    tests = {
        "rule_files": ["bare.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": inputs,
            "alert_rule_test": [{"eval_time": f"{minute}m", "alertname": name, "exp_alerts": expected}
                                for minute, name, expected in checks],
        }],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in _promtool(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
    # The harness can fail: expecting the healthy actor to alert too must not pass.
    tests["tests"][0]["alert_rule_test"] = [
        {"eval_time": "25m", "alertname": "AsyaErrorSinkRateHigh", "exp_alerts": fired("failing", "fine")}
    ]
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    wrong = subprocess.run([promtool, "test", "rules", "tests.yaml"], capture_output=True, text=True, timeout=120,
                           check=False, cwd=tmp_path)
    assert wrong.returncode != 0 and "FAILED" in wrong.stdout + wrong.stderr


def test_prometheus_evaluates_the_panels_per_actor_with_replicas_counted_once(
    deployment: Deployment, promtool: str, tmp_path: Path
) -> None:
    """Panel queries over two replicas of one actor: queue gauges both replicas report alike are not doubled,
    replicas and throughput add up across pods."""
    build(deployment)
    queries = {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard_model(deployment)["panels"]}

    def grafana(expr: str) -> str:  # what Grafana sends: its variables replaced
        return expr.replace("$__rate_interval", "5m").replace("$mesh", MESH).replace("$actor", ".*")

    def series(metric: str, pod_name: str, values: str, **labels: str) -> dict[str, str]:
        matchers = ", ".join(f'{k}="{v}"' for k, v in {"mesh": MESH, "actor": "judge", "pod": pod_name,
                                                          **labels}.items())
        return {"series": f"{metric}{{{matchers}}}", "values": values}

    inputs = [
        *(series("asya_queue_messages", p, "3x10", queue="dlq", state="visible") for p in ("judge-1", "judge-2")),
        *(series("asya_actor_timeout_seconds", p, "30x10") for p in ("judge-1", "judge-2")),
        *(series("asya_messages_received_total", p, "0+60x10") for p in ("judge-1", "judge-2")),
    ]
    labels = f'{{mesh="{MESH}", actor="judge"}}'
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": inputs,
            "promql_expr_test": [
                {"expr": grafana(queries["DLQ depth"][0]), "eval_time": "5m",
                 "exp_samples": [{"labels": labels, "value": 3}]},
                {"expr": grafana(queries["Replicas"][0]), "eval_time": "5m",
                 "exp_samples": [{"labels": labels, "value": 2}]},
                {"expr": grafana(queries["Throughput"][0]), "eval_time": "8m",  # 1 message/s on each pod
                 "exp_samples": [{"labels": labels, "value": 2}]},
            ],
        }],
    }
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(tests))
    assert "SUCCESS" in _promtool(promtool, "test", "rules", "tests.yaml", cwd=tmp_path)
