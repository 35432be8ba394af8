"""Burst alignment: coarse-to-fine tile search on the 2x2-binned Bayer mosaic.

Hasinoff, Sharlet, Geiss, Adams, Barron, Kainz, Chen and Levoy, "Burst
photography for high dynamic range and low-light imaging on mobile cameras",
ACM Transactions on Graphics 35(6), 2016, section 4:

* each 2x2 Bayer quad is averaged into one grey pixel (a quarter-size image
  whose pixels keep the Bayer phase: a shift of one grey pixel is a shift of
  two mosaic pixels, so aligned tiles stay on the same colour);
* a Gaussian-like pyramid of that image with downsampling factors 2, 4, 4;
* at each level, from the coarsest, every tile is searched within a radius
  around the displacement predicted by the coarser level: L2 distance and
  radius 4 on the coarse levels, L1 distance and radius 1 on the finest level
  (where the tiles are the merge tiles: 16 x 16 grey pixels, overlapping by
  half);
* a sub-pixel displacement from a quadratic fit to the 3 x 3 L2 distances
  around the best integer displacement (the paper's), refined by affine
  Lucas-Kanade steps per tile (Lucas and Kanade 1981; Baker and Matthews
  2004) on a Gaussian-weighted window twice the tile's side, sampling the
  frame by its cubic B-spline (Unser 1999): the refinement is part of the
  method here -- the fit alone is biased towards whole pixels (0.14 mosaic px
  mean error on textured tiles of a hand-held ISO 800 burst in the tests, 0.05
  with the refinement; see :func:`refine_lucas_kanade`).  The sub-pixel
  displacement reports motion; the merge uses the integer displacement, as
  the paper does.

The reference frame is the sharpest of the first frames (Hasinoff 2016, §4:
"lucky imaging" among the first three frames).

Units: displacements are ``(dy, dx)``; ``offsets_px`` in grey (= plane)
pixels, ``flow_mosaic_px`` in mosaic pixels.  A displacement ``d`` of a tile
means ``alternate(p + d) ~ reference(p)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import scipy.ndimage
from numba import njit
from numpy.typing import NDArray

from rawlab.burst._planes import FINITE_SAFE_FASTMATH, TILE_PX, tile_count, tile_origins

__all__ = [
    "Alignment",
    "align_tiles_hasinoff2016",
    "choose_reference_frame",
    "sharpness_laplacian",
    "tile_distances",
    "tile_distances_reference",
    "quadratic_subpixel",
    "refine_lucas_kanade",
    "zero_alignment",
]

#: Coarse levels: tile size, search radius; downsampling factors between levels.
COARSE_TILE_PX = 16
COARSE_RADIUS_PX = 4
FINE_RADIUS_PX = 1
LEVEL_FACTORS = (2, 4, 4)
#: Fraction of the short side of the binned image that the search reaches at least.
TOP_REACH_FRACTION = 0.15


@dataclass(frozen=True, eq=False)
class Alignment:
    """Per-tile displacement of one frame against the reference.

    Attributes
    ----------
    offsets_px
        ``(ny, nx, 2)`` int64 integer ``(dy, dx)`` in plane (grey) pixels, one
        per merge tile (tile ``(i, j)`` starts at plane pixel
        ``(8 i - 8, 8 j - 8)`` and is 16 x 16).
    flow_mosaic_px
        ``(ny, nx, 2)`` float32 sub-pixel ``(dy, dx)`` in mosaic pixels.
    """

    offsets_px: NDArray[np.int64]
    flow_mosaic_px: NDArray[np.float32]

    @staticmethod
    def tile_centers_mosaic_px(height: int, width: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Mosaic coordinates ``(y, x)`` of the tile centres for a mosaic of ``height`` x ``width``."""
        cy = (tile_origins(height // 2) + TILE_PX / 2) * 2.0 - 0.5
        cx = (tile_origins(width // 2) + TILE_PX / 2) * 2.0 - 0.5
        return cy, cx


def sharpness_laplacian(gray: NDArray[np.float32]) -> float:
    """Mean squared Laplacian of the 2x-downsampled image (larger is sharper).

    Downsampling first keeps the measure about the scene rather than the noise.
    """
    small = cv2.resize(gray, (max(gray.shape[1] // 2, 1), max(gray.shape[0] // 2, 1)), interpolation=cv2.INTER_AREA)
    lap = cv2.Laplacian(small, cv2.CV_32F, ksize=1)
    return float(np.mean(lap.astype(np.float64) ** 2))


def choose_reference_frame(grays: list[NDArray[np.float32]], *, candidates: int = 3) -> int:
    """Index of the sharpest of the first ``candidates`` frames (Hasinoff 2016, §4)."""
    scores = [sharpness_laplacian(g) for g in grays[: max(1, candidates)]]
    return int(np.argmax(scores))


# --- tile distances: Numba kernel and its NumPy twin -------------------------------


@njit(nogil=True, cache=True, fastmath=FINITE_SAFE_FASTMATH)
def _tile_distances_kernel(ref, alt, oy, ox, cand_y, cand_x, tile, use_l2, out):  # pragma: no cover - compiled
    # fastmath lets the row sums vectorise (their order of addition is free);
    # the two norms are separate loops so that the inner loop has no branch
    ny = oy.size
    nx = ox.size
    n_cand = cand_y.shape[2]
    for t in range(ny * nx):
        i = t // nx
        j = t - i * nx
        y0 = oy[i]
        x0 = ox[j]
        for k in range(n_cand):
            dy = cand_y[i, j, k]
            dx = cand_x[i, j, k]
            s = np.float32(0.0)
            if use_l2:
                for u in range(tile):
                    r_row = ref[y0 + u, x0 : x0 + tile]
                    a_row = alt[y0 + u + dy, x0 + dx : x0 + dx + tile]
                    for v in range(tile):
                        d = a_row[v] - r_row[v]
                        s += d * d
            else:
                for u in range(tile):
                    r_row = ref[y0 + u, x0 : x0 + tile]
                    a_row = alt[y0 + u + dy, x0 + dx : x0 + dx + tile]
                    for v in range(tile):
                        s += abs(a_row[v] - r_row[v])
            out[i, j, k] = s


#: Candidates of the 3 x 3 fine search (raster order) by distance from the centre:
#: ties go to the nearest (as :func:`_argmin_nearest`).
_NEAREST_FIRST_3X3 = np.array([4, 1, 3, 5, 7, 0, 2, 6, 8], dtype=np.int64)


@njit(nogil=True, cache=True, fastmath=FINITE_SAFE_FASTMATH)
def _fine_search_kernel(ref, alt, oy, ox, pred, tile, order, disp, cost_l2):  # pragma: no cover - compiled
    # Finest level in one pass per candidate: L1 and L2 distances of the 3 x 3
    # displacements around the prediction; the best by L1; the 3 x 3 L2 costs
    # around the best for the sub-pixel fit (those already known are reused).
    ny = oy.size
    nx = ox.size
    l1 = np.empty(9, np.float32)
    l2 = np.empty(9, np.float32)
    for t in range(ny * nx):
        i = t // nx
        j = t - i * nx
        y0 = oy[i]
        x0 = ox[j]
        py = pred[i, j, 0]
        px = pred[i, j, 1]
        for k in range(9):
            dy = py + k // 3 - 1
            dx = px + k % 3 - 1
            s1 = np.float32(0.0)
            s2 = np.float32(0.0)
            for u in range(tile):
                r_row = ref[y0 + u, x0 : x0 + tile]
                a_row = alt[y0 + u + dy, x0 + dx : x0 + dx + tile]
                for v in range(tile):
                    d = a_row[v] - r_row[v]
                    s1 += abs(d)
                    s2 += d * d
            l1[k] = s1
            l2[k] = s2
        best = order[0]
        for q in range(1, 9):
            if l1[order[q]] < l1[best]:
                best = order[q]
        by = py + best // 3 - 1
        bx = px + best % 3 - 1
        disp[i, j, 0] = by
        disp[i, j, 1] = bx
        for k in range(9):
            dy = by + k // 3 - 1
            dx = bx + k % 3 - 1
            ky = dy - py + 1
            kx = dx - px + 1
            if 0 <= ky <= 2 and 0 <= kx <= 2:
                cost_l2[i, j, k // 3, k % 3] = l2[ky * 3 + kx]
            else:
                s2 = np.float32(0.0)
                for u in range(tile):
                    r_row = ref[y0 + u, x0 : x0 + tile]
                    a_row = alt[y0 + u + dy, x0 + dx : x0 + dx + tile]
                    for v in range(tile):
                        d = a_row[v] - r_row[v]
                        s2 += d * d
                cost_l2[i, j, k // 3, k % 3] = s2


def tile_distances(
    ref: NDArray[np.float32],
    alt: NDArray[np.float32],
    *,
    origins_y: NDArray[np.int64],
    origins_x: NDArray[np.int64],
    cand_y: NDArray[np.int64],
    cand_x: NDArray[np.int64],
    tile_px: int,
    norm: str,
) -> NDArray[np.float32]:
    """L1 or L2 distance of every tile of ``ref`` to ``alt`` at candidate displacements.

    Parameters
    ----------
    ref, alt
        2-D float32 images of one size (padded by the caller so that every
        displaced tile lies inside).
    origins_y, origins_x
        ``(ny,)``, ``(nx,)`` top-left corner of the tiles in ``ref``.
    cand_y, cand_x
        ``(ny, nx, K)`` candidate displacements per tile.
    tile_px
        Tile side.
    norm
        ``"l1"`` (sum of absolute differences) or ``"l2"`` (sum of squares).

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, K)`` float32 distances.
    """
    out = np.empty(cand_y.shape, dtype=np.float32)
    _tile_distances_kernel(
        np.ascontiguousarray(ref, dtype=np.float32), np.ascontiguousarray(alt, dtype=np.float32),
        np.ascontiguousarray(origins_y, dtype=np.int64), np.ascontiguousarray(origins_x, dtype=np.int64),
        np.ascontiguousarray(cand_y, dtype=np.int64), np.ascontiguousarray(cand_x, dtype=np.int64),
        int(tile_px), norm == "l2", out,
    )
    return out


def tile_distances_reference(
    ref: NDArray[np.float32],
    alt: NDArray[np.float32],
    *,
    origins_y: NDArray[np.int64],
    origins_x: NDArray[np.int64],
    cand_y: NDArray[np.int64],
    cand_x: NDArray[np.int64],
    tile_px: int,
    norm: str,
) -> NDArray[np.float32]:
    """NumPy twin of :func:`tile_distances` (tests compare the two)."""
    u = np.arange(tile_px)
    ry = origins_y[:, None, None, None, None] + u[None, None, None, :, None]
    rx = origins_x[None, :, None, None, None] + u[None, None, None, None, :]
    ref_t = ref[ry, rx]  # (ny, nx, 1, T, T)
    alt_t = alt[ry + cand_y[..., None, None], rx + cand_x[..., None, None]]
    d = alt_t.astype(np.float64) - ref_t
    dist = (d * d) if norm == "l2" else np.abs(d)
    return dist.sum(axis=(3, 4)).astype(np.float32)


def quadratic_subpixel(costs_3x3: NDArray[np.float32]) -> NDArray[np.float32]:
    """Sub-pixel minimum of a 2-D quadratic fitted to 3 x 3 distances.

    Least-squares fit of ``f = a x^2 + b y^2 + c xy + d x + e y + f`` on the grid
    ``x, y in {-1, 0, 1}`` (Hasinoff 2016, §4); the minimum solves
    ``[[2b, c], [c, 2a]] (y, x) = -(e, d)``.  Where the fit is not a bowl the
    offset is 0; offsets are limited to [-1, 1].

    Parameters
    ----------
    costs_3x3
        ``(..., 3, 3)`` distances indexed ``[dy + 1, dx + 1]``.

    Returns
    -------
    numpy.ndarray
        ``(..., 2)`` float32 ``(dy, dx)`` offsets.
    """
    c = np.asarray(costs_3x3, dtype=np.float64)
    g = np.array([-1.0, 0.0, 1.0])
    d = (c * g[None, :]).sum(axis=(-2, -1)) / 6.0
    e = (c * g[:, None]).sum(axis=(-2, -1)) / 6.0
    cxy = (c * (g[:, None] * g[None, :])).sum(axis=(-2, -1)) / 4.0
    col = c.mean(axis=-2)  # mean over y: function of x
    row = c.mean(axis=-1)  # mean over x: function of y
    a = 0.5 * (col[..., 0] + col[..., 2] - 2.0 * col[..., 1])
    b = 0.5 * (row[..., 0] + row[..., 2] - 2.0 * row[..., 1])
    det = 4.0 * a * b - cxy * cxy
    ok = (a > 0) & (b > 0) & (det > 1e-12 * np.maximum(a * b, 1e-30))
    safe = np.where(ok, det, 1.0)
    x = np.where(ok, (-2.0 * b * d + cxy * e) / safe, 0.0)
    y = np.where(ok, (-2.0 * a * e + cxy * d) / safe, 0.0)
    return np.stack([np.clip(y, -1, 1), np.clip(x, -1, 1)], axis=-1).astype(np.float32)


# --- sub-pixel refinement: affine Lucas-Kanade on a Gaussian-weighted window -------

#: Refinement window: the merge tile plus this margin on every side (grey px), so
#: 32 x 32 grey px (64 x 64 mosaic px) around a 16 x 16 tile.
LK_MARGIN_PX = 8
#: Standard deviation of the Gaussian weight of the window, about the tile centre (grey px).
LK_SIGMA_PX = 10.0
#: Gauss-Newton iterations (at most; a tile stops when its step is below LK_CONVERGED_PX).
LK_ITERATIONS = 6
LK_CONVERGED_PX = 1e-3
#: A tile's translation may move at most this far from the searched displacement,
#: and its affine part is bounded (|a| <= LK_MAX_AFFINE: about 6 degrees of rotation).
LK_MAX_STEP_PX = 1.5
LK_MAX_AFFINE = 0.1
#: A window is too flat (or an edge in one direction only) when a pivot of the
#: normal matrix's Cholesky factorisation is below this fraction of its largest
#: diagonal entry: it keeps the quadratic fit's displacement.
LK_PIVOT_FRACTION = 1e-7


@njit(nogil=True, cache=True)
def _cholesky6(a, out):  # pragma: no cover - compiled
    # lower Cholesky factor of the symmetric 6 x 6 ``a``; False when a pivot is too small
    n = a.shape[0]
    big = 0.0
    for k in range(n):
        if a[k, k] > big:
            big = a[k, k]
    if not big > 0.0:
        return False
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= out[j, k] * out[j, k]
        if not s > LK_PIVOT_FRACTION * big:
            return False
        out[j, j] = np.sqrt(s)
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= out[i, k] * out[j, k]
            out[i, j] = s / out[j, j]
        for i in range(j):
            out[i, j] = 0.0
    return True


@njit(nogil=True, cache=True)
def _bspline3_weights(t, out):  # pragma: no cover - compiled
    # cubic B-spline weights of the samples at offsets -1, 0, 1, 2 for a position t in [0, 1)
    s = 1.0 - t
    out[0] = s * s * s / 6.0
    out[1] = (3.0 * t * t * t - 6.0 * t * t + 4.0) / 6.0
    out[2] = (-3.0 * t * t * t + 3.0 * t * t + 3.0 * t + 1.0) / 6.0
    out[3] = t * t * t / 6.0


@njit(nogil=True, cache=True)
def _lk_affine_kernel(ref, alt, oy, ox, start, tile, margin, sigma, iterations, out):  # pragma: no cover
    ny, nx = start.shape[0], start.shape[1]
    n = tile + 2 * margin
    c = (tile - 1) / 2.0
    h_img, w_img = alt.shape
    wt = np.empty((n, n))
    rc = np.empty((n, n))
    jac = np.empty((n, n, 6))
    warped = np.empty((n, n))
    hess = np.empty((6, 6))
    low = np.empty((6, 6))
    b = np.empty(6)
    z = np.empty(6)
    p = np.empty(6)
    wy = np.empty(4)
    wx = np.empty(4)
    inv2s2 = 0.5 / (sigma * sigma)
    for i in range(ny):
        for j in range(nx):
            y0 = oy[i] - margin
            x0 = ox[j] - margin
            sw = 0.0
            sr = 0.0
            for u in range(n):
                for v in range(n):
                    ru = u - margin - c
                    rv = v - margin - c
                    w = np.exp(-(ru * ru + rv * rv) * inv2s2)
                    y = y0 + u
                    x = x0 + v
                    r = np.float64(ref[y, x])
                    gy = 0.5 * (np.float64(ref[y + 1, x]) - np.float64(ref[y - 1, x]))
                    gx = 0.5 * (np.float64(ref[y, x + 1]) - np.float64(ref[y, x - 1]))
                    wt[u, v] = w
                    rc[u, v] = r
                    jac[u, v, 0] = gy
                    jac[u, v, 1] = gx
                    jac[u, v, 2] = gy * ru
                    jac[u, v, 3] = gy * rv
                    jac[u, v, 4] = gx * ru
                    jac[u, v, 5] = gx * rv
                    sw += w
                    sr += w * r
            mean_r = sr / sw
            srr = 0.0
            for a_ in range(6):
                for b_ in range(6):
                    hess[a_, b_] = 0.0
            for u in range(n):
                for v in range(n):
                    w = wt[u, v]
                    rc[u, v] -= mean_r
                    srr += w * rc[u, v] * rc[u, v]
                    for a_ in range(6):
                        ja = w * jac[u, v, a_]
                        for b_ in range(a_, 6):
                            hess[a_, b_] += ja * jac[u, v, b_]
            for a_ in range(6):
                for b_ in range(a_):
                    hess[a_, b_] = hess[b_, a_]
            s0 = start[i, j, 0]
            s1 = start[i, j, 1]
            out[i, j, 0] = s0
            out[i, j, 1] = s1
            if not _cholesky6(hess, low):
                continue
            p[0] = s0
            p[1] = s1
            for a_ in range(2, 6):
                p[a_] = 0.0
            for _ in range(iterations):
                sm = 0.0
                for u in range(n):
                    ru = u - margin - c
                    for v in range(n):
                        rv = v - margin - c
                        py = y0 + u + p[0] + p[2] * ru + p[3] * rv
                        px = x0 + v + p[1] + p[4] * ru + p[5] * rv
                        fy0 = np.floor(py)
                        fx0 = np.floor(px)
                        iy = min(max(int(fy0), 1), h_img - 3)
                        ix = min(max(int(fx0), 1), w_img - 3)
                        _bspline3_weights(py - fy0, wy)
                        _bspline3_weights(px - fx0, wx)
                        val = 0.0
                        for a_ in range(4):
                            row = 0.0
                            for b_ in range(4):
                                row += wx[b_] * alt[iy - 1 + a_, ix - 1 + b_]
                            val += wy[a_] * row
                        warped[u, v] = val
                        sm += wt[u, v] * val
                mean_w = sm / sw
                sww = 0.0
                for u in range(n):
                    for v in range(n):
                        d = warped[u, v] - mean_w
                        sww += wt[u, v] * d * d
                gain = np.sqrt(srr / max(sww, 1e-30))
                for a_ in range(6):
                    b[a_] = 0.0
                for u in range(n):
                    for v in range(n):
                        e = wt[u, v] * ((warped[u, v] - mean_w) * gain - rc[u, v])
                        for a_ in range(6):
                            b[a_] -= jac[u, v, a_] * e
                # solve low low^T step = b
                for a_ in range(6):
                    s = b[a_]
                    for k in range(a_):
                        s -= low[a_, k] * z[k]
                    z[a_] = s / low[a_, a_]
                for a_ in range(5, -1, -1):
                    s = z[a_]
                    for k in range(a_ + 1, 6):
                        s -= low[k, a_] * z[k]
                    z[a_] = s / low[a_, a_]
                ok = abs(p[0] + z[0] - s0) <= LK_MAX_STEP_PX and abs(p[1] + z[1] - s1) <= LK_MAX_STEP_PX
                for a_ in range(2, 6):
                    ok = ok and abs(p[a_] + z[a_]) <= LK_MAX_AFFINE
                if not ok:
                    break
                for a_ in range(6):
                    p[a_] += z[a_]
                if abs(z[0]) < LK_CONVERGED_PX and abs(z[1]) < LK_CONVERGED_PX:
                    break
            out[i, j, 0] = p[0]
            out[i, j, 1] = p[1]

def refine_lucas_kanade(
    ref: NDArray[np.float32],
    alt: NDArray[np.float32],
    origins_y: NDArray[np.int64],
    origins_x: NDArray[np.int64],
    disp: NDArray[np.float64],
    tile_px: int,
) -> NDArray[np.float64]:
    """Refine per-tile sub-pixel displacements by affine Lucas-Kanade steps.

    Lucas and Kanade, "An iterative image registration technique with an
    application to stereo vision", IJCAI 1981, with the affine warp of Baker
    and Matthews, "Lucas-Kanade 20 years on: a unifying framework", IJCV 56(3),
    2004 (forward-additive Gauss-Newton, the reference's gradients as the
    Jacobian).  Part of the sub-pixel step of the alignment: the quadratic fit
    of Hasinoff 2016 (§4) starts it, and these steps remove the fit's bias
    towards whole pixels.  Per tile:

    * the window is the tile plus :data:`LK_MARGIN_PX` on every side, weighted
      by a Gaussian of :data:`LK_SIGMA_PX` about the tile centre: four times
      the pixels of the tile, so the noise of the estimate is about half the
      tile's own (the merge still uses its 16 x 16 tiles);
    * the warp is ``p + d + A (p - centre)``: under hand-shake rotation the
      displacement varies across the window (0.5 px over 32 px at 1 degree),
      and a translation-only fit would report it at the texture's centroid
      rather than at the tile centre; ``d`` is the displacement at the centre;
    * residual ``g (alt(W(p)) - mean) - (ref(p) - mean)``, zero-mean and of
      equal contrast (weighted), so that vignetting and exposure differences
      between frames do not read as motion;
    * the alternate frame is sampled by its cubic B-spline interpolant (Unser
      1999; :func:`bspline3_coefficients`): bilinear sampling low-passes the
      frame by an amount that depends on the sub-pixel phase, which biases the
      estimate towards whole pixels by several hundredths of a pixel on sharp
      sensor data; gradients are central differences of the reference;
    * at most :data:`LK_ITERATIONS` steps; a step that would move the
      translation more than :data:`LK_MAX_STEP_PX` from ``disp`` or the affine
      part beyond :data:`LK_MAX_AFFINE` is not taken; a window without
      texture in two directions keeps ``disp``.

    Parameters
    ----------
    ref, alt
        Padded float32 grey images (as for :func:`tile_distances`), padded by
        at least ``LK_MARGIN_PX + 4`` more than the displacements reach.
    origins_y, origins_x
        Tile corners in the padded images.
    disp
        ``(ny, nx, 2)`` starting displacements ``(dy, dx)`` (grey pixels).
    tile_px
        Tile side.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 2)`` float64 refined displacements at the tile centres.
    """
    out = np.empty(disp.shape, np.float64)
    _lk_affine_kernel(
        np.ascontiguousarray(ref, dtype=np.float32), bspline3_coefficients(alt),
        np.ascontiguousarray(origins_y, dtype=np.int64), np.ascontiguousarray(origins_x, dtype=np.int64),
        np.ascontiguousarray(disp, dtype=np.float64), int(tile_px), LK_MARGIN_PX, LK_SIGMA_PX, LK_ITERATIONS,
        out,
    )
    return out


def _bspline3_weights_reference(t: NDArray[np.float64]) -> list[NDArray[np.float64]]:
    s = 1.0 - t
    return [s**3 / 6.0, (3 * t**3 - 6 * t**2 + 4) / 6.0, (-3 * t**3 + 3 * t**2 + 3 * t + 1) / 6.0, t**3 / 6.0]


def bspline3_coefficients(image: NDArray[np.float32]) -> NDArray[np.float32]:
    """Cubic B-spline coefficients of ``image`` (Unser, "Splines: a perfect fit for
    signal and image processing", IEEE Signal Processing Magazine 16(6), 1999):
    the recursive prefilter whose spline interpolates the samples exactly."""
    image = np.asarray(image, np.float32)
    return scipy.ndimage.spline_filter(image, order=3, output=np.float32, mode="mirror")


def _cholesky_reference(a: NDArray[np.float64]) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Stacked lower Cholesky factors of ``(..., 6, 6)`` and where they exist (as :func:`_cholesky6`)."""
    n = a.shape[-1]
    low = np.zeros_like(a)
    big = np.max(np.diagonal(a, axis1=-2, axis2=-1), axis=-1)
    ok = big > 0
    for j in range(n):  # a loop over the 6 parameters
        s = a[..., j, j] - (low[..., j, :j] ** 2).sum(-1)
        ok &= s > LK_PIVOT_FRACTION * big
        low[..., j, j] = np.sqrt(np.where(ok, s, 1.0))
        for i in range(j + 1, n):
            low[..., i, j] = (a[..., i, j] - (low[..., i, :j] * low[..., j, :j]).sum(-1)) / low[..., j, j]
    return low, ok


def refine_lucas_kanade_reference(
    ref: NDArray[np.float32],
    alt: NDArray[np.float32],
    origins_y: NDArray[np.int64],
    origins_x: NDArray[np.int64],
    disp: NDArray[np.float64],
    tile_px: int,
) -> NDArray[np.float64]:
    """NumPy twin of :func:`refine_lucas_kanade` (tests compare the two)."""
    t, m = int(tile_px), LK_MARGIN_PX
    n = t + 2 * m
    u = np.arange(n) - m
    r1 = u - (t - 1) / 2.0
    ry, rx = np.broadcast_to(r1[:, None], (n, n)), np.broadcast_to(r1[None, :], (n, n))
    wt = np.exp(-(ry * ry + rx * rx) * (0.5 / LK_SIGMA_PX**2))
    sw = wt.sum()
    shape = (origins_y.size, origins_x.size, n, n)
    Y = np.broadcast_to(origins_y[:, None, None, None] + u[None, None, :, None], shape)
    X = np.broadcast_to(origins_x[None, :, None, None] + u[None, None, None, :], shape)
    refd = np.asarray(ref, np.float64)
    coef = bspline3_coefficients(alt).astype(np.float64)
    R = refd[Y, X]
    gy = 0.5 * (refd[Y + 1, X] - refd[Y - 1, X])
    gx = 0.5 * (refd[Y, X + 1] - refd[Y, X - 1])
    J = np.stack([gy, gx, gy * ry, gy * rx, gx * ry, gx * rx], axis=-1)
    Rc = R - (wt * R).sum((2, 3), keepdims=True) / sw
    srr = (wt * Rc * Rc).sum((2, 3), keepdims=True)
    H = np.einsum("ijuva,ijuvb->ijab", J * wt[..., None], J)
    low, active = _cholesky_reference(H)
    p = np.zeros(disp.shape[:2] + (6,))
    p[..., :2] = disp
    h_img, w_img = coef.shape
    for _ in range(LK_ITERATIONS):  # Gauss-Newton steps, every tile at once
        py = Y + p[..., 0, None, None] + p[..., 2, None, None] * ry + p[..., 3, None, None] * rx
        px = X + p[..., 1, None, None] + p[..., 4, None, None] * ry + p[..., 5, None, None] * rx
        fy0, fx0 = np.floor(py), np.floor(px)
        iy = np.clip(fy0.astype(np.int64), 1, h_img - 3)
        ix = np.clip(fx0.astype(np.int64), 1, w_img - 3)
        wy, wx = _bspline3_weights_reference(py - fy0), _bspline3_weights_reference(px - fx0)
        val = sum(wy[a_] * sum(wx[b_] * coef[iy - 1 + a_, ix - 1 + b_] for b_ in range(4)) for a_ in range(4))
        mean_w = (wt * val).sum((2, 3), keepdims=True) / sw
        sww = (wt * (val - mean_w) ** 2).sum((2, 3), keepdims=True)
        gain = np.sqrt(srr / np.maximum(sww, 1e-30))
        e = wt * ((val - mean_w) * gain - Rc)
        b = -np.einsum("ijuva,ijuv->ija", J, e)
        z = np.zeros_like(b)
        for a_ in range(6):  # forward and back substitution over the 6 parameters
            z[..., a_] = (b[..., a_] - (low[..., a_, :a_] * z[..., :a_]).sum(-1)) / low[..., a_, a_]
        for a_ in range(5, -1, -1):
            z[..., a_] = (z[..., a_] - (low[..., a_ + 1 :, a_] * z[..., a_ + 1 :]).sum(-1)) / low[..., a_, a_]
        new = p + z
        with np.errstate(invalid="ignore"):
            good = (
                active
                & np.all(np.abs(new[..., :2] - disp) <= LK_MAX_STEP_PX, axis=-1)
                & np.all(np.abs(new[..., 2:]) <= LK_MAX_AFFINE, axis=-1)
            )
            p = np.where(good[..., None], new, p)
            active = good & ~np.all(np.abs(z[..., :2]) < LK_CONVERGED_PX, axis=-1)
    return p[..., :2]


# --- the coarse-to-fine search -----------------------------------------------------


def _pyramid(gray: NDArray[np.float32]) -> list[NDArray[np.float32]]:
    levels = [gray]
    for f in LEVEL_FACTORS:
        h, w = levels[-1].shape
        if min(h, w) // f < COARSE_TILE_PX:
            break
        blurred = cv2.GaussianBlur(levels[-1], (0, 0), sigmaX=0.5 * f, borderType=cv2.BORDER_REFLECT)
        levels.append(cv2.resize(blurred, (w // f, h // f), interpolation=cv2.INTER_AREA))
    return levels


def _pad(image: NDArray[np.float32], margin: int) -> NDArray[np.float32]:
    return cv2.copyMakeBorder(image, margin, margin, margin, margin, cv2.BORDER_REPLICATE)


def _grid(radius: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    r = np.arange(-radius, radius + 1, dtype=np.int64)
    gy, gx = np.meshgrid(r, r, indexing="ij")
    return gy.reshape(-1), gx.reshape(-1)


def _argmin_nearest(
    cost: NDArray[np.float32], gy: NDArray[np.int64], gx: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Index of the smallest cost along the last axis; ties go to the candidate
    nearest the search centre (a flat or clipped tile, where every candidate
    costs the same, keeps the predicted displacement instead of drifting to a
    corner of the search window)."""
    order = np.argsort(gy * gy + gx * gx, kind="stable")
    return order[np.argmin(cost[..., order], axis=-1)]


def _upsample_candidates(
    prev: NDArray[np.float64], prev_tile: int, ratio: int, centers_y: NDArray, centers_x: NDArray
) -> NDArray[np.int64]:
    """Three predictions per finer tile: the displacements of the nearest coarse
    tile and of its neighbours towards the fine tile's centre in y and in x
    (Hasinoff 2016, §4), scaled to the finer level; shape ``(ny, nx, 3, 2)``."""
    fy = ((centers_y + 0.5) / ratio - 0.5) / prev_tile - 0.5  # in units of coarse tiles, 0 at tile 0's centre
    fx = ((centers_x + 0.5) / ratio - 0.5) / prev_tile - 0.5
    iy = np.clip(np.rint(fy).astype(np.int64), 0, prev.shape[0] - 1)
    ix = np.clip(np.rint(fx).astype(np.int64), 0, prev.shape[1] - 1)
    iy2 = np.clip(np.where(fy >= iy, iy + 1, iy - 1), 0, prev.shape[0] - 1)
    ix2 = np.clip(np.where(fx >= ix, ix + 1, ix - 1), 0, prev.shape[1] - 1)
    cands = np.stack(
        [prev[iy[:, None], ix[None, :]], prev[iy2[:, None], ix[None, :]], prev[iy[:, None], ix2[None, :]]], axis=2
    )
    return np.rint(cands * ratio).astype(np.int64)


class _RefPyramid:
    """The reference frame's pyramid, padded once and reused for every frame."""

    def __init__(self, gray: NDArray[np.float32]) -> None:
        self.levels = _pyramid(gray)
        n = len(self.levels)
        # the coarsest level searches wide enough to reach TOP_REACH_FRACTION of the
        # short side (at least COARSE_RADIUS_PX), so small frames still find large shifts
        scale = int(np.prod(LEVEL_FACTORS[: n - 1]))
        short = min(self.levels[0].shape)
        self.top_radius = max(COARSE_RADIUS_PX, int(np.ceil(TOP_REACH_FRACTION * short / scale)))
        # largest displacement each level can reach: radius plus ratio times the coarser level's
        reach = [0] * n
        reach[n - 1] = self.top_radius
        for lv in range(n - 2, -1, -1):
            radius = FINE_RADIUS_PX + 1 if lv == 0 else COARSE_RADIUS_PX
            reach[lv] = LEVEL_FACTORS[lv] * reach[lv + 1] + radius
        self.reach = reach
        # level 0 also holds the Lucas-Kanade window (LK_MARGIN_PX beyond the tile,
        # the sub-pixel and affine excursions, the gradient's neighbour)
        self.margins = [reach[lv] + TILE_PX + 2 + (LK_MARGIN_PX + 4 if lv == 0 else 0) for lv in range(n)]
        self.padded = [_pad(level, m) for level, m in zip(self.levels, self.margins)]


def align_tiles_hasinoff2016(
    ref_gray: NDArray[np.float32] | _RefPyramid,
    alt_gray: NDArray[np.float32],
    *,
    subpixel: str = "lucas_kanade",
    distances=tile_distances,
) -> Alignment:
    """Align one frame to the reference, tile by tile, coarse to fine.

    Parameters
    ----------
    ref_gray, alt_gray
        ``(H/2, W/2)`` float32 2x2-binned mosaics (linear, normalised 0..1) of
        the reference and the frame to align; or, for ``ref_gray``, a prepared
        reference pyramid (reused across frames).
    subpixel
        ``"lucas_kanade"`` (quadratic fit refined by Lucas-Kanade steps: the
        accurate flow), ``"quadratic"`` (the fit only, biased towards whole
        pixels, cheaper) or ``"none"``.  The integer offsets used by the merge
        do not depend on it.
    distances
        The tile-distance function (the Numba kernel, or its NumPy twin in tests).

    Returns
    -------
    Alignment
        Integer and sub-pixel displacement of every merge tile.
    """
    ref = ref_gray if isinstance(ref_gray, _RefPyramid) else _RefPyramid(ref_gray)
    alt_levels = _pyramid(alt_gray)[: len(ref.levels)]
    n = len(ref.levels)
    prev: NDArray[np.float64] | None = None
    prev_tile = COARSE_TILE_PX
    for lv in range(n - 1, -1, -1):
        h, w = ref.levels[lv].shape
        m = ref.margins[lv]
        alt_p = _pad(alt_levels[lv], m)
        if lv == 0:
            oy, ox, tile = tile_origins(h), tile_origins(w), TILE_PX
        else:
            oy = np.arange(-(-h // COARSE_TILE_PX), dtype=np.int64) * COARSE_TILE_PX
            ox = np.arange(-(-w // COARSE_TILE_PX), dtype=np.int64) * COARSE_TILE_PX
            tile = COARSE_TILE_PX
        cy, cx = oy + tile / 2 - 0.5, ox + tile / 2 - 0.5
        radius = FINE_RADIUS_PX if lv == 0 else (ref.top_radius if lv == n - 1 else COARSE_RADIUS_PX)
        limit = ref.reach[lv] - radius - (1 if lv == 0 else 0)
        norm = "l1" if lv == 0 else "l2"
        if prev is None:
            pred = np.zeros((oy.size, ox.size, 2), dtype=np.int64)
        else:
            cands = np.clip(_upsample_candidates(prev, prev_tile, LEVEL_FACTORS[lv], cy, cx), -limit, limit)
            cost0 = distances(
                ref.padded[lv], alt_p, origins_y=oy + m, origins_x=ox + m,
                cand_y=cands[..., 0], cand_x=cands[..., 1], tile_px=tile, norm=norm,
            )
            pick = np.argmin(cost0, axis=-1)
            pred = np.take_along_axis(cands, pick[..., None, None], axis=2)[:, :, 0]
        if lv == 0 and distances is tile_distances and subpixel != "none":
            # the finest level, fused: the same search as below, one pass over each candidate
            disp = np.empty(pred.shape, np.int64)
            cost2 = np.empty(pred.shape[:2] + (3, 3), np.float32)
            _fine_search_kernel(
                ref.padded[0], np.ascontiguousarray(alt_p), oy + m, ox + m,
                np.ascontiguousarray(pred, dtype=np.int64), tile, _NEAREST_FIRST_3X3, disp, cost2,
            )
            return _fine_alignment(ref, alt_p, oy + m, ox + m, disp, cost2, tile, subpixel)
        gy, gx = _grid(radius)
        cand_y = pred[..., 0:1] + gy
        cand_x = pred[..., 1:2] + gx
        cost = distances(
            ref.padded[lv], alt_p, origins_y=oy + m, origins_x=ox + m, cand_y=cand_y, cand_x=cand_x,
            tile_px=tile, norm=norm,
        )
        best = _argmin_nearest(cost, gy, gx)
        disp = np.stack([np.take_along_axis(cand_y, best[..., None], -1)[..., 0],
                         np.take_along_axis(cand_x, best[..., None], -1)[..., 0]], axis=-1)
        if lv > 0:
            # sub-pixel at the coarse level too, so the prediction for the finer
            # level is within its search radius: 3 x 3 costs around the best
            side = 2 * radius + 1
            grid = cost.reshape(cost.shape[:2] + (side, side))
            by, bx = np.divmod(best, side)
            inner = (by > 0) & (by < side - 1) & (bx > 0) & (bx < side - 1)
            cy3 = np.clip(by, 1, side - 2)[..., None] + np.arange(-1, 2)
            cx3 = np.clip(bx, 1, side - 2)[..., None] + np.arange(-1, 2)
            ii = np.arange(grid.shape[0])[:, None, None, None]
            jj = np.arange(grid.shape[1])[None, :, None, None]
            sub = quadratic_subpixel(grid[ii, jj, cy3[..., :, None], cx3[..., None, :]])
            prev = disp + np.where(inner[..., None], sub, 0.0)
        prev_tile = tile
        if lv == 0:
            if subpixel == "none":
                return Alignment(offsets_px=disp, flow_mosaic_px=(2.0 * disp).astype(np.float32))
            gy1, gx1 = _grid(1)
            cost2 = distances(
                ref.padded[0], alt_p, origins_y=oy + m, origins_x=ox + m,
                cand_y=disp[..., 0:1] + gy1, cand_x=disp[..., 1:2] + gx1, tile_px=tile, norm="l2",
            )
            return _fine_alignment(ref, alt_p, oy + m, ox + m, disp, cost2.reshape(cost2.shape[:2] + (3, 3)),
                                   tile, subpixel)
    raise AssertionError("unreachable")  # pragma: no cover


def _fine_alignment(ref, alt_p, oy_p, ox_p, disp, cost2_3x3, tile, subpixel) -> Alignment:
    """Sub-pixel flow from the 3 x 3 L2 costs around the integer displacement."""
    fine = disp + quadratic_subpixel(cost2_3x3).astype(np.float64)
    if subpixel == "lucas_kanade":
        fine = refine_lucas_kanade(ref.padded[0], alt_p, oy_p, ox_p, fine, tile)
    return Alignment(offsets_px=disp, flow_mosaic_px=(2.0 * fine).astype(np.float32))


def zero_alignment(plane_height: int, plane_width: int) -> Alignment:
    """The reference frame's alignment: no displacement anywhere."""
    shape = (tile_count(plane_height), tile_count(plane_width), 2)
    return Alignment(offsets_px=np.zeros(shape, np.int64), flow_mosaic_px=np.zeros(shape, np.float32))

