"""Demosaicing artifacts: false colour on achromatic targets, and the zipper effect.

* False colour: on an achromatic target (Siemens star, slanted edges, a
  black-and-white resolution chart) every pixel of a correct rendering is
  neutral, so the CIELAB chroma C*ab of each pixel, after a grey-world white
  balance over the region (so that a global colour cast is not counted), is
  false colour.  Reported as mean, 99th percentile and the share of pixels
  above a visibility threshold (C*ab > 5 by default, about two JNDs).
* Zipper effect: W. Lu and Y.-P. Tan, "Color filter array demosaicking: new
  method and performance measures", IEEE Trans. Image Process. 12(10), 2003,
  section V: for each pixel, its most similar 8-neighbour in the reference
  image (smallest ΔE*ab); the pixel shows zipper when the colour difference to
  that same neighbour grows by more than a threshold (2.3 ΔE*ab, one JND) in
  the image under test.  Reported as the percentage of pixels
  (:func:`zipper_lu_tan2003`; the per-pixel map is :func:`zipper_map_lu_tan2003`).
  The measure was defined on noise-free renderings; on a real capture noise
  alone raises neighbour differences, so the lab reports the zipper of pixels
  next to an edge of the reference in excess of the same measure where the
  reference is locally uniform (:func:`zipper_excess_lu_tan2003`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_to_Lab, check_choice, to_linear


def _rgb(image: ArrayLike, name: str) -> NDArray[np.float64]:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 3 or a.shape[-1] != 3 or min(a.shape[:2]) < 3:
        raise InvalidParams(f"{name} must be (H, W, 3) with H, W >= 3, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidParams(f"{name} contains NaN or infinite values")
    return a


def _Lab(rgb: NDArray[np.float64], transfer: str, primaries: str) -> NDArray[np.float64]:
    M = M_rgb_to_XYZ_D50(primaries)
    return XYZ_to_Lab(to_linear(rgb, transfer) @ M.T, M @ np.ones(3))


@dataclass(frozen=True, slots=True)
class FalseColorResult:
    """False colour on an achromatic target, CIELAB C*ab units.

    Attributes
    ----------
    mean_chroma, p99_chroma
        Mean and 99th percentile of C*ab over the region.
    above_threshold_pct
        Percentage of pixels with C*ab above the threshold.
    chroma_map
        (H, W) C*ab per pixel (NaN outside the mask).
    """

    mean_chroma: float
    p99_chroma: float
    above_threshold_pct: float
    chroma_map: NDArray[np.float64]


def false_color_achromatic(
    image: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    threshold_chroma: float = 5.0,
) -> FalseColorResult:
    """False colour of a rendering of an achromatic target.

    Parameters
    ----------
    image
        (H, W, 3) R, G, B rendering of a black-and-white target, white at 1.0.
    mask
        Optional (H, W) boolean region to measure (e.g. the star without its
        surround); default the whole image.
    transfer, primaries
        Encoding of ``image``.
    threshold_chroma
        C*ab above which a pixel counts as visibly coloured.

    Returns
    -------
    FalseColorResult
    """
    check_choice("transfer", transfer, ("linear", "srgb"))
    a = _rgb(image, "image")
    m = np.ones(a.shape[:2], dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if m.shape != a.shape[:2] or not m.any():
        raise InvalidParams("mask must be a non-empty (H, W) boolean array matching the image")
    lin = to_linear(a, transfer)
    means = lin[m].mean(axis=0)
    if np.any(means <= 0):
        raise InvalidParams("false colour: a channel is black over the region")
    lin = lin * (means.mean() / means)  # grey-world balance over the region
    M = M_rgb_to_XYZ_D50(primaries)
    Lab = XYZ_to_Lab(lin @ M.T, M @ np.ones(3))  # white = R = G = B = 1: neutrals have C* = 0
    C = np.hypot(Lab[..., 1], Lab[..., 2])
    vals = C[m]
    return FalseColorResult(
        mean_chroma=float(vals.mean()),
        p99_chroma=float(np.percentile(vals, 99.0)),
        above_threshold_pct=float(100.0 * np.count_nonzero(vals > threshold_chroma) / vals.size),
        chroma_map=np.where(m, C, np.nan),
    )


_NEIGHBOURS = ((-1, -1), (-1, 0), (-1, 1), (0, -1), (0, 1), (1, -1), (1, 0), (1, 1))


def _shifted_delta_e(Lab: NDArray[np.float64], dy: int, dx: int) -> NDArray[np.float64]:
    """ΔE*ab between each interior pixel and its neighbour at (dy, dx)."""
    h, w, _ = Lab.shape
    core = Lab[1 : h - 1, 1 : w - 1]
    nb = Lab[1 + dy : h - 1 + dy, 1 + dx : w - 1 + dx]
    return np.sqrt(((core - nb) ** 2).sum(axis=-1))


def zipper_map_lu_tan2003(
    image: ArrayLike,
    reference: ArrayLike,
    *,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    threshold_delta_e: float = 2.3,
) -> NDArray[np.bool_]:
    """Per-pixel zipper map of Lu & Tan (2003), (H, W) boolean, False on the 1-px border.

    Parameters as :func:`zipper_lu_tan2003`.
    """
    check_choice("transfer", transfer, ("linear", "srgb"))
    a = _rgb(image, "image")
    r = _rgb(reference, "reference")
    if a.shape != r.shape:
        raise InvalidParams(f"image {a.shape} and reference {r.shape} differ in shape")
    Lab_a = _Lab(a, transfer, primaries)
    Lab_r = _Lab(r, transfer, primaries)
    d_ref = np.stack([_shifted_delta_e(Lab_r, dy, dx) for dy, dx in _NEIGHBOURS])
    d_img = np.stack([_shifted_delta_e(Lab_a, dy, dx) for dy, dx in _NEIGHBOURS])
    k = np.argmin(d_ref, axis=0)[None]
    ref_min = np.take_along_axis(d_ref, k, axis=0)[0]
    img_same = np.take_along_axis(d_img, k, axis=0)[0]
    out = np.zeros(a.shape[:2], dtype=bool)
    out[1:-1, 1:-1] = (img_same - ref_min) > threshold_delta_e
    return out


def _interior(shape: tuple[int, ...], mask: ArrayLike | None) -> NDArray[np.bool_]:
    """The pixels off the 1-px border (where the 3 x 3 zipper test is defined), within ``mask`` if given."""
    inner = np.zeros(shape, dtype=bool)
    inner[1:-1, 1:-1] = True
    if mask is not None:
        m = np.asarray(mask, dtype=bool)
        if m.shape != tuple(shape):
            raise InvalidParams(f"mask must be (H, W) = {tuple(shape)}, got {m.shape}")
        inner &= m
    return inner


def zipper_lu_tan2003(
    image: ArrayLike,
    reference: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    threshold_delta_e: float = 2.3,
) -> float:
    """Percentage of pixels with zipper artifacts (Lu & Tan 2003).

    Parameters
    ----------
    image
        (H, W, 3) demosaicked rendering, R, G, B, white at 1.0.
    reference
        (H, W, 3) ground truth of the same scene, same encoding (e.g. the simulator's truth).
    mask
        Optional (H, W) boolean region (e.g. a band along an edge); default the whole image.
    transfer, primaries
        Encoding of both images.
    threshold_delta_e
        Increase of ΔE*ab to the most similar neighbour that counts as zipper.

    Returns
    -------
    float
        Percentage of the interior pixels in the region (the 1-px border is excluded), 0..100.

    Notes
    -----
    The measure was defined on noise-free renderings; on a noisy capture, noise that raises
    the difference to the most similar neighbour by more than the threshold counts too
    (see :func:`zipper_excess_lu_tan2003`).
    """
    zmap = zipper_map_lu_tan2003(image, reference, transfer=transfer, primaries=primaries,
                                 threshold_delta_e=threshold_delta_e)
    inner = _interior(zmap.shape, mask)
    if not inner.any():
        raise InvalidParams("mask selects no interior pixel")
    return float(100.0 * np.count_nonzero(zmap & inner) / np.count_nonzero(inner))


@dataclass(frozen=True, slots=True)
class ZipperResult:
    """Zipper next to the reference's edges, and the noise floor of the same measure.

    Attributes
    ----------
    edge_pct
        Zipper percentage (Lu & Tan 2003) of the pixels whose 3 x 3 reference neighbourhood
        is not uniform (next to an edge).
    flat_pct
        The same on pixels at least ``flat_distance_px`` from any reference edge (noise alone).
    excess_pct
        ``max(0, edge_pct - flat_pct)``: zipper that noise does not explain.
    """

    edge_pct: float
    flat_pct: float
    excess_pct: float


def zipper_excess_lu_tan2003(
    image: ArrayLike,
    reference: ArrayLike,
    *,
    mask: ArrayLike | None = None,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    threshold_delta_e: float = 2.3,
    flat_distance_px: int = 3,
) -> ZipperResult:
    """Zipper at the reference's edges in excess of its noise floor.

    Parameters
    ----------
    image, reference, mask, transfer, primaries, threshold_delta_e
        As :func:`zipper_lu_tan2003`; the reference is piecewise uniform (a chart).
    flat_distance_px
        Distance from any reference edge beyond which a pixel counts as uniform
        (clear of the rendering's blur).

    Returns
    -------
    ZipperResult
        NaN percentages where the region has no edge or no uniform pixel.
    """
    zmap = zipper_map_lu_tan2003(image, reference, transfer=transfer, primaries=primaries,
                                 threshold_delta_e=threshold_delta_e)
    r = _rgb(reference, "reference")
    Y = r @ np.array([0.2126, 0.7152, 0.0722])
    k3 = np.ones((3, 3), np.uint8)
    spread = cv2.dilate(Y.astype(np.float32), k3) - cv2.erode(Y.astype(np.float32), k3)
    edge = spread > 1e-3 * max(float(Y.max()), 1e-12)
    near = cv2.dilate(edge.astype(np.uint8), np.ones((2 * flat_distance_px + 1,) * 2, np.uint8)) > 0
    region = _interior(zmap.shape, mask)
    e, f = region & edge, region & ~near
    edge_pct = float(100.0 * zmap[e].mean()) if e.any() else float("nan")
    flat_pct = float(100.0 * zmap[f].mean()) if f.any() else float("nan")
    excess = edge_pct - flat_pct  # NaN when either is
    return ZipperResult(edge_pct, flat_pct, max(0.0, excess) if np.isfinite(excess) else float("nan"))
