"""``python -m asya_pulumi.images OUT_DIR [--archive] [--pin] [--pipeline DIR]... [--no-runtime]``: what
``scripts/build-image`` runs (asya_pulumi/images/build.py says what lands in OUT_DIR)."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from asya_pulumi.images.build import build_all
from asya_pulumi.images.errors import ImageError
from asya_pulumi.images.pin import PIN_MODULE, PINNED_REFS, write_pin

REPO = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/build-image", description="Build the runtime image (and a "
                                     "pipeline's handler images) as an OCI layout, reproducibly.")
    parser.add_argument("out", type=Path, metavar="OUT_DIR")
    parser.add_argument("--archive", action="store_true", help="also write a docker-archive tar per image")
    parser.add_argument("--pin", action="store_true", help=f"point the spec's default runtime and gateway images "
                        f"({PIN_MODULE}) at the digests built")
    parser.add_argument("--pipeline", type=Path, metavar="DIR", action="append", default=[],
                        help="also build DIR's handler images (repeatable)")
    parser.add_argument("--no-runtime", action="store_true", help="only the pipeline's handler images")
    args = parser.parse_args(argv)
    if args.pin and args.no_runtime:
        parser.error("--pin needs the runtime image; drop --no-runtime")
    started = time.monotonic()
    try:
        built = build_all(repo=REPO, out=args.out, runtime=not args.no_runtime, pipeline_dirs=args.pipeline,
                          archive=args.archive)
    except ImageError as exc:
        print(f"build-image: error: {exc}", file=sys.stderr)
        return 2
    for image in built:
        print(f"{image.ref}\t{image.pinned}\t{image.compressed_bytes / 1e6:.1f} MB compressed")
    if args.pin:
        by_ref = {image.ref: image for image in built}
        changed = write_pin(repo=REPO, images=by_ref)
        digests = ", ".join(f"{ref} {by_ref[ref].digest}" for ref in PINNED_REFS)
        print(f"{PIN_MODULE}: {'pinned ' + digests if changed else 'already pinned to these digests'}")
    print(f"wrote {args.out} in {time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
