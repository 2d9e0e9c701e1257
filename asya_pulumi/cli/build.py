"""``asya build DIR [--out OUT] [--archive]``: the handler images of a pipeline directory, as an OCI layout.

One image per distinct ``image`` of the directory's actors (asya_pulumi/images/handler_images.py): a Debian base
with python3 or node, the directory's requirements.txt, the handler modules in /app. ``podman pull oci:OUT/oci:REF``
loads one; the runtime image comes from ``scripts/build-image`` (it needs the runtime's sources, a checkout).
Building needs root and mmdebstrap; an ImageError (a missing tool, a missing handler module) is exit status 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from asya_pulumi.cli.errors import EXIT_OK, UsageError
from asya_pulumi.cli.output import add_json_option, emit


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "build",
        help="build a pipeline's handler images (OCI layout)",
        description="Build the handler image of every actor of pipeline directory DIR, reproducibly, from Debian "
        "packages (needs root and mmdebstrap), into an OCI image layout under --out.",
    )
    parser.add_argument("pipeline_dir", metavar="DIR", type=Path, help="a pipeline directory, e.g. examples/x")
    parser.add_argument("--out", type=Path, metavar="OUT", help="output directory (default: DIR/.asya-images)")
    parser.add_argument("--archive", action="store_true", help="also a docker-archive tar per image")
    add_json_option(parser, what="each image built")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.pipeline_dir.is_dir():
        raise UsageError(f"{str(args.pipeline_dir)!r} is not a directory; point at a pipeline directory")
    from asya_pulumi.images.build import build_all

    out = args.out or args.pipeline_dir / ".asya-images"
    built = build_all(repo=Path.cwd(), out=out, runtime=False, pipeline_dirs=[args.pipeline_dir],
                      archive=args.archive)
    images = [{"name": image.name, "digest": image.digest, "reference": f"oci:{out / 'oci'}:{image.ref}",
               "compressed_bytes": image.compressed_bytes} for image in built]
    lines = [f"{image.name}\t{image.digest}\toci:{out / 'oci'}:{image.ref}\t{image.compressed_bytes / 1e6:.1f} MB"
             for image in built]
    emit(args, data={"out": str(out), "images": images}, text="\n".join(lines))
    return EXIT_OK
