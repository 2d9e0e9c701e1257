"""Upstream Asya's AsyncActor spellings, read into :class:`~asya_pulumi.spec.AsyncActorSpec`'s own fields.

Upstream's manifests (``deliveryhero/asya``, ``docs/reference/specs/asyncactor-crd.md``) and ours describe the same
pod in two shapes. Where only the name differs (``actor``/``name``, ``initialDelay``/``initialInterval``) the model
field has both as aliases. Where the *shape* differs, this module rewrites upstream's shape into ours before
validation, so there is still one field per setting and every check applies to both spellings:

- ``env: [{name, value} | {name, valueFrom}]`` → ``env`` (values) and ``valueFrom`` (references);
- ``secretRefs: [{secretName, keys: [{key, envVar}]}]`` → ``valueFrom`` ``secretKeyRef`` s, one per key (a
  ``secretRefs`` entry without ``keys``, or a plain name, stays a whole Secret, ``envFrom``);
- ``volumes`` + ``volumeMounts`` (Kubernetes' two lists, joined by name) → ``volumes`` with ``mountPath``;
- ``resources.limits["nvidia.com/gpu"]`` → ``gpu`` (GPUs also choose the node pool and the taint here).

Fields that cannot mean anything here are refused with the reason and what to do instead: never dropped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["REFUSED", "from_upstream_form"]

#: Upstream fields without a meaning here, each with why and what to write instead.
REFUSED = {
    "flavors": "flavors are Crossplane EnvironmentConfigs, and this project renders without Crossplane; write the "
    "flavor's settings into the actor's spec (or share them in your Pulumi program)",
    "stateProxy": "the state proxy is upstream's own sidecar and storage connectors, which this project does not "
    "ship; mount storage with volumes (a persistentVolumeClaim) or read and write it from the handler",
}
_GPU = "nvidia.com/gpu"


def from_upstream_form(data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` (an actor's spec, as a manifest or a program gives it) with upstream's shapes in ours."""
    for key, reason in REFUSED.items():
        if key in data:
            raise ValueError(f"{key}: {reason}")
    spec = dict(data)
    value_from = dict(spec.get("valueFrom") or spec.get("value_from") or {})
    if isinstance(spec.get("env"), list):
        spec["env"] = _env_list(spec["env"], value_from=value_from)
    for key in ("secretRefs", "secret_refs"):
        if isinstance(spec.get(key), list):
            spec[key] = _secret_refs(spec[key], value_from=value_from)
    if value_from:
        spec.pop("value_from", None)
        spec["valueFrom"] = value_from
    mounts = spec.pop("volumeMounts", None)
    if mounts is not None:
        spec["volumes"] = _mounted_volumes(spec.get("volumes") or [], mounts)
    _gpu_from_resources(spec)
    return spec


def _env_list(entries: list[Any], *, value_from: dict[str, Any]) -> dict[str, Any]:
    env: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, Mapping) or not isinstance(entry.get("name"), str):
            raise ValueError(f"env: each entry has a name and a value or valueFrom, got {entry!r}")
        name = entry["name"]
        extra = sorted(set(entry) - {"name", "value", "valueFrom"})
        if extra or ("value" in entry) == ("valueFrom" in entry):
            raise ValueError(f"env {name!r}: give exactly one of value and valueFrom")
        if name in env or name in value_from:
            raise ValueError(f"env {name!r} is set twice; keep one")
        if "valueFrom" in entry:
            value_from[name] = entry["valueFrom"]
        else:
            env[name] = entry["value"]
    return env


def _secret_refs(entries: list[Any], *, value_from: dict[str, Any]) -> list[Any]:
    whole: list[Any] = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            whole.append(entry)  # a Secret's name: every key becomes a variable (envFrom)
            continue
        secret = entry.get("secretName")
        extra = sorted(set(entry) - {"secretName", "keys"})
        if not isinstance(secret, str) or extra:
            raise ValueError(f"secretRefs: each entry is {{secretName, keys: [{{key, envVar}}]}}, got {dict(entry)!r}")
        keys = entry.get("keys")
        if not keys:
            whole.append(secret)
            continue
        for key in keys:
            if not isinstance(key, Mapping) or set(key) != {"key", "envVar"}:
                raise ValueError(f"secretRefs {secret!r}: each of keys is {{key, envVar}}, got {key!r}")
            if key["envVar"] in value_from:
                raise ValueError(f"env {key['envVar']!r} is set twice (secretRefs and env); keep one")
            value_from[key["envVar"]] = {"secretKeyRef": {"name": secret, "key": key["key"]}}
    return whole


def _mounted_volumes(volumes: list[Any], mounts: Any) -> list[Any]:
    """Each volume with its one mount's ``mountPath``/``readOnly`` (this project mounts a volume once)."""
    if not isinstance(mounts, list) or not isinstance(volumes, list):
        raise ValueError("volumes and volumeMounts are lists")
    by_name: dict[str, Mapping[str, Any]] = {}
    for mount in mounts:
        if not isinstance(mount, Mapping) or "name" not in mount or "mountPath" not in mount:
            raise ValueError(f"volumeMounts: each entry has name and mountPath, got {mount!r}")
        extra = sorted(set(mount) - {"name", "mountPath", "readOnly"})
        if extra:
            raise ValueError(f"volumeMounts {mount['name']!r}: {', '.join(extra)} not supported; "
                             f"mount the whole volume (name, mountPath, readOnly)")
        if mount["name"] in by_name:
            raise ValueError(f"volumeMounts: volume {mount['name']!r} is mounted twice; mount each volume once")
        by_name[mount["name"]] = mount
    joined = []
    for volume in volumes:
        if not isinstance(volume, Mapping) or "mountPath" in volume:
            joined.append(volume)  # already in this project's form (or wrong: the model says why)
            continue
        mount = by_name.pop(str(volume.get("name")), None)
        if mount is None:
            raise ValueError(f"volumes: {volume.get('name')!r} has no volumeMount; mount it or remove it")
        joined.append({**volume, **{k: v for k, v in mount.items() if k != "name"}})
    if by_name:
        raise ValueError(f"volumeMounts: {sorted(by_name)} name no volume; add it to volumes")
    return joined


def _gpu_from_resources(spec: dict[str, Any]) -> None:
    resources = spec.get("resources")
    if not isinstance(resources, Mapping):
        return
    limits, requests = resources.get("limits") or {}, resources.get("requests") or {}
    if not isinstance(limits, Mapping) or not isinstance(requests, Mapping):
        return
    count = limits.get(_GPU, requests.get(_GPU))
    if count is None:
        return
    if spec.get("gpu") is not None:
        raise ValueError(f"resources {_GPU} and gpu both set the GPUs; keep gpu")
    try:
        spec["gpu"] = int(str(count))
    except ValueError:
        raise ValueError(f"resources {_GPU}: {count!r} is not a whole number of GPUs") from None
    spec["resources"] = {
        **resources,
        **{part: {k: v for k, v in values.items() if k != _GPU}
           for part, values in (("limits", limits), ("requests", requests)) if values},
    }
