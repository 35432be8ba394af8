"""Optical artifacts of geometry and shading: vignetting, distortion, lateral CA.

* Vignetting (ISO 17957:2015 shading): the mean of each image corner relative
  to the centre of a uniform flat field, in EV (log2; negative = darker).
* Distortion from a dot grid (ISO 17850:2015 geometric distortion): dot
  centroids are assigned to grid nodes, an ideal (affine) grid with a radial
  polynomial ``r_d = r_u (1 + k1 rho^2 + k2 rho^4)`` about the image centre is
  fitted by least squares, and the distortion in percent is
  ``100 (r_d - r_u) / r_u`` at the image corner (rho = 1, half diagonal);
  negative is barrel, positive pincushion.
* Lateral chromatic aberration (ISO 19084:2015): the radial displacement of
  the red and blue dot centroids from the green ones, in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import ndimage, optimize
from scipy.spatial import cKDTree

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import check_choice

#: Rec. ITU-R BT.709 luminance weights, used to reduce RGB to one channel.
_Y_WEIGHTS = np.array([0.2126, 0.7152, 0.0722])


def _luminance(image: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim == 3 and a.shape[-1] == 3:
        a = a @ _Y_WEIGHTS
    if a.ndim != 2 or min(a.shape) < 16:
        raise InvalidParams(f"image must be (H, W) or (H, W, 3) of at least 16 x 16 px, got {np.shape(image)}")
    if not np.all(np.isfinite(a)):
        raise InvalidParams("image contains NaN or infinite values")
    return a


@dataclass(frozen=True, slots=True)
class VignettingResult:
    """Corner fall-off of a flat field, EV (order: top-left, top-right, bottom-left, bottom-right)."""

    corner_ev: NDArray[np.float64]
    mean_ev: float
    worst_ev: float


def vignetting_ev(flat_field: ArrayLike, *, corner_fraction: float = 0.05) -> VignettingResult:
    """Vignetting of a uniform flat-field capture.

    Parameters
    ----------
    flat_field
        (H, W) or (H, W, 3) linear image of a uniformly lit, uniform target
        (RGB is reduced to Rec. 709 luminance).
    corner_fraction
        Side of the square corner (and centre) regions as a fraction of min(H, W), 0.01..0.25.

    Returns
    -------
    VignettingResult
        log2(corner mean / centre mean) per corner; 0 for no vignetting.
    """
    if not 0.01 <= corner_fraction <= 0.25:
        raise InvalidParams(f"corner_fraction must be 0.01..0.25, got {corner_fraction}")
    a = _luminance(flat_field)
    h, w = a.shape
    s = max(2, int(round(corner_fraction * min(h, w))))
    cy, cx = (h - s) // 2, (w - s) // 2
    centre = a[cy : cy + s, cx : cx + s].mean()
    corners = np.array(
        [a[:s, :s].mean(), a[:s, -s:].mean(), a[-s:, :s].mean(), a[-s:, -s:].mean()], dtype=np.float64
    )
    if not centre > 0 or np.any(corners <= 0):
        raise InvalidParams("flat field must be positive at the centre and corners (linear, black at 0)")
    ev = np.log2(corners / centre)
    return VignettingResult(corner_ev=ev, mean_ev=float(ev.mean()), worst_ev=float(ev.min()))


def find_dots(
    image: ArrayLike, *, polarity: Literal["dark", "bright"] = "dark", min_area_px: int = 4
) -> NDArray[np.float64]:
    """Centroids (x, y) of the dots of a dot chart, intensity weighted, px.

    Parameters
    ----------
    image
        (H, W) or (H, W, 3) image of a dot grid; any transfer (one threshold half way
        between the 1st and 99th percentiles separates dots from background).
    polarity
        ``"dark"`` dots on a bright background or ``"bright"`` dots on a dark one.
    min_area_px
        Smaller blobs are ignored (noise); blobs touching the border are ignored.

    Returns
    -------
    numpy.ndarray
        (N, 2) dot centres, x right and y down, pixel-centre coordinates.
    """
    check_choice("polarity", polarity, ("dark", "bright"))
    a = _luminance(image)
    lo, hi = np.percentile(a, [1.0, 99.0])
    if not hi > lo:
        raise InvalidParams("dot chart has no contrast")
    weight = (hi - a) if polarity == "dark" else (a - lo)
    mask = weight > 0.5 * (hi - lo)
    labels, n = ndimage.label(mask)
    if n == 0:
        return np.zeros((0, 2))
    idx = np.arange(1, n + 1)
    area = ndimage.sum_labels(np.ones_like(a), labels, idx)
    # Touching the border: any label present on the outer rows/columns.
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    keep = (area >= min_area_px) & ~np.isin(idx, border)
    if not keep.any():
        return np.zeros((0, 2))
    # Weight by contrast over the background inside each blob grown to about twice its
    # radius, so the centroid takes in the dot's soft edge and is not biased by the threshold.
    grow = int(np.ceil(np.sqrt(np.median(area[keep]) / np.pi)))
    grown = ndimage.grey_dilation(np.where(np.isin(labels, idx[keep]), labels, 0), size=(2 * grow + 1,) * 2)
    w = np.clip(weight, 0.0, None)
    com = np.array(ndimage.center_of_mass(w, grown, idx[keep]), dtype=np.float64).reshape(-1, 2)
    return com[:, ::-1]


@dataclass(frozen=True, slots=True)
class DistortionResult:
    """Radial distortion fitted on a dot grid.

    Attributes
    ----------
    distortion_corner_pct
        100 (r_d - r_u) / r_u at the image corner (half diagonal), from the fitted model.
    k1, k2
        Radial coefficients, rho normalised by the half diagonal.
    dot_distortion_pct
        (N,) the same quantity measured at each assigned dot (NaN at the centre).
    dots_xy, grid_ij
        (N, 2) assigned dot centres and their grid indices.
    residual_rms_px
        RMS of the fit residuals.
    """

    distortion_corner_pct: float
    k1: float
    k2: float
    dot_distortion_pct: NDArray[np.float64]
    dots_xy: NDArray[np.float64]
    grid_ij: NDArray[np.int64]
    residual_rms_px: float


def _model(params: NDArray[np.float64], ij: NDArray[np.float64], centre: NDArray[np.float64], r_ref: float):
    o = params[0:2]
    A = params[2:6].reshape(2, 2)
    k1, k2 = params[6], params[7]
    u = o + ij @ A.T
    d = u - centre
    rho2 = (d**2).sum(axis=1) / r_ref**2
    return centre + d * (1.0 + k1 * rho2 + k2 * rho2**2)[:, None], u


def distortion_dot_grid(
    image: ArrayLike,
    *,
    polarity: Literal["dark", "bright"] = "dark",
    center_xy: tuple[float, float] | None = None,
) -> DistortionResult:
    """Radial distortion of a lens from a capture of a regular dot grid.

    Parameters
    ----------
    image
        (H, W) or (H, W, 3) capture of a square dot grid filling the frame.
    polarity
        Dots darker or brighter than the background.
    center_xy
        Distortion centre, px (x, y); default the image centre.

    Returns
    -------
    DistortionResult
        Negative percentages for barrel, positive for pincushion.
    """
    a = _luminance(image)
    h, w = a.shape
    dots = find_dots(a, polarity=polarity)
    if len(dots) < 9:
        raise InvalidParams(f"dot grid: found {len(dots)} dots, need at least 9")
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) if center_xy is None else np.asarray(center_xy, float)
    r_ref = float(np.hypot(w - 1, h - 1) / 2.0)
    tree = cKDTree(dots)
    c_idx = int(np.argmin(((dots - centre) ** 2).sum(axis=1)))
    origin = dots[c_idx]
    near = tree.query(origin, k=min(5, len(dots)))[1][1:]
    vec = dots[near] - origin
    pitch = float(np.median(np.hypot(vec[:, 0], vec[:, 1])))
    theta = float(np.median(np.mod(np.arctan2(vec[:, 1], vec[:, 0]) + np.pi / 4, np.pi / 2) - np.pi / 4))
    A = pitch * np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    params = np.concatenate([origin, A.ravel(), [0.0, 0.0]])

    radius = 2.5 * pitch
    ij = np.zeros((0, 2))
    assigned = np.zeros(0, dtype=np.int64)
    max_r = float(np.max(np.hypot(*(dots - origin).T)))
    for _ in range(40):  # grow the assigned region ring by ring
        n_max = int(np.ceil(radius / pitch)) + 1
        gi, gj = np.meshgrid(np.arange(-n_max, n_max + 1), np.arange(-n_max, n_max + 1), indexing="ij")
        cand = np.stack([gi.ravel(), gj.ravel()], axis=1).astype(np.float64)
        pred, _u = _model(params, cand, centre, r_ref)
        dist, k = tree.query(pred)
        ok = (dist < 0.3 * pitch) & (np.hypot(*(pred - origin).T) <= radius)
        # one dot per node: keep the closest node for each dot
        order = np.argsort(dist[ok])
        kk = k[ok][order]
        _, first = np.unique(kk, return_index=True)
        ij = cand[ok][order][first]
        assigned = kk[first]
        fit_k = len(assigned) >= 12 and radius > 3 * pitch
        free = slice(0, 8) if fit_k else slice(0, 6)

        def resid(p_free, ij=ij, target=dots[assigned], free=free):
            p = params.copy()
            p[free] = p_free
            return (_model(p, ij, centre, r_ref)[0] - target).ravel()

        sol = optimize.least_squares(resid, params[free], method="lm" if len(ij) * 2 > 8 else "trf")
        params[free] = sol.x
        if radius > max_r + pitch:
            break
        radius *= 1.4

    pred, u = _model(params, ij, centre, r_ref)
    res = pred - dots[assigned]
    r_u = np.hypot(*(u - centre).T)
    r_d_meas = np.hypot(*(dots[assigned] - centre).T)
    with np.errstate(invalid="ignore", divide="ignore"):
        dot_pct = np.where(r_u > 0.5 * pitch, 100.0 * (r_d_meas - r_u) / r_u, np.nan)
    k1, k2 = float(params[6]), float(params[7])
    return DistortionResult(
        distortion_corner_pct=100.0 * (k1 + k2),
        k1=k1,
        k2=k2,
        dot_distortion_pct=dot_pct,
        dots_xy=dots[assigned],
        grid_ij=ij.astype(np.int64),
        residual_rms_px=float(np.sqrt((res**2).sum(axis=1).mean())),
    )


@dataclass(frozen=True, slots=True)
class LateralCaResult:
    """Radial displacement of red and blue relative to green, px (positive = outward).

    ``red_px`` / ``blue_px`` are the mean over the outer 20 % of dots (by radius), ``max_px``
    the largest absolute displacement of either channel; ``radius_px`` and ``red_shift_px``,
    ``blue_shift_px`` give the per-dot values.
    """

    red_px: float
    blue_px: float
    max_px: float
    radius_px: NDArray[np.float64]
    red_shift_px: NDArray[np.float64]
    blue_shift_px: NDArray[np.float64]


def lateral_ca_dot_grid(
    image_rgb: ArrayLike,
    *,
    polarity: Literal["dark", "bright"] = "dark",
    center_xy: tuple[float, float] | None = None,
) -> LateralCaResult:
    """Lateral chromatic aberration from a dot-grid capture.

    Parameters
    ----------
    image_rgb
        (H, W, 3) R, G, B capture of a dot grid (any transfer).
    polarity
        Dots darker or brighter than the background.
    center_xy
        Optical centre, px; default the image centre.

    Returns
    -------
    LateralCaResult
    """
    a = np.asarray(image_rgb, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 3:
        raise InvalidParams(f"lateral CA needs an (H, W, 3) image, got shape {a.shape}")
    h, w, _ = a.shape
    centre = np.array([(w - 1) / 2.0, (h - 1) / 2.0]) if center_xy is None else np.asarray(center_xy, float)
    g = find_dots(a[..., 1], polarity=polarity)
    if len(g) < 4:
        raise InvalidParams(f"lateral CA: found {len(g)} dots in green, need at least 4")
    pitch = float(np.median(cKDTree(g).query(g, k=2)[0][:, 1]))
    r = np.hypot(*(g - centre).T)
    shifts = []
    for ch in (0, 2):
        d = find_dots(a[..., ch], polarity=polarity)
        if len(d) == 0:
            raise InvalidParams("lateral CA: no dots found in the red or blue channel")
        dist, k = cKDTree(d).query(g)
        radial = ((d[k] - g) * (g - centre)).sum(axis=1) / np.maximum(r, 1e-9)
        shifts.append(np.where(dist < 0.25 * pitch, radial, np.nan))
    red, blue = shifts
    outer = r >= np.quantile(r, 0.8)
    return LateralCaResult(
        red_px=float(np.nanmean(red[outer])),
        blue_px=float(np.nanmean(blue[outer])),
        max_px=float(np.nanmax(np.abs(np.concatenate([red, blue])))),
        radius_px=r,
        red_shift_px=red,
        blue_shift_px=blue,
    )


def render_dot_grid(
    shape: tuple[int, int],
    *,
    pitch_px: float = 40.0,
    dot_sigma_px: float = 3.0,
    k1: float = 0.0,
    k2: float = 0.0,
    scale: float = 1.0,
) -> NDArray[np.float32]:
    """A grid of dark Gaussian dots on white with radial distortion (chart synthesis for tests).

    The dot of ideal position ``u`` (grid about the image centre) is drawn at
    ``c + scale (u - c)(1 + k1 rho^2 + k2 rho^4)``, rho = |u - c| / half diagonal,
    so ``100 (k1 + k2)`` is the corner distortion in percent and ``scale`` models
    lateral CA between channels.  Values 0..1 (background 1).
    """
    h, w = int(shape[0]), int(shape[1])
    c = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    r_ref = float(np.hypot(w - 1, h - 1) / 2.0)
    n = int(np.ceil(r_ref / pitch_px)) + 1
    gi, gj = np.meshgrid(np.arange(-n, n + 1), np.arange(-n, n + 1), indexing="ij")
    u = np.stack([gi.ravel(), gj.ravel()], axis=1) * pitch_px
    rho2 = (u**2).sum(axis=1) / r_ref**2
    p = c + scale * u * (1.0 + k1 * rho2 + k2 * rho2**2)[:, None]
    img = np.zeros((h, w), dtype=np.float64)
    m = int(np.ceil(4 * dot_sigma_px))
    yy, xx = np.mgrid[-m : m + 1, -m : m + 1]
    for x, y in p:  # a loop over dots
        ix, iy = int(round(x)), int(round(y))
        if ix - m < 0 or iy - m < 0 or ix + m >= w or iy + m >= h:
            continue
        blob = np.exp(-((xx + ix - x) ** 2 + (yy + iy - y) ** 2) / (2.0 * dot_sigma_px**2))
        img[iy - m : iy + m + 1, ix - m : ix + m + 1] += blob
    return np.ascontiguousarray(1.0 - 0.8 * np.clip(img, 0.0, 1.0), dtype=np.float32)
