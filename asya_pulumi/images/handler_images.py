"""Handler images for a pipeline directory: one image per distinct ``spec.image`` of its actors.

Each is a Debian base with the interpreter the pod's handler server needs (``python3``, or ``node`` for
``runtime: node``: asya_pulumi/objects/pod.py's HANDLER_INTERPRETERS), an optional layer with the directory's
``requirements.txt`` (hash-checked when it carries hashes), and a layer with the handler modules the actors name in
``/app``, the image's working directory — where both handler servers look for them. Nothing of asya is inside: the
pod mounts the handler server from a ConfigMap. Built as reproducibly as the runtime image (same bases, same
layer rules), so the Python handler images share the runtime image's base layer.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import defaultdict
from pathlib import Path

from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.oci import ImageConfig, Layer, Layout, tar_bytes
from asya_pulumi.images.python_layer import SITE_PACKAGES, install, normalize_modes
from asya_pulumi.images.rootfs import USER_ID, compile_python, debian_base
from asya_pulumi.images.runtime_image import PYTHON_ENV, BuiltImage, add_image, base_layer_of
from asya_pulumi.spec import AsyncActorSpec, load_pipeline_dir
from asya_pulumi.spec.manifest import runtime_in_dir

#: The handler's working directory in its image: the servers import handler modules from there.
APP_DIR = "app"
REQUIREMENTS = "requirements.txt"


def image_ref(name: str) -> str:
    """A layout ref for a registry name: ``ghcr.io/asya-sh/example-x:0.1.0`` → ``example-x-0.1.0``."""
    repository, _, tag = name.rpartition(":")
    return f"{repository.rsplit('/', 1)[-1]}-{tag}" if repository else name.rsplit("/", 1)[-1]


def handler_files(*, actors: list[AsyncActorSpec], pipeline_dir: Path) -> list[Path]:
    """The module files the actors' handlers name (``handlers.score`` → ``handlers.py`` or ``handlers/``;
    ``words.countWords`` of a Node.js actor → ``words.js``); a missing one names the actor."""
    found: set[Path] = set()
    for actor in actors:
        module = actor.handler.split(".", 1)[0]
        runtime = runtime_in_dir(actor, pipeline_dir=pipeline_dir)
        candidates = [f"{module}.js"] if runtime == "node" else [f"{module}.py", module]
        path = next((pipeline_dir / c for c in candidates if (pipeline_dir / c).exists()), None)
        if path is None:
            raise ImageError(f"actor {actor.name!r}: handler module {candidates[0]!r} is not in {pipeline_dir}")
        found.add(path)
    return sorted(found)


def build_handler_images(*, pipeline_dir: Path, layout: Layout, epoch: int) -> list[BuiltImage]:
    """Build every handler image of ``pipeline_dir`` into ``layout`` (ref: :func:`image_ref` of its name)."""
    mesh = load_pipeline_dir(pipeline_dir)
    by_image: dict[str, list[AsyncActorSpec]] = defaultdict(list)
    for actor in mesh.actors:
        by_image[str(actor.image)].append(actor)  # from a manifest: always text, never a Pulumi Output
    return [_build_one(name=name, actors=actors, pipeline_dir=pipeline_dir, layout=layout, epoch=epoch)
            for name, actors in sorted(by_image.items())]


def _build_one(*, name: str, actors: list[AsyncActorSpec], pipeline_dir: Path, layout: Layout,
               epoch: int) -> BuiltImage:
    runtimes = {runtime_in_dir(a, pipeline_dir=pipeline_dir) for a in actors}
    if len(runtimes) > 1:
        raise ImageError(f"image {name!r} is used by Python and Node.js actors; give each language its own image")
    runtime = runtimes.pop()
    base = debian_base(name=runtime, epoch=epoch)
    layers: list[Layer] = [base_layer_of(layout=layout, base=base)]
    requirements = pipeline_dir / REQUIREMENTS
    with tempfile.TemporaryDirectory(prefix="asya-handler-image-") as scratch:
        if runtime == "python" and requirements.is_file():
            prefix = Path(scratch) / "usr-local"
            install(prefix=prefix, requirements=requirements, hashed="--hash=" in requirements.read_text())
            compile_python(root=base.root, paths=[f"/usr/local/{SITE_PACKAGES}"], usr_local=prefix)
            normalize_modes(prefix)
            layers.append(layout.add_layer(tar=tar_bytes(root=prefix, epoch=epoch, prefix="usr/local"),
                                           comment=f"{REQUIREMENTS} of {pipeline_dir.name}"))
        app = Path(scratch) / APP_DIR
        app.mkdir()
        for path in handler_files(actors=actors, pipeline_dir=pipeline_dir):
            if path.is_dir():
                shutil.copytree(path, app / path.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
            else:
                shutil.copyfile(path, app / path.name)
        normalize_modes(app)
        layers.append(layout.add_layer(tar=tar_bytes(root=app, epoch=epoch, prefix=APP_DIR),
                                       comment=f"handler modules of {', '.join(sorted(a.name for a in actors))}"))
    interpreter = "python3" if runtime == "python" else "node"
    env = PYTHON_ENV if runtime == "python" else {k: v for k, v in PYTHON_ENV.items() if not k.startswith("PYTHON")}
    config = ImageConfig(entrypoint=[interpreter], user=f"{USER_ID}:{USER_ID}", env=env, working_dir=f"/{APP_DIR}",
                         labels={"org.opencontainers.image.title": name.rsplit("/", 1)[-1].split(":")[0],
                                 "sh.asya.actors": ",".join(sorted(a.name for a in actors))})
    return add_image(layout=layout, ref=image_ref(name), name=name, layers=layers, config=config, epoch=epoch,
                     base=base)
