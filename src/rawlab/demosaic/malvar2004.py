"""Malvar-He-Cutler (2004) gradient-corrected linear Bayer demosaicing.

Reference: H. S. Malvar, L.-W. He and R. Cutler, "High-quality linear
interpolation for demosaicing of Bayer-patterned color images", Proc. IEEE
ICASSP 2004, vol. 3, pp. 485-488.

Each missing colour is a bilinear estimate corrected by the Laplacian of the
colour measured at the site, with the paper's gains (alpha = 1/2, beta = 5/8,
gamma = 3/4).  The paper expresses this as four 5x5 filters (Fig. 2):

* G at R or B sites::

      [ 0  0 -1  0  0]
      [ 0  0  2  0  0]
      [-1  2  4  2 -1] / 8
      [ 0  0  2  0  0]
      [ 0  0 -1  0  0]

* R (B) at a G site whose row holds R (B) -- neighbours left/right::

      [ 0   0  1/2  0   0]
      [ 0  -1   0  -1   0]
      [-1   4   5   4  -1] / 8
      [ 0  -1   0  -1   0]
      [ 0   0  1/2  0   0]

* R (B) at a G site whose column holds R (B): the transpose of the above;
* B at R sites and R at B sites::

      [ 0    0  -3/2  0    0  ]
      [ 0    2    0   2    0  ]
      [-3/2  0    6   0  -3/2 ] / 8
      [ 0    2    0   2    0  ]
      [ 0    0  -3/2  0    0  ]

Borders use reflect-101 (OpenCV ``BORDER_REFLECT_101``), which keeps every
reflected neighbour on a site of the right colour.
"""

from __future__ import annotations

import cv2
import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.metadata import CfaPattern
from rawlab.demosaic._bayer import bayer_table, check_cfa, reflect101_index

__all__ = ["demosaic_bayer_malvar2004"]


def demosaic_bayer_malvar2004(cfa: NDArray, pattern: CfaPattern | str) -> NDArray[np.float32]:
    """Demosaic a Bayer mosaic with the Malvar-He-Cutler (2004) filters.

    Parameters
    ----------
    cfa
        ``(H, W)`` mosaic, any real values (normalised data is 0..1 with noise
        below 0 and highlights above 1; nothing is clipped).  Any size >= 1x1.
    pattern
        The mosaic's 2x2 Bayer layout at pixel (0, 0): a :class:`CfaPattern`
        or a name (``"RGGB"``, ``"GRBG"``, ``"GBRG"``, ``"BGGR"``).

    Returns
    -------
    numpy.ndarray
        ``(H, W, 3)`` float32 camera RGB, same scale as the input; measured
        samples pass through unchanged.  The gradient correction can overshoot
        slightly beyond the input range at edges (not clipped).

    Raises
    ------
    StageError
        For a non-Bayer pattern or a buffer that is not 2-D.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    out = np.empty((h, w, 3), dtype=np.float32)
    _malvar_kernel(data, table, reflect101_index(h, 2), reflect101_index(w, 2), out)
    return out


@njit(parallel=True, cache=True)
def _malvar_kernel(cfa, table, rows, cols, out):  # pragma: no cover - compiled
    h, w = cfa.shape
    f8 = np.float32(1.0 / 8.0)
    for y in prange(h):
        # index tables are offset by the pad (2): rows[y + 2] == y
        ru2 = rows[y]
        ru1 = rows[y + 1]
        rc = rows[y + 2]
        rd1 = rows[y + 3]
        rd2 = rows[y + 4]
        py = y & 1
        for x in range(w):
            cl2 = cols[x]
            cl1 = cols[x + 1]
            cr1 = cols[x + 3]
            cr2 = cols[x + 4]
            v = cfa[rc, x]
            c = table[py, x & 1]
            up2 = cfa[ru2, x]
            dn2 = cfa[rd2, x]
            lf2 = cfa[rc, cl2]
            rt2 = cfa[rc, cr2]
            diag = cfa[ru1, cl1] + cfa[ru1, cr1] + cfa[rd1, cl1] + cfa[rd1, cr1]
            if c == 1:
                lr1 = cfa[rc, cl1] + cfa[rc, cr1]
                ud1 = cfa[ru1, x] + cfa[rd1, x]
                base = np.float32(5.0) * v - diag
                horiz = (base + np.float32(4.0) * lr1 - (lf2 + rt2) + np.float32(0.5) * (up2 + dn2)) * f8
                vert = (base + np.float32(4.0) * ud1 - (up2 + dn2) + np.float32(0.5) * (lf2 + rt2)) * f8
                out[y, x, 1] = v
                if table[py, (x + 1) & 1] == 0:
                    out[y, x, 0] = horiz
                    out[y, x, 2] = vert
                else:
                    out[y, x, 2] = horiz
                    out[y, x, 0] = vert
            else:
                cross1 = cfa[ru1, x] + cfa[rd1, x] + cfa[rc, cl1] + cfa[rc, cr1]
                cross2 = up2 + dn2 + lf2 + rt2
                green = (np.float32(4.0) * v + np.float32(2.0) * cross1 - cross2) * f8
                other = (np.float32(6.0) * v + np.float32(2.0) * diag - np.float32(1.5) * cross2) * f8
                out[y, x, 1] = green
                out[y, x, c] = v
                out[y, x, 2 - c] = other


def demosaic_bayer_malvar2004_reference(cfa: NDArray, pattern: CfaPattern | str) -> NDArray[np.float32]:
    """NumPy/OpenCV twin of :func:`demosaic_bayer_malvar2004` (tests compare the two).

    Runs the paper's four 5x5 filters over the whole mosaic with
    ``cv2.filter2D`` (reflect-101 borders) and picks the right one per site.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    g_at_rb = np.array(
        [[0, 0, -1, 0, 0], [0, 0, 2, 0, 0], [-1, 2, 4, 2, -1], [0, 0, 2, 0, 0], [0, 0, -1, 0, 0]], np.float32
    ) / 8
    at_g_row = np.array(
        [[0, 0, 0.5, 0, 0], [0, -1, 0, -1, 0], [-1, 4, 5, 4, -1], [0, -1, 0, -1, 0], [0, 0, 0.5, 0, 0]],
        np.float32,
    ) / 8
    at_g_col = np.ascontiguousarray(at_g_row.T)
    rb_at_br = np.array(
        [[0, 0, -1.5, 0, 0], [0, 2, 0, 2, 0], [-1.5, 0, 6, 0, -1.5], [0, 2, 0, 2, 0], [0, 0, -1.5, 0, 0]],
        np.float32,
    ) / 8

    def filt(kernel: NDArray) -> NDArray[np.float32]:
        return cv2.filter2D(data, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)

    f_g, f_row, f_col, f_diag = filt(g_at_rb), filt(at_g_row), filt(at_g_col), filt(rb_at_br)
    out = np.empty((h, w, 3), dtype=np.float32)
    for py in range(2):
        for px in range(2):
            c = int(table[py, px])
            sl = (slice(py, None, 2), slice(px, None, 2))
            if c == 1:
                row_colour = int(table[py, 1 - px])
                out[sl + (1,)] = data[sl]
                out[sl + (row_colour,)] = f_row[sl]
                out[sl + (2 - row_colour,)] = f_col[sl]
            else:
                out[sl + (c,)] = data[sl]
                out[sl + (1,)] = f_g[sl]
                out[sl + (2 - c,)] = f_diag[sl]
    return out
