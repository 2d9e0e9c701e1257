"""The mesh's Grafana dashboard (JSON model, schemaVersion 39), delivered as a ConfigMap Grafana's dashboard
sidecar loads: throughput, handler latency p50/p99 against actorTimeout, retries, errors, queue depth, age of the
oldest waiting message, DLQ depth, replicas and in-flight messages, per actor.

The mesh is a hidden constant variable, the actor a multi-value variable read from the series (actors a team stack
adds later appear without a new dashboard). :func:`dashboard_problems` checks the model's structure: the JSON Schema
``schemas/grafana-dashboard.json`` (the subset of Grafana's model used here, strict), unique panel ids and refIds,
panels inside the 24-column grid and not overlapping, and every ``$variable`` defined.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from asya_pulumi.observability import queries
from asya_pulumi.observability.scrape import ACTOR_LABEL

SCHEMA_VERSION = 39
GRID_COLUMNS = 24
PANEL_HEIGHT, PANEL_WIDTH = 8, 12
#: Grafana's own variables a query may use without defining them.
BUILTIN_VARIABLES = frozenset({"__rate_interval", "__interval", "__range", "__interval_ms", "__range_s"})
#: Grafana dashboard uids are at most 40 characters.
UID_MAX = 40
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")


def dashboard_uid(mesh: str) -> str:
    """``asya-{mesh}``, or a digest-suffixed prefix of it when that exceeds Grafana's 40 characters."""
    uid = f"asya-{mesh}"
    if len(uid) <= UID_MAX:
        return uid
    digest = hashlib.sha256(mesh.encode()).hexdigest()[:8]
    return f"{uid[: UID_MAX - 9]}-{digest}"


def _panel(title: str, unit: str, targets: list[tuple[str, str]], *, description: str) -> dict[str, Any]:
    return {
        "type": "timeseries",
        "title": title,
        "description": description,
        "datasource": DATASOURCE,
        "fieldConfig": {"defaults": {"unit": unit, "min": 0}, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}, "tooltip": {"mode": "multi"}},
        "targets": [
            {"refId": chr(ord("A") + i), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(targets)
        ],
    }


def panels(*, mesh_variable: str = "$mesh", actor_variable: str = f"${ACTOR_LABEL}") -> list[dict[str, Any]]:
    """The panels, in reading order, two per row."""
    s = queries.selector(mesh=mesh_variable, actor=actor_variable)
    w = "$__rate_interval"
    who = "{{actor}}"
    found = [
        _panel("Throughput", "reqps", [(queries.received_rate(s, w), f"{who} received"),
                                       (queries.succeeded_rate(s, w), f"{who} succeeded")],
               description="Messages received and finished per second, per actor."),
        _panel("Handler latency p50 / p99 vs actorTimeout", "s",
               [(queries.handler_latency(0.5, s, w), f"{who} p50"), (queries.handler_latency(0.99, s, w), f"{who} p99"),
                (queries.actor_timeout(s), f"{who} actorTimeout")],
               description="Handler call time; a p99 reaching actorTimeout means calls are being cut and retried."),
        _panel("Retries", "reqps", [(queries.retried_rate(s, w), who)],
               description="Failed attempts sent back for another try, per second."),
        _panel("Errors", "reqps", [(queries.failed_rate_by_reason(s, w), f"{who} {{{{reason}}}}"),
                                   (queries.error_sink_arrivals(mesh=mesh_variable, window=w), "error sink received")],
               description="Envelopes error-ended by each actor, by reason, and what the error sink received."),
        _panel("Queue depth", "short", [(queries.queue_depth(s), f"{who} {{{{state}}}}")],
               description="Messages in each actor's queue (GetQueueAttributes, asked when scraped, at most every "
               "30 s, only while the actor has a replica)."),
        _panel("Age of the oldest waiting message", "s", [(queries.oldest_message_age(s), who)],
               description="How long the oldest message of the last receive had waited; 0 after an empty receive."),
        _panel("DLQ depth", "short", [(queries.dead_letter_depth(s), who)],
               description="Messages SQS moved to each actor's dead-letter queue: `asya dlq redrive` sends them back."),
        _panel("Replicas", "short", [(queries.replicas(s), who)],
               description="Running sidecars per actor (KEDA scales them from queue depth; none while scaled to 0)."),
        _panel("In flight", "short", [(queries.in_flight(s), who)],
               description="Messages received and not yet finished, per actor."),
    ]
    for index, panel in enumerate(found):
        panel["id"] = index + 1
        panel["gridPos"] = {"h": PANEL_HEIGHT, "w": PANEL_WIDTH, "x": (index % 2) * PANEL_WIDTH,
                            "y": (index // 2) * PANEL_HEIGHT}
    return found


def dashboard(*, mesh: str) -> dict[str, Any]:
    """The whole dashboard model for mesh ``mesh``."""
    actors_query = f'label_values(asya_actor_timeout_seconds{{{queries.selector(mesh="$mesh")}}}, {ACTOR_LABEL})'
    return {
        "uid": dashboard_uid(mesh),
        "title": f"Asya mesh {mesh}",
        "description": "Per-actor throughput, latency, retries, errors, queues and replicas (asya_pulumi).",
        "tags": ["asya"],
        "editable": True,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "timezone": "browser",
        "templating": {
            "list": [
                {"name": "datasource", "label": "Data source", "type": "datasource", "query": "prometheus"},
                {"name": "mesh", "type": "constant", "query": mesh, "hide": 2},
                {
                    "name": ACTOR_LABEL,
                    "label": "Actor",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": actors_query, "refId": "actors"},
                    "definition": actors_query,
                    "refresh": 2,
                    "multi": True,
                    "includeAll": True,
                    "allValue": ".*",
                    "sort": 1,
                    "current": {"text": "All", "value": "$__all"},
                },
            ]
        },
        "panels": panels(),
    }


def expressions(model: dict[str, Any]) -> list[tuple[str, str]]:
    """``(where, PromQL)`` of every query in ``model``: each panel target, and each ``label_values`` variable's
    series selector."""
    found = [
        (f"panel {panel['title']!r} target {target['refId']}", target["expr"])
        for panel in model["panels"]
        for target in panel["targets"]
    ]
    for variable in model["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["query"]["query"])
            found.append((f"variable {variable['name']!r}", match["selector"] if match else variable["query"]["query"]))
    return found


def dashboard_problems(model: dict[str, Any]) -> list[str]:
    """Every structural problem of ``model`` as one line (empty: sound). Needs jsonschema (the ``render`` extra)."""
    import jsonschema

    from asya_pulumi.checks.validate import project_schema

    validator = jsonschema.Draft202012Validator(project_schema("grafana-dashboard.json"))
    problems = [
        f"{'.'.join(str(p) for p in error.absolute_path) or '(top level)'}: {error.message}"
        for error in validator.iter_errors(model)
    ]
    if problems:
        return problems
    ids = [panel["id"] for panel in model["panels"]]
    problems += [f"panel id {i} is used twice" for i in sorted({i for i in ids if ids.count(i) > 1})]
    cells: dict[tuple[int, int], str] = {}
    for panel in model["panels"]:
        grid, title = panel["gridPos"], panel["title"]
        if grid["x"] + grid["w"] > GRID_COLUMNS:
            problems.append(f"panel {title!r} ends at column {grid['x'] + grid['w']}, past the grid's {GRID_COLUMNS}")
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                if (x, y) in cells and cells[(x, y)] != title:
                    problems.append(f"panel {title!r} overlaps panel {cells[(x, y)]!r} at column {x}, row {y}")
                    break
                cells[(x, y)] = title
            else:
                continue
            break
        ref_ids = [target["refId"] for target in panel["targets"]]
        if len(set(ref_ids)) != len(ref_ids):
            problems.append(f"panel {title!r} repeats a refId: {ref_ids}")
    defined = {variable["name"] for variable in model["templating"]["list"]} | BUILTIN_VARIABLES
    texts = [expr for _, expr in expressions(model)] + [
        str(panel["datasource"]["uid"]) for panel in model["panels"]
    ]
    for text in texts:
        for match in _VARIABLE.finditer(text):
            name = match[1] or match[2]
            if name not in defined:
                problems.append(f"${name} is used in {text!r} but no templating variable defines it")
    return problems
