"""Shared helpers of the Bayer demosaicers (private).

Checks a CFA pattern is a 2x2 Bayer layout and turns it into the small int8
table the kernels index with ``pattern[y & 1, x & 1]``, and builds the
reflect-101 index tables the kernels read neighbours through.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rawlab.core.metadata import CfaPattern
from rawlab.errors import StageError


def bayer_table(pattern: CfaPattern | str) -> NDArray[np.int8]:
    """The 2x2 colour-index table of a Bayer ``pattern`` (0 R, 1 G, 2 B).

    Raises
    ------
    StageError
        When the pattern is not a 2x2 Bayer layout (X-Trans, RGBW, ...).
    """
    if isinstance(pattern, str):
        try:
            pattern = CfaPattern.from_string(pattern)
        except ValueError as exc:
            raise StageError(str(exc)) from None
    if not pattern.is_bayer:
        raise StageError(
            f"demosaic: only 2x2 Bayer mosaics are supported, got a {pattern.shape[0]}x{pattern.shape[1]} "
            f"CFA pattern {pattern.name}"
        )
    return np.ascontiguousarray(pattern.as_array(), dtype=np.int8)


def reflect101_index(n: int, pad: int) -> NDArray[np.int64]:
    """Indices ``-pad .. n + pad - 1`` folded into ``0 .. n - 1`` by reflect-101.

    Reflect-101 (OpenCV ``BORDER_REFLECT_101``) mirrors about the edge sample
    without repeating it (``-1 -> 1``), so a reflected neighbour keeps the
    parity of the real one and therefore its Bayer colour.
    """
    idx = np.arange(-pad, n + pad, dtype=np.int64)
    if n == 1:
        return np.zeros_like(idx)
    period = 2 * n - 2
    idx = np.abs(idx) % period
    return np.where(idx >= n, period - idx, idx)


def check_cfa(cfa: NDArray) -> NDArray[np.float32]:
    """``cfa`` as a C-contiguous float32 2-D array (no copy when it already is)."""
    array = np.asarray(cfa)
    if array.ndim != 2:
        raise StageError(f"demosaic: expected a 2-D mosaic, got shape {array.shape}")
    if array.shape[0] < 1 or array.shape[1] < 1:
        raise StageError(f"demosaic: empty mosaic of shape {array.shape}")
    return np.ascontiguousarray(array, dtype=np.float32)
