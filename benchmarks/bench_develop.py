"""Default develop of a 12 MP DNG against rawpy (LibRaw AHD) + JPEG write.

Both read the same DNG from disk and write a JPEG (quality 92); runs alternate,
the JIT warm-up is excluded, medians of at least 5 are compared.  The issue's
target: rawlab at most 1.0x the time of the peer.

    python benchmarks/bench_develop.py [--quick]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate, peak_memory_gb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small input, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    args = parser.parse_args()
    size = (1200, 900) if args.quick else (4000, 3000)
    repeats = args.repeats or (3 if args.quick else 5)

    import numpy as np
    import rawpy
    from PIL import Image

    from rawlab.io.encode import write_image
    from rawlab.io.read import read
    from rawlab.pipeline import Recipe, develop
    from rawlab.sample import make_sample

    tmp = Path(tempfile.mkdtemp(prefix="bench_develop_"))
    dng = make_sample(tmp / "sample.dng", image="astronaut", seed=0, size=size)
    recipe = Recipe.builtin("default")

    def rawlab_run() -> None:
        write_image(develop(read(dng), recipe), tmp / "rawlab.jpg", quality=92)

    def peer_run() -> None:
        with rawpy.imread(str(dng)) as raw:
            rgb = raw.postprocess(demosaic_algorithm=rawpy.DemosaicAlgorithm.AHD, use_camera_wb=True)
        Image.fromarray(np.ascontiguousarray(rgb)).save(tmp / "peer.jpg", quality=92)

    rawlab_run()  # JIT compile and caches, excluded
    peer_run()
    medians = alternate({"rawlab": rawlab_run, "peer": peer_run}, repeats)
    peak_rawlab = peak_memory_gb(rawlab_run)
    peak_peer = peak_memory_gb(peer_run)
    mp = size[0] * size[1] / 1e6
    ratio = medians["rawlab"] / medians["peer"]
    print(f"threads: {os.cpu_count()} cpus; repeats {repeats}; input {size[0]}x{size[1]} DNG")
    print(f"rawlab default develop + JPEG: {medians['rawlab']:.3f} s, peak {peak_rawlab:.2f} GB")
    print(f"rawpy AHD postprocess + JPEG:  {medians['peer']:.3f} s, peak {peak_peer:.2f} GB")
    print(
        f"RESULT bench_develop: rawlab={medians['rawlab']:.2f}s peer(rawpy-ahd+jpeg)={medians['peer']:.2f}s "
        f"ratio={ratio:.2f} size={mp:.1f}MP peak={peak_rawlab:.1f}GB peer_peak={peak_peer:.1f}GB target<=1.00"
    )


if __name__ == "__main__":
    main()
