"""tests/runtime/'s own fixtures: the status store's DynamoDB table (tests/support/status_table.py)."""

from support.status_table import dynamodb_server, status_table  # noqa: F401  (pytest fixtures)
