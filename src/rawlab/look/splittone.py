"""``look_split_tone``: tint the shadows and the highlights (display-referred linear RGB).

Each tint is a colour of the given HSV hue and saturation (Smith 1978) scaled
to unit luminance, ``T = HSV(hue, sat, 1) / Y(HSV(hue, sat, 1))``.  Per pixel,
with ``t = clip(Y, 0, 1)`` its display luminance and
``w = smoothstep(t) ** (2 ** -balance)`` the highlight weight::

    out = RGB * ((1 - w) * T_shadows + w * T_highlights)

so a grey stays at its luminance, black stays black, and zero saturation is
the identity.  Applied after the tone curve (display-referred, linear), which
is where its weights mean "shadows" and "highlights".
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.look._common import luminance_weights, require_transfer, rows3

__all__ = ["SplitToneParams", "look_split_tone", "split_tone", "split_tone_reference", "unit_luminance_tint"]


@dataclass(frozen=True)
class SplitToneParams(Params):
    """Parameters of ``look_split_tone``."""

    VERSION: ClassVar[int] = 1
    shadows_hue_deg: float = param(220.0, min=0.0, max=360.0, unit="deg", doc="HSV hue of the shadow tint")
    shadows_saturation: float = param(0.0, min=0.0, max=1.0, doc="strength of the shadow tint")
    highlights_hue_deg: float = param(40.0, min=0.0, max=360.0, unit="deg", doc="HSV hue of the highlight tint")
    highlights_saturation: float = param(0.0, min=0.0, max=1.0, doc="strength of the highlight tint")
    balance: float = param(0.0, min=-2.0, max=2.0, doc="> 0 widens the highlights' share")


def unit_luminance_tint(hue_deg: float, saturation: float, weights: NDArray) -> NDArray[np.float64]:
    """RGB multiplier of hue/saturation with luminance 1 (``(1, 1, 1)`` at saturation 0)."""
    rgb = np.array(colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, saturation, 1.0))
    return rgb / float(rgb @ np.asarray(weights, dtype=np.float64))


def split_tone(
    rgb_linear: NDArray[np.float32], *, tint_shadows: NDArray, tint_highlights: NDArray,
    balance: float, luminance_weights_rgb: NDArray,
) -> NDArray[np.float32]:
    """Blend two unit-luminance tints by display luminance (see the module docstring).

    ``rgb_linear`` is ``(H, W, 3)`` float32 linear display-referred RGB (white 1);
    returns a new float32 array of the same shape.
    """
    src = rows3(rgb_linear)
    out = np.empty_like(src)
    w = np.asarray(luminance_weights_rgb, dtype=np.float32)
    _split_kernel(src, out, np.asarray(tint_shadows, np.float32), np.asarray(tint_highlights, np.float32),
                  np.float32(2.0 ** -balance), w)
    return out.reshape(np.shape(rgb_linear))


@njit(parallel=True, cache=True)
def _split_kernel(src, out, ts, th, expo, w):  # pragma: no cover - compiled
    for i in prange(src.shape[0]):
        y = w[0] * src[i, 0] + w[1] * src[i, 1] + w[2] * src[i, 2]
        t = min(np.float32(1.0), max(np.float32(0.0), y))
        wh = (t * t * (np.float32(3.0) - np.float32(2.0) * t)) ** expo
        for c in range(3):
            out[i, c] = src[i, c] * ((np.float32(1.0) - wh) * ts[c] + wh * th[c])


def split_tone_reference(
    rgb_linear: NDArray, *, tint_shadows: NDArray, tint_highlights: NDArray, balance: float,
    luminance_weights_rgb: NDArray,
) -> NDArray[np.float32]:
    """NumPy (float64) twin of :func:`split_tone`."""
    x = np.asarray(rgb_linear, dtype=np.float64)
    t = np.clip(x @ np.asarray(luminance_weights_rgb, np.float64), 0.0, 1.0)
    wh = (t * t * (3.0 - 2.0 * t)) ** (2.0 ** -balance)
    m = (1.0 - wh)[..., None] * np.asarray(tint_shadows) + wh[..., None] * np.asarray(tint_highlights)
    return (x * m).astype(np.float32)


@stage("look_split_tone", params=SplitToneParams, consumes=Encoding.RGB, pointwise=True)
def look_split_tone(frame: Frame, p: SplitToneParams) -> Frame:
    """Split toning. In and out: ``RGB``, linear, display-referred (after the tone curve)."""
    require_transfer(frame, "look_split_tone", Transfer.LINEAR)
    if p.shadows_saturation == 0.0 and p.highlights_saturation == 0.0:
        return frame
    w = luminance_weights(frame.primaries)
    data = split_tone(
        frame.data,
        tint_shadows=unit_luminance_tint(p.shadows_hue_deg, p.shadows_saturation, w),
        tint_highlights=unit_luminance_tint(p.highlights_hue_deg, p.highlights_saturation, w),
        balance=p.balance, luminance_weights_rgb=w,
    )
    return frame.replace(data=data)
