"""Tracing off (the default) costs nothing: no OpenTelemetry import, no tracer; the switch reads the standard env."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from asya_runtime.sidecar.tracing import enabled

# A fresh interpreter: the test process itself has imported OpenTelemetry (pulumi uses it).
_PROBE = """
import json, sys
{setup}
from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import tracing
from asya_runtime.sidecar.app import Sidecar
from asya_runtime.sidecar.actor import ActorProcessor
from asya_runtime.sidecar import logs
logs.configure(actor="a", namespace="n", mode="actor")
tracer = tracing.hop_tracer(SidecarConfig(actor="a", namespace="n"))
print(json.dumps({"tracer": repr(tracer), "otel": sorted(m for m in sys.modules if m.startswith("opentelemetry"))}))
"""


def _probe(env: dict[str, str], *, setup: str = "") -> dict[str, Any]:
    """What a fresh sidecar interpreter makes of ``env``: its tracer, the OpenTelemetry modules loaded, its log."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    script = _PROBE.replace("{setup}", setup)
    done = subprocess.run(
        [sys.executable, "-c", script], env=clean | env, capture_output=True, text=True, timeout=60, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result | {"log": [json.loads(line) for line in done.stderr.splitlines()]}


def test_off_by_default_the_sidecar_imports_no_opentelemetry_and_has_no_tracer() -> None:
    assert _probe({}) == {"tracer": "None", "otel": [], "log": []}


def test_an_endpoint_switches_it_on_and_loads_the_sdk() -> None:
    probe = _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"})
    assert str(probe["tracer"]).startswith("<asya_runtime.sidecar.tracing.HopTracer")
    assert "opentelemetry.sdk.trace" in probe["otel"]
    [line] = probe["log"]
    assert (line["event"], line["endpoint"]) == ("tracing on", "http://127.0.0.1:4317")


def test_asked_for_without_the_extra_it_warns_once_naming_the_extra_and_runs_untraced() -> None:
    blocked = "sys.modules['opentelemetry'] = None  # as if asya-runtime[otel] were not installed"
    probe = _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, setup=blocked)
    assert probe["tracer"] == "None"
    [line] = probe["log"]
    assert line["level"] == "warning" and line["event"] == "tracing off: OpenTelemetry is not installed"
    assert "asya-runtime[otel]" in line["fix"]


def test_an_unsupported_protocol_warns_and_stays_off() -> None:
    probe = _probe({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"})
    assert (probe["tracer"], probe["otel"]) == ("None", [])
    [line] = probe["log"]
    assert line["event"] == "tracing off" and "gRPC only" in line["reason"]


@pytest.mark.parametrize(
    ("env", "on", "why"),
    [
        ({}, False, "no OTLP endpoint set"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": ""}, False, "no OTLP endpoint set"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4317"}, True, ""),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "True"}, False, "OTEL_SDK_DISABLED"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "none"}, False, "EXPORTER=none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, True, ""),
        (
            {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf"},
            False,
            "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf: the sidecar exports OTLP over gRPC only",
        ),
        (  # the signal-specific protocol wins over the general one
            {
                "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317",
                "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "grpc",
            },
            True,
            "",
        ),
    ],
)
def test_the_switch(env: dict[str, str], on: bool, why: str) -> None:
    got_on, got_why = enabled(env)
    assert got_on is on
    assert why in got_why and bool(got_why) is not on
