"""``look_white_balance_bias``: a warm/cool and green/magenta bias on top of the white balance.

The bias is the von Kries ratio of two whites on the CIE daylight locus
(CIE 15:2004, eq. 3.3/3.4), D65 (6504 K) and the one ``warmth_mired`` further
along it (positive: lower colour temperature, a warmer picture), expressed in
the working RGB; ``tint`` scales green by ``2 ** -tint`` (positive: magenta).
The gains are normalised to keep the luminance of white.  Linear RGB in and out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.look._common import _SPACE_OF, require_transfer

__all__ = ["WhiteBalanceBiasParams", "look_white_balance_bias", "daylight_xy_cie15", "white_balance_bias_gains"]

MIRED_D65 = 1e6 / 6504.0


@dataclass(frozen=True)
class WhiteBalanceBiasParams(Params):
    """Parameters of ``look_white_balance_bias``."""

    VERSION: ClassVar[int] = 1
    warmth_mired: float = param(0.0, min=-60.0, max=60.0, unit="mired", doc="> 0 warmer (lower CCT white)")
    tint: float = param(0.0, min=-0.5, max=0.5, unit="EV", doc="> 0 magenta, < 0 green")


def daylight_xy_cie15(cct_K: float) -> tuple[float, float]:
    """Chromaticity of CIE daylight at ``cct_K`` (4000..25000 K), CIE 15:2004 eq. 3.3-3.4."""
    T = float(np.clip(cct_K, 4000.0, 25000.0))
    if T <= 7000.0:
        x = -4.6070e9 / T**3 + 2.9678e6 / T**2 + 0.09911e3 / T + 0.244063
    else:
        x = -2.0064e9 / T**3 + 1.9018e6 / T**2 + 0.24748e3 / T + 0.237040
    return x, -3.0 * x * x + 2.870 * x - 0.275


@functools.lru_cache(maxsize=64)
def _gains(warmth_mired: float, tint: float, space: str) -> tuple[float, float, float]:
    from rawlab.color.spaces import matrix_XYZ_D50_to_RGB

    M = matrix_XYZ_D50_to_RGB(space)

    def rgb_of(xy: tuple[float, float]) -> NDArray:
        x, y = xy
        return M @ np.array([x / y, 1.0, (1.0 - x - y) / y])

    ref = rgb_of(daylight_xy_cie15(1e6 / MIRED_D65))
    target = rgb_of(daylight_xy_cie15(1e6 / (MIRED_D65 + warmth_mired)))
    g = target / ref
    g[1] *= 2.0 ** -tint
    w = np.asarray(_luminance_w(space), dtype=np.float64)
    g /= float(g @ w)
    return float(g[0]), float(g[1]), float(g[2])


def _luminance_w(space: str) -> tuple[float, ...]:
    from rawlab.look._common import _luminance_weights

    return _luminance_weights(space)


def white_balance_bias_gains(warmth_mired: float, tint: float, primaries: Primaries | None) -> NDArray[np.float32]:
    """Per-channel gains of the bias in ``primaries`` (luminance of white kept)."""
    return np.array(_gains(float(warmth_mired), float(tint), _SPACE_OF.get(primaries, "srgb")), np.float32)  # type: ignore[arg-type]


@stage("look_white_balance_bias", params=WhiteBalanceBiasParams, consumes=Encoding.RGB, pointwise=True)
def look_white_balance_bias(frame: Frame, p: WhiteBalanceBiasParams) -> Frame:
    """White-balance bias. In and out: ``RGB``, linear, scene-referred."""
    require_transfer(frame, "look_white_balance_bias", Transfer.LINEAR)
    if p.warmth_mired == 0.0 and p.tint == 0.0:
        return frame
    g = white_balance_bias_gains(p.warmth_mired, p.tint, frame.primaries)
    data = frame.data * g  # one pass, new array (broadcast over the last axis)
    return frame.replace(data=data, clip_level=np.asarray(frame.clip_level, np.float32) * g)
