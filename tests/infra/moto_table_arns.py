"""moto's server, with DynamoDB calls authorised against the table (and index) they name, as AWS authorises them.

moto 5.2.5 authorises every DynamoDB call against the resource ``*`` (its ``DynamoHandler`` has no
``_determine_resource``, unlike its SQS and IAM handlers), so a policy scoped to one table — least privilege — could
never be shown to allow anything. This launcher gives the handler the resource AWS uses (the Service Authorization
Reference, "Amazon DynamoDB": ``table/NAME`` and ``table/NAME/index/INDEX``): the ARN of the one table a request
names, of its index when it names one, and ``*`` for a request over several tables (``BatchGetItem`` across meshes),
which no table-scoped Allow matches — AWS refuses such a batch too unless every table is allowed. Evaluation stays
moto's own (``moto/iam/access_control.py``); only the resource it evaluates is the real one.

Run as ``python moto_table_arns.py -H HOST -p PORT`` (``moto.server``'s arguments).
"""

from __future__ import annotations

import sys
from typing import Any

from moto import server
from moto.dynamodb.responses import DynamoHandler
from moto.utilities.utils import get_partition


def _determine_resource(self: Any) -> str:
    body = self.body or {}
    tables = [body["TableName"]] if "TableName" in body else sorted(body.get("RequestItems") or {})
    if len(tables) != 1:
        return "*"
    (table,) = tables
    if table.startswith("arn:"):
        arn = table
    else:
        arn = f"arn:{get_partition(self.region)}:dynamodb:{self.region}:{self.current_account}:table/{table}"
    index = body.get("IndexName")
    return f"{arn}/index/{index}" if index else arn


DynamoHandler._determine_resource = _determine_resource  # type: ignore[attr-defined]

if __name__ == "__main__":
    server.main(sys.argv[1:])
