"""The sidecar's JSON log lines obey ``ASYA_LOG_LEVEL``: below the level an event writes nothing."""

from __future__ import annotations

import json
import logging

import pytest

from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import logs


def test_log_level_comes_from_the_config_and_debug_events_cost_nothing_at_info(
    capsys: pytest.CaptureFixture[str],
) -> None:
    info = SidecarConfig(actor="a", namespace="n")
    assert logs.level_of(info) == logging.INFO
    assert logs.level_of(SidecarConfig(actor="a", namespace="n", log_level="debug")) == logging.DEBUG
    from_env = SidecarConfig.from_env({"ASYA_ACTOR": "a", "ASYA_NAMESPACE": "n", "ASYA_LOG_LEVEL": "warning"})
    assert from_env.log_level == "warning"

    logs.configure(actor="a", namespace="n", mode="actor", level=logs.level_of(info))
    assert not logs.enabled(logging.DEBUG) and logs.enabled(logging.INFO)
    logs.event("sent", level=logging.DEBUG, id="e1", to="b")
    logs.event("started", id="e2")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(line["event"], line["level"], line["actor"]) for line in lines] == [("started", "info", "a")]

    logs.configure(actor="a", namespace="n", mode="actor", level=logging.DEBUG)
    logs.event("sent", level=logging.DEBUG, id="e1", to="b")
    [line] = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert (line["event"], line["level"], line["id"], line["to"]) == ("sent", "debug", "e1", "b")
