"""Pod options of an actor beyond image and handler: env from Secrets/ConfigMaps, volumes, image pulls, priority.

Each model mirrors the Kubernetes field of the same name (``valueFrom.secretKeyRef``, ``persistentVolumeClaim``,
...) so a manifest reads like the Deployment it becomes. Volumes are the kinds Pod Security ``restricted`` allows
(emptyDir, PVC, configMap, secret); ``hostPath`` is refused here, with the reason, rather than by the admission
controller at deploy time. The paths and volume names the pod itself uses are reserved.
"""

from __future__ import annotations

import posixpath
import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from asya_pulumi.spec.base import SpecModel
from asya_pulumi.spec.limits import parse_quantity
from asya_runtime.config import DEFAULT_SOCKET_PATH

#: Where the handler-server ConfigMap is mounted in the handler container (pod.py mounts it here).
HANDLER_SERVER_DIR = "/opt/asya"
#: The pod's own volumes and their mount paths: an actor's volume may take neither.
RESERVED_VOLUMES = {
    "socket": posixpath.dirname(DEFAULT_SOCKET_PATH),
    "handler-server": HANDLER_SERVER_DIR,
    "tmp": "/tmp",
}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
#: Volume kinds Pod Security ``restricted`` refuses, each with what to use instead.
_REFUSED_VOLUMES = {
    "hostPath": "a node's filesystem breaks Pod Security `restricted`; use a persistentVolumeClaim or emptyDir",
}


def check_object_name(value: str, *, what: str) -> str:
    """A Kubernetes object name (DNS-1123 subdomain: lowercase, digits, '-', '.', at most 253 characters)."""
    if len(value) > 253 or not _DNS_SUBDOMAIN.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a Kubernetes object name; use lowercase letters, digits, '-' "
                         f"and '.', at most 253 characters")
    return value


class KeyRef(SpecModel):
    """One key of a Secret or ConfigMap in the actor's namespace (Kubernetes' ``SecretKeySelector``)."""

    name: str = Field(description="The Secret's / ConfigMap's name.")
    key: str = Field(description="The key inside it.")
    optional: bool | None = Field(None, description="None/false: the pod does not start while the key is missing.")

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_object_name(value, what="name")

    @field_validator("key")
    @classmethod
    def _check_key(cls, value: str) -> str:
        if len(value) > 253 or not _KEY.fullmatch(value):
            raise ValueError(f"key {value!r} is not a Secret/ConfigMap key; use letters, digits, '-', '_', '.'")
        return value


class EnvSource(SpecModel):
    """``valueFrom`` of one env variable: exactly one of ``secretKeyRef`` and ``configMapKeyRef``.

    The value stays in its Secret: the Deployment names the Secret and key, never the value.
    """

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom takes exactly one of secretKeyRef and configMapKeyRef")
        return self


class EmptyDirSource(SpecModel):
    """Scratch space that lives as long as the pod; ``sizeLimit`` is required so a full cache evicts one pod,
    not the node's other tenants."""

    size_limit: str = Field(description="e.g. 20Gi: over it the kubelet evicts the pod.")
    medium: Literal["Memory"] | None = Field(None, description="Memory: tmpfs, counted against the memory limit.")

    @field_validator("size_limit")
    @classmethod
    def _check_size(cls, value: str) -> str:
        parse_quantity(value, what="sizeLimit")
        return value


class PvcSource(SpecModel):
    claim_name: str = Field(description="A PersistentVolumeClaim in the actor's namespace (created elsewhere).")
    read_only: bool = False

    @field_validator("claim_name")
    @classmethod
    def _check_claim(cls, value: str) -> str:
        return check_object_name(value, what="claimName")


class ConfigMapSource(SpecModel):
    name: str

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_object_name(value, what="configMap name")


class SecretSource(SpecModel):
    secret_name: str

    @field_validator("secret_name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        return check_object_name(value, what="secretName")


class VolumeSpec(SpecModel):
    """A volume mounted into the handler container at ``mountPath``: exactly one source.

    ``emptyDir`` for a per-pod model cache or scratch space; ``persistentVolumeClaim`` for a cache shared across
    restarts (ReadOnlyMany / EFS for several replicas); ``configMap`` / ``secret`` for files.
    """

    name: str = Field(description="DNS label, unique in the pod.")
    mount_path: str = Field(description="Absolute path in the handler container.")
    read_only: bool = False
    empty_dir: EmptyDirSource | None = None
    persistent_volume_claim: PvcSource | None = None
    config_map: ConfigMapSource | None = None
    secret: SecretSource | None = None

    @model_validator(mode="before")
    @classmethod
    def _refuse_kinds(cls, value: Any) -> Any:
        if isinstance(value, dict):
            for kind, reason in _REFUSED_VOLUMES.items():
                if kind in value:
                    raise ValueError(f"{kind}: {reason}")
        return value

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if len(value) > 63 or not _DNS_LABEL.fullmatch(value):
            raise ValueError(f"volume name {value!r} is not a DNS label; use lowercase letters, digits and '-'")
        if value in RESERVED_VOLUMES:
            raise ValueError(f"volume name {value!r} is the pod's own; reserved: {', '.join(RESERVED_VOLUMES)}")
        return value

    @field_validator("mount_path")
    @classmethod
    def _check_mount_path(cls, value: str) -> str:
        path = posixpath.normpath(value)
        if not value.startswith("/") or path == "/":
            raise ValueError(f"mountPath {value!r} must be an absolute path below '/', e.g. /models")
        if ":" in value or any(not c.isprintable() for c in value):
            raise ValueError(f"mountPath {value!r} contains ':' or a control character, which the kubelet refuses "
                             "(':' separates a bind mount's fields); choose another path, e.g. /models")
        for reserved in RESERVED_VOLUMES.values():
            if path == reserved or path.startswith(reserved + "/") or reserved.startswith(path + "/"):
                raise ValueError(f"mountPath {value!r} overlaps the pod's own {reserved}; choose another path")
        return path

    @model_validator(mode="after")
    def _one_source(self) -> VolumeSpec:
        sources = [s for s in (self.empty_dir, self.persistent_volume_claim, self.config_map, self.secret) if s]
        if len(sources) != 1:
            raise ValueError(f"volume {self.name!r} takes exactly one of emptyDir, persistentVolumeClaim, "
                             f"configMap, secret ({len(sources)} given)")
        return self

    def source(self) -> dict[str, Any]:
        """The Kubernetes ``volumes[]`` entry (name and source, camelCase)."""
        return self.model_dump(by_alias=True, exclude_none=True, exclude={"mount_path", "read_only"})

    def mount(self) -> dict[str, Any]:
        """The Kubernetes ``volumeMounts[]`` entry."""
        mount: dict[str, Any] = {"name": self.name, "mountPath": self.mount_path}
        if self.read_only:
            mount["readOnly"] = True
        return mount


ImagePullPolicy = Literal["Always", "IfNotPresent", "Never"]
#: Tags may move, so the kubelet asks the registry for the current digest at each start (cached layers stay cached).
DEFAULT_IMAGE_PULL_POLICY: ImagePullPolicy = "Always"
