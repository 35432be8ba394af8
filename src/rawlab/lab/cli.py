"""``rawlab lab``: run the image-quality lab, or measure one chart image.

    rawlab lab run [--protocol default|quick|report|FILE] [--quick]
                   [--pipelines rawlab,rawpy,dcraw,darktable,rawtherapee]
                   [--camera phone-1in[,...]] [--iso 100,800,3200] [--keep-dngs] -o DIR
    rawlab lab measure IMAGE --chart CHART.json|truth.json|NAME

``run`` writes ``DIR/report.html`` and ``DIR/results.json`` and prints the
scoreboard; ``measure`` prints the measurements of one image as JSON (a RAW
file is developed by rawlab's default recipe first).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from rawlab.errors import InvalidParams, UnsupportedFile

DEFAULT_PIPELINES = "rawlab,rawpy,dcraw,darktable,rawtherapee"


def add_lab_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``lab`` sub-command (with ``run`` and ``measure``) and return its parser."""
    p = subparsers.add_parser("lab", help="image-quality lab: scores and reports")
    sub = p.add_subparsers(dest="lab_command", required=True, parser_class=type(p))
    r = sub.add_parser("run", help="simulate captures, render them with each pipeline, measure and score")
    r.add_argument("--protocol", default="default", help="built-in protocol (default, quick, report) or a TOML file")
    r.add_argument("--quick", action="store_true", help="the quick protocol (tests and CI)")
    r.add_argument("--pipelines", default=DEFAULT_PIPELINES,
                   help=f"comma-separated (default {DEFAULT_PIPELINES}; rawlab:RECIPE[+LOOK] too)")
    r.add_argument("--camera", default=None, help="comma-separated camera names (default: the protocol's)")
    r.add_argument("--iso", default=None, help="comma-separated ISOs (default: the protocol's)")
    r.add_argument("--condition", default=None, help="comma-separated condition names (default: all)")
    r.add_argument("--keep-dngs", action="store_true", help="keep the simulated DNGs in DIR/captures")
    r.add_argument("-o", "--output", required=True, help="output folder")
    m = sub.add_parser("measure", help="measure one image of a chart and print JSON")
    m.add_argument("image", help="an 8/16-bit sRGB image (TIFF, PNG, JPEG) or a RAW file")
    m.add_argument("--chart", required=True, help="chart JSON, a simulator truth.json, or a built-in chart name")
    return p


def _csv(text: str | None) -> list[str] | None:
    if not text:
        return None
    return [t.strip() for t in text.split(",") if t.strip()]


def _read_encoded(path: str) -> np.ndarray:
    """An image file as (H, W, 3) float32 sRGB-encoded 0..1; RAW files are developed by rawlab."""
    p = Path(path)
    if not p.is_file():
        raise InvalidParams("image not found", path=path)
    suffix = p.suffix.lower()
    if suffix in (".tif", ".tiff", ".png", ".jpg", ".jpeg"):
        try:
            if suffix in (".tif", ".tiff"):
                import tifffile

                a = tifffile.imread(str(p))
            else:  # OpenCV keeps 16-bit PNGs at 16 bits
                import cv2

                a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
                if a is None:
                    raise ValueError("not an image")
                if a.ndim == 3:
                    a = cv2.cvtColor(a[..., :3], cv2.COLOR_BGR2RGB)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
            raise UnsupportedFile(f"cannot read the image ({exc.__class__.__name__})", path=path) from None
        if a.ndim != 3 or a.shape[2] < 3:
            raise UnsupportedFile(f"expected an RGB image, got shape {a.shape}", path=path)
        a = a[..., :3]
        if a.dtype == np.uint8:
            return a.astype(np.float32) / 255.0
        if a.dtype == np.uint16:
            return a.astype(np.float32) / 65535.0
        if a.dtype.kind == "f":
            return np.clip(a.astype(np.float32), 0.0, 1.0)
        raise UnsupportedFile(f"unsupported sample type {a.dtype}", path=path)
    from rawlab.lab.adapters import RawlabAdapter

    return RawlabAdapter().render(p).encoded_float()


def run_lab(args: argparse.Namespace) -> int:
    """Run ``rawlab lab run|measure``; returns the exit code (raises RawlabError on bad input)."""
    if args.lab_command == "measure":
        from rawlab.lab.charts import load_chart
        from rawlab.lab.report import _clean
        from rawlab.lab.run import measure_image

        chart = load_chart(args.chart)
        encoded = _read_encoded(args.image)
        truth_luma = truth_rgb = None
        if chart.get("truth_npz"):
            try:
                with np.load(chart["truth_npz"]) as z:
                    truth_luma = np.ascontiguousarray(z["xyz"][..., 1])
                    truth_rgb = np.ascontiguousarray(z["srgb_linear"])
            except (OSError, ValueError, KeyError) as exc:
                raise UnsupportedFile(f"cannot read the truth images ({exc.__class__.__name__})",
                                      path=chart["truth_npz"]) from None
        result = measure_image(encoded, chart, truth_luma=truth_luma, truth_rgb_linear=truth_rgb)
        print(json.dumps(_clean({"image": args.image, **result}), indent=1))
        return 0

    from rawlab.lab.protocol import load_protocol
    from rawlab.lab.report import write_report
    from rawlab.lab.run import run_protocol

    protocol = load_protocol("quick" if args.quick else args.protocol)
    isos = None
    if args.iso:
        try:
            isos = [float(v) for v in _csv(args.iso) or []]
        except ValueError:
            raise InvalidParams(f"--iso must be comma-separated numbers, got {args.iso!r}") from None
    protocol = protocol.restricted(cameras=_csv(args.camera), isos=isos, conditions=_csv(args.condition))
    pipelines = _csv(args.pipelines) or []
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise InvalidParams("output must be a folder", path=str(out))
    out.mkdir(parents=True, exist_ok=True)
    work = out / "captures" if args.keep_dngs else None
    run = run_protocol(protocol, pipelines, work_dir=work, progress=lambda line: print(line, file=sys.stderr))
    page = write_report(run.results, out, run.crops)
    for name, st in run.results["pipelines"].items():
        if st["status"] != "ok":
            print(f"rawlab lab: {name} not run: {st['reason']}", file=sys.stderr)
    print(f"{'pipeline':<22}" + "".join(f"{k:>10}" for k in ("exposure", "color", "texture", "noise",
                                                             "artifacts", "overall")))
    for name, sc in run.results["summary"].items():
        print(f"{name:<22}" + "".join(f"{sc[k]:>10.1f}" for k in ("exposure", "color", "texture", "noise",
                                                                 "artifacts", "overall")))
    print(page)
    return 0
