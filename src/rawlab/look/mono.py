"""``look_mono``: monochrome by a channel mixer with a colour filter, and its own contrast.

The grey value is a weighted sum of the linear channels,
``m = (f * w) . RGB / sum(f * w)``, where ``w`` is the channel mixer (default:
the luminance weights of the working primaries, i.e. CIE Y) and ``f`` the
transmittance of a classic black-and-white contrast filter in each primary's
band.  The filter values are coarse band averages that reproduce the filters'
familiar effect (yellow darkens a blue sky a little, orange more, red much;
green lightens foliage and darkens skin; blue the reverse), in the tradition of
Kodak Wratten 8 / 21 / 25 / 11 / 47 — not measured spectra.  Normalising by
``sum(f * w)`` keeps white at 1.

The grey then goes through the contrast step of :mod:`rawlab.look.tonecurve`
(``contrast`` about the pivot, with a linear toe), and is written to all three
channels: the output has no chroma at all.  Linear scene-referred in and out.
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
from rawlab.look._common import MIDDLE_GREY, luminance_weights, require_transfer, rows3

__all__ = ["MONO_FILTERS", "MonoParams", "look_mono", "mono_mix", "mono_mix_reference", "mono_weights"]

#: Band-average transmittance (R, G, B) of black-and-white contrast filters (see the module docstring).
MONO_FILTERS: dict[str, tuple[float, float, float]] = {
    "none": (1.0, 1.0, 1.0),
    "yellow": (1.0, 0.95, 0.35),
    "orange": (1.0, 0.7, 0.12),
    "red": (1.0, 0.3, 0.05),
    "green": (0.45, 1.0, 0.4),
    "blue": (0.3, 0.55, 1.0),
}


@dataclass(frozen=True)
class MonoParams(Params):
    """Parameters of ``look_mono``."""

    VERSION: ClassVar[int] = 1
    mixer: tuple[float, float, float] = param((0.0, 0.0, 0.0), min=-2.0, max=2.0,
                                              doc="R, G, B weights; all 0: the primaries' luminance weights")
    filter: str = param("none", choices=tuple(MONO_FILTERS), doc="black-and-white contrast filter")
    contrast: float = param(1.0, min=0.3, max=3.0, doc="log-log slope about the pivot (1 = neutral)")
    pivot: float = param(MIDDLE_GREY, min=0.01, max=1.0, doc="linear value the contrast turns about")
    toe: float = param(0.01, min=0.0001, max=0.2, doc="length of the linear toe")


def mono_weights(p: MonoParams, luminance_weights_rgb: NDArray) -> NDArray[np.float64]:
    """Normalised mixer weights (sum 1) including the filter."""
    w = np.asarray(p.mixer, dtype=np.float64)
    if not np.any(w):
        w = np.asarray(luminance_weights_rgb, dtype=np.float64)
    w = w * np.asarray(MONO_FILTERS[p.filter])
    total = float(w.sum())
    if abs(total) < 1e-6:
        from rawlab.errors import InvalidParams

        raise InvalidParams("MonoParams.mixer: the weights (times the filter) sum to 0; white would be black")
    return w / total


def mono_mix(
    rgb_linear: NDArray[np.float32], *, weights: NDArray, contrast: float, pivot: float, toe: float
) -> NDArray[np.float32]:
    """Grey ``m = weights . RGB`` with the contrast step, broadcast to 3 channels.

    ``rgb_linear``: ``(H, W, 3)`` float32 linear; returns a new ``(H, W, 3)``
    float32 array with ``R = G = B``.
    """
    src = rows3(rgb_linear)
    out = np.empty_like(src)
    w = np.asarray(weights, dtype=np.float32)
    norm = (pivot * pivot + toe * toe) ** 0.5
    _mono_kernel(src, out, w, float(contrast - 1.0), float(toe * toe), float(1.0 / norm))
    return out.reshape(np.shape(rgb_linear))


@njit(parallel=True, cache=True)
def _mono_kernel(src, out, w, c1, toe2, inv_norm):  # pragma: no cover - compiled
    for i in prange(src.shape[0]):
        m = np.float64(w[0] * src[i, 0] + w[1] * src[i, 1] + w[2] * src[i, 2])
        if c1 != 0.0:
            m = m * (np.sqrt(m * m + toe2) * inv_norm) ** c1
        v = np.float32(m)
        out[i, 0] = v
        out[i, 1] = v
        out[i, 2] = v


def mono_mix_reference(rgb_linear: NDArray, *, weights: NDArray, contrast: float, pivot: float, toe: float):
    """NumPy (float64) twin of :func:`mono_mix`."""
    m = np.asarray(rgb_linear, np.float64) @ np.asarray(weights, np.float64)
    m = m * (np.sqrt(m * m + toe * toe) / np.sqrt(pivot * pivot + toe * toe)) ** (contrast - 1.0)
    return np.repeat(m[..., None], 3, axis=-1).astype(np.float32)


@stage("look_mono", params=MonoParams, consumes=Encoding.RGB, pointwise=True)
def look_mono(frame: Frame, p: MonoParams) -> Frame:
    """Monochrome conversion. In: ``RGB``, linear, scene-referred. Out: same, with R = G = B."""
    require_transfer(frame, "look_mono", Transfer.LINEAR)
    w = mono_weights(p, luminance_weights(frame.primaries))
    data = mono_mix(frame.data, weights=w, contrast=p.contrast, pivot=p.pivot, toe=p.toe)
    clip = float(np.min(frame.clip_level))
    return frame.replace(data=data, clip_level=np.full(3, clip, np.float32))
