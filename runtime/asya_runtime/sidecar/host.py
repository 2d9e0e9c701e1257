"""Several sidecars in one process: what ``asya dev`` runs locally so that start-up does not grow with the actors.

    python -m asya_runtime.sidecar.host CONFIG_ENV_JSON [CONFIG_ENV_JSON ...]

Each argument is one sidecar's settings as the environment a pod would give it (``SidecarConfig.to_env()``, as a
JSON object); the AWS credentials come from the process environment, as in a pod. Every sidecar is the unchanged
:class:`~asya_runtime.sidecar.app.Sidecar` — its own queue, clients, in-flight table and settings — and they share
one event loop. What is shared is the cost of starting: aiobotocore, aiohttp and pydantic are imported once instead
of once per actor (about 1.4 s of CPU each on the 2-core dev machine).

In a cluster every pod runs one sidecar (``python -m asya_runtime.sidecar``); this host is for local runs only.

Signals and exits: SIGTERM/SIGINT stops every sidecar (each drains and requeues as it would alone) and the host
exits 0 once all are done. A sidecar that fails stops the others and the host exits 1: the supervisor restarts the
whole host, as Kubernetes restarts a crashed container. Log lines carry each sidecar's own ``actor`` and ``mode``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from pydantic import ValidationError

from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import logs

__all__ = ["ENV_START_FILE", "exit_now", "main", "parse_configs", "run_all", "wait_for_file"]

#: Optional: a file whose appearance starts the sidecars. ``asya dev`` starts this process together with the broker
#: so that its imports (the bulk of its start-up) overlap the broker's, and creates the file once the queues exist.
ENV_START_FILE = "ASYA_SIDECAR_HOST_START_FILE"
START_POLL_S = 0.02


def parse_configs(arguments: Sequence[str]) -> list[SidecarConfig]:
    """One :class:`SidecarConfig` per JSON-object argument; ValueError naming the argument that is wrong."""
    configs = []
    for index, text in enumerate(arguments, start=1):
        try:
            env = json.loads(text)
            if not isinstance(env, dict):
                raise ValueError("not a JSON object")
            configs.append(SidecarConfig.from_env({str(k): str(v) for k, v in env.items()}))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"sidecar {index} of {len(arguments)}: {problems}") from None
        except ValueError as exc:
            raise ValueError(f"sidecar {index} of {len(arguments)}: {exc}") from None
    return configs


async def run_all(configs: Sequence[SidecarConfig]) -> int:
    """Run one :class:`Sidecar` per config in this loop until SIGTERM/SIGINT (0) or until one fails (1)."""
    from asya_runtime.sidecar.app import Sidecar  # here: the local planner reads this module's constants cheaply

    sidecars = [Sidecar(config) for config in configs]
    loop = asyncio.get_running_loop()

    def stop_all() -> None:
        for sidecar in sidecars:
            token = logs.TASK_CONTEXT.set(_log_fields(sidecar.config))
            try:
                sidecar.stop()
            finally:
                logs.TASK_CONTEXT.reset(token)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop_all)
    tasks = []
    for sidecar in sidecars:
        config = sidecar.config
        token = logs.TASK_CONTEXT.set(_log_fields(config))
        try:  # the task copies the context now: every log line of this sidecar names its actor
            tasks.append(asyncio.create_task(sidecar.run(handle_signals=False), name=f"sidecar-{config.actor}"))
        finally:
            logs.TASK_CONTEXT.reset(token)
    status = 0
    pending = set(tasks)
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.cancelled() or task.exception() is not None:
                if status == 0:
                    logs.error(
                        "a sidecar failed; stopping the others",
                        sidecar=task.get_name(),
                        error=repr(task.exception()) if not task.cancelled() else "cancelled",
                    )
                status = 1
                stop_all()
    return status


def _log_fields(config: SidecarConfig) -> dict[str, str]:
    return {"actor": config.actor, "mode": config.mode}


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments:
        print("asya-sidecar-host: pass one JSON object of sidecar settings per sidecar", file=sys.stderr)
        return 2
    try:
        configs = parse_configs(arguments)
    except ValueError as exc:
        print(f"asya-sidecar-host: invalid configuration: {exc} (see docs/sidecar.md)", file=sys.stderr)
        return 2
    level = min(logs.level_of(config) for config in configs)  # one logger: the most verbose sidecar's level
    logs.configure(actor="host", namespace=configs[0].namespace, mode="host", level=level)  # lines override both
    start_file = os.environ.get(ENV_START_FILE)
    if start_file:
        importlib.import_module("asya_runtime.sidecar.app")  # the slow part of starting: done while waiting
        wait_for_file(Path(start_file))
    return asyncio.run(run_all(configs))


def wait_for_file(path: Path) -> None:
    """Block until ``path`` exists: the imports are done, and the sidecars start once their queues exist."""
    waited = False
    while not path.exists():
        if not waited:
            logs.event("waiting for the queues", start_file=str(path))
            waited = True
        time.sleep(START_POLL_S)


def exit_now(code: int) -> NoReturn:
    """Flush and end the process at once: every sidecar is drained and its clients are closed, and the
    interpreter's own teardown of aiobotocore/aiohttp takes another 0.5 s or more on a busy machine (measured)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
