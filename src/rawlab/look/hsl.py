"""``look_hsl``: 8-band hue / saturation / luminance adjustment on linear RGB.

Bands are centred on the HSV hues (degrees) red 0, orange 30, yellow 60,
green 120, aqua 180, blue 240, purple 270, magenta 300; a pixel's hue
(Smith 1978, "Color gamut transform pairs", SIGGRAPH, the HSV hexcone) takes
its adjustment from the two neighbouring band centres by linear interpolation
around the hue circle.  Then, per pixel, with ``m`` the mean of R, G, B and
``c = RGB - m`` its chroma vector (perpendicular to the grey axis):

* hue: ``c`` is rotated about the grey axis ``(1, 1, 1)/sqrt(3)`` by the
  band's angle (Rodrigues' rotation formula); positive turns red towards
  yellow (the HSV hue direction); ``m`` is kept;
* saturation: ``c *= 1 + saturation`` (``-1`` removes the band's colour);
* luminance: the pixel is scaled by ``2 ** (luminance_ev * s)``, ``s`` its HSV
  saturation, so greys never change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import InvalidParams
from rawlab.look._common import require_transfer, rows3

__all__ = ["HSL_BANDS", "HSL_BAND_HUES_DEG", "HslParams", "look_hsl", "hsl_8band", "hsl_8band_reference"]

#: Band names and their centre hues (HSV degrees).
HSL_BANDS = ("red", "orange", "yellow", "green", "aqua", "blue", "purple", "magenta")
HSL_BAND_HUES_DEG = (0.0, 30.0, 60.0, 120.0, 180.0, 240.0, 270.0, 300.0)
_ZERO8 = (0.0,) * 8


@dataclass(frozen=True)
class HslParams(Params):
    """Parameters of ``look_hsl``: one value per band, in :data:`HSL_BANDS` order."""

    VERSION: ClassVar[int] = 1
    hue_deg: tuple[float, ...] = param(_ZERO8, min=-60.0, max=60.0, unit="deg", doc="hue rotation per band")
    saturation: tuple[float, ...] = param(_ZERO8, min=-1.0, max=2.0, doc="relative chroma change per band")
    luminance_ev: tuple[float, ...] = param(_ZERO8, min=-2.0, max=2.0, unit="EV", doc="brightness per band")

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("hue_deg", "saturation", "luminance_ev"):
            if len(getattr(self, name)) != 8:
                raise InvalidParams(
                    f"HslParams.{name}: expected 8 values ({', '.join(HSL_BANDS)}), got {len(getattr(self, name))}"
                )


def _band_table(p_hue, p_sat, p_lum) -> NDArray[np.float64]:
    """(9, 4) table: centre hue, hue angle (rad), saturation, luminance; row 8 repeats row 0 at 360."""
    t = np.zeros((9, 4))
    t[:8, 0] = HSL_BAND_HUES_DEG
    t[:8, 1] = np.radians(p_hue)
    t[:8, 2] = p_sat
    t[:8, 3] = p_lum
    t[8] = t[0]
    t[8, 0] = 360.0
    return t


def hsl_8band(
    rgb_linear: NDArray[np.float32], *, hue_deg, saturation, luminance_ev
) -> NDArray[np.float32]:
    """Apply the 8-band adjustment (see the module docstring).

    Parameters
    ----------
    rgb_linear
        ``(H, W, 3)`` float32 linear RGB, any range.
    hue_deg, saturation, luminance_ev
        8 values each, in :data:`HSL_BANDS` order.

    Returns
    -------
    numpy.ndarray
        New ``(H, W, 3)`` float32 array; greys unchanged.
    """
    src = rows3(rgb_linear)
    out = np.empty_like(src)
    _hsl_kernel(src, out, _band_table(hue_deg, saturation, luminance_ev))
    return out.reshape(np.shape(rgb_linear))


@njit(cache=True)
def _hue_deg(r, g, b, hi, d):  # pragma: no cover - compiled
    if hi == r:
        h = 60.0 * (((g - b) / d) % 6.0)
    elif hi == g:
        h = 60.0 * ((b - r) / d + 2.0)
    else:
        h = 60.0 * ((r - g) / d + 4.0)
    return h % 360.0


@njit(parallel=True, cache=True)
def _hsl_kernel(src, out, table):  # pragma: no cover - compiled
    inv_sqrt3 = 1.0 / math.sqrt(3.0)
    for i in prange(src.shape[0]):
        r = np.float64(src[i, 0])
        g = np.float64(src[i, 1])
        b = np.float64(src[i, 2])
        hi = max(r, max(g, b))
        lo = min(r, min(g, b))
        d = hi - lo
        if not (d > 0.0 and hi > 0.0):
            out[i, 0] = src[i, 0]
            out[i, 1] = src[i, 1]
            out[i, 2] = src[i, 2]
            continue
        h = _hue_deg(r, g, b, hi, d)
        j = 0
        while j < 7 and table[j + 1, 0] <= h:
            j += 1
        u = (h - table[j, 0]) / (table[j + 1, 0] - table[j, 0])
        theta = (1.0 - u) * table[j, 1] + u * table[j + 1, 1]
        sat = (1.0 - u) * table[j, 2] + u * table[j + 1, 2]
        lum = (1.0 - u) * table[j, 3] + u * table[j + 1, 3]
        m = (r + g + b) / 3.0
        cr, cg, cb = r - m, g - m, b - m
        cs, sn = math.cos(theta), math.sin(theta) * inv_sqrt3
        nr = cr * cs + (cb - cg) * sn
        ng = cg * cs + (cr - cb) * sn
        nb = cb * cs + (cg - cr) * sn
        k = 1.0 + sat
        s_now = min(1.0, d / hi)
        gain = 2.0 ** (lum * s_now)
        out[i, 0] = np.float32((m + k * nr) * gain)
        out[i, 1] = np.float32((m + k * ng) * gain)
        out[i, 2] = np.float32((m + k * nb) * gain)


def hsl_8band_reference(rgb_linear: NDArray, *, hue_deg, saturation, luminance_ev) -> NDArray[np.float32]:
    """NumPy (float64) twin of :func:`hsl_8band`, the rotation as a 3x3 matrix."""
    x = np.asarray(rgb_linear, dtype=np.float64).reshape(-1, 3)
    hi, lo = x.max(axis=1), x.min(axis=1)
    d = hi - lo
    active = (d > 0) & (hi > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r, g, b = x.T
        h = np.select(
            [hi == r, hi == g],
            [60.0 * (((g - b) / d) % 6.0), 60.0 * ((b - r) / d + 2.0)],
            60.0 * ((r - g) / d + 4.0),
        ) % 360.0
    centres = np.array(HSL_BAND_HUES_DEG + (360.0,))
    h = np.where(active, h, 0.0)
    theta = np.interp(h, centres, np.radians(np.r_[hue_deg, hue_deg[0]]))
    sat = np.interp(h, centres, np.r_[saturation, saturation[0]])
    lum = np.interp(h, centres, np.r_[luminance_ev, luminance_ev[0]])
    out = x.copy()
    axis = np.ones(3) / np.sqrt(3.0)
    K = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    for idx in np.flatnonzero(active):
        R = np.eye(3) + np.sin(theta[idx]) * K + (1 - np.cos(theta[idx])) * K @ K
        m = x[idx].mean()
        c = R @ (x[idx] - m)
        out[idx] = (m + (1 + sat[idx]) * c) * 2.0 ** (lum[idx] * min(1.0, d[idx] / hi[idx]))
    return out.reshape(np.shape(rgb_linear)).astype(np.float32)


@stage("look_hsl", params=HslParams, consumes=Encoding.RGB, pointwise=True)
def look_hsl(frame: Frame, p: HslParams) -> Frame:
    """8-band hue/saturation/luminance. In and out: ``RGB``, linear."""
    require_transfer(frame, "look_hsl", Transfer.LINEAR)
    if not any(p.hue_deg) and not any(p.saturation) and not any(p.luminance_ev):
        return frame
    data = hsl_8band(frame.data, hue_deg=p.hue_deg, saturation=p.saturation, luminance_ev=p.luminance_ev)
    return frame.replace(data=data)
