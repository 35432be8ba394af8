"""``rawlab burst``: merge a burst of RAW files into one DNG or photo.

    rawlab burst FRAME... -o OUT [--dng] [--mode merge|night|hdr]

Frames are read with :func:`rawlab.io.read.read` (DNG and camera RAW files).
With ``--dng`` the merged raw frame is written as a DNG; otherwise it is
developed with the default recipe and written as a photo (format from
``OUT``'s suffix, JPEG by default).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rawlab.errors import InvalidParams

MODES = ("merge", "night", "hdr")


def add_burst_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``burst`` sub-command to ``subparsers`` and return its parser."""
    p = subparsers.add_parser("burst", help="align and merge a burst of RAW frames")
    p.add_argument("frames", nargs="+", help="RAW files of one burst (2 or more)")
    p.add_argument("-o", "--output", required=True, help="output file (.dng with --dng, else a photo)")
    p.add_argument("--dng", action="store_true", help="write the merged raw frame as a DNG")
    p.add_argument("--mode", choices=MODES, default="merge", help="merge (default), night or hdr")
    p.add_argument("--reference", type=int, default=None, help="force the reference frame (index)")
    p.add_argument("--recipe", default="default", help="recipe for the photo (without --dng)")
    return p


def run_burst(args: argparse.Namespace) -> int:
    """Run ``rawlab burst``; prints the output path, returns 0 (raises RawlabError on bad input)."""
    from tqdm import tqdm

    from rawlab.burst import merge
    from rawlab.burst._planes import frame_mismatch
    from rawlab.io.read import read

    if len(args.frames) < 2:
        raise InvalidParams(f"a burst needs at least 2 frames, got {len(args.frames)}")
    out = Path(args.output)
    if out.exists() and out.is_dir():
        raise InvalidParams("output must be a file, not a folder", path=str(out))
    for name in args.frames:
        if Path(name).resolve() == out.resolve():
            raise InvalidParams("output would overwrite an input", path=name)
    n = len(args.frames)
    steps = n + (n - 1) + (4 if args.mode != "hdr" else 1) + 1
    bar = tqdm(total=steps, unit="step", file=sys.stderr, disable=not sys.stderr.isatty(), desc="burst")
    try:
        frames = []
        for name in args.frames:
            frame = read(name)
            # a frame that cannot join the burst: one line naming its file
            problem = frame_mismatch(frame, frames[0] if frames else frame)
            if problem is not None:
                raise InvalidParams(f"{problem.replace('frame 0', args.frames[0])}; cannot merge", path=name)
            frames.append(frame)
            bar.update()
        options = {}
        if args.reference is not None:
            if args.mode == "night":
                raise InvalidParams("--reference applies to --mode merge or hdr (night picks its frames)")
            options["reference"] = args.reference

        def progress(text: str) -> None:
            bar.set_postfix_str(text)
            bar.update()

        merged = merge(frames, mode=args.mode, progress=progress, **options)
        if args.dng:
            from rawlab.io.dng_write import write_dng

            written = write_dng(merged, out)
        else:
            from rawlab.io.encode import write_image
            from rawlab.pipeline import Recipe, develop

            target = out if out.suffix else out.with_suffix(".jpg")
            written = write_image(develop(merged, Recipe.load(args.recipe)), target)
        bar.update(bar.total - bar.n)
    finally:
        bar.close()
    print(written)
    return 0
