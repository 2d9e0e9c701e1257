"""Running the built images with podman on this kind of machine: loading a layout, the settings podman needs.

podman's defaults fail here: crun cannot start containers on this VM's hybrid cgroups (runc can, with the cgroupfs
manager), and the default ulimits are refused. So every call gets a ``containers.conf`` of our own
(``CONTAINERS_CONF``) with runc, cgroupfs, explicit ulimits and the host network — the containers reach the
embedded broker on the host's 127.0.0.1 as the actor's processes do. Images are loaded from an OCI layout
(``podman pull oci:DIR:REF``) and tagged with their registry name, so a pod spec's ``image`` (a tag, or a
``name:tag@sha256:…`` pin: podman keeps the layout's manifest digest) resolves without a registry.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.rootfs import cache_dir

CONTAINERS_CONF = """\
# written by asya_pulumi/images/podman.py: crun fails on hybrid cgroups, the default ulimits are refused
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def missing_tools() -> list[str]:
    """What running images needs and this machine lacks (empty when podman and runc are here, as root)."""
    missing = [tool for tool in ("podman", "runc") if shutil.which(tool, path=_SEARCH_PATH) is None]
    if os.geteuid() != 0:
        missing.append("root")
    return missing


_SEARCH_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"


def podman_env() -> dict[str, str]:
    """The environment of every podman call: ours ``containers.conf``, the rest as given."""
    conf = cache_dir() / "containers.conf"
    if not conf.exists() or conf.read_text() != CONTAINERS_CONF:
        conf.parent.mkdir(parents=True, exist_ok=True)
        conf.write_text(CONTAINERS_CONF)
    return {**os.environ, "CONTAINERS_CONF": str(conf), "PATH": _SEARCH_PATH}


def podman(*args: str, timeout: float = 120.0, check: bool = True) -> subprocess.CompletedProcess[str]:
    """``podman ARGS``; a failure (``check``) is an ImageError with podman's last lines."""
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, env=podman_env())
    if check and done.returncode != 0:
        raise ImageError(f"podman {args[0]} failed: {done.stderr.strip()[-600:]}")
    return done


def load_image(*, layout: Path, ref: str, name: str) -> str:
    """Load ``ref`` of the layout into podman's storage, tagged ``name`` (without a pin's digest); its image id.

    podman names what it pulls from ``oci:PATH`` after PATH, and refuses a path that is not a valid image name
    (``~/.cache`` is not: a component may not start with a dot); so it pulls through a link with a plain name."""
    link = Path(tempfile.gettempdir()) / "asya-oci" / hashlib.sha256(str(layout.resolve()).encode()).hexdigest()[:16]
    link.parent.mkdir(exist_ok=True)
    if not link.is_symlink() or link.resolve() != layout.resolve():
        link.unlink(missing_ok=True)
        link.symlink_to(layout.resolve())
    pulled = podman("pull", "--quiet", f"oci:{link}:{ref}")
    image_id = pulled.stdout.strip().splitlines()[-1]
    podman("tag", image_id, name.split("@", 1)[0])
    return image_id
