"""The ``filmic`` stage: a neutral tone curve with a soft highlight shoulder.

Identity in the shadows and mid-tones, an exponential shoulder above
``shoulder_start`` that reaches 1 at ``white_point`` and keeps rising slowly
beyond it.  Applied per channel to linear scene-referred RGB; the result is
linear, display-referred (1 = display white).

The curve, exactly (a separate sample generator implements the inverse of this
exact formula independently, and the end-to-end colour test depends on it),
with ``t = shoulder_start`` and ``w = white_point``::

    y = x                                                            for x <= t
    y = t + (1 - t) * (1 - exp(-k (x - t))) / (1 - exp(-k (w - t)))  for x >  t

where ``k > 0`` is the unique solution of
``(1 - t) * k / (1 - exp(-k (w - t))) = 1``, which makes the slope at ``t``
equal to 1 (the curve is C1).  Hence ``y(w) = 1`` exactly, the curve is
strictly increasing, and above ``w`` it keeps rising towards
``t + 1/k`` (> 1): nothing is clipped here, the encoder clips.  Negative
values pass unchanged.  Requires ``0 < t < 1 < w``.

Because ``(1 - t) / (1 - exp(-k (w - t))) = 1/k``, the shoulder is evaluated
as ``y = t + (1 - exp(-k (x - t))) / k``; its inverse is
``x = t - ln(1 - k (y - t)) / k`` for ``t < y < t + 1/k``.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import InvalidParams, StageError

__all__ = ["FilmicParams", "filmic", "filmic_shoulder_k", "tone_filmic", "tone_filmic_reference"]


@dataclass(frozen=True)
class FilmicParams(Params):
    """Parameters of the ``filmic`` stage (``0 < shoulder_start < 1 < white_point``)."""

    VERSION: ClassVar[int] = 1
    shoulder_start: float = param(
        0.6, min=0.01, max=0.99, doc="linear value where the highlight shoulder starts (identity below)"
    )
    white_point: float = param(
        4.0, min=1.01, max=1000.0, doc="linear scene value mapped to display white 1.0"
    )


@functools.lru_cache(maxsize=256)
def filmic_shoulder_k(shoulder_start: float, white_point: float) -> float:
    """The shoulder rate ``k`` of the curve (see the module docstring).

    Solves ``(1 - t) k / (1 - exp(-k (w - t))) = 1`` for ``k > 0`` with Brent's
    method; the left side rises from ``(1 - t)/(w - t) < 1`` (k -> 0) to
    infinity, so the root is unique.
    """
    from scipy.optimize import brentq

    t, w = float(shoulder_start), float(white_point)
    if not (0.0 < t < 1.0 < w):
        raise InvalidParams(f"filmic: needs 0 < shoulder_start < 1 < white_point, got {t} and {w}")
    span = w - t

    def f(k: float) -> float:
        return (1.0 - t) * k / -math.expm1(-k * span) - 1.0

    lo = 1e-12
    hi = 2.0 / (1.0 - t) + 1.0  # f(hi) >= 2 / (1 - exp(.)) - 1 > 0
    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))


def tone_filmic(
    rgb: NDArray[np.float32], *, shoulder_start: float, white_point: float
) -> NDArray[np.float32]:
    """Apply the filmic curve per value (see the module docstring for the formula).

    Parameters
    ----------
    rgb
        Linear scene-referred float32 data, any shape; negative values and
        values <= ``shoulder_start`` pass unchanged, NaN stays NaN.
    shoulder_start, white_point
        ``0 < shoulder_start < 1 < white_point``.

    Returns
    -------
    numpy.ndarray
        New float32 array, linear display-referred: ``white_point`` -> 1.0,
        larger values slightly above 1 (not clipped).
    """
    k = filmic_shoulder_k(float(shoulder_start), float(white_point))
    data = np.ascontiguousarray(rgb, dtype=np.float32)
    out = np.empty_like(data)
    _filmic_kernel(data.reshape(-1), np.float32(shoulder_start), k, out.reshape(-1))
    return out


@njit(parallel=True, cache=True)
def _filmic_kernel(x, t, k, out):  # pragma: no cover - compiled
    # float32 throughout (expf): about 1e-7 relative error, twice as fast as float64
    k32 = np.float32(k)
    inv_k = np.float32(1.0 / k)
    one = np.float32(1.0)
    for i in prange(x.size):
        v = x[i]
        if v <= t:
            out[i] = v
        else:
            out[i] = t + (one - math.exp(-k32 * (v - t))) * inv_k


def tone_filmic_reference(
    rgb: NDArray[np.float32], *, shoulder_start: float, white_point: float
) -> NDArray[np.float32]:
    """NumPy twin of :func:`tone_filmic`, written with the long form of the formula."""
    t, w = float(shoulder_start), float(white_point)
    k = filmic_shoulder_k(t, w)
    x = np.asarray(rgb, dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore"):
        shoulder = t + (1 - t) * (1 - np.exp(-k * (x - t))) / (1 - np.exp(-k * (w - t)))
    return np.where(x > t, shoulder, x).astype(np.float32)


@stage("filmic", params=FilmicParams, consumes=Encoding.RGB, pointwise=True)
def filmic(frame: Frame, p: FilmicParams) -> Frame:
    """Tone-map linear scene-referred RGB to linear display-referred RGB.

    In: ``RGB``, linear.  Out: ``RGB``, linear, display-referred (1 = white);
    ``clip_level`` goes through the same curve.
    """
    if frame.transfer is not Transfer.LINEAR:
        raise StageError(f"filmic: expects linear RGB, got transfer {frame.transfer.value}")
    t, w = p.shoulder_start, p.white_point
    if not (0.0 < t < 1.0 < w):
        raise InvalidParams(f"filmic: needs 0 < shoulder_start < 1 < white_point, got {t} and {w}")
    data = tone_filmic(frame.data, shoulder_start=t, white_point=w)
    clip = tone_filmic_reference(
        np.asarray(frame.clip_level, dtype=np.float32), shoulder_start=t, white_point=w
    )
    return frame.replace(data=data, clip_level=clip)
