"""What ``asya dev`` runs: for each replica of each actor a handler server and a sidecar, plus the two sinks.

The sidecar's environment is a :class:`SidecarConfig` built from the actor's spec (``concurrency``, ``resiliency``)
and rendered with :meth:`SidecarConfig.to_env`, the same path the components take for the Deployment.

Which handler server runs an actor is decided by the handler's module file in the pipeline directory:
``handler: chunks.countWords`` runs the Node.js server (``handler_server.js``) when the directory holds
``chunks.js`` and no ``chunks.py`` (it is given ``ASYA_HANDLER=chunks.js:countWords``, the Node server's file
form), and the Python server otherwise. The manifest is the same for both languages; in the cluster the image
decides (a Node.js image runs the Node server).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from asya_pulumi.cli.aws import Endpoints
from asya_pulumi.cli.errors import UsageError
from asya_pulumi.local.actor_process import HandlerSettings
from asya_pulumi.local.queues import mesh_sinks
from asya_pulumi.local.supervisor import ProcessSpec
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.mesh import MeshSpec
from asya_runtime.config import SidecarConfig

#: The sidecar logs this (JSON) event right before its first receive: from then on it consumes its queue.
SIDECAR_READY_MARKER = '"event": "started"'


@dataclass(frozen=True)
class DevPlan:
    """Everything ``asya dev`` needs to start the mesh's processes."""

    mesh: MeshSpec
    pipeline_dir: Path
    endpoints: Endpoints
    bucket: str
    replicas: Mapping[str, int]
    socket_dir: Path


def handler_language(*, actor: AsyncActorSpec, pipeline_dir: Path) -> Literal["python", "node"]:
    """``"node"`` when the handler's module is a ``.js`` file of the pipeline directory, else ``"python"``."""
    module = actor.handler.split(".", 1)[0]
    if (pipeline_dir / f"{module}.js").is_file() and not (pipeline_dir / f"{module}.py").is_file():
        return "node"
    return "python"


def process_specs(plan: DevPlan) -> list[ProcessSpec]:
    """Every process of the local mesh, named ``{actor}-{replica}-{handler|sidecar}`` (also their log names)."""
    specs: list[ProcessSpec] = []
    for actor in plan.mesh.actors:
        for replica in range(plan.replicas.get(actor.name, 1)):
            socket_path = str(plan.socket_dir / f"{actor.name}-{replica}.sock")
            specs.append(_handler_spec(plan, actor=actor, replica=replica, socket_path=socket_path))
            config = _sidecar_config(plan, actor=actor.name, mode="actor", socket_path=socket_path)
            config = config.model_copy(update={"concurrency": actor.concurrency, "resiliency": actor.resiliency})
            specs.append(_sidecar_spec(plan, name=f"{actor.name}-{replica}-sidecar", group=actor.name, config=config))
    for sink in mesh_sinks():
        config = _sidecar_config(plan, actor=sink.name, mode=sink.name, socket_path=str(plan.socket_dir / "unused"))
        config = config.model_copy(update={"concurrency": sink.concurrency, "resiliency": sink.resiliency})
        for replica in range(plan.replicas.get(sink.name, 1)):
            specs.append(_sidecar_spec(plan, name=f"{sink.name}-{replica}", group=sink.name, config=config))
    return specs


def _base_env() -> dict[str, str]:
    """The parent's environment minus anything that would point a child at another mesh or account."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ASYA_", "AWS_"))} | {"PYTHONUNBUFFERED": "1"}


def _handler_spec(plan: DevPlan, *, actor: AsyncActorSpec, replica: int, socket_path: str) -> ProcessSpec:
    language = handler_language(actor=actor, pipeline_dir=plan.pipeline_dir)
    module, _, attribute = actor.handler.partition(".")
    handler = f"{module}.js:{attribute}" if language == "node" else actor.handler
    try:
        argv = HandlerSettings(handler=handler, language=language).argv()
    except RuntimeError as exc:  # no `node` on PATH
        raise UsageError(f"actor {actor.name!r}: {exc}") from None
    env = _base_env() | dict(actor.env) | {
        "ASYA_HANDLER": handler,
        "ASYA_SOCKET_PATH": socket_path,
        "ASYA_HANDLER_CONCURRENCY": str(actor.concurrency),
        "ASYA_HANDLER_PATH": str(plan.pipeline_dir),
    }
    return ProcessSpec(
        name=f"{actor.name}-{replica}-handler", argv=argv, env=env, cwd=plan.pipeline_dir, group=actor.name
    )


def _sidecar_config(plan: DevPlan, *, actor: str, mode: str, socket_path: str) -> SidecarConfig:
    return SidecarConfig.model_validate(
        {
            "actor": actor,
            "namespace": plan.mesh.namespace,
            "mode": mode,
            "region": plan.endpoints.region,
            "sqs_endpoint": plan.endpoints.sqs_endpoint,
            "s3_endpoint": plan.endpoints.s3_endpoint,
            "result_bucket": plan.bucket,
            "socket_path": socket_path,
            "metrics_port": 0,  # many replicas on one host cannot share a port; progress reads the queues instead
        }
    )


def _sidecar_spec(plan: DevPlan, *, name: str, group: str, config: SidecarConfig) -> ProcessSpec:
    env = _base_env() | config.to_env()
    if plan.endpoints.is_local:
        env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    else:
        env |= {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "asya_runtime.sidecar"],
        env=env,
        cwd=plan.pipeline_dir,
        group=group,
        ready_marker=SIDECAR_READY_MARKER,
    )
