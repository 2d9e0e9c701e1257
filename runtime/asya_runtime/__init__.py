"""asya runtime: the sidecar that moves envelopes between SQS queues, the sinks, and the handler server."""

import importlib.metadata


def _version() -> str:
    """The installed distribution's version (runtime/pyproject.toml is the one place it is written);
    ``0+unknown`` when the package runs from a source tree that was never installed (e.g. on ``PYTHONPATH``)."""
    try:
        return importlib.metadata.version("asya-runtime")
    except importlib.metadata.PackageNotFoundError:
        return "0+unknown"


__version__ = _version()
