"""``look_grain``: film grain, luminance-dependent and sized to the image.

The grain is a seeded field of Gaussian white noise drawn on a grid
``grain_size`` times coarser than the image and resized to it (bicubic), so
its grains are about ``grain_size`` pixels wide whatever the image size, with
``grain_size = size_per_mille * min(H, W) / 1000``; the field is scaled to unit
standard deviation.  It is added to all channels alike (luminance grain: a
grey stays grey), weighted by ``4 t (1 - t)``, ``t`` the pixel's encoded
luminance clipped to 0..1 — strongest in the mid-tones and zero at black and
white, as the density-dependent grain of film (granularity peaks at mid
densities; T. H. James, *The Theory of the Photographic Process*, 4th ed., ch. 21)::

    out = v + amount * 4 t (1 - t) * n(x, y)

Works on display-encoded values (sRGB transfer), after ``output_transfer``,
where equal steps are about equally visible.  Deterministic: the same seed and
image size give the same grain.
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

__all__ = ["GrainParams", "look_grain", "grain_field", "add_grain", "add_grain_reference"]


@dataclass(frozen=True)
class GrainParams(Params):
    """Parameters of ``look_grain``."""

    VERSION: ClassVar[int] = 1
    amount: float = param(0.03, min=0.0, max=0.2, doc="grain standard deviation at mid-grey (encoded units)")
    size_per_mille: float = param(0.5, min=0.05, max=10.0, doc="grain size in thousandths of the short side")
    seed: int = param(0, min=0, max=2**31 - 1, doc="noise seed")


def grain_field(height: int, width: int, *, size_px: float, seed: int) -> NDArray[np.float32]:
    """Unit-variance grain of about ``size_px`` pixels, ``(height, width)`` float32."""
    import cv2

    rng = np.random.default_rng([int(seed), int(height), int(width)])
    s = max(float(size_px), 1.0)
    gh, gw = max(2, int(np.ceil(height / s)) + 1), max(2, int(np.ceil(width / s)) + 1)
    coarse = rng.standard_normal((gh, gw), dtype=np.float32)
    if (gh, gw) == (height, width):
        field = coarse
    else:
        field = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    std = float(field[:: max(1, height // 512), :: max(1, width // 512)].std())
    field *= np.float32(1.0 / max(std, 1e-6))
    return field


def add_grain(
    rgb_encoded: NDArray[np.float32], grain: NDArray[np.float32], *, amount: float, luminance_weights_rgb: NDArray
) -> NDArray[np.float32]:
    """``v + amount * 4 t (1 - t) * grain`` per pixel (see the module docstring)."""
    src = rows3(rgb_encoded)
    out = np.empty_like(src)
    w = np.asarray(luminance_weights_rgb, dtype=np.float32)
    _grain_kernel(src, np.ascontiguousarray(grain, np.float32).reshape(-1), out, np.float32(amount), w)
    return out.reshape(np.shape(rgb_encoded))


@njit(parallel=True, cache=True)
def _grain_kernel(src, n, out, amount, w):  # pragma: no cover - compiled
    for i in prange(src.shape[0]):
        t = w[0] * src[i, 0] + w[1] * src[i, 1] + w[2] * src[i, 2]
        t = min(np.float32(1.0), max(np.float32(0.0), t))
        d = amount * np.float32(4.0) * t * (np.float32(1.0) - t) * n[i]
        out[i, 0] = src[i, 0] + d
        out[i, 1] = src[i, 1] + d
        out[i, 2] = src[i, 2] + d


def add_grain_reference(rgb_encoded: NDArray, grain: NDArray, *, amount: float, luminance_weights_rgb: NDArray):
    """NumPy (float64) twin of :func:`add_grain`."""
    x = np.asarray(rgb_encoded, dtype=np.float64)
    t = np.clip(x @ np.asarray(luminance_weights_rgb, np.float64), 0.0, 1.0)
    return (x + (amount * 4.0 * t * (1.0 - t) * np.asarray(grain, np.float64))[..., None]).astype(np.float32)


@stage("look_grain", params=GrainParams, consumes=Encoding.RGB)
def look_grain(frame: Frame, p: GrainParams) -> Frame:
    """Film grain. In and out: ``RGB``, sRGB-encoded (display-referred)."""
    require_transfer(frame, "look_grain", Transfer.SRGB)
    if p.amount == 0.0:
        return frame
    h, w = frame.height, frame.width
    field = grain_field(h, w, size_px=p.size_per_mille * min(h, w) / 1000.0, seed=p.seed)
    data = add_grain(frame.data, field, amount=p.amount, luminance_weights_rgb=luminance_weights(frame.primaries))
    return frame.replace(data=data)
