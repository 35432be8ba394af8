"""``dng_opcodes_rgb``: OpcodeList3 after demosaicing, and the WarpRectilinear kernel.

WarpRectilinear (DNG specification 1.6, 7.3.1, opcode 1) corrects radial and
tangential lens distortion, with one set of coefficients per plane (so lateral
chromatic aberration too).  For a destination pixel at ``(x, y)`` (pixel
centres at ``+0.5``), with the optical centre ``(cx, cy) = (Cx * W, Cy * H)``
and ``m`` the distance from it to the farthest image corner::

    dx = (x - cx) / m,  dy = (y - cy) / m,  r^2 = dx^2 + dy^2
    f  = kr0 + kr1 r^2 + kr2 r^4 + kr3 r^6
    dxr = f dx,                          dyr = f dy
    dxt = kt0 (2 dx dy) + kt1 (r^2 + 2 dx^2)
    dyt = kt1 (2 dx dy) + kt0 (r^2 + 2 dy^2)
    x' = cx + m (dxr + dxt),             y' = cy + m (dyr + dyt)

and the destination takes the source value at ``(x', y')`` (inverse mapping),
resampled with :func:`cv2.remap` (float32 maps, edge values replicated).

The stage also applies FixVignetteRadial (7.3.3, see
:mod:`rawlab.optics.dng_vignette`) and the list-2 kinds
(GainMap, MapPolynomial, ...) when they appear in OpcodeList3, with the same
rules as :mod:`rawlab.sensor.opcodes` (applied opcodes leave
``frame.opcodes``; those it cannot apply, e.g. WarpFisheye, stay there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.opcodes import Opcode, WarpRectilinear
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.sensor.opcodes import OpcodeNotApplicable, apply_opcode_list

__all__ = [
    "DngOpcodesRgbParams",
    "dng_opcodes_rgb",
    "warp_rectilinear_maps",
    "warp_rectilinear_source_point",
    "apply_warp_rectilinear",
    "apply_optics_opcode",
]

_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "lanczos4": cv2.INTER_LANCZOS4}


@dataclass(frozen=True)
class DngOpcodesRgbParams(Params):
    """Parameters of ``dng_opcodes_rgb`` (OpcodeList3)."""

    VERSION: ClassVar[int] = 1
    apply: bool = param(True, doc="apply OpcodeList3 (false: leave the opcodes in the frame)")
    interpolation: str = param(
        "cubic", choices=tuple(_INTERPOLATION), doc="resampling of the warps: linear, cubic or lanczos4"
    )


def _norm_and_center(height: int, width: int, center: tuple[float, float]) -> tuple[float, float, float]:
    cx, cy = float(center[0]) * width, float(center[1]) * height
    m = float(np.hypot(max(cx, width - cx), max(cy, height - cy)))
    return cx, cy, (m if m > 0 else 1.0)


def warp_rectilinear_source_point(
    x: float, y: float, *, height: int, width: int, coefficients: tuple[float, ...], center: tuple[float, float]
) -> tuple[float, float]:
    """Where WarpRectilinear samples the source for destination point ``(x, y)``.

    Coordinates are continuous (pixel ``j`` covers ``j .. j + 1``, centre
    ``j + 0.5``); ``coefficients`` is ``(kr0, kr1, kr2, kr3, kt0, kt1)``.
    A scalar twin of :func:`warp_rectilinear_maps` written from the formula.
    """
    kr0, kr1, kr2, kr3, kt0, kt1 = coefficients
    cx, cy, m = _norm_and_center(height, width, center)
    dx, dy = (x - cx) / m, (y - cy) / m
    r2 = dx * dx + dy * dy
    f = kr0 + kr1 * r2 + kr2 * r2**2 + kr3 * r2**3
    dxt = kt0 * 2 * dx * dy + kt1 * (r2 + 2 * dx * dx)
    dyt = kt1 * 2 * dx * dy + kt0 * (r2 + 2 * dy * dy)
    return cx + m * (f * dx + dxt), cy + m * (f * dy + dyt)


def warp_rectilinear_maps(
    height: int, width: int, *, coefficients: tuple[float, ...], center: tuple[float, float]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``cv2.remap`` maps (source column, source row per destination pixel) of WarpRectilinear.

    Parameters
    ----------
    height, width
        Image size in pixels.
    coefficients
        ``(kr0, kr1, kr2, kr3, kt0, kt1)`` of one plane (DNG 1.6, 7.3.1).
    center
        Optical centre ``(cx, cy)`` relative to width and height.

    Returns
    -------
    map_x, map_y
        float32 ``(height, width)`` in cv2's index coordinates (pixel centre = index).
    """
    kr0, kr1, kr2, kr3, kt0, kt1 = (float(c) for c in coefficients)
    cx, cy, m = _norm_and_center(height, width, center)
    dx = ((np.arange(width, dtype=np.float64) + 0.5 - cx) / m).astype(np.float32)[None, :]
    dy = ((np.arange(height, dtype=np.float64) + 0.5 - cy) / m).astype(np.float32)[:, None]
    r2 = dx * dx + dy * dy
    f = np.float32(kr3) * r2
    f += np.float32(kr2)
    f *= r2
    f += np.float32(kr1)
    f *= r2
    f += np.float32(kr0)
    map_x = f * dx
    map_y = f * dy
    if kt0 != 0.0 or kt1 != 0.0:
        dxdy2 = 2.0 * dx * dy
        map_x += np.float32(kt0) * dxdy2 + np.float32(kt1) * (r2 + 2.0 * dx * dx)
        map_y += np.float32(kt1) * dxdy2 + np.float32(kt0) * (r2 + 2.0 * dy * dy)
    map_x *= np.float32(m)
    map_x += np.float32(cx - 0.5)
    map_y *= np.float32(m)
    map_y += np.float32(cy - 0.5)
    return map_x, map_y


def apply_warp_rectilinear(
    data: NDArray[np.float32], op: WarpRectilinear, *, interpolation: str = "cubic"
) -> NDArray[np.float32]:
    """Resample ``data`` (float32 ``(H, W)`` or ``(H, W, P)``) with WarpRectilinear.

    One coefficient set applies to every plane; otherwise plane ``p`` uses set
    ``p``.  Returns a new float32 array of the same shape (values not clipped;
    cubic and Lanczos resampling may overshoot slightly at edges).
    """
    planes = 1 if data.ndim == 2 else data.shape[2]
    sets = op.coefficients
    if len(sets) not in (1, planes) or any(len(c) != 6 for c in sets):
        raise OpcodeNotApplicable(f"{len(sets)} coefficient sets for {planes} planes")
    if not np.all(np.isfinite(np.asarray(sets, dtype=np.float64))) or not np.all(np.isfinite(op.center)):
        raise OpcodeNotApplicable("coefficients and centre must be finite")
    h, w = data.shape[:2]
    if h >= 32767 or w >= 32767:
        raise OpcodeNotApplicable(f"{h}x{w} is too large for the resampler")
    flag = _INTERPOLATION[interpolation]
    if len(sets) == 1 or all(s == sets[0] for s in sets):
        map_x, map_y = warp_rectilinear_maps(h, w, coefficients=sets[0], center=op.center)
        out = cv2.remap(data, map_x, map_y, flag, borderMode=cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(out.reshape(data.shape), dtype=np.float32)
    out = np.empty_like(data)
    for p, coefficients in enumerate(sets):
        map_x, map_y = warp_rectilinear_maps(h, w, coefficients=coefficients, center=op.center)
        plane = np.ascontiguousarray(data[:, :, p])
        out[:, :, p] = cv2.remap(plane, map_x, map_y, flag, borderMode=cv2.BORDER_REPLICATE)
    return out


def apply_optics_opcode(frame: Frame, data: NDArray[np.float32], op: Opcode, full_scale: float,
                        *, interpolation: str = "cubic") -> Frame | None:
    """Apply a WarpRectilinear opcode (a frame with new data); ``None`` for other kinds."""
    if isinstance(op, WarpRectilinear):
        if data.ndim != 3:
            raise OpcodeNotApplicable("a warp needs demosaiced data")
        return frame.replace(data=apply_warp_rectilinear(data, op, interpolation=interpolation))
    return None


@stage("dng_opcodes_rgb", params=DngOpcodesRgbParams, consumes=Encoding.CAMERA_RGB)
def dng_opcodes_rgb(frame: Frame, p: DngOpcodesRgbParams) -> Frame:
    """Apply OpcodeList3 to demosaiced camera RGB, right after ``demosaic``.

    In and out: ``CAMERA_RGB`` ``(H, W, 3)``, linear, normalised (0..1 scale).
    Applied opcodes leave ``frame.opcodes``; those it cannot apply stay.
    """
    if not p.apply or not any(op.list_index == 3 for op in frame.opcodes):
        return frame

    def extra(f: Frame, data: NDArray[np.float32], op: Opcode, full_scale: float) -> Frame | None:
        return apply_optics_opcode(f, data, op, full_scale, interpolation=p.interpolation)

    return apply_opcode_list(frame, 3, full_scale=1.0, extra=extra).frame
