"""``asya-sidecar``: read SidecarConfig from the environment and run until SIGTERM (exit 0) or a fatal error.

``asya-sidecar --version`` prints the runtime's version and exits: the image's entrypoint is this command, so an
image says which runtime it carries without a broker (scripts/build-image's checks, ``docker run IMAGE --version``).
"""

from __future__ import annotations

import asyncio
import os
import sys

from pydantic import ValidationError

from asya_runtime import __version__
from asya_runtime.config import SidecarConfig
from asya_runtime.sidecar import logs
from asya_runtime.sidecar.app import Sidecar
from asya_runtime.sidecar.host import exit_now


def main() -> int:
    if sys.argv[1:] == ["--version"]:
        print(f"asya-sidecar {__version__}")
        return 0
    try:
        config = SidecarConfig.from_env(os.environ)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'config'}: {e['msg']}" for e in exc.errors())
        print(f"asya-sidecar: invalid configuration: {problems} (see docs/sidecar.md)", file=sys.stderr)
        return 2
    logs.configure(actor=config.actor, namespace=config.namespace, mode=config.mode, level=logs.level_of(config))
    return asyncio.run(Sidecar(config).run())


if __name__ == "__main__":
    exit_now(main())
