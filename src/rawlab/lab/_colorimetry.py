"""Small colorimetry helpers shared by the lab measurements (private).

Everything here works in float64 (measurements are small: patch means, crops)
and follows IEC 61966-2-1 (sRGB transfer) and CIE 15:2004 (XYZ -> L*a*b*,
L*u*v*).  RGB -> XYZ matrices and the Bradford adaptation come from
colour-science, so the numbers are shared with the reference library.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import InvalidParams

_COLOUR_SPACE_NAMES = {
    "srgb": "sRGB",
    "display_p3": "Display P3",
    "rec2020": "ITU-R BT.2020",
    "prophoto": "ProPhoto RGB",
}

#: CIE D50 white point, XYZ with Y = 1 (ICC profile connection space, CIE 15:2004).
XYZ_D50 = np.array([0.96422, 1.0, 0.82521])
#: CIE D65 white point, XYZ with Y = 1 (CIE 15:2004).
XYZ_D65 = np.array([0.95047, 1.0, 1.08883])


def check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    """Raise :class:`InvalidParams` when ``value`` is not one of ``choices``."""
    if value not in choices:
        raise InvalidParams(f"{name} must be one of {', '.join(choices)}, got {value!r}")


def srgb_decode(values: ArrayLike) -> NDArray[np.float64]:
    """sRGB encoded (0..1) -> linear (0..1), IEC 61966-2-1 piecewise curve; values outside 0..1 mirror."""
    v = np.asarray(values, dtype=np.float64)
    a = np.abs(v)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.copysign(lin, v)


def to_linear(rgb: ArrayLike, transfer: str) -> NDArray[np.float64]:
    """Return linear RGB (float64) from ``rgb`` encoded with ``transfer`` ("linear" or "srgb")."""
    check_choice("transfer", transfer, ("linear", "srgb"))
    return srgb_decode(rgb) if transfer == "srgb" else np.asarray(rgb, dtype=np.float64)


def M_rgb_to_XYZ_D50(primaries: str) -> NDArray[np.float64]:
    """3x3 matrix linear RGB (``primaries``, white = its own white) -> XYZ under D50 (Bradford adapted)."""
    import colour

    check_choice("primaries", primaries, tuple(_COLOUR_SPACE_NAMES))
    space = colour.RGB_COLOURSPACES[_COLOUR_SPACE_NAMES[primaries]]
    M = np.asarray(space.matrix_RGB_to_XYZ, dtype=np.float64)
    white_xy = np.asarray(space.whitepoint, dtype=np.float64)
    white_XYZ = np.array([white_xy[0] / white_xy[1], 1.0, (1 - white_xy.sum()) / white_xy[1]])
    if np.allclose(white_XYZ, XYZ_D50, atol=2e-3):
        return M
    M_cat = colour.adaptation.matrix_chromatic_adaptation_VonKries(white_XYZ, XYZ_D50, transform="Bradford")
    return np.asarray(M_cat, dtype=np.float64) @ M


def XYZ_to_Lab(XYZ: ArrayLike, white_XYZ: ArrayLike = XYZ_D50) -> NDArray[np.float64]:
    """CIE 1976 L*a*b* (CIE 15:2004) from XYZ (Y of the white = 1); last axis is XYZ."""
    t = np.asarray(XYZ, dtype=np.float64) / np.asarray(white_XYZ, dtype=np.float64)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.where(t > eps, np.cbrt(t), (kappa * t + 16.0) / 116.0)
    L = 116.0 * f[..., 1] - 16.0
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.stack([L, a, b], axis=-1)


def Lab_to_XYZ(Lab: ArrayLike, white_XYZ: ArrayLike = XYZ_D50) -> NDArray[np.float64]:
    """Inverse of :func:`XYZ_to_Lab`."""
    Lab = np.asarray(Lab, dtype=np.float64)
    fy = (Lab[..., 0] + 16.0) / 116.0
    fx = fy + Lab[..., 1] / 500.0
    fz = fy - Lab[..., 2] / 200.0
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.stack([fx, fy, fz], axis=-1)
    t = np.where(f**3 > eps, f**3, (116.0 * f - 16.0) / kappa)
    return t * np.asarray(white_XYZ, dtype=np.float64)


def XYZ_to_Luv(XYZ: ArrayLike, white_XYZ: ArrayLike = XYZ_D50) -> NDArray[np.float64]:
    """CIE 1976 L*u*v* (CIE 15:2004) from XYZ (Y of the white = 1); last axis is XYZ."""
    XYZ = np.asarray(XYZ, dtype=np.float64)
    w = np.asarray(white_XYZ, dtype=np.float64)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    yr = XYZ[..., 1] / w[1]
    L = np.where(yr > eps, 116.0 * np.cbrt(yr) - 16.0, kappa * yr)
    den = XYZ[..., 0] + 15.0 * XYZ[..., 1] + 3.0 * XYZ[..., 2]
    den_w = w[0] + 15.0 * w[1] + 3.0 * w[2]
    with np.errstate(invalid="ignore", divide="ignore"):
        u_p = np.where(den > 0, 4.0 * XYZ[..., 0] / den, 4.0 * w[0] / den_w)
        v_p = np.where(den > 0, 9.0 * XYZ[..., 1] / den, 9.0 * w[1] / den_w)
    u = 13.0 * L * (u_p - 4.0 * w[0] / den_w)
    v = 13.0 * L * (v_p - 9.0 * w[1] / den_w)
    return np.stack([L, u, v], axis=-1)
