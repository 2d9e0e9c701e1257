"""A2A with a2a-sdk's own client: the agent card (skills = routes), a message that runs a route and comes back as a
completed task with the final payload, a task read and canceled on the same status store, and 0.3 method names."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import httpx2
import pytest
from a2a.client import ClientConfig, create_client
from a2a.helpers.proto_helpers import get_data_parts, new_data_part
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import InvalidParamsError, TaskNotFoundError
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from support.oidc_issuer import Issuer

from gateway.conftest import ROUTES, Gateway
from gateway.test_gateway_auth import issuer, secured  # noqa: F401  (pytest fixtures)
from gateway.test_gateway_mcp import drive


def message(payload: Any, *, skill: str | None) -> pb.SendMessageRequest:
    msg = pb.Message(message_id=str(uuid.uuid4()), role=pb.ROLE_USER, parts=[new_data_part(payload)])
    if skill is not None:
        msg.metadata.update({"skill_id": skill})
    return pb.SendMessageRequest(message=msg)


async def send(gateway: Gateway, request: pb.SendMessageRequest) -> pb.Task:
    async with httpx.AsyncClient(timeout=30) as http:
        client = await create_client(gateway.url, client_config=ClientConfig(streaming=False, httpx_client=http))
        tasks = [event.task async for event in client.send_message(request) if event.HasField("task")]
    assert len(tasks) == 1
    return tasks[0]


def test_the_agent_card_has_one_skill_per_route(gateway: Gateway) -> None:
    card = httpx.get(f"{gateway.url}/.well-known/agent-card.json").json()
    assert {skill["id"] for skill in card["skills"]} == set(ROUTES)
    assert card["supportedInterfaces"][0]["url"] == f"{gateway.url}/a2a"
    assert card["capabilities"].get("streaming", False) is False


def test_a_message_runs_the_named_skill_and_returns_the_completed_task(gateway: Gateway) -> None:
    mover = drive(gateway, "pipeline", fly=[], finish={"status": "succeeded", "payload_json": '{"text": "OK"}'})
    task = asyncio.run(send(gateway, message({"text": "go"}, skill="pipeline")))
    mover.join()
    assert task.status.state == pb.TASK_STATE_COMPLETED
    assert [get_data_parts(a.parts) for a in task.artifacts] == [[{"text": "OK"}]]
    view = httpx.get(f"{gateway.url}/api/v1/mesh/{task.id}").json()  # the task is the envelope
    assert view["status"] == "succeeded" and view["data"]["route"] == "pipeline"


def test_a_task_is_read_and_canceled_on_the_same_store(gateway: Gateway) -> None:
    request = message({"text": "slow"}, skill="pipeline")
    request.configuration.return_immediately = True

    async def main() -> tuple[pb.Task, pb.Task, pb.Task]:
        submitted = await send(gateway, request)
        async with httpx.AsyncClient(timeout=30) as http:
            client = await create_client(gateway.url, client_config=ClientConfig(streaming=False, httpx_client=http))
            read = await client.get_task(pb.GetTaskRequest(id=submitted.id))
            canceled = await client.cancel_task(pb.CancelTaskRequest(id=submitted.id))
        return submitted, read, canceled

    submitted, read, canceled = asyncio.run(main())
    assert submitted.status.state == pb.TASK_STATE_SUBMITTED
    assert read.id == submitted.id and read.status.state == pb.TASK_STATE_SUBMITTED
    assert canceled.status.state == pb.TASK_STATE_CANCELED
    assert httpx.get(f"{gateway.url}/api/v1/mesh/{submitted.id}").json()["status"] == "canceled"
    [envelope] = gateway.sent("prep")
    assert envelope["id"] == submitted.id and envelope["payload"] == {"text": "slow"}


def test_a_retried_message_is_the_same_task(gateway: Gateway) -> None:
    request = message({"text": "once"}, skill="pipeline")
    request.configuration.return_immediately = True
    first = asyncio.run(send(gateway, request))
    again = asyncio.run(send(gateway, request))
    assert first.id == again.id
    assert [e["id"] for e in gateway.sent("prep")] == [first.id]


def test_a_message_without_a_skill_names_the_skills(gateway: Gateway) -> None:
    with pytest.raises(InvalidParamsError, match="skill_id"):
        asyncio.run(send(gateway, message({"text": "?"}, skill=None)))
    with pytest.raises(TaskNotFoundError, match="no task"):
        async def read_unknown() -> None:
            async with httpx.AsyncClient(timeout=30) as http:
                client = await create_client(gateway.url,
                                             client_config=ClientConfig(streaming=False, httpx_client=http))
                await client.get_task(pb.GetTaskRequest(id=str(uuid.uuid4())))

        asyncio.run(read_unknown())


def test_version_0_3_method_names_work_on_the_same_endpoint(gateway: Gateway) -> None:
    submitted = gateway.store(lambda store: store.list(limit=1)).records[0]
    answer = httpx.post(f"{gateway.url}/a2a", json={
        "jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": submitted.id},
    })
    body = answer.json()
    assert "result" in body, json.dumps(body)
    assert body["result"]["id"] == submitted.id


def test_the_sdk_clients_of_mcp_and_a2a_work_with_a_token(secured: Gateway, issuer: Issuer) -> None:  # noqa: F811
    auth = {"Authorization": f"Bearer {issuer.token(key='ec')}"}

    async def main() -> list[str]:
        async with httpx2.AsyncClient(headers=auth, timeout=30) as http2, Client(
            streamable_http_client(f"{secured.url}/mcp", http_client=http2)
        ) as mcp_client:
            tools = [tool.name for tool in (await mcp_client.list_tools()).tools]
        async with httpx.AsyncClient(headers=auth, timeout=30) as http:
            client = await create_client(secured.url, client_config=ClientConfig(streaming=False, httpx_client=http))
            with pytest.raises(TaskNotFoundError):  # through auth to the handler, which finds no such task
                await client.get_task(pb.GetTaskRequest(id=str(uuid.uuid4())))
        return tools

    assert sorted(asyncio.run(main())) == ["echo", "pipeline"]
