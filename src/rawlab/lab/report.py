"""Lab report: ``results.json`` (every number) and ``report.html`` (scoreboard and plots).

Plots are drawn with matplotlib (Agg backend) and embedded in the HTML as
base64 PNG, so the report is one self-contained file:

* scoreboard: every sub-score of every pipeline (mean over the capture sets) and per capture set,
  and the ColorChecker ΔE2000 (mean / max) of every pipeline per camera and illuminant side by side;
* MTF curves (slanted edge) per pipeline for each capture set;
* noise against ISO (SNR and ISO 15739 visual noise) per pipeline and condition;
* ΔE2000 per ColorChecker patch, each patch drawn as the reference colour
  beside the measured colour (exposure-normalised);
* texture crops (dead leaves) and Siemens-star crops side by side.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from rawlab.io.atomic import atomic_write
from rawlab.lab import score as scoring

SUBSCORES = ("exposure", "color", "texture", "noise", "artifacts", "overall")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _clean(o: Any) -> Any:
    """NaN/inf -> None so the JSON is standard."""
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if isinstance(o, dict):
        return {k: _clean(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_clean(v) for v in o]
    if isinstance(o, np.generic):
        return _clean(o.item())
    return o


def write_results_json(results: Mapping[str, Any], path: str | Path) -> Path:
    """Write the run's results as standard JSON (NaN written as null)."""
    target = Path(path)
    text = json.dumps(_clean(dict(results)), indent=1, default=_json_default)
    with atomic_write(target) as fh:
        fh.write(text.encode("utf-8"))
    return target


def _png(fig, *, tight: bool = True) -> str:
    """The figure as base64 PNG; ``tight=False`` for figures laid out by hand (one draw instead of two)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight" if tight else None)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _img_tag(b64: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{b64}">'


def _array_png(a: np.ndarray) -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _fmt(v: Any, digits: int = 1) -> str:
    if isinstance(v, (int, float)) and math.isfinite(v):
        return f"{v:.{digits}f}"
    return "–"


def _mtf_plot(cs: Mapping[str, Any]) -> str | None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    drawn = False
    for name, p in cs["pipelines"].items():
        c = p.get("curves", {})
        if "mtf" in c:
            ax.plot(c["mtf_frequency_cy_px"], c["mtf"], label=name)
            drawn = True
    if not drawn:
        plt.close(fig)
        return None
    ax.axhline(0.5, color="0.7", lw=0.8)
    ax.axvline(0.5, color="0.7", lw=0.8, ls=":")
    ax.set_xlim(0, 0.75)
    ax.set_xlabel("cycles / pixel")
    ax.set_ylabel("MTF (slanted edge)")
    ax.set_title(cs["key"], fontsize=9)
    ax.legend(fontsize=7)
    return _png(fig)


def _noise_plot(results: Mapping[str, Any]) -> str | None:
    import matplotlib.pyplot as plt

    series: dict[tuple[str, str, str], list[tuple[float, float, float]]] = {}
    for cs in results["capture_sets"]:
        for name, p in cs["pipelines"].items():
            m = p.get("metrics", {})
            if "snr_db" not in m and "visual_noise" not in m:  # e.g. a colour-only capture set
                continue
            series.setdefault((name, cs["camera"], cs["condition"]), []).append(
                (cs["iso"], m.get("snr_db", float("nan")), m.get("visual_noise", float("nan"))))
    if not series:
        return None
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.6))
    names = list(dict.fromkeys(k[0] for k in series))
    groups = list(dict.fromkeys(k[1:] for k in series))
    styles = ("-", "--", ":", "-.")
    for (name, cam, cond), pts in series.items():
        pts.sort()
        iso = [p[0] for p in pts]
        lbl = f"{name} {cam} {cond}" if len(groups) > 1 else name
        kw = {"color": f"C{names.index(name) % 10}", "ls": styles[groups.index((cam, cond)) % len(styles)],
              "marker": "o", "label": lbl}
        a1.plot(iso, [p[1] for p in pts], **kw)
        a2.plot(iso, [p[2] for p in pts], **kw)
    isos = sorted({p[0] for pts in series.values() for p in pts})
    for a, t in ((a1, "SNR at the metered grey (dB)"), (a2, "visual noise at the metered grey (ISO 15739)")):
        a.set_xscale("log", base=2)
        a.set_xticks(isos, [f"{v:g}" for v in isos])
        a.minorticks_off()
        a.set_xlabel("ISO")
        a.set_title(t, fontsize=9)
    a2.legend(fontsize=6, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return _png(fig)


def _lab_to_srgb8(Lab: np.ndarray) -> np.ndarray:
    from rawlab.lab._colorimetry import Lab_to_XYZ, M_rgb_to_XYZ_D50

    XYZ = Lab_to_XYZ(np.asarray(Lab, float))
    lin = XYZ @ np.linalg.inv(M_rgb_to_XYZ_D50("srgb")).T
    lin = np.clip(lin, 0.0, 1.0)
    enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
    return np.round(enc * 255).astype(np.uint8)


def _delta_e_plot(cs: Mapping[str, Any]) -> str | None:
    """Per pipeline the 24 patches as reference | measured swatches, and one grouped bar chart of ΔE."""
    import matplotlib.pyplot as plt

    pipes = [(n, p["curves"]) for n, p in cs["pipelines"].items() if "delta_e2000" in p.get("curves", {})]
    if not pipes:
        return None
    n = len(pipes)
    fig = plt.figure(figsize=(11, max(2.6, 1.25 * n + 0.6)))
    gs = fig.add_gridspec(n, 2, width_ratios=[1.0, 2.6], left=0.02, right=0.99, top=0.9, bottom=0.1,
                          wspace=0.08, hspace=0.35)
    bars = fig.add_subplot(gs[:, 1])
    width = 0.8 / n
    tile = 16
    for row, (name, c) in enumerate(pipes):
        ref = _lab_to_srgb8(np.array(c["Lab_reference_D50"]))
        meas = _lab_to_srgb8(np.array(c["Lab_measured_D50"]))
        img = np.full((4 * tile, 6 * tile, 3), 255, np.uint8)
        for k in range(24):
            r, col = divmod(k, 6)
            img[r * tile + 1:(r + 1) * tile - 1, col * tile + 1:col * tile + tile // 2] = ref[k]
            img[r * tile + 1:(r + 1) * tile - 1, col * tile + tile // 2:(col + 1) * tile - 1] = meas[k]
        ax = fig.add_subplot(gs[row, 0])
        ax.imshow(img, interpolation="nearest")
        ax.set_axis_off()
        ax.set_title(f"{name}: left reference, right measured", fontsize=7)
        de = np.array(c["delta_e2000"])
        bars.bar(np.arange(1, 25) + (row - (n - 1) / 2) * width, de, width=width, color=f"C{row % 10}",
                 label=f"{name}: mean {de.mean():.2f}, max {de.max():.2f}")
    bars.set_ylabel("ΔE2000")
    bars.set_xticks(range(1, 25))
    bars.tick_params(labelsize=6)
    bars.set_xlim(0.4, 24.6)
    bars.legend(fontsize=7, loc="upper left")
    fig.suptitle(cs["key"], fontsize=9)
    return _png(fig, tight=False)


def _score_table(rows: list[tuple[str, Mapping[str, Any]]]) -> str:
    head = "".join(f"<th>{s.capitalize()}</th>" for s in SUBSCORES)
    body = []
    for name, sc in rows:
        cells = "".join(f"<td>{_fmt(sc.get(s))}</td>" for s in SUBSCORES)
        body.append(f"<tr><th>{html.escape(name)}</th>{cells}</tr>")
    return f"<table><tr><th>pipeline</th>{head}</tr>{''.join(body)}</table>"


KEY_METRICS = ("delta_e2000_mean", "delta_e2000_max", "delta_e2000_mean_as_seen", "delta_e2000_max_as_seen",
               "delta_e2000_mean_neutral_balanced", "wb_error_delta_ab_mean", "chroma_level_pct",
               "exposure_error_ev", "metered_grey_luminance", "dynamic_range_snr10_ev", "mtf50_cy_px",
               "mtf50p_cy_px", "texture_acutance", "snr_db", "visual_noise", "chroma_noise",
               "false_color_mean_chroma", "zipper_pct", "zipper_noise_floor_pct", "edge_false_color_mean_chroma",
               "edge_zipper_pct", "edge_zipper_noise_floor_pct",
               "edge_overshoot_pct", "vignetting_worst_ev", "distortion_pct", "lateral_ca_px")


def _color_table(rows: list[Mapping[str, Any]], *, as_seen: bool = False) -> str:
    """Pipelines x (camera, condition): ColorChecker ΔE2000 mean and max side by side."""
    if not rows:
        return ""
    names = list(dict.fromkeys(n for r in rows for n in r["pipelines"]))
    k_mean, k_max = ("mean_as_seen", "max_as_seen") if as_seen else ("mean", "max")
    top = "".join(f"<th colspan='2'>{html.escape(r['camera'])} · {html.escape(r['condition'])}<br>"
                  f"illuminant {html.escape(r['illuminant'])}, ISO {r['iso']:g}</th>" for r in rows)
    sub = "<th>mean</th><th>max</th>" * len(rows)
    body = []
    for n in names:
        cells = "".join(f"<td>{_fmt(r['pipelines'].get(n, {}).get(k_mean), 2)}</td>"
                        f"<td>{_fmt(r['pipelines'].get(n, {}).get(k_max), 2)}</td>" for r in rows)
        body.append(f"<tr><th>{html.escape(n)}</th>{cells}</tr>")
    return (f"<table class='color'><tr><th rowspan='2'>pipeline</th>{top}</tr><tr>{sub}</tr>"
            f"{''.join(body)}</table>")


def _metrics_table(cs: Mapping[str, Any]) -> str:
    names = list(cs["pipelines"])
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    rows = []
    for k in KEY_METRICS:
        cells = "".join(f"<td>{_fmt(cs['pipelines'][n]['metrics'].get(k), 3)}</td>" for n in names)
        rows.append(f"<tr><th>{k}</th>{cells}</tr>")
    return f"<table><tr><th>metric</th>{head}</tr>{''.join(rows)}</table>"


CSS = """body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #bbb;padding:3px 8px;text-align:right;font-size:90%}th{background:#f3f3f3}
img{max-width:100%}.crops img{width:160px;margin:4px;image-rendering:pixelated}.err{color:#a00;font-size:85%}"""


def render_html(results: Mapping[str, Any], crops: Mapping[str, np.ndarray] | None = None) -> str:
    """The report page as one HTML string (plots embedded)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    crops = crops or {}
    proto = results["protocol"]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>rawlab lab report</title>"
             f"<style>{CSS}</style></head><body>",
             "<h1>rawlab image-quality lab</h1>",
             f"<p>Protocol <b>{html.escape(proto['name'])}</b> v{proto['version']} "
             f"({html.escape(proto.get('description', ''))}); score formula v{results['rawlab_lab']['score_version']} "
             f"(docs/lab.md). Run time {results['rawlab_lab']['wall_s']:.1f} s.</p>",
             "<h2 id='scoreboard'>Scoreboard</h2>",
             _score_table(list(results["summary"].items())),
             "<h3 id='color-by-illuminant'>Colour by illuminant: ColorChecker ΔE2000, mean / max</h3>",
             "<p>Each pipeline's linear rendering, its tone curve taken out through its own neutral patches "
             "(the Color score's reading; docs/lab.md), at the lowest ISO of each camera and condition.</p>",
             _color_table(results.get("color_by_illuminant", [])),
             "<details><summary>The same read off the 8-bit/16-bit sRGB files as a viewer reads them "
             "(one exposure gain)</summary>",
             _color_table(results.get("color_by_illuminant", []), as_seen=True), "</details>"]
    for name, st in results["pipelines"].items():
        if st["status"] != "ok":
            parts.append(f"<p class='err'>{html.escape(name)}: not run: {html.escape(st.get('reason', ''))}</p>")
        for e in st.get("errors", [])[:10]:
            parts.append(f"<p class='err'>{html.escape(name)}: {html.escape(e)}</p>")
    if results.get("skipped"):
        parts.append("<p class='err'>skipped: " + html.escape("; ".join(results["skipped"])) + "</p>")
    noise = _noise_plot(results)
    if noise:
        parts += ["<h2>Noise against ISO</h2>", _img_tag(noise, "noise against ISO")]
    for cs in results["capture_sets"]:
        parts.append(f"<h2>{html.escape(cs['key'])}</h2>")
        parts.append(_score_table([(n, p["scores"]) for n, p in cs["pipelines"].items()]))
        parts.append(_metrics_table(cs))
        for plot, alt in ((_mtf_plot(cs), "MTF"), (_delta_e_plot(cs), "delta E per patch")):
            if plot:
                parts.append(_img_tag(plot, alt))
        for chart in ("dead_leaves", "siemens_star"):
            tiles = [(n, crops[f"{n}|{cs['key']}|{chart}"]) for n in cs["pipelines"]
                     if f"{n}|{cs['key']}|{chart}" in crops]
            if tiles:
                parts.append(f"<h3>{chart.replace('_', ' ')} crops</h3><div class='crops'>")
                parts += [f"<figure style='display:inline-block'>{_img_tag(_array_png(a), n)}"
                          f"<figcaption>{html.escape(n)}</figcaption></figure>" for n, a in tiles]
                parts.append("</div>")
    parts.append("<h2>Score anchors</h2><table><tr><th>sub-score</th><th>metric</th><th>0 at</th>"
                 "<th>100 at</th><th>scale</th><th>weight</th><th>why</th></tr>")
    for a in scoring.anchors_table():
        parts.append(f"<tr><td>{a['subscore']} ({a['subscore_weight']})</td><td>{a['metric']}</td>"
                     f"<td>{a['at_0']:g}</td><td>{a['at_100']:g}</td><td>{a['scale']}</td><td>{a['weight']:g}</td>"
                     f"<td style='text-align:left'>{html.escape(a['why'])}</td></tr>")
    parts.append("</table></body></html>")
    return "\n".join(parts)


def write_report(results: Mapping[str, Any], out_dir: str | Path,
                 crops: Mapping[str, np.ndarray] | None = None) -> Path:
    """Write ``out_dir/results.json`` and ``out_dir/report.html``; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_results_json(results, out / "results.json")
    page = render_html(results, crops)
    with atomic_write(out / "report.html") as fh:
        fh.write(page.encode("utf-8"))
    return out / "report.html"
