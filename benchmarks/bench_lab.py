"""Image-quality lab speed and the scoreboard: measuring one chart image, and a full report.

The issue's targets: measuring one chart image in at most 2 s, and a full report
(5 pipelines x 3 ISOs x 1 camera: the ``report`` protocol, phone-1in at ISO 100,
800 and 3200 under D65 and illuminant A, plus the ColorChecker on the fullframe
camera under D65 and A) in at most 10 minutes on this machine.
There is no peer lab program, so the times are printed against those targets.
The measurement timing excludes the first call (imports and JIT warm-up) and
reports the median of 5; the full report is run once and its scoreboard printed,
with the colour results under D65 and A side by side.

    python benchmarks/bench_lab.py [--quick] [-o DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import peak_rss_gb  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the quick protocol instead of the report protocol")
    parser.add_argument("--pipelines", default="rawlab,rawpy,dcraw,darktable,rawtherapee")
    parser.add_argument("-o", "--output", default=None, help="keep the report in this folder")
    args = parser.parse_args()

    from rawlab.io.dng_write import write_dng
    from rawlab.lab.adapters import make_adapter
    from rawlab.lab.charts import luminance_linear_srgb, register_to_truth
    from rawlab.lab.protocol import load_protocol
    from rawlab.lab.report import write_report
    from rawlab.lab.run import TRUTH_RGB_CHARTS, ChartImage, measure_chart, run_protocol, srgb_to_linear
    from rawlab.sim import capture, scene

    # 1. one chart image: registration + the chart's measurement (the report protocol's sizes)
    with tempfile.TemporaryDirectory() as tmp:
        times = {}
        for name, sc in (("colorchecker", scene.colorchecker((600, 400))),
                         ("slanted_edge", scene.slanted_edge((256, 256))),
                         ("dead_leaves", scene.dead_leaves((384, 384), seed=7)),
                         ("gray_steps", scene.gray_steps((1280, 192))),
                         ("siemens_star", scene.siemens_star((384, 384)))):
            cap = capture(sc, "phone-1in", iso=100, seed=1)
            dng = Path(tmp) / f"{name}.dng"
            write_dng(cap.frame, dng)
            r = make_adapter("rawlab").render(dng, linear=name == "colorchecker")
            enc, lin = r.encoded_float(), r.linear_float()
            truth_Y = cap.truth_xyz[..., 1].copy()
            truth_rgb = cap.truth_srgb_linear if name in TRUTH_RGB_CHARTS else None

            def once() -> None:
                reg = register_to_truth(luminance_linear_srgb(srgb_to_linear(enc)), truth_Y)
                ci = ChartImage(name, enc, cap.truth["geometry"], reg, truth_Y, truth_rgb, linear_render=lin)
                measure_chart(ci)

            once()
            runs = []
            for _ in range(5):
                t0 = time.perf_counter()
                once()
                runs.append(time.perf_counter() - t0)
            times[name] = statistics.median(runs)
            print(f"measure {name} ({enc.shape[1]}x{enc.shape[0]}): {times[name]:.3f} s (target <= 2 s)")

    # 2. the full report
    protocol = load_protocol("quick" if args.quick else "report")
    out = Path(args.output) if args.output else Path(tempfile.mkdtemp(prefix="rawlab-bench-lab-"))
    t0 = time.perf_counter()
    run = run_protocol(protocol, args.pipelines.split(","), progress=lambda s: print("  " + s))
    write_report(run.results, out, run.crops)
    wall = time.perf_counter() - t0
    print(f"report: {out / 'report.html'}")
    subs = ("exposure", "color", "texture", "noise", "artifacts", "overall")
    print(f"{'pipeline':<14}" + "".join(f"{s:>10}" for s in subs))
    for name, sc in run.results["summary"].items():
        print(f"{name:<14}" + "".join(f"{sc[s]:>10.1f}" for s in subs))
    for name, st in run.results["pipelines"].items():
        if st["status"] != "ok":
            print(f"{name}: not run: {st['reason']}")
    print("ColorChecker mean/max dE2000 (linear rendering, tone-normalised; in brackets the sRGB file read as sRGB):")
    for row in run.results["color_by_illuminant"]:
        cells = "  ".join(f"{n}={v['mean']:.2f}/{v['max']:.1f} [{v['mean_as_seen']:.2f}]"
                          for n, v in row["pipelines"].items())
        print(f"  {row['camera']}/{row['condition']}/ISO{row['iso']:g}: {cells}")
    worst = max(times.values())
    summary = run.results["summary"]
    best = max(summary, key=lambda n: summary[n]["overall"]) if summary else "-"
    a_row = next((r for r in run.results["color_by_illuminant"] if r["camera"] == "fullframe"
                  and r["illuminant"] == "A"), None)
    tungsten = "" if a_row is None else " tungsten_dE=" + ",".join(
        f"{n}:{v['mean']:.2f}" for n, v in a_row["pipelines"].items())
    print(f"RESULT bench_lab: measure_max={worst:.2f}s report={wall:.0f}s target_measure<=2s target_report<=600s "
          f"sets={len(run.results['capture_sets'])} pipelines={len(summary)} best={best} "
          f"peak={peak_rss_gb():.1f}GB{tungsten}")


if __name__ == "__main__":
    main()
