"""Small colour-matrix helpers shared by the colour stages (private)."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def apply_matrix_3x3(rgb: NDArray[np.float32], M: NDArray) -> NDArray[np.float32]:
    """``out[..., i] = sum_j M[i, j] * rgb[..., j]`` for an ``(H, W, 3)`` float32 buffer.

    Uses ``cv2.transform`` (multi-threaded, float32 in and out; no clipping).
    """
    M32 = np.ascontiguousarray(M, dtype=np.float32)
    out = cv2.transform(np.ascontiguousarray(rgb, dtype=np.float32), M32)
    return out.reshape(rgb.shape)


def propagate_clip_level(
    clip_level: NDArray, M: NDArray, white_in: NDArray | None = None
) -> NDArray[np.float32]:
    """Clip level after a 3x3 matrix: the level at which a neutral first clips, mapped through ``M``.

    ``white_in`` is the neutral (scene white) in the input's units, (1, 1, 1)
    by default.  A neutral ``s * white_in`` stops being real once one of its
    channels reaches its clip level, at ``s = min(clip_level / white_in)``; the
    new per-channel levels are ``M @ (s * white_in)``.  An infinite level
    (unknown) stays infinite.
    """
    white = np.ones(3) if white_in is None else np.asarray(white_in, dtype=np.float64).reshape(3)
    clip = np.asarray(clip_level, dtype=np.float64).reshape(3)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(white > 0, clip / white, np.inf)
    level = float(np.min(ratio))
    if not np.isfinite(level):
        return np.full(3, np.inf, dtype=np.float32)
    return (np.asarray(M, dtype=np.float64) @ (level * white)).astype(np.float32)
