"""Time each develop stage on a 12 MP frame (4000 x 3000), JIT warm-up excluded.

Usage: ``python benchmarks/bench_stages.py [--quick] [--repeat N]``

A synthetic 14-bit Bayer frame with a real-looking calibration (ColorMatrix,
AsShotNeutral, BaselineExposure, default crop, orientation 6) goes through the
default stage order once to get each stage's input; every stage is then timed
on its own input (median of N runs, default 5).  The peer is colour-demosaicing's
Malvar (2004), timed on the same mosaic, to put the demosaic number in context.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import warnings

import numpy as np

from rawlab.color.dng_matrices import camera_to_xyz
from rawlab.color.spaces import xyz_to_rgb
from rawlab.color.whitebalance import white_balance
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, SensorInfo
from rawlab.demosaic.stage import demosaic
from rawlab.geometry.crop import crop
from rawlab.geometry.orientation import orientation
from rawlab.sensor.normalize import normalize
from rawlab.tone.exposure import ExposureParams, exposure
from rawlab.tone.filmic import filmic
from rawlab.tone.transfer import output_transfer

STAGES = [
    ("normalize", normalize, None),
    ("white_balance", white_balance, None),
    ("demosaic", demosaic, None),
    ("camera_to_xyz", camera_to_xyz, None),
    ("xyz_to_rgb", xyz_to_rgb, None),
    ("exposure", exposure, ExposureParams(exposure_ev=0.7)),
    ("filmic", filmic, None),
    ("output_transfer", output_transfer, None),
    ("crop", crop, None),
    ("orientation", orientation, None),
]


def make_frame(height: int, width: int) -> Frame:
    """A smooth scene with texture and highlights, mosaiced RGGB, in 14-bit DN."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    scene = 0.3 + 0.25 * np.sin(x / 37.0) * np.cos(y / 53.0) + 0.4 * (x / width) ** 2
    signal = scene * np.where((np.indices((height, width)).sum(axis=0) % 2) == 1, 1.0, 0.6)
    dn = 512 + signal * (16383 - 512) + rng.normal(0, 8, size=(height, width))
    raw = np.clip(np.rint(dn), 0, 16383).astype(np.float32)
    CM = np.array([[0.4716, 0.0603, -0.0830], [-0.7798, 1.5474, 0.2480], [-0.1496, 0.1937, 0.6651]])
    return Frame(
        raw,
        Encoding.CFA,
        sensor=SensorInfo(
            cfa=CfaPattern.from_string("RGGB"),
            black_level_dn=512,
            white_level_dn=[16383],
            crop_px=(8, 8, height - 16, width - 16),
        ),
        color=ColorCalibration(
            M_XYZ_to_camera_1=CM, illuminant_1=21, as_shot_neutral=[0.47, 1.0, 0.62], baseline_exposure_ev=0.3
        ),
        capture=CaptureInfo(orientation=6),
    )


def run_times(func, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return times


def median_time(func, repeat: int) -> float:
    return float(np.median(run_times(func, repeat)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1000 x 750 instead of 4000 x 3000")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    height, width = (750, 1000) if args.quick else (3000, 4000)

    # warm-up (JIT compile / cache load, colour-science import) on a small frame
    small = make_frame(64, 96)
    for _, func, params in STAGES:
        small = func(small, params)

    frame = make_frame(height, width)
    inputs = []
    for _, func, params in STAGES:
        inputs.append(frame)
        frame = func(frame, params)

    print(f"stage timings on {width} x {height} ({width * height / 1e6:.1f} MP), median of {args.repeat}")
    print(f"{'stage':<16} {'in':<11} {'out':<11} {'median s':>9} {'min s':>7}")
    total = total_min = 0.0
    for (name, func, params), frame_in in zip(STAGES, inputs):
        times = run_times(lambda: func(frame_in, params), args.repeat)
        seconds = float(np.median(times))
        total += seconds
        total_min += min(times)
        out = func(frame_in, params)
        print(f"{name:<16} {frame_in.encoding.value:<11} {out.encoding.value:<11} {seconds:9.3f} {min(times):7.3f}")
    print(f"{'total':<40} {total:9.3f} {total_min:7.3f}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from colour_demosaicing import demosaicing_CFA_Bayer_Malvar2004

    mosaic = inputs[2].data
    peer = median_time(lambda: demosaicing_CFA_Bayer_Malvar2004(mosaic, "RGGB"), max(1, min(args.repeat, 3)))
    ours = median_time(lambda: demosaic(inputs[2]), args.repeat)
    print(f"demosaic malvar2004: rawlab={ours:.3f}s peer(colour-demosaicing)={peer:.3f}s ratio={ours / peer:.3f}")
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(
        f"RESULT bench_stages: rawlab_all_stages={total:.3f}s peer(colour-demosaicing-malvar)={peer:.3f}s "
        f"ratio={total / peer:.3f} size={width * height / 1e6:.1f}MP peak={peak_gb:.1f}GB"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
