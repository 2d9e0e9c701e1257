"""``python tests/support/a2a_probe.py URL SKILL PAYLOAD_JSON``: a2a-sdk's client sends one message (a data part) to
the gateway at URL for SKILL, reads the task back, and prints ``{"sent", "read", "state", "payloads"}`` as JSON.

A script, not a module the tests import: a2a-sdk's client loads googleapis' ``google.rpc.Status``, which the Pulumi
SDK's copy (loaded by the infrastructure tests in the pytest process) makes protobuf refuse
(tests/gateway/test_gateway_a2a.py says more)."""

from __future__ import annotations

import json
import sys

import anyio
import httpx
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import get_data_parts, new_data_part, new_message
from a2a.types import a2a_pb2 as pb

#: message/send blocks until the task ends: the a2a-sdk's own httpx client gives up after httpx's default 5 s, which
#: a pipeline on a loaded test machine can pass (the gateway answers within ASYA_GATEWAY_CALL_TIMEOUT_S itself).
HTTP_TIMEOUT_S = 90.0


async def probe(*, url: str, skill: str, payload: dict[str, object]) -> dict[str, object]:
    http = httpx.AsyncClient(timeout=HTTP_TIMEOUT_S)
    client = await create_client(url, ClientConfig(streaming=False, httpx_client=http))
    try:
        message = new_message([new_data_part(payload)], role=pb.ROLE_USER)
        message.metadata.update({"skill_id": skill})
        sent = [response async for response in client.send_message(pb.SendMessageRequest(message=message))]
        task = sent[-1].task
        read = await client.get_task(pb.GetTaskRequest(id=task.id))
    finally:
        await client.close()
        await http.aclose()
    return {
        "sent": task.id, "read": read.id, "state": pb.TaskState.Name(read.status.state),
        "payloads": [value for artifact in read.artifacts for value in get_data_parts(artifact.parts)],
    }


if __name__ == "__main__":
    url, skill, payload = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    print(json.dumps(anyio.run(lambda: probe(url=url, skill=skill, payload=payload))))
