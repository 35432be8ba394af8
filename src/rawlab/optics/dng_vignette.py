"""FixVignetteRadial (DNG 1.6, 7.3.3): a radial gain that undoes lens fall-off.

The gain at a pixel is ``1 + k0 r^2 + k1 r^4 + k2 r^6 + k3 r^8 + k4 r^10``, with
``r`` the distance from the optical centre ``(cx * W, cy * H)`` divided by the
distance from that centre to the farthest image corner (so ``r = 1`` there).
Pixel ``(i, j)`` sits at ``(i + 0.5, j + 0.5)`` (pixel centres).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rawlab.core.opcodes import FixVignetteRadial

__all__ = ["fix_vignette_radial_gain", "apply_fix_vignette_radial"]


def fix_vignette_radial_gain(
    height: int,
    width: int,
    *,
    k: tuple[float, float, float, float, float],
    center: tuple[float, float],
) -> NDArray[np.float32]:
    """The FixVignetteRadial gain field (DNG 1.6, 7.3.3).

    Parameters
    ----------
    height, width
        Image size in pixels.
    k
        ``(k0, k1, k2, k3, k4)``, the coefficients of ``r^2 .. r^10``.
    center
        Optical centre ``(cx, cy)`` relative to the image width and height (0..1).

    Returns
    -------
    numpy.ndarray
        float32 ``(height, width)`` gain (1 at the centre, unbounded elsewhere).
    """
    cx, cy = center[0] * width, center[1] * height
    norm = float(np.hypot(max(cx, width - cx), max(cy, height - cy)))
    norm = norm if norm > 0 else 1.0
    y2 = ((np.arange(height, dtype=np.float64) + 0.5 - cy) / norm) ** 2
    x2 = ((np.arange(width, dtype=np.float64) + 0.5 - cx) / norm) ** 2
    r2 = (y2[:, None].astype(np.float32) + x2[None, :].astype(np.float32))
    gain = np.full_like(r2, np.float32(k[-1]))
    for coefficient in reversed(k[:-1]):  # Horner in r^2
        gain *= r2
        gain += np.float32(coefficient)
    gain *= r2
    gain += np.float32(1.0)
    return gain


def apply_fix_vignette_radial(data: NDArray[np.float32], op: FixVignetteRadial) -> None:
    """Multiply every sample (all planes) of ``data`` by the opcode's gain, in place.

    ``data`` is float32 ``(H, W)`` or ``(H, W, P)``, linear; nothing is clipped.
    """
    gain = fix_vignette_radial_gain(data.shape[0], data.shape[1], k=op.k, center=op.center)
    if data.ndim == 3:
        data *= gain[:, :, None]
    else:
        data *= gain
