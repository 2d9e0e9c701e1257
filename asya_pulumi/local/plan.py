"""What a local mesh runs: for each replica of each actor a handler server and a sidecar, plus the two sinks.

``asya dev`` and the benchmarks turn a :class:`MeshPlan` into :class:`ProcessSpec` s with :func:`process_specs`;
the tests' :class:`~asya_pulumi.testing.ActorProcess` builds one actor's pair with the same two
functions, :func:`handler_process` and :func:`sidecar_process`. The environments are rendered, never typed out:
the sidecar's from :func:`asya_pulumi.objects.sidecar.sidecar_config` (as the Deployment's is), the handler server's
from a :class:`HandlerServerConfig` built by :func:`asya_pulumi.objects.pod.handler_server_config` (as the pod's is), so
a local handler server gets the same concurrency and ``ASYA_HANDLER_DRAIN_S`` as in the cluster. (Unlike a pod's
grace period, the supervisor gives a stopping process 10 s before SIGKILL, :meth:`Supervisor.stop`: a local stop
does not wait for a long call to finish; its message is redelivered.)

Which handler server runs an actor is the spec's ``runtime`` (python | node), as in the cluster. When a manifest
leaves it out, the handler's module file in the pipeline directory decides: ``handler: chunks.countWords`` runs
the Node.js server (``handler_server.js``) when the directory holds ``chunks.js`` and no ``chunks.py``, the
Python server otherwise. The cluster cannot look at those files (they are in the image), so a Node.js actor's
manifest says ``runtime: node``; the server's handler form (``chunks.js:countWords``) is derived in one place,
:func:`asya_pulumi.objects.pod.handler_server_config`.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import asya_runtime
from asya_pulumi.local.processes import ProcessSpec
from asya_pulumi.local.queues import mesh_sinks
from asya_pulumi.objects.pod import handler_server_config
from asya_pulumi.objects.sidecar import sidecar_config
from asya_pulumi.objects.triggers import s3_trigger_targets
from asya_pulumi.spec.actor import AsyncActorSpec
from asya_pulumi.spec.inputs import plain_text
from asya_pulumi.spec.manifest import runtime_in_dir
from asya_pulumi.spec.mesh import MeshSpec
from asya_pulumi.spec.sink import SinkSpec
from asya_runtime.config import SidecarConfig
from asya_runtime.handler_server import HandlerServerConfig
from asya_runtime.sidecar.host import ENV_START_FILE

__all__ = [
    "SIDECAR_READY_MARKER",
    "HandlerLanguage",
    "MeshPlan",
    "actor_handler_process",
    "handler_argv",
    "handler_language",
    "handler_process",
    "process_specs",
    "sidecar_host_process",
    "sidecar_process",
]

RUNTIME_DIR = Path(asya_runtime.__file__).resolve().parent
#: The sidecar logs this (JSON) event right before its first receive: from then on it consumes its queue.
SIDECAR_READY_MARKER = '"event": "started"'
#: The ``group`` of the processes hosting several sidecars (``group`` is otherwise the actor's name).
SIDECAR_HOST_GROUP = "sidecars"
#: Credentials a local broker accepts (it checks none); real AWS gets the caller's own ``AWS_*`` environment.
LOCAL_AWS_ENV = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

HandlerLanguage = Literal["python", "node"]


@dataclass(frozen=True)
class MeshPlan:
    """Everything needed to start a mesh's processes. ``sqs_endpoint`` None means real AWS in ``region``."""

    mesh: MeshSpec
    pipeline_dir: Path
    region: str
    sqs_endpoint: str | None
    s3_endpoint: str | None
    bucket: str
    replicas: Mapping[str, int]
    socket_dir: Path
    #: Run the sidecars of each replica index in one process (see :func:`process_specs`).
    shared_sidecars: bool = True
    #: With shared sidecars: the file whose appearance starts them (None: they start at once).
    sidecar_start_file: Path | None = None
    #: The status store's settings every sidecar gets (``asya dev --gateway``:
    #: :func:`asya_pulumi.local.gateway.status_settings`); empty: no status store.
    status_env: Mapping[str, str] = field(default_factory=dict)


def handler_language(*, actor: AsyncActorSpec, pipeline_dir: Path) -> HandlerLanguage:
    """The actor's handler language, by the rule the cluster uses too (:func:`asya_pulumi.spec.runtime_in_dir`)."""
    return runtime_in_dir(actor, pipeline_dir=pipeline_dir)


def handler_argv(language: HandlerLanguage, *, python: str = sys.executable) -> list[str]:
    """The command that starts the runtime's handler server for ``language``; RuntimeError without ``node``."""
    if language == "node":
        node = shutil.which("node")
        if node is None:
            raise RuntimeError("a Node.js handler needs `node` (>= 18) on PATH")
        return [node, str(RUNTIME_DIR / "handler_server.js")]
    return [python, str(RUNTIME_DIR / "handler_server.py")]


def base_env() -> dict[str, str]:
    """The parent's environment minus anything that would point a child at another mesh or account."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("ASYA_", "AWS_"))} | {"PYTHONUNBUFFERED": "1"}


def handler_process(
    *,
    name: str,
    group: str,
    config: HandlerServerConfig,
    argv: list[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
) -> ProcessSpec:
    """A handler server: ``env`` (the user's variables) under ``config``'s; ready once it answers ``health``."""
    return ProcessSpec(
        name=name,
        argv=argv,
        env=base_env() | dict(env or {}) | config.to_env(),
        cwd=cwd,
        group=group,
        health_socket=config.socket_path,
    )


def sidecar_process(
    *,
    name: str,
    group: str,
    config: SidecarConfig,
    cwd: Path,
    aws_env: Mapping[str, str] | None = None,
    restart: bool = True,
) -> ProcessSpec:
    """A sidecar run as ``asya-sidecar`` would run in its container; ready once it logs its first receive."""
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "asya_runtime.sidecar"],
        env=base_env() | dict(aws_env or {}) | config.to_env(),
        cwd=cwd,
        group=group,
        ready_marker=SIDECAR_READY_MARKER,
        restart=restart,
    )


def sidecar_host_process(
    *,
    name: str,
    configs: Sequence[SidecarConfig],
    cwd: Path,
    aws_env: Mapping[str, str] | None = None,
    start_file: Path | None = None,
) -> ProcessSpec:
    """One process running every sidecar of ``configs`` on one event loop (:mod:`asya_runtime.sidecar.host`).

    Each sidecar is the code a pod runs, with its own queue, clients and settings; only the start-up (importing
    aiobotocore and pydantic) is paid once. With ``start_file`` the process imports at once and starts the sidecars
    when that file exists. Ready once every sidecar has logged that it consumes its queue; the supervisor restarts
    the whole process when it exits, like any other.
    """
    start = {ENV_START_FILE: str(start_file)} if start_file is not None else {}
    return ProcessSpec(
        name=name,
        argv=[sys.executable, "-m", "asya_runtime.sidecar.host", *(json.dumps(c.to_env()) for c in configs)],
        env=base_env() | dict(aws_env or {}) | start,
        cwd=cwd,
        group=SIDECAR_HOST_GROUP,
        ready_marker=SIDECAR_READY_MARKER,
        ready_count=len(configs),
    )


def process_specs(plan: MeshPlan) -> list[ProcessSpec]:
    """Every process of the local mesh: a handler server per actor replica, named ``{actor}-{replica}-handler``,
    and the sidecars (the actors' and the two sinks').

    With ``plan.shared_sidecars`` (``asya dev``'s default) the sidecars of replica *r* of every actor and sink run
    in one process, ``sidecars-{r}``: a mesh of any size starts one sidecar process per replica rather than one
    per actor. Otherwise each sidecar is its own process, ``{actor}-{replica}-sidecar`` (``{sink}-{replica}``),
    exactly as pods run them. Names are also the processes' log file names.

    Raises RuntimeError when an actor's handler server cannot be started here (no ``node`` for a Node.js handler).
    """
    specs: list[ProcessSpec] = []
    sidecars: list[tuple[str, int, SidecarConfig]] = []  # (process name when alone, replica, config)
    for actor in plan.mesh.actors:
        for replica in range(plan.replicas.get(actor.name, 1)):
            socket_path = str(plan.socket_dir / f"{actor.name}-{replica}.sock")
            specs.append(actor_handler_process(actor=actor, pipeline_dir=plan.pipeline_dir,
                                               name=f"{actor.name}-{replica}-handler", socket_path=socket_path))
            config = _sidecar_config(plan, spec=actor, socket_path=socket_path)
            sidecars.append((f"{actor.name}-{replica}-sidecar", replica, config))
    for sink in mesh_sinks():
        config = _sidecar_config(plan, spec=sink, socket_path=str(plan.socket_dir / "unused"))
        for replica in range(plan.replicas.get(sink.name, 1)):
            sidecars.append((f"{sink.name}-{replica}", replica, config))
    if not plan.shared_sidecars:
        return specs + [
            sidecar_process(name=name, group=config.actor, config=config, cwd=plan.pipeline_dir, aws_env=_aws_env(plan))
            for name, _, config in sidecars
        ]
    for replica in sorted({r for _, r, _ in sidecars}):
        configs = [config for _, r, config in sidecars if r == replica]
        specs.append(
            sidecar_host_process(
                name=f"sidecars-{replica}", configs=configs, cwd=plan.pipeline_dir, aws_env=_aws_env(plan),
                start_file=plan.sidecar_start_file,
            )
        )
    return specs


def pod_process_specs(plan: MeshPlan, *, member: str, pod: str) -> list[ProcessSpec]:
    """The processes of one pod of ``member`` (an actor, or a sink), as its containers run: the actor's handler
    server ``{pod}-handler`` and its sidecar ``{pod}-sidecar``; a sink's pod is its sidecar alone.

    ``asya dev --kube`` starts these for each pod the control plane runs (:mod:`asya_pulumi.kube.dev_mesh`).
    """
    sinks = {sink.name: sink for sink in mesh_sinks()}
    if member in sinks:
        config = _sidecar_config(plan, spec=sinks[member], socket_path=str(plan.socket_dir / "unused"))
        return [sidecar_process(name=f"{pod}-sidecar", group=member, config=config, cwd=plan.pipeline_dir,
                                aws_env=_aws_env(plan))]
    actor = plan.mesh.actor(member)
    socket_path = str(plan.socket_dir / f"{pod}.sock")
    config = _sidecar_config(plan, spec=actor, socket_path=socket_path)
    return [
        actor_handler_process(actor=actor, pipeline_dir=plan.pipeline_dir, name=f"{pod}-handler",
                              socket_path=socket_path),
        sidecar_process(name=f"{pod}-sidecar", group=member, config=config, cwd=plan.pipeline_dir,
                        aws_env=_aws_env(plan)),
    ]


def actor_handler_process(*, actor: AsyncActorSpec, pipeline_dir: Path, name: str, socket_path: str) -> ProcessSpec:
    """``actor``'s handler server as ``asya dev`` runs it: its language's server, the handler in that server's
    form, ``pipeline_dir`` as working directory and search path, the actor's own variables. The pre-flight check
    (:mod:`asya_pulumi.checks.handlers`) runs this same command with ``--check``.

    Raises RuntimeError when the server cannot run here (no ``node`` for a Node.js handler)."""
    language = handler_language(actor=actor, pipeline_dir=pipeline_dir)
    try:
        argv = handler_argv(language)
    except RuntimeError as exc:  # no `node` on PATH
        raise RuntimeError(f"actor {actor.name!r}: {exc}") from None
    config = handler_server_config(
        spec=actor,
        runtime=language,
        socket_path=socket_path,
        search_path=(str(pipeline_dir),),
    )
    return handler_process(
        name=name, group=actor.name, config=config, argv=argv,
        cwd=pipeline_dir, env=local_env(actor),
    )


def local_env(actor: AsyncActorSpec) -> dict[str, str]:
    """The handler's own variables for a local run: ``env`` and ``secretEnv`` as plain text.

    ``valueFrom`` / ``secretRefs`` name Kubernetes objects that do not exist locally: set those variables in the
    shell that runs ``asya dev`` (the parent's environment reaches the handler). A Pulumi Output is refused.
    """
    return plain_text(actor.env, what="env") | plain_text(actor.secret_env, what="secretEnv")


def _sidecar_config(plan: MeshPlan, *, spec: AsyncActorSpec | SinkSpec, socket_path: str) -> SidecarConfig:
    """The pod's sidecar settings (:func:`~asya_pulumi.objects.sidecar.sidecar_config`), here: local endpoints, and
    the status store's settings when the plan has one, and the S3 triggers whose route starts at the actor."""
    triggers = s3_trigger_targets(plan.mesh, actor=spec.name, mesh_bucket=plan.bucket)
    config = sidecar_config(
        spec,
        namespace=plan.mesh.namespace,
        region=plan.region,
        sqs_endpoint=plan.sqs_endpoint,
        s3_endpoint=plan.s3_endpoint,
        result_bucket=plan.bucket,
        socket_path=socket_path,
        hop_budget=plan.mesh.hop_budget,
        metrics_port=0,  # many replicas on one host cannot share a port; progress reads the queues instead
        **({"s3_triggers": triggers} if triggers else {}),
    )
    return SidecarConfig.from_env(config.to_env() | dict(plan.status_env)) if plan.status_env else config


def _aws_env(plan: MeshPlan) -> dict[str, str]:
    if plan.sqs_endpoint is not None:
        return dict(LOCAL_AWS_ENV)
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}
