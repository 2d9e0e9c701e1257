"""Check that a PromQL expression names only series that exist: every metric a metric registry exports, and every
label the metric has or the scrape adds. Parsing is promql-parser's (a maintained Rust parser, Prometheus 2.45
grammar); a parse error is a problem too.

:func:`exported_series` reads the names a ``prometheus_client`` registry exposes (a counter ``x`` as ``x_total``, a
histogram as ``x_bucket`` with ``le``, ``x_count``, ``x_sum``), with their label names, also for labelled metrics
that have not been observed yet. :func:`expression_problems` then walks the expression and tracks which labels each
sub-expression can carry, so a ``by``, ``on`` or ``group_left`` label the inner series lack is caught as well as a
mistyped metric. Grafana's ``$__rate_interval`` style range variables are replaced by a duration before parsing;
``$variables`` inside label values are plain strings to the parser.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

#: Grafana range variables → a duration the parser accepts.
_RANGE_VARIABLES = re.compile(r"\$(?:__rate_interval|__interval|__range|\{__rate_interval\}|\{__interval\})")
_SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum"),
             "summary": ("", "_count", "_sum"), "info": ("_info",)}


def exported_series(metrics: Iterable[Any]) -> dict[str, frozenset[str]]:
    """Series name → its label names, for ``prometheus_client`` metric objects (``Counter``, ``Gauge``, ...).

    Read from the objects' type and label names (``_type``, ``_labelnames``, ``_name``): a labelled metric has no
    samples, hence nothing in ``registry.collect()``, until a label value is first used.
    """
    found: dict[str, frozenset[str]] = {}
    for metric in metrics:
        kind, name, labels = metric._type, metric._name, frozenset(metric._labelnames)
        for suffix in _SUFFIXES[kind]:
            series = name.removesuffix("_total") + suffix if kind == "counter" else name + suffix
            found[series] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


def expression_problems(
    expr: str, *, series: Mapping[str, frozenset[str]], target_labels: frozenset[str]
) -> list[str]:
    """One line per unknown metric, unknown label or parse error in ``expr`` (empty: every name is real)."""
    import promql_parser

    try:
        tree = promql_parser.parse(_RANGE_VARIABLES.sub("5m", expr))
    except ValueError as exc:
        return [f"does not parse: {exc}"]
    problems: list[str] = []
    _labels(tree, series=series, target_labels=target_labels, problems=problems)
    return problems


def _labels(node: Any, *, series: Mapping[str, frozenset[str]], target_labels: frozenset[str],
            problems: list[str]) -> frozenset[str]:
    """The labels ``node``'s result can carry; appends every problem found below it."""
    import promql_parser as p

    def walk(child: Any) -> frozenset[str]:
        return _labels(child, series=series, target_labels=target_labels, problems=problems)

    def need(labels: Iterable[str], available: frozenset[str], where: str) -> None:
        missing = sorted(set(labels) - available)
        if missing:
            problems.append(f"{where}: label(s) {missing} are on none of its series; they have {sorted(available)}")

    if isinstance(node, p.MatrixSelector):
        return walk(node.vector_selector)
    if isinstance(node, p.VectorSelector):
        name = node.name or ""
        if name not in series:
            close = sorted(n for n in series if n.split("_")[:2] == name.split("_")[:2])
            hint = f"; similar: {close}" if close else ""
            problems.append(f"metric {name!r} is not exported by the sidecar{hint}")
            return target_labels
        available = series[name] | target_labels
        matchers = [m.name for m in node.matchers.matchers] + [m.name for o in node.matchers.or_matchers for m in o]
        need(matchers, available | {"__name__"}, f"selector {node.name}")
        return available
    if isinstance(node, p.AggregateExpr):
        inner = walk(node.expr)
        if node.param is not None and isinstance(node.param, p.Expr):
            walk(node.param)
        modifier = node.modifier
        if modifier is None:
            return frozenset()
        by = modifier.type == p.AggModifierType.By
        need(modifier.labels, inner, f"aggregation {'by' if by else 'without'} ({', '.join(modifier.labels)})")
        if by:
            return frozenset(modifier.labels)
        return inner - set(modifier.labels)
    if isinstance(node, p.Call):
        args = [walk(arg) for arg in node.args if isinstance(arg, p.Expr)]
        if node.func.name == "histogram_quantile":
            need(["le"], args[-1], "histogram_quantile")
            return args[-1] - {"le"}
        return frozenset().union(*args) if args else frozenset()
    if isinstance(node, p.BinaryExpr):
        lhs, rhs = walk(node.lhs), walk(node.rhs)
        matching = node.modifier.matching if node.modifier is not None else None
        if matching is not None and matching.type == p.LabelModifierType.Include:  # on (...): both sides need them
            need(matching.labels, lhs, f"on ({', '.join(matching.labels)}), left side")
            need(matching.labels, rhs, f"on ({', '.join(matching.labels)}), right side")
        group = node.modifier.group_labels if node.modifier is not None else None
        if group:
            need(group, lhs | rhs, f"group_left/right ({', '.join(group)})")
        return lhs or rhs
    if isinstance(node, p.ParenExpr | p.UnaryExpr | p.SubqueryExpr):
        return walk(node.expr)
    return frozenset()  # number and string literals
