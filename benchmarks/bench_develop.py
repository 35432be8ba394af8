"""Default develop of a 12 MP DNG against rawpy (LibRaw AHD) + JPEG write.

Both read the same DNG from disk and write a JPEG (quality 92); runs alternate,
the JIT warm-up is excluded, medians of at least 5 are compared; peak memory is
measured in a fresh process for each.  The issue's target: rawlab at most 1.0x
the time of the peer.

    python benchmarks/bench_develop.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, peak_memory_gb, peak_rss_gb  # noqa: E402


def _runners(dng: Path, out_dir: Path):
    import numpy as np
    import rawpy
    from PIL import Image

    from rawlab.io.encode import write_image
    from rawlab.io.read import read
    from rawlab.pipeline import Recipe, develop

    recipe = Recipe.builtin("default")

    def rawlab_run() -> None:
        write_image(develop(read(dng), recipe), out_dir / "rawlab.jpg", quality=92)

    def peer_run() -> None:
        with rawpy.imread(str(dng)) as raw:
            rgb = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, use_camera_wb=True)
        Image.fromarray(np.ascontiguousarray(rgb)).save(out_dir / "peer.jpg", quality=92)

    return {"rawlab": rawlab_run, "peer": peer_run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small input, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--measure", nargs=2, metavar=("WHICH", "DNG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:  # child process of the peak-memory measurement
        which, dng = args.measure
        _runners(Path(dng), Path(dng).parent)[which]()
        print(f"PEAK {peak_rss_gb():.3f}")
        return

    from rawlab.sample import make_sample

    size = (1200, 900) if args.quick else (4000, 3000)
    repeats = args.repeats or (3 if args.quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="bench_develop_"))
    dng = make_sample(tmp / "sample.dng", image="astronaut", seed=0, size=size)
    runs = _runners(dng, tmp)
    for fn in runs.values():  # JIT compile and caches, excluded
        fn()
    both = alternate(runs, repeats, stat="both")
    medians = {k: v[0] for k, v in both.items()}
    best = {k: v[1] for k, v in both.items()}
    peak = {name: peak_memory_gb(__file__, ["--measure", name, str(dng)]) for name in runs}
    megapixels = size[0] * size[1] / 1e6
    ratio = medians["rawlab"] / medians["peer"]
    ratio_best = best["rawlab"] / best["peer"]
    print(f"{os.cpu_count()} cpus; {repeats} alternating repeats; input {size[0]}x{size[1]} DNG")
    print(f"rawlab default develop + JPEG: median {medians['rawlab']:.3f} s, fastest {best['rawlab']:.3f} s, "
          f"peak {peak['rawlab']:.2f} GB")
    print(f"rawpy AHD postprocess + JPEG:  median {medians['peer']:.3f} s, fastest {best['peer']:.3f} s, "
          f"peak {peak['peer']:.2f} GB")
    print(
        f"RESULT bench_develop: rawlab={medians['rawlab']:.2f}s peer(rawpy-ahd+jpeg)={medians['peer']:.2f}s "
        f"ratio={ratio:.2f} ratio_fastest={ratio_best:.2f} size={megapixels:.1f}MP peak={peak['rawlab']:.1f}GB "
        f"peer_peak={peak['peer']:.1f}GB target: ratio<=1.00"
    )


if __name__ == "__main__":
    main()
