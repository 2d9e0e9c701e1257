"""A handler module whose import raises: a dependency that is not installed."""

import a_dependency_that_is_not_installed  # noqa: F401


def handle(payload: dict) -> dict:
    return payload
