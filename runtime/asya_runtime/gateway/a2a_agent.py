"""A2A (``a2a-sdk`` 1.x): the mesh as an agent whose skills are its named routes, on the same status store.

The agent card is served at ``/.well-known/agent-card.json``; JSON-RPC at ``/a2a`` speaks A2A 1.0
(``SendMessage``, ``GetTask``, ``CancelTask``, ``ListTasks``) and, for older clients, 0.3 (``message/send``,
``tasks/get``, ``tasks/cancel``). A task is an envelope: its id is the envelope's id, its state the status record's
(``pending`` → submitted, ``running``/``paused`` → working, then completed, failed or canceled), and a completed
task's artifact is the final payload as a data part.

``message/send`` takes the payload from the message's first data part (an object), or its text parts read as a
JSON object; the route is the skill named in the message's metadata (``skill_id``), or the only route when the mesh
has one. The message id is the submission's idempotency key, so a client that retries a message gets the same task.
The call waits for the terminal state up to the call timeout unless the client asked to ``return_immediately``.
Streaming and push notifications are not offered (the card says so).
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator
from typing import Any, NoReturn

from a2a.helpers.proto_helpers import get_data_parts, get_text_parts, new_data_artifact
from a2a.server.context import ServerCallContext
from a2a.server.request_handlers.request_handler import RequestHandler
from a2a.types import a2a_pb2 as pb
from a2a.utils.errors import (
    InvalidParamsError,
    PushNotificationNotSupportedError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)

from asya_runtime.gateway.config import GatewayConfig
from asya_runtime.gateway.errors import ApiError
from asya_runtime.gateway.requests import Submission, check_envelope_id
from asya_runtime.gateway.submit import Submitter
from asya_runtime.gateway.views import RecordViews
from asya_runtime.gateway.watch import wait_terminal
from asya_runtime.status import StatusRecord, StatusStore

__all__ = ["A2A_PATH", "MeshAgent", "agent_card"]

A2A_PATH = "/a2a"
_STATES = {
    "pending": pb.TASK_STATE_SUBMITTED, "running": pb.TASK_STATE_WORKING, "paused": pb.TASK_STATE_WORKING,
    "succeeded": pb.TASK_STATE_COMPLETED, "failed": pb.TASK_STATE_FAILED, "canceled": pb.TASK_STATE_CANCELED,
}
_SKILL_KEYS = ("skill_id", "skillId", "skill")


def agent_card(config: GatewayConfig) -> pb.AgentCard:
    """The mesh's agent card: one skill per named route, JSON-RPC at ``{url}/a2a``."""
    skills = [
        pb.AgentSkill(id=name, name=name, description=route.description or f"Runs route {name}.",
                      tags=["asya", *route.actors], input_modes=["application/json"], output_modes=["application/json"])
        for name, route in sorted(config.mesh.routes.items())
    ]
    card = pb.AgentCard(
        name=f"asya-{config.namespace}", description=f"The named routes of actor mesh {config.namespace!r}.",
        version="1", skills=skills, default_input_modes=["application/json", "text/plain"],
        default_output_modes=["application/json"],
        capabilities=pb.AgentCapabilities(streaming=False, push_notifications=False),
        supported_interfaces=[pb.AgentInterface(url=f"{config.url}{A2A_PATH}", protocol_binding="JSONRPC",
                                                protocol_version="1.0")],
    )
    if config.auth == "oidc":
        card.security_schemes["oidc"].CopyFrom(pb.SecurityScheme(open_id_connect_security_scheme=pb.OpenIdConnectSecurityScheme(
            open_id_connect_url=f"{(config.oidc_issuer or '').rstrip('/')}/.well-known/openid-configuration")))
    return card


def _unsupported(what: str) -> NoReturn:
    raise UnsupportedOperationError(message=f"{what} is not offered by this agent")


class MeshAgent(RequestHandler):
    """A2A requests served by submitting envelopes and reading their status records."""

    def __init__(
        self, *, config: GatewayConfig, submitter: Submitter, store: StatusStore, views: RecordViews
    ) -> None:
        self.config = config
        self.submitter = submitter
        self.store = store
        self.views = views

    async def task_of(self, record: StatusRecord) -> pb.Task:
        task = pb.Task(id=record.id, context_id=record.id, status=pb.TaskStatus(state=_STATES.get(record.status)))
        if record.status == "succeeded":
            view = await self.views.render(record, children=False)
            if "payload" in view["data"]:
                task.artifacts.append(new_data_artifact("result", view["data"]["payload"], artifact_id="result"))
        elif record.status == "failed" and record.error:
            text = str(record.error.get("message") or record.error.get("reason") or "failed")
            task.status.message.CopyFrom(pb.Message(message_id=f"{record.id}-error", role=pb.ROLE_AGENT,
                                                    parts=[pb.Part(text=text)]))
        return task

    def _route_of(self, message: pb.Message) -> str:
        metadata = json.loads(json.dumps(dict(message.metadata))) if message.metadata else {}
        named = next((metadata[k] for k in _SKILL_KEYS if isinstance(metadata.get(k), str)), None)
        routes = self.config.mesh.routes
        if named is None:
            if len(routes) != 1:
                raise InvalidParamsError(message=f"name a skill in the message's metadata (`skill_id`); the skills "
                                                 f"are {sorted(routes)}")
            return next(iter(routes))
        if named not in routes:
            raise InvalidParamsError(message=f"no skill {named!r}; the skills are {sorted(routes)}")
        return named

    @staticmethod
    def _payload_of(message: pb.Message) -> dict[str, Any]:
        data = get_data_parts(message.parts)
        if data:
            if not isinstance(data[0], dict):
                raise InvalidParamsError(message="the message's data part must be a JSON object (the payload)")
            return data[0]
        text = "".join(get_text_parts(message.parts)).strip()
        if not text:
            return {}
        try:
            value = json.loads(text)
        except ValueError:
            raise InvalidParamsError(message="the message's text is not JSON; send a data part, or a JSON object "
                                             "as text") from None
        if not isinstance(value, dict):
            raise InvalidParamsError(message="the message's JSON text must be an object (the payload)")
        return value

    async def on_message_send(self, params: pb.SendMessageRequest, context: ServerCallContext) -> pb.Task:
        message = params.message
        name = self._route_of(message)
        submission = Submission(
            route_name=name, route=list(self.config.mesh.routes[name].actors), payload=self._payload_of(message),
            timeout_s=self.config.call_timeout_s,
            idempotency_key=f"a2a/{message.message_id}" if message.message_id else None,
        )
        try:
            envelope_id = await self.submitter.submit(submission)
        except ApiError as exc:
            raise InvalidParamsError(message=exc.message) from None
        record = None
        if not params.configuration.return_immediately:
            record = await wait_terminal(store=self.store, envelope_id=envelope_id,
                                         poll_s=self.config.poll_interval_s, timeout_s=self.config.call_timeout_s)
        record = record or await self.store.get(id=envelope_id)
        if record is None:
            raise TaskNotFoundError(message=f"task {envelope_id} has no record")
        return await self.task_of(record)

    async def _record(self, task_id: str) -> StatusRecord:
        try:
            check_envelope_id(task_id)
        except ApiError as exc:
            raise InvalidParamsError(message=exc.message) from None
        record = await self.store.get(id=task_id)
        if record is None:
            raise TaskNotFoundError(message=f"no task {task_id!r} (or it expired)")
        return record

    async def on_get_task(self, params: pb.GetTaskRequest, context: ServerCallContext) -> pb.Task | None:
        return await self.task_of(await self._record(params.id))

    async def on_cancel_task(self, params: pb.CancelTaskRequest, context: ServerCallContext) -> pb.Task | None:
        record = await self._record(params.id)
        after = await self.store.cancel(id=record.id)
        if after is not None and after != "canceled":
            raise TaskNotCancelableError(message=f"task {record.id} already {after}")
        return await self.task_of(await self._record(params.id))

    async def on_list_tasks(self, params: pb.ListTasksRequest, context: ServerCallContext) -> pb.ListTasksResponse:
        page = await self.store.list(status=None, limit=min(params.page_size or 50, 100), offset=0)
        return pb.ListTasksResponse(tasks=[await self.task_of(r) for r in page.records], total_size=page.total,
                                    page_size=len(page.records))

    async def on_message_send_stream(
        self, params: pb.SendMessageRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        _unsupported("streaming")
        yield

    async def on_subscribe_to_task(
        self, params: pb.SubscribeToTaskRequest, context: ServerCallContext
    ) -> AsyncGenerator[Any]:
        _unsupported("subscribing to a task")
        yield

    async def on_create_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise PushNotificationNotSupportedError()

    async def on_get_task_push_notification_config(self, params: Any, context: ServerCallContext) -> Any:
        raise PushNotificationNotSupportedError()

    async def on_list_task_push_notification_configs(self, params: Any, context: ServerCallContext) -> Any:
        raise PushNotificationNotSupportedError()

    async def on_delete_task_push_notification_config(self, params: Any, context: ServerCallContext) -> None:
        raise PushNotificationNotSupportedError()

    async def on_get_extended_agent_card(self, params: Any, context: ServerCallContext) -> Any:
        _unsupported("an extended agent card")
