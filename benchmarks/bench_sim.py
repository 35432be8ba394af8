"""Camera simulator speed: one 12 MP capture and an 8-frame 12 MP burst.

The issue's targets: a 12 MP capture in at most 3 s and an 8-frame 12 MP burst
in at most 20 s (2 cores).  There is no peer program that simulates a camera,
so the times are printed against those targets.  The scene (dead leaves at the
sensor's pixel count) is built once outside the timing; colour fits, fixed
patterns and distortion maps are warmed up first (like a JIT warm-up); runs
alternate single capture / burst and medians are reported.  Peak memory is
that of one burst in a fresh interpreter (``--measure``); the 1-minute load
average is printed beside the times (other work on the machine slows them).

    python benchmarks/bench_sim.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, peak_memory_gb, peak_rss_gb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small input, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # child: one burst, print PEAK
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from rawlab.sim import capture, capture_burst, load_camera
    from rawlab.sim.scene import dead_leaves

    camera = load_camera("phone-small")  # 4032 x 3024 = 12.2 MP
    size = (1008, 756) if args.quick else (camera.sensor.width_px, camera.sensor.height_px)
    repeats = args.repeats or (3 if args.quick else 5)
    n_frames = 8
    scene = dead_leaves(size, seed=0)

    def single() -> None:
        capture(scene, camera, iso=200, seed=1)

    def burst() -> None:
        capture_burst(scene, camera, n_frames=n_frames, iso=200, seed=1)

    if args.measure:
        burst()
        print(f"PEAK {peak_rss_gb():.3f}")
        return
    single()  # warm-up: colour fits, fixed patterns, geometry maps
    burst()
    load_before = os.getloadavg()[0]
    medians = alternate({"capture": single, "burst": burst}, repeats)
    load = max(load_before, os.getloadavg()[0])
    peak = peak_memory_gb(__file__, ["--measure"] + (["--quick"] if args.quick else []))
    mp = size[0] * size[1] / 1e6
    print(f"threads: {os.cpu_count()} cpus; repeats {repeats}; scene dead_leaves {size[0]}x{size[1]}; camera {camera.name}")
    print(f"single capture:        {medians['capture']:.3f} s (target <= 3 s at 12 MP)")
    print(f"{n_frames}-frame burst:         {medians['burst']:.3f} s (target <= 20 s at 12 MP), peak {peak:.2f} GB")
    print(f"load average (1 min):  {load:.2f}")
    print(
        f"RESULT bench_sim: capture={medians['capture']:.2f}s burst{n_frames}={medians['burst']:.2f}s "
        f"size={mp:.1f}MP peak={peak:.1f}GB load={load:.1f} target_capture<=3.00s target_burst<=20.00s"
    )


if __name__ == "__main__":
    main()
