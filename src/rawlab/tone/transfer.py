"""The ``output_transfer`` stage: linear RGB -> transfer-encoded RGB.

``srgb`` is the IEC 61966-2-1:1999 (sRGB) encoding, also used by Display P3::

    V = 12.92 L                        for |L| <= 0.0031308
    V = 1.055 L ** (1 / 2.4) - 0.055   for  L >  0.0031308

Values above 1 follow the same curve (nothing is clipped; the encoder clips).
Negative values use the odd (sign-preserving) extension ``V(-L) = -V(L)``, as
extended-range sRGB encodings do, so out-of-gamut colours keep a continuous,
monotone code value.  ``linear`` leaves the data as it is.
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
from rawlab.errors import StageError

__all__ = [
    "OutputTransferParams",
    "output_transfer",
    "encode_srgb_iec61966",
    "encode_srgb_iec61966_reference",
]


@dataclass(frozen=True)
class OutputTransferParams(Params):
    """Parameters of the ``output_transfer`` stage."""

    VERSION: ClassVar[int] = 1
    transfer: str = param("srgb", choices=("srgb", "linear"), doc="sRGB curve (IEC 61966-2-1) or linear")


def encode_srgb_iec61966(rgb_linear: NDArray[np.float32]) -> NDArray[np.float32]:
    """Encode linear values with the IEC 61966-2-1 sRGB curve (odd extension below 0).

    Parameters
    ----------
    rgb_linear
        float32 linear values, any shape and range; 0..1 maps to 0..1.

    Returns
    -------
    numpy.ndarray
        New float32 array of encoded values (above 1 for inputs above 1,
        negative for negative inputs); NaN stays NaN.
    """
    data = np.ascontiguousarray(rgb_linear, dtype=np.float32)
    out = np.empty_like(data)
    _srgb_kernel(data.reshape(-1), out.reshape(-1), _TABLE, np.float32(_TABLE_U_MAX))
    return out


# Speed: above the knee the curve is evaluated from a table over u = sqrt(|L|)
# in [0, 2] (|L| up to 4) with linear interpolation, instead of a pow per value.
# In u the curve is 1.055 u**(5/6) - 0.055, smooth above the knee (u > 0.056),
# so the interpolation error is below h**2 / 8 * max|f''| ~ 3e-8 for h = 2/8192;
# larger values take the exact pow.  The NumPy twin below is the reference.
_TABLE_U_MAX = 2.0
_TABLE_SIZE = 8193
_TABLE = (1.055 * np.power(np.linspace(0.0, _TABLE_U_MAX, _TABLE_SIZE), 2.0 / 2.4) - 0.055).astype(np.float32)


@njit(parallel=True, cache=True)
def _srgb_kernel(x, out, table, u_max):  # pragma: no cover - compiled
    knee = np.float32(0.0031308)
    slope = np.float32(12.92)
    a = np.float32(1.055)
    b = np.float32(0.055)
    gamma = np.float32(1.0 / 2.4)
    n = table.size - 1
    scale = np.float32(n / u_max)
    for i in prange(x.size):
        v = x[i]
        m = abs(v)
        if m <= knee:
            e = m * slope
        else:
            f = math.sqrt(m) * scale
            if f < n:
                j = int(f)
                t = f - np.float32(j)
                e = table[j] + t * (table[j + 1] - table[j])
            else:
                e = a * m**gamma - b
        out[i] = e if v >= 0 else -e


def encode_srgb_iec61966_reference(rgb_linear: NDArray) -> NDArray[np.float32]:
    """NumPy (float64) twin of :func:`encode_srgb_iec61966`."""
    x = np.asarray(rgb_linear, dtype=np.float64)
    m = np.abs(x)
    e = np.where(m <= 0.0031308, 12.92 * m, 1.055 * np.power(m, 1 / 2.4) - 0.055)
    return np.where(x < 0, -e, e).astype(np.float32)


@stage("output_transfer", params=OutputTransferParams, consumes=Encoding.RGB, pointwise=True)
def output_transfer(frame: Frame, p: OutputTransferParams) -> Frame:
    """Apply the output transfer curve to linear display-referred RGB.

    In: ``RGB``, linear.  Out: ``RGB`` with ``transfer`` set (``SRGB``), or
    unchanged for ``linear``; ``clip_level`` is encoded the same way.
    """
    if p.transfer == "linear":
        return frame
    if frame.transfer is not Transfer.LINEAR:
        raise StageError(f"output_transfer: expects linear RGB, got transfer {frame.transfer.value}")
    data = encode_srgb_iec61966(frame.data)
    clip = encode_srgb_iec61966_reference(np.asarray(frame.clip_level, dtype=np.float32))
    return frame.replace(data=data, transfer=Transfer.SRGB, clip_level=clip)
