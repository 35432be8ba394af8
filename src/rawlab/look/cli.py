"""Command-line pieces for looks, for :mod:`rawlab.cli` to wire in.

* ``rawlab looks`` lists the built-in looks with their descriptions;
* ``rawlab looks export NAME|FILE out.cube [--size 33]`` writes a look as a 3D LUT;
* ``rawlab develop ... --look NAME|FILE --mode 35mm|50mm|90mm|65x24 --frame white|black [--caption TEXT]``:
  :func:`add_develop_look_arguments`, then :func:`apply_look_options` on the
  recipe and :func:`finish_frame` on the developed frame before encoding.
"""

from __future__ import annotations

import argparse

from rawlab.core.frame import Frame
from rawlab.look.apply import apply_look_options, builtin_looks, export_look_cube, load_look
from rawlab.look.modes import MODES

__all__ = ["add_looks_parser", "run_looks", "add_develop_look_arguments", "apply_look_options", "finish_frame"]


def add_looks_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``looks`` command (list / export) to the CLI's subparsers."""
    p = subparsers.add_parser("looks", help="list the looks, or export one as a .cube LUT")
    sub = p.add_subparsers(dest="looks_command")
    sub.add_parser("list", help="list the built-in looks (the default)")
    e = sub.add_parser("export", help="write a look as a 3D LUT (.cube)")
    e.add_argument("look", help="built-in look name or a look .toml file")
    e.add_argument("output", help=".cube file to write")
    e.add_argument("--size", type=int, default=33, help="LUT points per axis, 2..129 (default 33)")
    return p


def run_looks(args: argparse.Namespace) -> int:
    """Run ``rawlab looks``; returns the exit status (errors raise RawlabError)."""
    if getattr(args, "looks_command", None) == "export":
        path = export_look_cube(args.look, args.output, size=args.size)
        print(path)
        return 0
    for name in builtin_looks():
        print(f"{name:10s} {load_look(name).description}")
    return 0


def add_develop_look_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--look``, ``--mode``, ``--frame`` and ``--caption`` to the develop command."""
    parser.add_argument("--look", default=None, help="built-in look name or a look .toml file")
    parser.add_argument("--mode", choices=tuple(MODES), default=None, help="focal-length or panorama crop")
    parser.add_argument("--frame", choices=("white", "black"), default=None, help="add a caption border")
    parser.add_argument("--caption", default=None, help="text of the caption border instead of the camera name")


def finish_frame(frame: Frame, args: argparse.Namespace) -> Frame:
    """After the develop, before encoding: the caption border when ``--frame`` was given."""
    style = getattr(args, "frame", None)
    if not style:
        return frame
    from rawlab.caption import add_caption_border

    return add_caption_border(frame, style=style, text=getattr(args, "caption", None))
