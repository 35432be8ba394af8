"""Cost of a look on top of the default develop of a 12 MP file.

The same sample DNG (read once, in memory) is developed with the default
recipe and with the default recipe plus each built-in look; runs alternate
(default, look, default, look, ...), the JIT warm-up is excluded, medians of
at least 5.  The issue's target: a look adds at most 15 % to the default
develop time.

Both develops use the fused point-wise pass (``develop(..., fuse=True)``,
:mod:`rawlab.look.fused`), which also makes the default develop itself faster;
the stage-by-stage default (``fuse=False``, the develop before fusing) is timed
in the same alternation and printed beside it.

    python benchmarks/bench_looks.py [--quick] [--looks authentic,film]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import alternate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small input, fewer repeats")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--looks", default=None, help="comma-separated looks (default: all built-in)")
    args = parser.parse_args()
    size = (1200, 900) if args.quick else (4000, 3000)
    repeats = args.repeats or (3 if args.quick else 5)

    from rawlab.io.read import read
    from rawlab.look import apply_look, builtin_looks
    from rawlab.pipeline import Recipe, develop
    from rawlab.sample import make_sample

    tmp = Path(tempfile.mkdtemp(prefix="bench_looks_"))
    dng = make_sample(tmp / "sample.dng", size=size)
    frame = read(dng)
    base = Recipe.builtin("default")
    looks = args.looks.split(",") if args.looks else builtin_looks()
    worst_name, worst_ratio, worst_unfused, t_base_all, t_unfused_all = "", 0.0, 0.0, [], []
    develop(frame, base, fuse=False)  # JIT warm-up of the stages
    for name in looks:
        recipe = apply_look(base, name)
        develop(frame, recipe)  # JIT warm-up, LUT baking
        develop(frame, base)
        times = alternate({"default": lambda: develop(frame, base), "look": lambda: develop(frame, recipe),
                           "unfused": lambda: develop(frame, base, fuse=False)}, repeats)
        ratio = times["look"] / times["default"]
        ratio_unfused = times["look"] / times["unfused"]
        t_base_all.append(times["default"])
        t_unfused_all.append(times["unfused"])
        print(f"{name:10s} default={times['default']:.3f}s with look={times['look']:.3f}s "
              f"added={100 * (ratio - 1):+.1f}%   (stage-by-stage default={times['unfused']:.3f}s: "
              f"look {100 * (ratio_unfused - 1):+.1f}%)")
        if ratio > worst_ratio:
            worst_name, worst_ratio, worst_unfused = name, ratio, ratio_unfused
    mp = size[0] * size[1] / 1e6
    t_base = sorted(t_base_all)[len(t_base_all) // 2]
    t_unfused = sorted(t_unfused_all)[len(t_unfused_all) // 2]
    print(f"RESULT bench_looks: default={t_base:.3f}s worst_look={worst_name} added={100 * (worst_ratio - 1):.1f}% "
          f"target<=15% size={mp:.1f}MP unfused_default={t_unfused:.3f}s "
          f"worst_vs_unfused_default={100 * (worst_unfused - 1):+.1f}%")


if __name__ == "__main__":
    main()
