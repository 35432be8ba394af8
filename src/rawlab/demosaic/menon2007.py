"""Menon-Andriani-Calvagno (2007) DDFAPD Bayer demosaicing.

Reference: D. Menon, S. Andriani and G. Calvagno, "Demosaicing with
directional filtering and a posteriori decision", IEEE Transactions on Image
Processing 16(1), pp. 132-141, 2007, doi:10.1109/TIP.2006.884928.

The method, in the paper's order:

1. **Directional green.**  At every red/blue site green is interpolated twice,
   along the row and along the column, with the 5-tap filter
   ``[-1/4, 1/2, 1/2, 1/2, -1/4]`` (the two green neighbours averaged, plus
   half the Laplacian-like correction of the site's own colour; the paper's
   ``h0 + h1``).
2. **A posteriori decision.**  The chrominance ``C = X - G`` (X the measured
   red or blue) of each estimate is compared with that of the same colour two
   pixels further along its own direction, ``D(y, x) = |C(y, x) - C(y, x + 2)|``
   (column-wise for the vertical estimate).  These gradients are summed over a
   5x5 window (weights 1, 3, 1 on the site's own colour rows, 1 on the
   diagonal ones); the direction whose chrominance varies less wins, with
   ties going to the horizontal one.
3. **Red and blue.**  At green sites red/blue are green plus the mean colour
   difference of the two neighbours that carry them (bilinear interpolation of
   ``X - G``); at blue (red) sites red (blue) is blue (red) plus the mean
   ``R - B`` of the two green neighbours along the chosen direction.
4. **Refining** (optional, the paper's refining step).  Green at red/blue
   sites is re-estimated from the 3-tap mean of ``X - G`` along the chosen
   direction; red/blue at green sites are re-interpolated from the refined
   colour differences; red (blue) at blue (red) sites from the 3-tap mean of
   ``R - B`` along the chosen direction.

The direction decision is evaluated in float64: its sums of float32 samples
are then exact (unless nonzero samples span more than about 2^20 in magnitude), so
exact ties -- 8-bit images have many -- resolve as they do in any other exact
evaluation, a float64 reference included.  Everything else is float32.

Borders: the mosaic is extended by reflect-101 (OpenCV ``BORDER_REFLECT_101``,
mirror about the edge sample, which keeps the Bayer phase) and the whole
method is run on the extended mosaic; i.e. the result is the demosaic of the
mirror-extended image, cropped.

Speed: Numba passes over strips of rows of the padded mosaic, each strip's
intermediates in small per-thread buffers (see the kernel section below);
:func:`demosaic_bayer_menon2007_reference` is a plain NumPy twin that tests
compare it with.
"""

from __future__ import annotations

import cv2
import numba
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.metadata import CfaPattern
from rawlab.demosaic._bayer import bayer_table, check_cfa, reflect101_index

__all__ = ["demosaic_bayer_menon2007"]

# support of the whole chain: directional green 2 + decision window 2 + red/blue at
# green 1 + refining 3 px; even, so the padded mosaic keeps the Bayer phase
PAD_PX = 8


def demosaic_bayer_menon2007(
    cfa: NDArray, pattern: CfaPattern | str, *, refining_step: bool = True
) -> NDArray[np.float32]:
    """Demosaic a Bayer mosaic with Menon et al. (2007) DDFAPD.

    Parameters
    ----------
    cfa
        ``(H, W)`` mosaic, any real values (normalised data is 0..1 with noise
        below 0 and highlights above 1; nothing is clipped).  Any size >= 1x1.
    pattern
        The mosaic's 2x2 Bayer layout at pixel (0, 0): a :class:`CfaPattern`
        or a name (``"RGGB"``, ``"GRBG"``, ``"GBRG"``, ``"BGGR"``).
    refining_step
        Run the paper's refining step after the first reconstruction
        (about +0.6 dB CPSNR on Kodak24, ~35 % more time).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float32 camera RGB, same scale as the input; measured
        samples pass through unchanged.  The directional filters can overshoot
        slightly beyond the input range at edges (not clipped).

    Raises
    ------
    StageError
        For a non-Bayer pattern or a buffer that is not 2-D.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    padded = cv2.copyMakeBorder(data, PAD_PX, PAD_PX, PAD_PX, PAD_PX, cv2.BORDER_REFLECT_101)
    out = np.empty((h, w, 3), dtype=np.float32)
    _menon_kernel(padded, table, bool(refining_step), numba.get_num_threads(), out)
    return out


# --------------------------------------------------------------------------
# Numba kernel.  Index conventions: ``c`` is the padded mosaic; a row of
# parity r has its green sites at columns of parity g0[r] and its non-green
# sites (colour rc[r]) at the other parity, so each kind of site of a row is
# stored at half width under index ``x >> 1``.
#
# Speed: the image is cut into strips of rows; each thread runs the whole
# chain of passes on one strip at a time in its own small buffers (a strip
# plus the rows its support needs), so intermediates stay in cache and only
# the mosaic and the result travel through memory.  Each pass runs on the
# rows/columns the later passes still need (margins m_*); buffer row i holds
# padded row ``base + i``.
# --------------------------------------------------------------------------

STRIP_ROWS = 32


@njit(cache=True)
def _pass_chroma(c, g0, ya, yb, xa, xb, base, ch, cv):  # pragma: no cover - compiled
    """1. Directional chrominance ``C = X - G_dir`` at non-green sites (float64)."""
    for y in range(ya, yb):
        i = y - base
        for x in range(xa + ((1 - g0[y & 1] - xa) & 1), xb, 2):
            v = np.float64(c[y, x])
            g_h = 0.5 * (np.float64(c[y, x - 1]) + np.float64(c[y, x + 1])) + (
                0.5 * v - 0.25 * (np.float64(c[y, x - 2]) + np.float64(c[y, x + 2]))
            )
            g_v = 0.5 * (np.float64(c[y - 1, x]) + np.float64(c[y + 1, x])) + (
                0.5 * v - 0.25 * (np.float64(c[y - 2, x]) + np.float64(c[y + 2, x]))
            )
            ch[i, x >> 1] = v - g_h
            cv[i, x >> 1] = v - g_v


@njit(cache=True)
def _pass_green(c, g0, ya, yb, xa, xb, base, ch, cv, g, horiz):  # pragma: no cover - compiled
    """2. A posteriori decision (``horiz`` = 1 where the row estimate wins) and green."""
    for y in range(ya, yb):
        i = y - base
        for x in range(xa + ((g0[y & 1] - xa) & 1), xb, 2):
            g[i, x] = c[y, x]
        for x in range(xa + ((1 - g0[y & 1] - xa) & 1), xb, 2):
            k = x >> 1
            kd = (x - 1) >> 1  # the diagonal rows' non-green sites at x - 1 and x + 1
            d_h = (
                abs(ch[i - 2, k - 1] - ch[i - 2, k]) + abs(ch[i - 2, k] - ch[i - 2, k + 1])
                + 3.0 * (abs(ch[i, k - 1] - ch[i, k]) + abs(ch[i, k] - ch[i, k + 1]))
                + abs(ch[i + 2, k - 1] - ch[i + 2, k]) + abs(ch[i + 2, k] - ch[i + 2, k + 1])
                + abs(ch[i - 1, kd] - ch[i - 1, kd + 1]) + abs(ch[i + 1, kd] - ch[i + 1, kd + 1])
            )
            d_v = (
                abs(cv[i - 2, k - 1] - cv[i, k - 1]) + abs(cv[i, k - 1] - cv[i + 2, k - 1])
                + 3.0 * (abs(cv[i - 2, k] - cv[i, k]) + abs(cv[i, k] - cv[i + 2, k]))
                + abs(cv[i - 2, k + 1] - cv[i, k + 1]) + abs(cv[i, k + 1] - cv[i + 2, k + 1])
                + abs(cv[i - 1, kd] - cv[i + 1, kd]) + abs(cv[i - 1, kd + 1] - cv[i + 1, kd + 1])
            )
            row_wins = d_v >= d_h
            horiz[i, k] = row_wins
            g[i, x] = np.float32(np.float64(c[y, x]) - (ch[i, k] if row_wins else cv[i, k]))


@njit(cache=True)
def _pass_diff_at_green(c, g0, ya, yb, xa, xb, base, g, dh, dv):  # pragma: no cover - compiled
    """3a / 4b. At green sites: mean X - G of the row neighbours (dh, the row's
    colour) and of the column neighbours (dv, the other colour)."""
    half = np.float32(0.5)
    for y in range(ya, yb):
        i = y - base
        for x in range(xa + ((g0[y & 1] - xa) & 1), xb, 2):
            dh[i, x >> 1] = half * ((c[y, x - 1] - g[i, x - 1]) + (c[y, x + 1] - g[i, x + 1]))
            dv[i, x >> 1] = half * ((c[y - 1, x] - g[i - 1, x]) + (c[y + 1, x] - g[i + 1, x]))


@njit(cache=True)
def _pass_refine_green(c, g0, ya, yb, xa, xb, base, g, dh, dv, horiz, q):  # pragma: no cover - compiled
    """3b + 4a. At non-green sites: the other colour's first estimate, kept as
    ``q = O - X``, and the refined green (in place: reads only its own site's green)."""
    half = np.float32(0.5)
    third = np.float32(1.0 / 3.0)
    for y in range(ya, yb):
        i = y - base
        for x in range(xa + ((1 - g0[y & 1] - xa) & 1), xb, 2):
            k = x >> 1
            kl = (x - 1) >> 1
            row_wins = horiz[i, k] != 0
            own_a = dh[i, kl] if row_wins else dv[i - 1, k]
            own_b = dh[i, kl + 1] if row_wins else dv[i + 1, k]
            oth_a = dv[i, kl] if row_wins else dh[i - 1, k]
            oth_b = dv[i, kl + 1] if row_wins else dh[i + 1, k]
            v = c[y, x]
            q[i, k] = half * ((oth_a - own_a) + (oth_b - own_b))
            g[i, x] = v - (third * (v - g[i, x]) + third * (own_a + own_b))


@njit(cache=True)
def _pass_write(c, g0, rc, ya, yb, p, w, base, g, dh, dv, horiz, q, refine, out):  # pragma: no cover
    """3b / 4c. The other colour at non-green sites (first estimate, or the
    refined 3-tap mean of ``O - X``), and every site written out."""
    half = np.float32(0.5)
    third = np.float32(1.0 / 3.0)
    for y in range(ya, yb):
        i = y - base
        row_c = rc[y & 1]
        col_c = 2 - row_c
        oy = y - p
        for x in range(p + ((g0[y & 1] - p) & 1), p + w, 2):
            v = c[y, x]
            out[oy, x - p, 1] = v
            out[oy, x - p, row_c] = v + dh[i, x >> 1]
            out[oy, x - p, col_c] = v + dv[i, x >> 1]
        for x in range(p + ((1 - g0[y & 1] - p) & 1), p + w, 2):
            k = x >> 1
            kl = (x - 1) >> 1
            s_row = (dv[i, kl] - dh[i, kl]) + (dv[i, kl + 1] - dh[i, kl + 1])
            s_col = (dh[i - 1, k] - dv[i - 1, k]) + (dh[i + 1, k] - dv[i + 1, k])
            s = s_row if horiz[i, k] != 0 else s_col
            v = c[y, x]
            out[oy, x - p, row_c] = v
            out[oy, x - p, 1] = g[i, x]
            if refine:
                out[oy, x - p, col_c] = v + (third * q[i, k] + third * s)
            else:
                out[oy, x - p, col_c] = v + half * s


@njit(parallel=True, cache=True)
def _menon_kernel(c, table, refine, n_threads, out):  # pragma: no cover - compiled
    hp, wp = c.shape
    h, w = out.shape[0], out.shape[1]
    p = (hp - h) // 2
    half_w = (wp + 1) // 2
    g0 = np.empty(2, np.int64)  # column parity of the green sites of a row of parity r
    rc = np.empty(2, np.int64)  # colour (0 R / 2 B) of the non-green sites of that row
    for r in range(2):
        g0[r] = 0 if table[r, 0] == 1 else 1
        rc[r] = table[r, 1 - g0[r]]
    m_e = 1 if refine else 0  # refined colour differences at green sites
    m_d = m_e + 1  # refined green
    m_rb = m_d + 1 if refine else 1  # colour differences at green sites
    m_g = m_rb + 1  # decision and green
    m_c = m_g + 2  # chrominance
    n_strips = (h + STRIP_ROWS - 1) // STRIP_ROWS
    n_chunks = max(1, min(n_strips, 4 * n_threads))
    rows = STRIP_ROWS + 2 * m_c
    for t in prange(n_chunks):
        ch = np.empty((rows, half_w), np.float64)
        cv = np.empty((rows, half_w), np.float64)
        g = np.empty((rows, wp), np.float32)
        horiz = np.empty((rows, half_w), np.uint8)
        dh = np.empty((rows, half_w), np.float32)
        dv = np.empty((rows, half_w), np.float32)
        q = np.zeros((rows, half_w), np.float32)
        for s in range(t * n_strips // n_chunks, (t + 1) * n_strips // n_chunks):
            ys = p + s * STRIP_ROWS
            ye = min(ys + STRIP_ROWS, p + h)
            base = ys - m_c
            _pass_chroma(c, g0, ys - m_c, ye + m_c, p - m_c, p + w + m_c, base, ch, cv)
            _pass_green(c, g0, ys - m_g, ye + m_g, p - m_g, p + w + m_g, base, ch, cv, g, horiz)
            _pass_diff_at_green(c, g0, ys - m_rb, ye + m_rb, p - m_rb, p + w + m_rb, base, g, dh, dv)
            if refine:
                _pass_refine_green(c, g0, ys - m_d, ye + m_d, p - m_d, p + w + m_d, base, g, dh, dv, horiz, q)
                _pass_diff_at_green(c, g0, ys - m_e, ye + m_e, p - m_e, p + w + m_e, base, g, dh, dv)
            _pass_write(c, g0, rc, ys, ye, p, w, base, g, dh, dv, horiz, q, refine, out)


# --------------------------------------------------------------------------
# NumPy twin
# --------------------------------------------------------------------------


def demosaic_bayer_menon2007_reference(
    cfa: NDArray, pattern: CfaPattern | str, *, refining_step: bool = True
) -> NDArray[np.float32]:
    """NumPy twin of :func:`demosaic_bayer_menon2007` (tests compare the two).

    Whole-image array operations on the reflect-101 padded mosaic, written
    along the paper's equations with full-size colour planes and masks; slow
    and memory-hungry, for small test images only.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    p = PAD_PX
    c32 = data[reflect101_index(h, p)][:, reflect101_index(w, p)]
    hp, wp = c32.shape
    index = table[np.arange(hp)[:, None] & 1, np.arange(wp)[None, :] & 1]
    is_r, is_g, is_b = index == 0, index == 1, index == 2
    is_rb = ~is_g
    # rows whose non-green sites are red (their green sites have red left/right)
    red_row = np.broadcast_to(is_r.any(axis=1)[:, None], (hp, wp))

    def at(a: NDArray, dy: int, dx: int) -> NDArray:
        """``at(a, dy, dx)[y, x] == a[y + dy, x + dx]`` (wrapping; the margin absorbs it)."""
        return np.roll(a, (-dy, -dx), axis=(0, 1))

    def pair_h(a: NDArray) -> NDArray:
        return at(a, 0, -1) + at(a, 0, 1)

    def pair_v(a: NDArray) -> NDArray:
        return at(a, -1, 0) + at(a, 1, 0)

    # 1. directional green and chrominance, float64
    c64 = c32.astype(np.float64)
    g_h = 0.5 * pair_h(c64) + (0.5 * c64 - 0.25 * (at(c64, 0, -2) + at(c64, 0, 2)))
    g_v = 0.5 * pair_v(c64) + (0.5 * c64 - 0.25 * (at(c64, -2, 0) + at(c64, 2, 0)))
    chroma_h = np.where(is_rb, c64 - g_h, 0.0)
    chroma_v = np.where(is_rb, c64 - g_v, 0.0)

    # 2. a posteriori decision over the 5x5 window (weights 1, 3, 1 / 1)
    grad_h = np.abs(chroma_h - at(chroma_h, 0, 2))  # D_H(y, x) = |C(y, x) - C(y, x + 2)|
    grad_v = np.abs(chroma_v - at(chroma_v, 2, 0))
    d_h = np.zeros_like(grad_h)
    d_v = np.zeros_like(grad_v)
    window = ((-2, -2, 1), (-2, 0, 1), (-1, -1, 1), (0, -2, 3), (0, 0, 3), (1, -1, 1), (2, -2, 1), (2, 0, 1))
    for dy, dx, weight in window:
        d_h += weight * at(grad_h, dy, dx)
        d_v += weight * at(grad_v, dx, dy)
    horiz = d_v >= d_h
    green = np.where(is_g, c32, np.where(horiz, g_h, g_v).astype(np.float32)).astype(np.float32)

    # 3. red and blue
    half = np.float32(0.5)
    diff = np.where(is_rb, c32 - green, np.float32(0)).astype(np.float32)  # X - G at X sites
    diff_row = half * pair_h(diff)  # at green sites: the row neighbours' colour minus green
    diff_col = half * pair_v(diff)
    red = np.where(is_r, c32, np.where(is_g, green + np.where(red_row, diff_row, diff_col), 0))
    blue = np.where(is_b, c32, np.where(is_g, green + np.where(red_row, diff_col, diff_row), 0))
    red, blue = red.astype(np.float32), blue.astype(np.float32)
    r_minus_b = np.where(is_g, red - blue, np.float32(0)).astype(np.float32)
    rb_dir = half * np.where(horiz, pair_h(r_minus_b), pair_v(r_minus_b))  # R - B along the decision
    red = np.where(is_b, c32 + rb_dir, red).astype(np.float32)
    blue = np.where(is_r, c32 - rb_dir, blue).astype(np.float32)

    if refining_step:
        third = np.float32(1.0 / 3.0)
        # 4a. green at R/B: 3-tap mean of X - G along the decision
        x_minus_g = np.where(is_r, red - green, np.where(is_b, blue - green, 0)).astype(np.float32)
        # at the green neighbours of a red site: R - G; of a blue site: B - G
        rg = (red - green).astype(np.float32)
        bg = (blue - green).astype(np.float32)
        side_r = np.where(horiz, pair_h(rg), pair_v(rg))
        side_b = np.where(horiz, pair_h(bg), pair_v(bg))
        green = np.where(
            is_r,
            red - (third * x_minus_g + third * side_r),
            np.where(is_b, blue - (third * x_minus_g + third * side_b), green),
        ).astype(np.float32)
        # 4b. red/blue at green sites from the refined differences
        diff = np.where(is_rb, c32 - green, np.float32(0)).astype(np.float32)
        diff_row = half * pair_h(diff)
        diff_col = half * pair_v(diff)
        red_g = green + np.where(red_row, diff_row, diff_col)
        blue_g = green + np.where(red_row, diff_col, diff_row)
        # 4c. red (blue) at blue (red): 3-tap mean of R - B along the decision
        r_minus_b = np.where(is_g, red_g - blue_g, np.where(is_rb, red - blue, 0)).astype(np.float32)
        r_minus_b_nb = np.where(is_g, r_minus_b, np.float32(0))
        rb_dir = np.where(horiz, pair_h(r_minus_b_nb), pair_v(r_minus_b_nb))
        new_red = np.where(is_b, c32 + (third * r_minus_b + third * rb_dir), np.where(is_g, red_g, red))
        new_blue = np.where(is_r, c32 - (third * r_minus_b + third * rb_dir), np.where(is_g, blue_g, blue))
        red, blue = new_red.astype(np.float32), new_blue.astype(np.float32)

    out = np.stack([red, green, blue], axis=-1)[p : p + h, p : p + w]
    return np.ascontiguousarray(out, dtype=np.float32)
