"""``look_tone_curve``: the look's filmic tone curve (contrast, toe, black point, shoulder).

A look that carries this stage replaces the recipe's ``filmic`` step (see
:mod:`rawlab.look.apply`): it takes linear scene-referred RGB and gives linear
display-referred RGB, per channel, in three steps::

    0. exposure: x *= 2 ** exposure_ev;
    1. contrast about the pivot p with a linear toe of length s (c > 0):
           y1 = x * (sqrt(x^2 + s^2) / sqrt(p^2 + s^2)) ** (c - 1)
       so that y1(p) = p exactly, y1 ~ p (x/p)^c well above the toe (a
       straight line of slope c in log-log, the photographic "gamma" of
       ISO 5-1 / Hurter & Driffield density curves), and y1 ~ x * const near 0
       (the toe: a finite slope instead of a crushed or infinite one).
       Its derivative is proportional to (c x^2 + s^2) > 0: strictly increasing.
    2. black point b (linear scene units): y2 = (y1 - b) / (1 - b)
       (values below b go negative; nothing is clipped here).
    3. the highlight shoulder of :mod:`rawlab.tone.filmic` with the look's
       ``shoulder_start`` and ``white_point`` (identity below shoulder_start,
       C1, reaches 1 at white_point).

Negative inputs are mapped by the odd extension of step 1.  With
``exposure_ev = 0``, ``contrast = 1``, ``black_point = 0`` and the default shoulder the curve is
exactly the default ``filmic`` stage.
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
from rawlab.look._common import MIDDLE_GREY, require_transfer
from rawlab.tone.filmic import filmic_shoulder_k

__all__ = ["ToneCurveParams", "look_tone_curve", "tone_curve_look", "tone_curve_look_reference"]


@dataclass(frozen=True)
class ToneCurveParams(Params):
    """Parameters of ``look_tone_curve`` (linear scene-referred in, linear display-referred out)."""

    VERSION: ClassVar[int] = 1
    exposure_ev: float = param(0.0, min=-2.0, max=2.0, unit="EV", doc="brightness before the curve")
    contrast: float = param(1.0, min=0.3, max=3.0, doc="log-log slope about the pivot (1 = neutral)")
    pivot: float = param(MIDDLE_GREY, min=0.01, max=1.0, doc="linear scene value the contrast turns about")
    toe: float = param(0.01, min=0.0001, max=0.2, doc="length of the linear toe (linear scene units)")
    black_point: float = param(0.0, min=-0.05, max=0.05, doc="linear value mapped to black (crush > 0, lift < 0)")
    shoulder_start: float = param(0.6, min=0.01, max=0.99, doc="display value where the highlight shoulder starts")
    white_point: float = param(4.0, min=1.01, max=1000.0, doc="value mapped to display white 1.0")


def tone_curve_look(
    rgb: NDArray[np.float32],
    *,
    exposure_ev: float = 0.0,
    contrast: float,
    pivot: float,
    toe: float,
    black_point: float,
    shoulder_start: float,
    white_point: float,
) -> NDArray[np.float32]:
    """Apply the look tone curve per value (see the module docstring).

    Parameters
    ----------
    rgb
        float32 linear scene-referred values, any shape and range; NaN stays NaN.
    exposure_ev, contrast, pivot, toe, black_point, shoulder_start, white_point
        As in :class:`ToneCurveParams`.

    Returns
    -------
    numpy.ndarray
        New float32 array, linear display-referred (``white_point`` -> 1).
    """
    k = filmic_shoulder_k(float(shoulder_start), float(white_point))
    data = np.ascontiguousarray(rgb, dtype=np.float32)
    out = np.empty_like(data)
    norm = (pivot * pivot + toe * toe) ** 0.5
    _tone_kernel(
        data.reshape(-1), out.reshape(-1), float(2.0**exposure_ev), float(contrast - 1.0), float(toe * toe), float(1.0 / norm),
        float(black_point), float(1.0 / (1.0 - black_point)), float(shoulder_start), float(k),
    )
    return out


@njit(parallel=True, cache=True, fastmath=False)
def _tone_kernel(x, out, gain, c1, toe2, inv_norm, black, inv_range, t, k):  # pragma: no cover - compiled
    inv_k = 1.0 / k
    for i in prange(x.size):
        v = np.float64(x[i]) * gain
        y = v * (math.sqrt(v * v + toe2) * inv_norm) ** c1
        y = (y - black) * inv_range
        if y > t:
            y = t + (1.0 - math.exp(-k * (y - t))) * inv_k
        out[i] = np.float32(y)


def tone_curve_look_reference(
    rgb: NDArray, *, exposure_ev: float = 0.0, contrast: float, pivot: float, toe: float, black_point: float,
    shoulder_start: float, white_point: float,
) -> NDArray[np.float32]:
    """NumPy (float64) twin of :func:`tone_curve_look`, shoulder in its long form."""
    x = np.asarray(rgb, dtype=np.float64) * 2.0**exposure_ev
    y = x * (np.sqrt(x * x + toe * toe) / np.sqrt(pivot * pivot + toe * toe)) ** (contrast - 1.0)
    y = (y - black_point) / (1.0 - black_point)
    t, w = float(shoulder_start), float(white_point)
    k = filmic_shoulder_k(t, w)
    with np.errstate(over="ignore", invalid="ignore"):
        shoulder = t + (1 - t) * (1 - np.exp(-k * (y - t))) / (1 - np.exp(-k * (w - t)))
    return np.where(y > t, shoulder, y).astype(np.float32)


@stage("look_tone_curve", params=ToneCurveParams, consumes=Encoding.RGB, pointwise=True)
def look_tone_curve(frame: Frame, p: ToneCurveParams) -> Frame:
    """Look tone curve: linear scene-referred RGB -> linear display-referred RGB.

    In: ``RGB``, linear, scene-referred.  Out: ``RGB``, linear, display-referred
    (1 = white); ``clip_level`` goes through the same curve.  Replaces ``filmic``.
    """
    require_transfer(frame, "look_tone_curve", Transfer.LINEAR)
    kw = dict(exposure_ev=p.exposure_ev, contrast=p.contrast, pivot=p.pivot, toe=p.toe, black_point=p.black_point,
              shoulder_start=p.shoulder_start, white_point=p.white_point)
    data = tone_curve_look(frame.data, **kw)
    clip_in = np.asarray(frame.clip_level, dtype=np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        clip = np.where(np.isfinite(clip_in), tone_curve_look_reference(np.nan_to_num(clip_in, posinf=0.0), **kw),
                        clip_in).astype(np.float32)
    return frame.replace(data=data, clip_level=clip)
