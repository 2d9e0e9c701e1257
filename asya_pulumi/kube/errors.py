"""The local control plane's one error type: a build, a start or a request that failed, said in one line."""

from __future__ import annotations


class KubeError(Exception):
    """``asya kube`` could not build, start, reach or apply to the local control plane; the message names the fix."""
