"""``status.conditions`` as the apiserver really writes it: absent, null, or a list."""

from __future__ import annotations

import pytest

from asya_pulumi.kube.client import conditions


@pytest.mark.parametrize(
    "obj",
    [None, {}, {"status": None}, {"status": {}}, {"status": {"conditions": None}}, {"status": {"conditions": []}}],
    ids=["no-object", "no-status", "null-status", "empty-status", "null-conditions", "empty-conditions"],
)
def test_an_object_no_controller_reached_has_no_conditions(obj: dict | None) -> None:
    assert conditions(obj) == {}


def test_conditions_map_type_to_status() -> None:
    obj = {"status": {"conditions": [{"type": "Established", "status": "True"}, {"type": "NamesAccepted",
                                                                                   "status": "False"}]}}
    assert conditions(obj) == {"Established": "True", "NamesAccepted": "False"}
