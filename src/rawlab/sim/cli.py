"""``rawlab simulate``: write simulated RAW captures (DNG) with their ground truth.

    rawlab simulate SCENE --camera NAME --iso N [--illuminant D65] [--burst N]
                    [--bracket -2,0,2] [--seed S] [--size WxH] [--exposure S]
                    [--f-number N] [--luminance CD_M2] [--gainmap]
                    [--compression none|ljpeg] -o DIR

Writes ``frame_NNN.dng``, ``frame_NNN_truth.npz`` (XYZ and linear sRGB,
float32) and ``truth.json`` into DIR.  ``--burst N`` is a hand-held burst of
N frames at one exposure; ``--bracket`` is a hand-held bracket of one frame
per EV offset; the two cannot be combined (exit 2).  ``--gainmap`` applies to
every frame.
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
    p.add_argument("--burst", type=int, default=None, help="number of frames (hand-held burst; not with --bracket)")
    p.add_argument("--bracket", default=None, help="EV offsets, e.g. -2,0,2 (one frame each)")
    p.add_argument("--exposure", type=float, default=None, help="shutter time in s (default: metered)")
    p.add_argument("--f-number", type=float, default=None, dest="f_number",
                   help="aperture (default: the camera's lens f-number)")
    p.add_argument("--luminance", type=float, default=None,
                   help="luminance of a white diffuser in the scene light, cd/m^2 (default: the scene's, 200)")
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
    if args.burst is not None and not 1 <= args.burst <= 64:
        raise InvalidParams(f"--burst must be 1..64, got {args.burst}")
    if args.burst is not None and args.bracket:
        raise InvalidParams("--burst and --bracket cannot be combined: a bracket takes one frame per EV offset")
    bracket = parse_bracket(args.bracket) if args.bracket else None
    scene = make_scene(args.scene, (w, h))
    common = dict(iso=args.iso, illuminant=args.illuminant, exposure_time_s=args.exposure, f_number=args.f_number,
                  scene_luminance_cd_m2=args.luminance, seed=args.seed, gainmap_opcode=args.gainmap)
    if bracket:
        caps = capture_burst(scene, camera, bracket_ev=bracket, **common)
    elif args.burst is not None and args.burst > 1:
        caps = capture_burst(scene, camera, n_frames=args.burst, **common)
    else:
        caps = [capture(scene, camera, **common)]
    for path in write_captures(caps, args.output, compression=args.compression):
        print(path)
    return 0
