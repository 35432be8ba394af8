"""``look_saturation``: global saturation and vibrance on linear RGB.

Each pixel's chroma is its offset from its own luminance ``Y`` (the CIE Y of
the working primaries), scaled about ``Y``, so luminance is kept exactly::

    s_now  = (max(R,G,B) - min(R,G,B)) / max(R,G,B)     (HSV saturation, 0..1)
    factor = saturation * (1 + vibrance * (1 - s_now))
    out    = Y + factor * (RGB - Y)

Vibrance thus acts most on muted colours and least on already saturated ones
(the behaviour photo editors call vibrance).  Greys (R = G = B) are unchanged.
Reference: the luminance-preserving saturation of the ITU-R BT.709 / sRGB
working space (Poynton, *Digital Video and HD*, 2nd ed., ch. 28).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.look._common import luminance_weights, require_transfer, rows3

__all__ = ["SaturationParams", "look_saturation", "saturation_vibrance", "saturation_vibrance_reference"]


@dataclass(frozen=True)
class SaturationParams(Params):
    """Parameters of ``look_saturation`` (linear RGB, scene- or display-referred)."""

    VERSION: ClassVar[int] = 1
    saturation: float = param(1.0, min=0.0, max=3.0, doc="chroma scale about the pixel's luminance (1 = neutral)")
    vibrance: float = param(0.0, min=-1.0, max=1.0, doc="extra chroma for muted colours (0 = neutral)")


def saturation_vibrance(
    rgb_linear: NDArray[np.float32], *, saturation: float, vibrance: float, luminance_weights_rgb: NDArray
) -> NDArray[np.float32]:
    """Scale chroma about luminance (see the module docstring).

    Parameters
    ----------
    rgb_linear
        ``(H, W, 3)`` float32 linear RGB, any range.
    saturation, vibrance
        As in :class:`SaturationParams`.
    luminance_weights_rgb
        ``(wR, wG, wB)`` of Y in the working primaries.

    Returns
    -------
    numpy.ndarray
        New ``(H, W, 3)`` float32 array with the same luminance.
    """
    src = rows3(rgb_linear)
    out = np.empty_like(src)
    w = np.asarray(luminance_weights_rgb, dtype=np.float32)
    _saturation_kernel(src, out, np.float32(saturation), np.float32(vibrance), w[0], w[1], w[2])
    return out.reshape(np.shape(rgb_linear))


@njit(parallel=True, cache=True)
def _saturation_kernel(src, out, sat, vib, wr, wg, wb):  # pragma: no cover - compiled
    for i in prange(src.shape[0]):
        r, g, b = src[i, 0], src[i, 1], src[i, 2]
        y = wr * r + wg * g + wb * b
        hi = max(r, max(g, b))
        lo = min(r, min(g, b))
        s_now = np.float32(0.0)
        if hi > 0:
            s_now = min(np.float32(1.0), max(np.float32(0.0), (hi - lo) / hi))
        f = sat * (np.float32(1.0) + vib * (np.float32(1.0) - s_now))
        out[i, 0] = y + f * (r - y)
        out[i, 1] = y + f * (g - y)
        out[i, 2] = y + f * (b - y)


def saturation_vibrance_reference(
    rgb_linear: NDArray, *, saturation: float, vibrance: float, luminance_weights_rgb: NDArray
) -> NDArray[np.float32]:
    """NumPy (float64) twin of :func:`saturation_vibrance`."""
    x = np.asarray(rgb_linear, dtype=np.float64)
    y = x @ np.asarray(luminance_weights_rgb, dtype=np.float64)
    hi, lo = x.max(axis=-1), x.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        s_now = np.where(hi > 0, np.clip((hi - lo) / hi, 0.0, 1.0), 0.0)
    f = saturation * (1.0 + vibrance * (1.0 - s_now))
    return (y[..., None] + f[..., None] * (x - y[..., None])).astype(np.float32)


@stage("look_saturation", params=SaturationParams, consumes=Encoding.RGB, pointwise=True)
def look_saturation(frame: Frame, p: SaturationParams) -> Frame:
    """Saturation and vibrance. In and out: ``RGB``, linear (luminance kept)."""
    require_transfer(frame, "look_saturation", Transfer.LINEAR)
    if p.saturation == 1.0 and p.vibrance == 0.0:
        return frame
    data = saturation_vibrance(frame.data, saturation=p.saturation, vibrance=p.vibrance,
                               luminance_weights_rgb=luminance_weights(frame.primaries))
    return frame.replace(data=data)
