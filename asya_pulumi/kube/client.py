"""A small client for the local control plane's apiserver: discovery, server-side apply, get, list, watch, delete.

Why not the official ``kubernetes`` package: what the control plane and its tests need is five verbs over HTTPS
with a client certificate, and urllib3 (which botocore already brings) does that in a page; the official client
would add a large generated package to every install of the ``kube`` extra for it.

Apply is what ``kubectl apply --server-side`` and Pulumi's Kubernetes provider do: ``PATCH`` with
``application/apply-patch+yaml`` and ``fieldValidation=Strict``, so an unknown or duplicated field is refused, as
the apiserver refuses it for ``pulumi up``, instead of being silently pruned. A refusal raises :class:`ApplyError`
with the apiserver's own message.
"""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import urllib3

from asya_pulumi.kube.errors import KubeError

__all__ = ["ApplyError", "KubeClient", "Resource"]

FIELD_MANAGER = "asya"


class ApplyError(KubeError):
    """The apiserver refused an object; ``status`` is its HTTP status, the message is its own."""

    def __init__(self, message: str, *, status: int, reason: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Resource:
    """Where the apiserver serves one kind: ``/api/v1`` or ``/apis/<group>/<version>``, plural, namespaced."""

    prefix: str
    plural: str
    namespaced: bool

    def path(self, *, namespace: str | None = None, name: str | None = None) -> str:
        parts = [self.prefix]
        if self.namespaced and namespace:
            parts += ["namespaces", quote(namespace, safe="")]
        parts.append(self.plural)
        if name:
            parts.append(quote(name, safe=""))
        return "/".join(parts)


class KubeClient:
    """HTTPS to ``server`` as the identity of ``cert``/``key``, trusting only ``ca``."""

    def __init__(self, *, server: str, ca: str, cert: str, key: str, timeout_s: float = 30.0) -> None:
        context = ssl.create_default_context(cafile=ca)
        context.load_cert_chain(cert, key)
        self._server = server.rstrip("/")
        self._http = urllib3.PoolManager(ssl_context=context, timeout=urllib3.Timeout(total=timeout_s),
                                         retries=False)
        self._resources: dict[tuple[str, str], Resource] = {}

    # -- raw requests --------------------------------------------------------------------------------------------

    def request(self, method: str, path: str, *, body: Any = None, query: dict[str, str] | None = None,
                content_type: str = "application/json", timeout_s: float | None = None) -> tuple[int, Any]:
        """``(status, decoded JSON body or text)``; transport failures raise :class:`KubeError`."""
        url = self._server + path + (f"?{urlencode(query)}" if query else "")
        data = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        try:
            response = self._http.request(
                method, url, body=data, headers={"Content-Type": content_type, "Accept": "application/json"},
                timeout=None if timeout_s is None else urllib3.Timeout(total=timeout_s),
            )
        except urllib3.exceptions.HTTPError as exc:
            raise KubeError(f"{method} {path}: the apiserver at {self._server} did not answer ({exc})") from exc
        text = response.data.decode("utf-8", "replace")
        try:
            return response.status, json.loads(text)
        except ValueError:
            return response.status, text

    def get_raw(self, path: str, *, timeout_s: float | None = None) -> tuple[int, Any]:
        return self.request("GET", path, timeout_s=timeout_s)

    # -- discovery -----------------------------------------------------------------------------------------------

    def resource(self, api_version: str, kind: str) -> Resource:
        """Where ``kind`` of ``api_version`` is served, from the apiserver's discovery (cached per client)."""
        key = (api_version, kind)
        if key not in self._resources:
            prefix = "/api/v1" if api_version == "v1" else f"/apis/{api_version}"
            status, listing = self.get_raw(prefix)
            if status != 200 or not isinstance(listing, dict):
                raise ApplyError(f"{kind} ({api_version}): the apiserver serves no {api_version} "
                                 f"(is its CRD installed?)", status=status, reason="NotFound")
            for entry in listing.get("resources", []):
                if "/" not in entry["name"]:
                    self._resources[(api_version, entry["kind"])] = Resource(prefix, entry["name"],
                                                                             entry["namespaced"])
            if key not in self._resources:
                raise ApplyError(f"{kind} ({api_version}): not served by this apiserver", status=404,
                                 reason="NotFound")
        return self._resources[key]

    def forget_discovery(self) -> None:
        """Drop cached discovery (after installing CRDs)."""
        self._resources.clear()

    # -- verbs ---------------------------------------------------------------------------------------------------

    def apply(self, obj: dict[str, Any], *, field_manager: str = FIELD_MANAGER, dry_run: bool = False) -> Any:
        """Server-side apply of ``obj`` with strict field validation; the object as stored, or :class:`ApplyError`."""
        resource = self.resource(obj["apiVersion"], obj["kind"])
        metadata = obj.get("metadata", {})
        path = resource.path(namespace=metadata.get("namespace") or "default", name=metadata["name"])
        query = {"fieldManager": field_manager, "fieldValidation": "Strict", "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        status, body = self.request("PATCH", path, body=obj, query=query,
                                    content_type="application/apply-patch+yaml")
        if status >= 300:
            raise ApplyError(f"{describe(obj)}: {_message(body)}", status=status, reason=_reason(body))
        return body

    def get(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> dict[str, Any] | None:
        status, body = self.get_raw(self.resource(api_version, kind).path(namespace=namespace, name=name))
        if status == 404:
            return None
        if status >= 300:
            raise ApplyError(f"get {kind} {name}: {_message(body)}", status=status, reason=_reason(body))
        return dict(body)

    def list(self, api_version: str, kind: str, *, namespace: str | None = None,
             label_selector: str | None = None) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        status, body = self.request("GET", self.resource(api_version, kind).path(namespace=namespace), query=query)
        if status >= 300:
            raise ApplyError(f"list {kind}: {_message(body)}", status=status, reason=_reason(body))
        return list(body.get("items", []))

    def delete(self, api_version: str, kind: str, name: str, *, namespace: str | None = None) -> bool:
        """Delete (foreground propagation); False if it did not exist."""
        path = self.resource(api_version, kind).path(namespace=namespace, name=name)
        status, body = self.request("DELETE", path, body={"propagationPolicy": "Foreground"})
        if status == 404:
            return False
        if status >= 300:
            raise ApplyError(f"delete {kind} {name}: {_message(body)}", status=status, reason=_reason(body))
        return True

    def watch(self, api_version: str, kind: str, *, namespace: str | None = None,
              timeout_s: int = 60) -> Iterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` events of ``kind``, starting with the current objects as ADDED, for ``timeout_s``."""
        resource = self.resource(api_version, kind)
        query = urlencode({"watch": "1", "timeoutSeconds": str(timeout_s), "allowWatchBookmarks": "false"})
        response = self._http.request("GET", f"{self._server}{resource.path(namespace=namespace)}?{query}",
                                      preload_content=False, timeout=urllib3.Timeout(connect=10, read=timeout_s + 10))
        try:
            buffer = b""
            for chunk in response.stream(4096):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    if line.strip():
                        event = json.loads(line)
                        yield event["type"], event["object"]
        finally:
            response.release_conn()

    def wait_for(self, check: Any, *, what: str, timeout_s: float, interval_s: float = 0.5) -> Any:
        """Call ``check()`` until it returns something truthy; :class:`KubeError` naming ``what`` on timeout."""
        deadline = time.monotonic() + timeout_s
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = check()
            except KubeError as exc:
                last = exc
            else:
                if last:
                    return last
            time.sleep(interval_s)
        raise KubeError(f"timed out after {timeout_s:.0f} s waiting for {what} (last: {last})")


def conditions(obj: dict[str, Any] | None) -> dict[str, str]:
    """The object's ``status.conditions`` as type -> status.

    The apiserver writes ``status`` and ``conditions`` as explicit nulls on an object no controller has reached yet,
    so a missing key and a null one both mean "no conditions".
    """
    return {c["type"]: c["status"] for c in ((obj or {}).get("status") or {}).get("conditions") or []}


def describe(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` for messages."""
    metadata = obj.get("metadata", {})
    where = f"{metadata['namespace']}/" if metadata.get("namespace") else ""
    return f"{obj.get('kind')} {where}{metadata.get('name')}"


def _message(body: Any) -> str:
    if isinstance(body, dict):
        return str(body.get("message") or body)
    return str(body).strip()[:500]


def _reason(body: Any) -> str:
    return str(body.get("reason", "")) if isinstance(body, dict) else ""
