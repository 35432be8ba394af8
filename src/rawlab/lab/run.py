"""Running a lab protocol: simulate, render with each pipeline, locate the chart, measure, score.

For every capture set of the protocol (camera x condition x ISO) and every
chart, :func:`rawlab.sim.capture` makes a DNG with a fixed seed; each
pipeline under test renders it (:mod:`rawlab.lab.adapters`); the output is
registered to the truth (:func:`rawlab.lab.charts.register_to_truth`); the
chart is measured (:func:`measure_chart`) and the capture set's metrics are
scored (:mod:`rawlab.lab.score`).  Capture sets are simulated and rendered in
batches (at most :data:`BATCH_MAX_PIXELS` sensor pixels), so that a tool that
starts slowly renders a whole batch in one invocation.

What is measured on which rendering:

* colour (ColorChecker): the pipeline's **linear rendering**
  (:mod:`rawlab.lab.adapters`), tone-normalised through its own neutral
  patches (``exposure_normalization="oecf"`` of
  :func:`rawlab.lab.color.measure_colorchecker`); the ΔE of the user's sRGB
  image read as sRGB with one exposure gain is reported beside it
  (``delta_e2000_mean_as_seen``);
* exposure and noise: the grey steps (a scene with a histogram, where a
  histogram-driven auto-brightening behaves as on a photograph), read at the
  luminance the camera metered (the chart's mean, from the truth);
* everything else: the user's image decoded with the sRGB transfer to linear
  sRGB (a viewer's reading of the file), except where a function takes the
  encoded values (visual noise and false colour decode them themselves).
"""

from __future__ import annotations

import math
import tempfile
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams, RawlabError
from rawlab.lab import score as scoring
from rawlab.lab.adapters import Adapter, RenderedImage, make_adapter, render_many
from rawlab.lab.charts import (
    Registration,
    crop,
    luminance_linear_srgb,
    map_box,
    map_point,
    register_to_truth,
    registration_from_sizes,
)
from rawlab.lab.protocol import CaptureSet, Protocol

#: Reflectance a metered uniform field should render at (ISO 12232 standard output
#: sensitivity: an 18 % grey maps to the sRGB value 118/255, i.e. linear 0.18).
METERED_GREY = 0.18
#: Charts captured through the camera's real lens shading (with the DNG GainMap that corrects
#: it).  The other charts fill the frame, where a real lab centres a smaller chart: they are
#: captured without fall-off so that shading, scored once on the flat field, does not also
#: count as colour, tone or noise error at the frame's corners.
SHADING_CHARTS = ("flat_field",)
#: Charts for which each pipeline also makes its linear rendering (colour is measured on it).
LINEAR_CHARTS = ("colorchecker",)
#: Charts whose linear-sRGB truth is kept for the measurement (colour reference, zipper reference).
TRUTH_RGB_CHARTS = ("colorchecker", "siemens_star", "slanted_edge")
#: Largest number of sensor pixels simulated and rendered in one batch.
BATCH_MAX_PIXELS = 12_000_000
#: Central fraction (per side) of the flat field whose mean luminance is reported.
FLAT_CENTRE_FRACTION = 0.3
#: Fraction of a patch box dropped at its edges before taking statistics.
PATCH_SHRINK = 0.4
#: Fraction dropped from a grey step before measuring its noise (the visual-noise filter
#: needs at least 32 x 32 px: 20 steps need a chart about 1100 px wide and 70 px tall, or more).
NOISE_PATCH_SHRINK = 0.2
#: Half-width (output px) of the band around the slanted edge where false colour and zipper are read.
EDGE_BAND_PX = 4.0
#: Reflectance taken as the metered level of a grey-step photo without a truth file.
DEFAULT_METERED_REFLECTANCE = 0.18


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
    linear_render: NDArray[np.float32] | None = None  # (H, W, 3) the pipeline's linear rendering, if made
    exposure_ev: float = 0.0              # exposure compensation of the capture (from the truth)

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
    from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_D50, XYZ_to_Lab
    from rawlab.lab.color import COLORCHECKER_EXPOSURE_PATCHES, measure_colorchecker

    boxes = [p["box"] for p in ci.geometry["patches"]]
    seen_means = _patch_means(ci.linear, boxes, ci.registration, PATCH_SHRINK)
    source = "linear16" if ci.linear_render is not None else "srgb"
    means = seen_means if ci.linear_render is None else _patch_means(ci.linear_render, boxes, ci.registration,
                                                                     PATCH_SHRINK)
    Lab_ref = None
    if ci.truth_rgb_linear is not None:
        # the scene's own colours (its spectra under its light, adapted to D65 then D50 by Bradford):
        # the reference a perfect pipeline reproduces, free of chart-batch differences
        ref_means = _patch_means(ci.truth_rgb_linear, boxes, Registration(), PATCH_SHRINK)
        Lab_ref = XYZ_to_Lab(ref_means @ M_rgb_to_XYZ_D50("srgb").T, XYZ_D50)
    # scored: the linear rendering with the pipeline's tone curve taken out through its own neutrals
    res = measure_colorchecker(means, transfer="linear", Lab_reference_D50=Lab_ref, exposure_normalization="oecf")
    # reported: the user's 8/16-bit sRGB file read as sRGB, one exposure gain (score version 1's reading)
    seen = measure_colorchecker(seen_means, transfer="linear", Lab_reference_D50=Lab_ref,
                                exposure_normalization="neutrals")
    # the same after a von Kries balance on the neutral patches 20-23: colour rendering apart from the cast
    neutral = list(COLORCHECKER_EXPOSURE_PATCHES)
    grey = means[neutral].mean(axis=0)
    balanced = measure_colorchecker(means * (grey.mean() / grey), transfer="linear", Lab_reference_D50=Lab_ref,
                                    exposure_normalization="oecf")
    m = {"delta_e2000_mean": res.delta_e_2000_mean, "delta_e2000_max": res.delta_e_2000_max,
         "wb_error_delta_ab_mean": res.wb_error_delta_ab_mean, "chroma_level_pct": res.chroma_level_pct,
         "colorchecker_exposure_gain": res.exposure_gain, "colorchecker_rendering": source,
         "delta_e2000_mean_as_seen": seen.delta_e_2000_mean, "delta_e2000_max_as_seen": seen.delta_e_2000_max,
         "delta_e2000_mean_neutral_balanced": balanced.delta_e_2000_mean,
         "delta_e2000_max_neutral_balanced": balanced.delta_e_2000_max}
    curves = {"delta_e2000": res.delta_e_2000.tolist(), "Lab_measured_D50": res.Lab_measured_D50.tolist(),
              "Lab_reference_D50": res.Lab_reference_D50.tolist(), "rgb_linear_means": means.tolist(),
              "delta_e2000_as_seen": seen.delta_e_2000.tolist()}
    return m, curves


def _truth_on_output(truth: NDArray, reg: Registration, shape: tuple[int, int]) -> tuple[NDArray, NDArray]:
    """The truth image resampled onto the output grid, and the mask of output pixels it covers."""
    H, W = shape
    M = np.array([[reg.scale, 0.0, reg.offset_x], [0.0, reg.scale, reg.offset_y]], dtype=np.float64)
    img = cv2.warpAffine(np.ascontiguousarray(truth, dtype=np.float32), M, (W, H), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    cover = cv2.warpAffine(np.ones(truth.shape[:2], np.float32), M, (W, H), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    return img, cover > 0.999


def _artifacts(ci: ChartImage, mask: NDArray[np.bool_], prefix: str,
               zipper_mask: NDArray[np.bool_] | None = None) -> dict[str, float]:
    """False colour inside ``mask`` of an achromatic chart, and zipper inside ``zipper_mask``
    (default ``mask``) when the truth is known."""
    from rawlab.lab.artifacts import false_color_achromatic, zipper_excess_lu_tan2003

    fc = false_color_achromatic(ci.encoded, mask=mask, transfer="srgb")
    m = {f"{prefix}false_color_mean_chroma": fc.mean_chroma, f"{prefix}false_color_p99_chroma": fc.p99_chroma,
         f"{prefix}false_color_pct": fc.above_threshold_pct}
    if ci.truth_rgb_linear is not None:
        ref, cover = _truth_on_output(ci.truth_rgb_linear, ci.registration, ci.encoded.shape[:2])
        inside = (mask if zipper_mask is None else zipper_mask) & cover
        if inside.any():
            # the reference at the rendering's exposure: one gain that matches their means over the region
            lin = ci.linear
            k = float(lin[inside].mean()) / max(float(ref[inside].mean()), 1e-9)
            z = zipper_excess_lu_tan2003(np.clip(lin, 0, None), np.clip(ref * k, 0, None), transfer="linear",
                                         mask=inside)
            # Lu & Tan's measure at the reference's edges, its noise floor on uniform areas, and the excess
            m[f"{prefix}zipper_pct"] = z.edge_pct
            m[f"{prefix}zipper_noise_floor_pct"] = z.flat_pct
            m[f"{prefix}zipper_excess_pct"] = z.excess_pct
    return m


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
    # demosaicing false colour and zipper in a band along the (black-and-white) edge, inside the SFR box
    nx, ny = g.get("normal_xy", (1.0, 0.0))
    yy, xx = np.mgrid[0:H, 0:W]
    band = np.abs((xx + 0.5 - cx) * nx + (yy + 0.5 - cy) * ny) <= EDGE_BAND_PX
    inside = np.zeros((H, W), bool)
    inside[box[0]:box[2], box[1]:box[3]] = True
    m.update(_artifacts(ci, band & inside, "edge_", zipper_mask=inside))
    keep = res.frequency_cy_px <= 0.75
    return m, {"mtf_frequency_cy_px": res.frequency_cy_px[keep].tolist(), "mtf": res.mtf[keep].tolist()}


def _central_box(shape: tuple[int, int], fraction: float) -> tuple[int, int, int, int]:
    H, W = shape
    dh, dw = int(H * (1 - fraction) / 2), int(W * (1 - fraction) / 2)
    return dh, dw, H - dh, W - dw


def _measure_flat_field(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.geometry import vignetting_ev

    box = _central_box(ci.encoded.shape[:2], FLAT_CENTRE_FRACTION)
    Y = luminance_linear_srgb(ci.linear)
    vig = vignetting_ev(Y)
    # Exposure and noise are not read here: a histogram-driven auto-brightening (LibRaw,
    # dcraw) pushes a uniform field to white, which no photograph would see; they are read
    # on the grey steps instead.
    return {"flat_mean_luminance": float(crop(Y, box).mean()), "vignetting_worst_ev": vig.worst_ev,
            "vignetting_mean_ev": vig.mean_ev}, {}


def _log_interp(x_at: float, x: NDArray, y: NDArray) -> float:
    """``y(x_at)`` by linear interpolation in log x - log y; NaN outside ``x``'s range or for y <= 0."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.size == 0 or not (x.min() <= x_at <= x.max()) or np.any(y <= 0) or not np.all(np.isfinite(y)):
        return float("nan")
    order = np.argsort(x)
    return float(np.exp(np.interp(np.log(x_at), np.log(x[order]), np.log(y[order]))))


def _measure_gray_steps(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.noise import luminance_chroma_noise, patch_snr, visual_noise_iso15739
    from rawlab.lab.tone import measure_tone_steps

    Y = luminance_linear_srgb(ci.linear)
    steps = ci.geometry["steps"]
    patches = [crop(Y, map_box(s["box"], ci.registration, shape=Y.shape, shrink=PATCH_SHRINK)) for s in steps]
    L = np.array([s["reflectance"] for s in steps])
    res = measure_tone_steps(patches, relative_luminance=L, clip_level=1.0)
    valid = res.clipped_fraction <= 0.01
    chart_range_ev = float(np.log2(res.saturation_luminance / res.relative_luminance[0]))
    out: dict[str, Any] = {}
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

    # Exposure and noise at the luminance the camera metered (ISO 12232: a metered scene's
    # mean luminance renders at 18 % grey): the chart's mean reflectance, from the truth.
    if ci.truth_luma is not None:
        metered = float(np.mean(ci.truth_luma))
        target = METERED_GREY * 2.0 ** float(ci.exposure_ev)
    else:
        metered, target = DEFAULT_METERED_REFLECTANCE, METERED_GREY
    out["metered_reflectance"] = metered
    Lv, mv = res.relative_luminance[valid], res.mean[valid]
    y_metered = _log_interp(metered, Lv, mv)
    out["metered_grey_luminance"] = y_metered
    out["exposure_error_ev"] = math.log2(y_metered / target) if y_metered > 0 else float("nan")
    # noise of the two unclipped steps around the metered level, interpolated in log luminance
    refl = np.array([s["reflectance"] for s in steps])
    clipped = [np.count_nonzero(p >= 1.0 - 1e-6) / max(p.size, 1) for p in patches]  # per step, chart order
    ok = [i for i in range(len(steps)) if clipped[i] <= 0.01]
    below = [i for i in ok if refl[i] <= metered]
    above = [i for i in ok if refl[i] >= metered]
    if below and above:
        pair = (max(below, key=lambda i: refl[i]), min(above, key=lambda i: refl[i]))
        vals: dict[str, list[float]] = {"snr_db": [], "visual_noise": [], "noise_std_L": [], "chroma_noise": []}
        for i in pair:
            b = map_box(steps[i]["box"], ci.registration, shape=Y.shape, shrink=NOISE_PATCH_SHRINK)
            enc = crop(ci.encoded, b)
            vals["snr_db"].append(float(np.asarray(patch_snr(crop(Y, b)).snr_db).reshape(-1)[0]))
            vals["visual_noise"].append(visual_noise_iso15739(enc, transfer="srgb").visual_noise)
            cn = luminance_chroma_noise(enc, transfer="srgb")
            vals["noise_std_L"].append(cn.std_L)
            vals["chroma_noise"].append(cn.chroma_noise)
        r0, r1 = refl[pair[0]], refl[pair[1]]
        t = 0.0 if r1 == r0 else (math.log(metered) - math.log(r0)) / (math.log(r1) - math.log(r0))
        for k, (v0, v1) in vals.items():
            out[k] = float(v0 + t * (v1 - v0))
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
    g = ci.geometry
    cx, cy = map_point(g["center_xy"], ci.registration)
    R = float(g["radius_px"]) * ci.registration.scale
    H, W = ci.encoded.shape[:2]
    yy, xx = np.mgrid[0:H, 0:W]
    r = np.hypot(xx + 0.5 - cx, yy + 0.5 - cy)
    mask = (r >= 0.15 * R) & (r <= 0.9 * R)
    return _artifacts(ci, mask, ""), {}


def _measure_dot_grid(ci: ChartImage) -> tuple[dict, dict]:
    from rawlab.lab.geometry import distortion_dot_grid, lateral_ca_dot_grid

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
    ci = ChartImage(chart["chart"], encoded, chart["geometry"], reg, truth_luma, truth_rgb_linear,
                    exposure_ev=float(chart.get("exposure_ev") or 0.0))
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


def _headline(scores: dict[str, Any]) -> str:
    """The overall score, or the colour score of a colour-only capture set."""
    if math.isfinite(scores["overall"]):
        return f"{scores['overall']:.1f}"
    return f"color {scores['color']:.1f}" if math.isfinite(scores["color"]) else "nan"


@dataclass
class _Capture:
    """One simulated chart capture: its DNG and the truth the measurement needs."""

    dng: Path
    truth: dict[str, Any]
    truth_luma: NDArray[np.float32]
    truth_rgb_linear: NDArray[np.float32] | None


def _batches(protocol: Protocol, cameras: dict[str, Any], skipped: list[str]) -> list[list[CaptureSet]]:
    """The protocol's capture sets in batches of at most :data:`BATCH_MAX_PIXELS` sensor pixels."""
    out: list[list[CaptureSet]] = []
    current: list[CaptureSet] = []
    pixels = 0
    for cs in protocol.capture_sets():
        if cs.camera not in cameras:
            from rawlab.sim.camera import load_camera

            cameras[cs.camera] = load_camera(cs.camera)
        cam = cameras[cs.camera]
        if not cam.sensor.iso_base <= cs.iso <= cam.sensor.iso_max:
            skipped.append(f"{cs.key}: outside {cs.camera}'s ISO range "
                           f"{cam.sensor.iso_base:g}..{cam.sensor.iso_max:g}")
            continue
        n = sum(c.size_wh[0] * c.size_wh[1] for c in protocol.charts if cs.includes(c.name))
        if current and pixels + n > BATCH_MAX_PIXELS:
            out.append(current)
            current, pixels = [], 0
        current.append(cs)
        pixels += n
    if current:
        out.append(current)
    return out


def _measure_set(a: Adapter, cs: CaptureSet, captures: dict[str, _Capture],
                 rendered: dict[str, RenderedImage | RawlabError], run: "LabRun") -> dict[str, Any]:
    """Register, measure and score one pipeline's renderings of one capture set."""
    pe: dict[str, Any] = {"metrics": {}, "curves": {}, "registration": {}, "errors": []}
    flat_luma = None
    order = sorted(captures, key=lambda n: n == "dead_leaves")  # flat field before dead leaves
    for name in order:
        r = rendered[name]
        if isinstance(r, RawlabError):
            pe["errors"].append(f"{name}: {r}")
            continue
        cap = captures[name]
        enc = r.encoded_float()
        try:
            if name == "flat_field":  # nothing to register on a uniform field
                reg = registration_from_sizes((enc.shape[1], enc.shape[0]), tuple(cap.truth["size_wh"]))
            else:
                reg = register_to_truth(luminance_linear_srgb(srgb_to_linear(enc)), cap.truth_luma)
            ci = ChartImage(name, enc, cap.truth["geometry"], reg, cap.truth_luma, cap.truth_rgb_linear,
                            linear_render=r.linear_float(), exposure_ev=float(cap.truth.get("exposure_ev", 0.0)))
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
    pe["scores"] = scoring.score_metrics(pe["metrics"])
    return pe


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
        metrics, curves, registrations and scores, and per pipeline the scores
        over all capture sets (:func:`rawlab.lab.score.aggregate_scores`).
    """
    from rawlab.io.dng_write import write_dng
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
    cameras: dict[str, Any] = {}
    t_start = time.perf_counter()
    try:
        for batch in _batches(protocol, cameras, skipped):
            # 1. simulate every chart of every capture set of the batch
            t0 = time.perf_counter()
            entries: list[tuple[CaptureSet, dict[str, Any], dict[str, _Capture]]] = []
            for cs in batch:
                cam = cameras[cs.camera]
                entry: dict[str, Any] = {"key": cs.key, "camera": cs.camera, "condition": cs.condition.name,
                                         "illuminant": cs.condition.illuminant, "iso": cs.iso,
                                         "captures": {}, "pipelines": {}}
                captures: dict[str, _Capture] = {}
                for k, spec in enumerate(protocol.charts):
                    if not cs.includes(spec.name):
                        continue
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
                    captures[spec.name] = _Capture(
                        dng, cap.truth, np.ascontiguousarray(cap.truth_xyz[..., 1]),
                        np.ascontiguousarray(cap.truth_srgb_linear) if spec.name in TRUTH_RGB_CHARTS else None)
                    entry["captures"][spec.name] = {"dng": dng.name, "seed": seed,
                                                    "exposure_time_s": cap.truth["exposure_time_s"],
                                                    "electrons_per_white_center":
                                                        cap.truth["electrons_per_white_center"]}
                entries.append((cs, entry, captures))
            n_dng = sum(len(c) for _, _, c in entries)
            if progress is not None:
                progress(f"simulated {len(entries)} capture sets, {n_dng} DNGs in {time.perf_counter() - t0:.1f} s")
            # 2. each pipeline renders the whole batch (one invocation of a slow-starting tool), then measures
            for a in active:
                jobs = [(i, name) for i, (_, _, caps) in enumerate(entries) for name in caps]
                paths = [entries[i][2][name].dng for i, name in jobs]
                t0 = time.perf_counter()
                try:
                    results = render_many(a, paths, linear=[name in LINEAR_CHARTS for _, name in jobs])
                except RawlabError as exc:
                    results = [exc] * len(jobs)
                t_render = time.perf_counter() - t0
                per_set: list[dict[str, RenderedImage | RawlabError]] = [{} for _ in entries]
                for (i, name), r in zip(jobs, results):
                    per_set[i][name] = r
                    if isinstance(r, RenderedImage):
                        status[a.name]["seconds"] += r.seconds
                for (cs, entry, captures), rendered in zip(entries, per_set):
                    pe = _measure_set(a, cs, captures, rendered, run)
                    status[a.name]["errors"].extend(f"{cs.key}: {e}" for e in pe["errors"])
                    entry["pipelines"][a.name] = pe
                del results, per_set
                if progress is not None:
                    progress(f"  {a.name}: rendered {len(jobs)} images in {t_render:.1f} s, "
                             f"measured them in {time.perf_counter() - t0 - t_render:.1f} s")
            for cs, entry, _ in entries:
                sets_out.append(entry)
                if progress is not None:
                    line = "  ".join(f"{n}={_headline(p['scores'])}" for n, p in entry["pipelines"].items())
                    progress(f"{cs.key}: {line}")
    finally:
        if tmp is not None:
            tmp.cleanup()
    summary = {}
    for a in active:
        per_set_scores = [s["pipelines"][a.name]["scores"] for s in sets_out if a.name in s["pipelines"]]
        summary[a.name] = scoring.aggregate_scores(per_set_scores)
    run.results = {
        "rawlab_lab": {"score_version": scoring.SCORE_VERSION, "wall_s": time.perf_counter() - t_start},
        "protocol": protocol.to_dict(),
        "pipelines": status,
        "skipped": skipped,
        "summary": summary,
        "color_by_illuminant": color_by_illuminant(sets_out),
        "capture_sets": sets_out,
        "score_anchors": scoring.anchors_table(),
    }
    return run


def color_by_illuminant(capture_sets: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """ColorChecker ΔE2000 (mean, max) per camera x condition at the lowest ISO measured, per pipeline.

    Returns
    -------
    list of dict
        ``{"camera", "condition", "illuminant", "iso", "pipelines": {name: {"mean", "max",
        "mean_as_seen", "max_as_seen"}}}``, in protocol order.
    """
    best: dict[tuple[str, str], dict[str, Any]] = {}
    for cs in capture_sets:
        if not any("delta_e2000_mean" in p["metrics"] for p in cs["pipelines"].values()):
            continue
        key = (cs["camera"], cs["condition"])
        if key not in best or cs["iso"] < best[key]["iso"]:
            best[key] = cs
    rows = []
    for (camera, condition), cs in best.items():
        rows.append({"camera": camera, "condition": condition, "illuminant": cs["illuminant"], "iso": cs["iso"],
                     "pipelines": {n: {"mean": p["metrics"].get("delta_e2000_mean"),
                                       "max": p["metrics"].get("delta_e2000_max"),
                                       "mean_as_seen": p["metrics"].get("delta_e2000_mean_as_seen"),
                                       "max_as_seen": p["metrics"].get("delta_e2000_max_as_seen")}
                                   for n, p in cs["pipelines"].items()}})
    return rows
