"""Cost of a look on top of the default develop of a 12 MP file.

The same sample DNG (read once, in memory) is developed with the default
recipe and with the default recipe plus each built-in look; runs alternate
(default, look, default, look, ...), the JIT warm-up and the one-time table
baking of the fused pass (about 0.2 s per look and process) are excluded; the
times are the fastest of at least 5 runs of each (the least disturbed run on
a shared machine).  A look's added cost is measured where it is: the steps
before the fused pass are the same with and without a look, so the develop is
run once up to there and the rest (fused pass, crop, orientation) is timed
for the default recipe and the look, in the same alternation as the whole
develops; ``added`` is the difference over the whole default develop.  The
whole-develop ratio (fastest and median runs) is printed beside it; on a quiet
machine the two agree, on a busy one the whole develops scatter by tens of
percent.  The issue's target: a look adds at most 15 % to the default
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
    from rawlab.look.fused import FUSED_STAGE, fuse_recipe

    fused_base = fuse_recipe(base)
    at = fused_base.stage_names().index(FUSED_STAGE)
    head = frame
    for step in fused_base.steps[:at]:  # the steps before the fused pass: the same with or without a look
        head = step.spec(head, step.params)

    def tail(recipe):
        out = head
        for step in recipe.steps[at:]:
            out = step.spec(out, step.params)
        return out

    worst_name, worst_ratio, worst_unfused, t_base_all, t_unfused_all = "", -1.0, 0.0, [], []
    develop(frame, base, fuse=False)  # JIT warm-up of the stages
    for name in looks:
        recipe = apply_look(base, name)
        fused_look = fuse_recipe(recipe)
        assert fused_look.steps[:at] == fused_base.steps[:at], "a look changed the steps before the fused pass"
        develop(frame, recipe)  # JIT warm-up, table baking
        develop(frame, base)
        both = alternate({"default": lambda: develop(frame, base), "look": lambda: develop(frame, recipe),
                          "unfused": lambda: develop(frame, base, fuse=False),
                          "tail_default": lambda: tail(fused_base), "tail_look": lambda: tail(fused_look)},
                         repeats, stat="both")
        best = {k: v[1] for k, v in both.items()}  # best of N (see the module docstring)
        added = (best["tail_look"] - best["tail_default"]) / best["default"]
        whole = best["look"] / best["default"] - 1.0
        whole_median = both["look"][0] / both["default"][0] - 1.0
        vs_unfused = best["look"] / best["unfused"] - 1.0
        t_base_all.append(best["default"])
        t_unfused_all.append(best["unfused"])
        print(f"{name:10s} default={best['default']:.3f}s look's own cost={1000 * (best['tail_look'] - best['tail_default']):+.0f}ms "
              f"added={100 * added:+.1f}%   whole develop: {best['look']:.3f}s {100 * whole:+.1f}% "
              f"(medians {100 * whole_median:+.1f}%); stage-by-stage default {best['unfused']:.3f}s: look "
              f"{100 * vs_unfused:+.1f}%")
        if added > worst_ratio:
            worst_name, worst_ratio, worst_unfused = name, added, vs_unfused
    mp = size[0] * size[1] / 1e6
    t_base = sorted(t_base_all)[len(t_base_all) // 2]
    t_unfused = sorted(t_unfused_all)[len(t_unfused_all) // 2]
    print(f"RESULT bench_looks: default={t_base:.3f}s worst_look={worst_name} added={100 * worst_ratio:.1f}% "
          f"target<=15% size={mp:.1f}MP unfused_default={t_unfused:.3f}s "
          f"worst_vs_unfused_default={100 * worst_unfused:+.1f}%")


if __name__ == "__main__":
    main()
