"""Bilinear Bayer demosaicing.

Each missing colour is the mean of its nearest same-colour neighbours: green
from the four edge neighbours, red/blue at green sites from the two neighbours
in the row or column that carries them, red/blue at blue/red sites from the
four diagonal neighbours.  This is the classic baseline of the demosaicing
literature, e.g. the bilinear reference in Malvar, He & Cutler (2004) and in
Gunturk et al., "Demosaicking: color filter array interpolation", IEEE Signal
Processing Magazine 22(1), 2005.

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

__all__ = ["demosaic_bayer_bilinear"]


def demosaic_bayer_bilinear(cfa: NDArray, pattern: CfaPattern | str) -> NDArray[np.float32]:
    """Demosaic a Bayer mosaic by bilinear interpolation.

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
        samples are passed through unchanged.

    Raises
    ------
    StageError
        For a non-Bayer pattern or a buffer that is not 2-D.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    out = np.empty((h, w, 3), dtype=np.float32)
    _bilinear_kernel(data, table, reflect101_index(h, 1), reflect101_index(w, 1), out)
    return out


@njit(parallel=True, cache=True)
def _bilinear_kernel(cfa, table, rows, cols, out):  # pragma: no cover - compiled
    h, w = cfa.shape
    quarter = np.float32(0.25)
    half = np.float32(0.5)
    for y in prange(h):
        ru = rows[y]  # index tables are offset by the pad (1)
        rc = rows[y + 1]
        rd = rows[y + 2]
        py = y & 1
        for x in range(w):
            cl = cols[x]
            cr = cols[x + 2]
            v = cfa[rc, x]
            c = table[py, x & 1]
            if c == 1:
                horiz = (cfa[rc, cl] + cfa[rc, cr]) * half
                vert = (cfa[ru, x] + cfa[rd, x]) * half
                out[y, x, 1] = v
                if table[py, (x + 1) & 1] == 0:
                    out[y, x, 0] = horiz
                    out[y, x, 2] = vert
                else:
                    out[y, x, 2] = horiz
                    out[y, x, 0] = vert
            else:
                cross = (cfa[ru, x] + cfa[rd, x] + cfa[rc, cl] + cfa[rc, cr]) * quarter
                diag = (cfa[ru, cl] + cfa[ru, cr] + cfa[rd, cl] + cfa[rd, cr]) * quarter
                out[y, x, 1] = cross
                out[y, x, c] = v
                out[y, x, 2 - c] = diag


def demosaic_bayer_bilinear_reference(cfa: NDArray, pattern: CfaPattern | str) -> NDArray[np.float32]:
    """NumPy/OpenCV twin of :func:`demosaic_bayer_bilinear` (tests compare the two).

    Normalised convolution of each colour plane with the bilinear kernels,
    borders by reflect-101.
    """
    table = bayer_table(pattern)
    data = check_cfa(cfa)
    h, w = data.shape
    index = np.tile(table, (-(-h // 2), -(-w // 2)))[:h, :w]
    k_g = np.array([[0, 1, 0], [1, 4, 1], [0, 1, 0]], np.float32) / 4
    k_rb = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32) / 4
    planes = []
    for colour, kernel in ((0, k_rb), (1, k_g), (2, k_rb)):
        masked = np.where(index == colour, data, np.float32(0))
        planes.append(cv2.filter2D(masked, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101))
    return np.ascontiguousarray(np.stack(planes, axis=-1), dtype=np.float32)
