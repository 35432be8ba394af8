"""``rawlab simulate``: write simulated RAW captures (DNG) with their ground truth.

    rawlab simulate SCENE --camera NAME --iso N [--illuminant D65] [--burst N]
                    [--bracket -2,0,2] [--seed S] [--size WxH] [--exposure S]
                    [--gainmap] [--compression none|ljpeg] -o DIR

Writes ``frame_NNN.dng``, ``frame_NNN_truth.npz`` (XYZ and linear sRGB,
float32) and ``truth.json`` into DIR.
"""

from __future__ import annotations

import argparse
import re

from rawlab.errors import InvalidParams


def add_simulate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``simulate`` sub-command to ``subparsers`` and return its parser."""
    from rawlab.sim.scene import SCENES

    p = subparsers.add_parser("simulate", help="simulate RAW captures (DNG) with ground truth")
    p.add_argument("scene", help=f"a chart ({', '.join(SCENES)}) or an RGB image file")
    p.add_argument("--camera", default="phone-small", help="built-in camera name or a camera .toml")
    p.add_argument("--iso", type=float, default=None, help="ISO (default: the camera's base ISO)")
    p.add_argument("--illuminant", default="D65", help="D65, D50, A, F2, F11 or LED")
    p.add_argument("--burst", type=int, default=1, help="number of frames (hand-held burst)")
    p.add_argument("--bracket", default=None, help="EV offsets, e.g. -2,0,2 (one frame each)")
    p.add_argument("--exposure", type=float, default=None, help="shutter time in s (default: metered)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default=None, help="WIDTHxHEIGHT (default: the camera's pixel count)")
    p.add_argument("--gainmap", action="store_true", help="write the vignetting as an OpcodeList2 GainMap")
    p.add_argument("--compression", choices=("none", "ljpeg"), default="none", help="DNG compression")
    p.add_argument("-o", "--output", required=True, help="output folder")
    # let "--bracket -2,0,2" read "-2,0,2" as a value, as argparse does for "-2"
    p._negative_number_matcher = re.compile(r"^-\d+$|^-\d*\.\d+$|^-[\d.]+(,-?[\d.]+)+$")
    return p


def run_simulate(args: argparse.Namespace) -> int:
    """Run ``rawlab simulate``; prints the DNG paths, returns 0 (raises RawlabError on bad input)."""
    from rawlab.sim.burst import capture_burst, parse_bracket
    from rawlab.sim.camera import load_camera
    from rawlab.sim.capture import capture, write_captures
    from rawlab.sim.scene import make_scene

    camera = load_camera(args.camera)
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise InvalidParams(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from None
    else:
        w, h = camera.sensor.width_px, camera.sensor.height_px
    if not 1 <= args.burst <= 64:
        raise InvalidParams(f"--burst must be 1..64, got {args.burst}")
    scene = make_scene(args.scene, (w, h))
    bracket = parse_bracket(args.bracket) if args.bracket else None
    if bracket or args.burst > 1:
        caps = capture_burst(scene, camera, n_frames=args.burst, iso=args.iso, illuminant=args.illuminant,
                             exposure_time_s=args.exposure, bracket_ev=bracket, seed=args.seed)
    else:
        caps = [capture(scene, camera, iso=args.iso, illuminant=args.illuminant, exposure_time_s=args.exposure,
                        seed=args.seed, gainmap_opcode=args.gainmap)]
    for path in write_captures(caps, args.output, compression=args.compression):
        print(path)
    return 0
