"""Running a lab protocol: simulate, render with each pipeline, locate the chart, measure, score.

For every capture set of the protocol (camera x condition x ISO) and every
chart, :func:`rawlab.sim.capture` makes a DNG with a fixed seed; each
pipeline under test renders it (:mod:`rawlab.lab.adapters`); the output is
registered to the truth (:func:`rawlab.lab.charts.register_to_truth`); the
chart is measured (:func:`measure_chart`) and the capture set's metrics are
scored (:mod:`rawlab.lab.score`).

All measurements are on the output decoded with the sRGB transfer to linear
sRGB (a viewer's reading of the file), except where a function takes the
encoded values (visual noise and false colour decode them themselves).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams, RawlabError
from rawlab.lab import score as scoring
from rawlab.lab.adapters import Adapter, RenderedImage, make_adapter
from rawlab.lab.charts import (
    Registration,
    crop,
    luminance_linear_srgb,
    map_box,
    map_point,
    register_to_truth,
    registration_from_sizes,
)
from rawlab.lab.protocol import Protocol

#: Reflectance a metered uniform field should render at (ISO 12232 standard output
#: sensitivity: an 18 % grey maps to the sRGB value 118/255, i.e. linear 0.18).
METERED_GREY = 0.18
#: Charts captured through the camera's real lens shading (with the DNG GainMap that corrects
#: it).  The other charts fill the frame, where a real lab centres a smaller chart: they are
#: captured without fall-off so that shading, scored once on the flat field, does not also
#: count as colour, tone or noise error at the frame's corners.
SHADING_CHARTS = ("flat_field",)
#: Central fraction (per side) of the flat field where exposure and noise are read.
FLAT_CENTRE_FRACTION = 0.3
#: Fraction of a patch box dropped at its edges before taking statistics.
PATCH_SHRINK = 0.4


def srgb_to_linear(encoded: NDArray) -> NDArray[np.float32]:
    """IEC 61966-2-1 sRGB decoding, float32 0..1 in and out."""
    v = np.asarray(encoded, dtype=np.float32)
    return np.where(v <= 0.04045, v / np.float32(12.92), ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


@dataclass
class ChartImage:
    """An output image of one chart, with what is needed to measure it."""

    kind: str
    encoded: NDArray[np.float32]          # (H, W, 3) sRGB-encoded 0..1
    geometry: dict[str, Any]
    registration: Registration
    truth_luma: NDArray[np.float32] | None = None   # (h, w) ground-truth luminance, sensor grid
    truth_rgb_linear: NDArray[np.float32] | None = None  # (h, w, 3) ground truth, linear sRGB (D65 adapted)

    @property
    def linear(self) -> NDArray[np.float32]:
        return srgb_to_linear(self.encoded)


# ----------------------------------------------------------------------- per chart
def _patch_means(lin: NDArray, boxes: Sequence[Sequence[float]], reg: Registration, shrink: float) -> NDArray:
    out = np.empty((len(boxes), 3))
    for i, box in enumerate(boxes):  # a loop over patches, not pixels
        b = map_box(box, reg, shape=lin.shape[:2], shrink=shrink)
        region = crop(lin, b)
        if region.shape[0] < 2 or region.shape[1] < 2:
            raise InvalidParams(f"patch {i} falls outside the image after registration")
        out[i] = region.reshape(-1, 3).mean(axis=0)
    return out


def _measure_colorchecker(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.color import COLORCHECKER_EXPOSURE_PATCHES, measure_colorchecker

    from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_D50, XYZ_to_Lab

    boxes = [p["box"] for p in ci.geometry["patches"]]
    means = _patch_means(ci.linear, boxes, ci.registration, PATCH_SHRINK)
    Lab_ref = None
    if ci.truth_rgb_linear is not None:
        # the scene's own colours (its spectra under its light, adapted to D65 then D50 by Bradford):
        # the reference a perfect pipeline reproduces, free of chart-batch differences
        ref_means = _patch_means(ci.truth_rgb_linear, boxes, Registration(), PATCH_SHRINK)
        Lab_ref = XYZ_to_Lab(ref_means @ M_rgb_to_XYZ_D50("srgb").T, XYZ_D50)
    res = measure_colorchecker(means, transfer="linear", Lab_reference_D50=Lab_ref)
    # the same after a von Kries balance on the neutral patches 20-23: colour rendering apart from the cast
    neutral = list(COLORCHECKER_EXPOSURE_PATCHES)
    grey = means[neutral].mean(axis=0)
    balanced = measure_colorchecker(means * (grey.mean() / grey), transfer="linear", Lab_reference_D50=Lab_ref)
    m = {"delta_e2000_mean": res.delta_e_2000_mean, "delta_e2000_max": res.delta_e_2000_max,
         "wb_error_delta_ab_mean": res.wb_error_delta_ab_mean, "chroma_level_pct": res.chroma_level_pct,
         "colorchecker_exposure_gain": res.exposure_gain,
         "delta_e2000_mean_neutral_balanced": balanced.delta_e_2000_mean,
         "delta_e2000_max_neutral_balanced": balanced.delta_e_2000_max}
    curves = {"delta_e2000": res.delta_e_2000.tolist(), "Lab_measured_D50": res.Lab_measured_D50.tolist(),
              "Lab_reference_D50": res.Lab_reference_D50.tolist(), "rgb_linear_means": means.tolist()}
    return m, curves


def _measure_slanted_edge(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.sfr import sfr_slanted_edge_iso12233

    g = ci.geometry
    cx, cy = map_point(g["edge_center_xy"], ci.registration)
    H, W = ci.encoded.shape[:2]
    half_h = int(0.4 * min(H, W))
    half_w = int(0.25 * min(H, W))
    box = (max(0, int(cy) - half_h), max(0, int(cx) - half_w), min(H, int(cy) + half_h), min(W, int(cx) + half_w))
    res = sfr_slanted_edge_iso12233(luminance_linear_srgb(crop(ci.linear, box)))
    m = {"mtf50_cy_px": res.mtf50_cy_px, "mtf50p_cy_px": res.mtf50p_cy_px, "mtf_at_nyquist": res.mtf_at_nyquist,
         "edge_overshoot_pct": res.overshoot_pct, "edge_undershoot_pct": res.undershoot_pct,
         "edge_angle_deg": res.edge_angle_deg}
    keep = res.frequency_cy_px <= 0.75
    return m, {"mtf_frequency_cy_px": res.frequency_cy_px[keep].tolist(), "mtf": res.mtf[keep].tolist()}


def _central_box(shape: tuple[int, int], fraction: float) -> tuple[int, int, int, int]:
    H, W = shape
    dh, dw = int(H * (1 - fraction) / 2), int(W * (1 - fraction) / 2)
    return dh, dw, H - dh, W - dw


def _measure_flat_field(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.geometry import vignetting_ev
    from rawlab.lab.noise import luminance_chroma_noise, patch_snr, visual_noise_iso15739

    box = _central_box(ci.encoded.shape[:2], FLAT_CENTRE_FRACTION)
    lin = ci.linear
    Y = luminance_linear_srgb(lin)
    centre_Y = crop(Y, box)
    mean_Y = float(centre_Y.mean())
    snr = patch_snr(centre_Y)
    vn = visual_noise_iso15739(crop(ci.encoded, box), transfer="srgb")
    cn = luminance_chroma_noise(crop(ci.encoded, box), transfer="srgb")
    vig = vignetting_ev(Y)
    m = {"exposure_error_ev": math.log2(mean_Y / METERED_GREY) if mean_Y > 0 else float("-inf"),
         "flat_mean_luminance": mean_Y,
         "snr_db": float(np.asarray(snr.snr_db).reshape(-1)[0]),
         "visual_noise": vn.visual_noise, "noise_std_L": cn.std_L, "chroma_noise": cn.chroma_noise,
         "vignetting_worst_ev": vig.worst_ev, "vignetting_mean_ev": vig.mean_ev}
    return m, {}


def _measure_gray_steps(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.tone import measure_tone_steps

    Y = luminance_linear_srgb(ci.linear)
    steps = ci.geometry["steps"]
    patches = [crop(Y, map_box(s["box"], ci.registration, shape=Y.shape, shrink=PATCH_SHRINK)) for s in steps]
    L = np.array([s["reflectance"] for s in steps])
    res = measure_tone_steps(patches, relative_luminance=L, clip_level=1.0)
    valid = res.clipped_fraction <= 0.01
    chart_range_ev = float(np.log2(res.saturation_luminance / res.relative_luminance[0]))
    out = {}
    for lvl, dr in ((1, res.dynamic_range_snr1_ev), (10, res.dynamic_range_snr10_ev)):
        bound = "measured"
        if not np.isfinite(dr):
            if valid.any() and res.snr[valid][0] >= lvl:  # even the darkest step is above: the chart limits
                dr, bound = chart_range_ev, "at_least"
            else:
                dr, bound = 0.0, "never"
        out[f"dynamic_range_snr{lvl}_ev"] = float(dr)
        out[f"dynamic_range_snr{lvl}_bound"] = bound
    out["highlight_clipped_steps"] = int(np.count_nonzero(res.clipped_fraction > 0.01))
    curves = {"oecf_relative_luminance": res.relative_luminance.tolist(), "oecf_mean": res.mean.tolist(),
              "oecf_snr": res.snr.tolist()}
    return out, curves


def _measure_dead_leaves(ci: ChartImage, flat: NDArray | None) -> tuple[dict, dict]:
    from rawlab.lab.deadleaves import texture_mtf_dead_leaves

    if ci.truth_luma is None:
        raise InvalidParams("dead leaves needs the ground-truth image as its reference")
    Y = luminance_linear_srgb(ci.linear)
    reg = ci.registration
    h, w = ci.truth_luma.shape
    side = int(0.7 * min(h, w))
    t0, l0 = (h - side) // 2, (w - side) // 2
    tb = (t0, l0, t0 + side, l0 + side)
    ob = map_box(tb, reg, shape=Y.shape)
    img = crop(Y, ob).astype(np.float64)
    ref = ci.truth_luma[t0:t0 + side, l0:l0 + side].astype(np.float64)
    if img.shape != ref.shape:  # a scaled output: bring the reference onto the output grid
        ref = cv2.resize(ref, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_AREA)
    gain = float(ref.mean() / max(img.mean(), 1e-9))
    flat_patch = None if flat is None else flat.astype(np.float64) * gain
    res = texture_mtf_dead_leaves(img * gain, reference=ref, flat=flat_patch)
    m = {"texture_acutance": res.acutance}
    f = res.frequency_cy_px
    mtf = np.nan_to_num(res.mtf, nan=0.0)
    m["texture_mtf_at_0.25"] = float(np.interp(0.25, f, mtf))
    return m, {"texture_frequency_cy_px": f.tolist(), "texture_mtf": mtf.tolist(),
               "texture_mtf_uncorrected": np.nan_to_num(res.mtf_uncorrected).tolist()}


def _measure_siemens_star(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.artifacts import false_color_achromatic

    g = ci.geometry
    cx, cy = map_point(g["center_xy"], ci.registration)
    R = float(g["radius_px"]) * ci.registration.scale
    H, W = ci.encoded.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    mask = (r >= 0.15 * R) & (r <= 0.9 * R)
    res = false_color_achromatic(ci.encoded, mask=mask, transfer="srgb")
    return {"false_color_mean_chroma": res.mean_chroma, "false_color_p99_chroma": res.p99_chroma,
            "false_color_pct": res.above_threshold_pct}, {}


def _measure_dot_grid(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.geometry import distortion_dot_grid, lateral_ca_dot_grid

    import warnings

    with warnings.catch_warnings():  # an empty outer ring gives NaN, reported as such
        warnings.simplefilter("ignore", RuntimeWarning)
        dist = distortion_dot_grid(ci.linear)
        ca = lateral_ca_dot_grid(ci.linear)
    return {"distortion_pct": dist.distortion_corner_pct, "lateral_ca_px": ca.max_px}, {}


MEASURES: dict[str, Callable[..., tuple[dict, dict]]] = {
    "colorchecker": _measure_colorchecker,
    "slanted_edge": _measure_slanted_edge,
    "flat_field": _measure_flat_field,
    "gray_steps": _measure_gray_steps,
    "siemens_star": _measure_siemens_star,
    "dot_grid": _measure_dot_grid,
}


def measure_chart(ci: ChartImage, *, flat_luma: NDArray | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """Measure one chart image; returns ``(metrics, curves)`` (JSON-ready scalars and lists).

    ``flat_luma`` is the linear luminance of a uniform patch from the same
    pipeline and capture set (dead leaves uses it as the noise reference).
    """
    if ci.kind == "dead_leaves":
        return _measure_dead_leaves(ci, flat_luma)
    if ci.kind not in MEASURES:
        raise InvalidParams(f"no measurement for chart {ci.kind!r}")
    return MEASURES[ci.kind](ci)


def measure_image(encoded: NDArray, chart: dict[str, Any], *, truth_luma: NDArray | None = None,
                  truth_rgb_linear: NDArray | None = None) -> dict[str, Any]:
    """Measure an sRGB-encoded image (float 0..1, (H, W, 3)) of a chart described by ``chart``.

    ``truth_luma`` (registration, dead-leaves reference) and ``truth_rgb_linear`` (the
    ColorChecker's own colours as the reference) come from a simulator's truth file;
    without them the image is placed by its size and X-Rite's values are the reference.
    Returns ``{"chart", "registration", "metrics", "curves"}``.
    """
    H, W = encoded.shape[:2]
    if truth_luma is not None:
        reg = register_to_truth(luminance_linear_srgb(srgb_to_linear(encoded)), truth_luma)
    elif chart.get("size_wh"):
        reg = registration_from_sizes((W, H), tuple(chart["size_wh"]))
    else:
        reg = Registration()
    ci = ChartImage(chart["chart"], encoded, chart["geometry"], reg, truth_luma, truth_rgb_linear)
    metrics, curves = measure_chart(ci)
    return {"chart": chart["chart"], "registration": reg.to_dict(), "metrics": metrics, "curves": curves}


# ----------------------------------------------------------------------- the run
@dataclass
class LabRun:
    """Everything a lab run produced: ``results`` (JSON-ready) and small image crops for the report."""

    results: dict[str, Any]
    crops: dict[str, NDArray[np.uint8]] = field(default_factory=dict)


def _scene(spec, condition) -> Any:
    from rawlab.sim.scene import make_scene

    options = {k: v for k, v in spec.options.items() if k != "exposure_ev"}  # exposure_ev is the capture's
    scene = make_scene(spec.name, spec.size_wh, **options)
    return replace(scene, white_luminance_cd_m2=condition.white_luminance_cd_m2)


def _without_vignetting(camera):
    """The camera with a lens free of fall-off (cos^4 and polynomial), everything else unchanged."""
    return replace(camera, optics=replace(camera.optics, vignetting_cos4=False, vignetting_poly=()))


def _crop_u8(rendered: RenderedImage, fraction: float = 0.5, max_side: int = 160) -> NDArray[np.uint8]:
    H, W = rendered.srgb8.shape[:2]
    side = min(max_side, int(min(H, W) * fraction))
    t, l = (H - side) // 2, (W - side) // 2
    return np.ascontiguousarray(rendered.srgb8[t:t + side, l:l + side])


def run_protocol(
    protocol: Protocol,
    pipelines: Sequence[str | Adapter],
    *,
    work_dir: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> LabRun:
    """Run ``protocol`` on ``pipelines`` and score them.

    Parameters
    ----------
    protocol
        The test plan (:func:`rawlab.lab.protocol.load_protocol`).
    pipelines
        Pipeline names (:func:`rawlab.lab.adapters.make_adapter`) or adapters.
    work_dir
        Folder for the simulated DNGs (kept); default a temporary folder (removed).
    progress
        Called with one line per capture set (the CLI prints it); the run itself prints nothing.

    Returns
    -------
    LabRun
        ``results``: protocol, pipelines (status, timings), per capture set the
        metrics, curves, registrations and scores, and per pipeline the mean scores.
    """
    from rawlab.io.dng_write import write_dng
    from rawlab.sim.camera import load_camera
    from rawlab.sim.capture import capture

    adapters = [make_adapter(p) if isinstance(p, str) else p for p in pipelines]
    if not adapters:
        raise InvalidParams("no pipelines to test")
    status: dict[str, dict[str, Any]] = {}
    active = []
    for a in adapters:
        try:
            a.check()
            status[a.name] = {"status": "ok", "seconds": 0.0, "errors": []}
            active.append(a)
        except RawlabError as exc:
            status[a.name] = {"status": "unavailable", "reason": str(exc), "seconds": 0.0, "errors": []}
    tmp = None
    if work_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="rawlab-lab-")
        root = Path(tmp.name)
    else:
        root = Path(work_dir)
        root.mkdir(parents=True, exist_ok=True)
    run = LabRun(results={})
    sets_out: list[dict[str, Any]] = []
    skipped: list[str] = []
    scenes: dict[tuple[str, str], Any] = {}
    t_start = time.perf_counter()
    try:
        for cs in protocol.capture_sets():
            cam = load_camera(cs.camera)
            if not cam.sensor.iso_base <= cs.iso <= cam.sensor.iso_max:
                skipped.append(f"{cs.key}: outside {cs.camera}'s ISO range "
                               f"{cam.sensor.iso_base:g}..{cam.sensor.iso_max:g}")
                continue
            entry: dict[str, Any] = {"key": cs.key, "camera": cs.camera, "condition": cs.condition.name,
                                     "illuminant": cs.condition.illuminant, "iso": cs.iso,
                                     "captures": {}, "pipelines": {}}
            captures = {}
            for k, spec in enumerate(protocol.charts):
                skey = (spec.name, cs.condition.name)
                if skey not in scenes:
                    scenes[skey] = _scene(spec, cs.condition)
                seed = cs.seed(protocol.seed, k)
                lens_cam = cam if spec.name in SHADING_CHARTS else _without_vignetting(cam)
                cap = capture(scenes[skey], lens_cam, iso=cs.iso, illuminant=cs.condition.illuminant, seed=seed,
                              exposure_ev=float(spec.options.get("exposure_ev", 0.0)), gainmap_opcode=True)
                safe = cs.key.replace("/", "_").replace(" ", "-")
                dng = root / f"{safe}_{spec.name}.dng"
                write_dng(cap.frame, dng)
                captures[spec.name] = (dng, cap)
                entry["captures"][spec.name] = {"dng": dng.name, "seed": seed,
                                                "exposure_time_s": cap.truth["exposure_time_s"],
                                                "electrons_per_white_center": cap.truth["electrons_per_white_center"]}
            for a in active:
                pe: dict[str, Any] = {"metrics": {}, "curves": {}, "registration": {}, "errors": []}
                rendered: dict[str, RenderedImage] = {}
                for name, (dng, cap) in captures.items():
                    try:
                        rendered[name] = a.render(dng)
                        status[a.name]["seconds"] += rendered[name].seconds
                    except RawlabError as exc:
                        pe["errors"].append(f"{name}: {exc}")
                flat_luma = None
                order = sorted(rendered, key=lambda n: n == "dead_leaves")  # flat field before dead leaves
                for name in order:
                    r = rendered[name]
                    cap = captures[name][1]
                    truth_luma = np.ascontiguousarray(cap.truth_xyz[..., 1])
                    enc = r.encoded_float()
                    try:
                        if name == "flat_field":  # nothing to register on a uniform field
                            reg = registration_from_sizes((enc.shape[1], enc.shape[0]), tuple(cap.truth["size_wh"]))
                        else:
                            reg = register_to_truth(luminance_linear_srgb(srgb_to_linear(enc)), truth_luma)
                        ci = ChartImage(name, enc, cap.truth["geometry"], reg, truth_luma,
                                        cap.truth_srgb_linear if name == "colorchecker" else None)
                        metrics, curves = measure_chart(ci, flat_luma=flat_luma)
                        pe["metrics"].update(metrics)
                        pe["curves"].update(curves)
                        pe["registration"][name] = reg.to_dict()
                        if name == "flat_field":
                            Y = luminance_linear_srgb(ci.linear)
                            flat_luma = crop(Y, _central_box(Y.shape, 0.5))
                    except (RawlabError, ValueError, np.linalg.LinAlgError) as exc:
                        pe["errors"].append(f"{name}: {exc}")
                    if name == "dead_leaves":
                        run.crops[f"{a.name}|{cs.key}|dead_leaves"] = _crop_u8(r)
                    if name == "siemens_star":
                        run.crops[f"{a.name}|{cs.key}|siemens_star"] = _crop_u8(r, 0.45)
                status[a.name]["errors"].extend(f"{cs.key}: {e}" for e in pe["errors"])
                pe["scores"] = scoring.score_metrics(pe["metrics"])
                entry["pipelines"][a.name] = pe
            sets_out.append(entry)
            if progress is not None:
                line = "  ".join(f"{n}={p['scores']['overall']:.1f}" for n, p in entry["pipelines"].items())
                progress(f"{cs.key}: {line}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    summary = {}
    for a in active:
        per_set = [s["pipelines"][a.name]["scores"] for s in sets_out if a.name in s["pipelines"]]
        summary[a.name] = scoring.aggregate_scores(per_set)
    run.results = {
        "rawlab_lab": {"score_version": scoring.SCORE_VERSION, "wall_s": time.perf_counter() - t_start},
        "protocol": protocol.to_dict(),
        "pipelines": status,
        "skipped": skipped,
        "summary": summary,
        "capture_sets": sets_out,
        "score_anchors": scoring.anchors_table(),
    }
    return run
