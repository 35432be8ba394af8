"""The ``orientation`` stage: turn the pixels upright per the EXIF Orientation tag.

EXIF 2.32 / TIFF 6.0 Orientation (tag 274) says where row 0 and column 0 of
the stored image belong on the display.  To show the image upright:

====  =====================================  ====================================
tag   stored image                           applied here
====  =====================================  ====================================
1     upright                                nothing
2     mirrored left-right                    flip left-right
3     rotated 180 degrees                    rotate 180
4     mirrored top-bottom                    flip top-bottom
5     mirrored about the main diagonal       transpose
6     rotated 90 degrees counter-clockwise   rotate 90 clockwise
7     mirrored about the anti-diagonal       transverse (transpose + rotate 180)
8     rotated 90 degrees clockwise           rotate 90 counter-clockwise
====  =====================================  ====================================

After the stage the pixels are upright and ``capture.orientation`` is 1.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern
from rawlab.core.params import Params, param
from rawlab.core.stage import stage

__all__ = ["OrientationParams", "orientation", "orient_exif", "orient_point"]


@dataclass(frozen=True)
class OrientationParams(Params):
    """Parameters of the ``orientation`` stage."""

    VERSION: ClassVar[int] = 1
    apply: bool = param(True, doc="rotate/flip the pixels upright and set the orientation to 1")


def orient_exif(data: NDArray, *, orientation: int) -> NDArray[np.float32]:
    """Rotate/flip ``data`` so that an image stored with EXIF ``orientation`` is upright.

    Parameters
    ----------
    data
        ``(H, W)`` or ``(H, W, C)`` float32, any values.
    orientation
        EXIF Orientation 1..8 (other values are treated as 1).

    Returns
    -------
    numpy.ndarray
        New C-contiguous float32 array; ``(W, H, ...)`` for orientations 5..8.
    """
    src = np.ascontiguousarray(data, dtype=np.float32)
    o = int(orientation)
    if o == 2:
        out = cv2.flip(src, 1)
    elif o == 3:
        out = cv2.flip(src, -1)
    elif o == 4:
        out = cv2.flip(src, 0)
    elif o == 5:
        out = cv2.transpose(src)
    elif o == 6:
        out = cv2.rotate(src, cv2.ROTATE_90_CLOCKWISE)
    elif o == 7:
        out = cv2.flip(cv2.transpose(src), -1)
    elif o == 8:
        out = cv2.rotate(src, cv2.ROTATE_90_COUNTERCLOCKWISE)
    else:
        return src.copy()
    return np.ascontiguousarray(out.reshape(out.shape[:2] + src.shape[2:]))


def orient_point(y: int, x: int, height: int, width: int, orientation: int) -> tuple[int, int]:
    """Where stored pixel ``(y, x)`` of a ``height`` x ``width`` image lands after :func:`orient_exif`."""
    o = int(orientation)
    if o == 2:
        return y, width - 1 - x
    if o == 3:
        return height - 1 - y, width - 1 - x
    if o == 4:
        return height - 1 - y, x
    if o == 5:
        return x, y
    if o == 6:
        return x, height - 1 - y
    if o == 7:
        return width - 1 - x, height - 1 - y
    if o == 8:
        return width - 1 - x, y
    return y, x


def _oriented_cfa(cfa: CfaPattern, height: int, width: int, o: int) -> CfaPattern:
    """The CFA pattern at the origin of the oriented mosaic."""
    ry, rx = cfa.shape
    if o in (5, 6, 7, 8):
        ry, rx = rx, ry
    new = [[0] * rx for _ in range(ry)]
    # The pattern repeats, so the source of each cell of the output's top-left
    # repeat block, taken modulo the input repeat, gives its colour (also for
    # images smaller than one repeat).
    for i in range(ry):
        for j in range(rx):
            y, x = _source_of(i, j, height, width, o)
            new[i][j] = cfa.pattern[y % cfa.shape[0]][x % cfa.shape[1]]
    return CfaPattern(tuple(tuple(row) for row in new))


def _source_of(i: int, j: int, height: int, width: int, o: int) -> tuple[int, int]:
    """Stored pixel that lands on output pixel ``(i, j)`` (inverse of :func:`orient_point`)."""
    if o == 2:
        return i, width - 1 - j
    if o == 3:
        return height - 1 - i, width - 1 - j
    if o == 4:
        return height - 1 - i, j
    if o == 5:
        return j, i
    if o == 6:
        return height - 1 - j, i
    if o == 7:
        return height - 1 - j, width - 1 - i
    if o == 8:
        return j, width - 1 - i
    return i, j


@stage(
    "orientation",
    params=OrientationParams,
    consumes=(Encoding.CFA, Encoding.CAMERA_RGB, Encoding.XYZ_D50, Encoding.RGB),
)
def orientation(frame: Frame, p: OrientationParams) -> Frame:
    """Turn the pixels upright per ``capture.orientation`` and set it to 1.

    Any encoding, values unchanged.  For a mosaic the CFA pattern follows the
    pixels; a pending default crop (``sensor.crop_px``) is moved with them.
    """
    o = frame.capture.orientation
    if not p.apply or o == 1:
        return frame
    h, w = frame.height, frame.width
    data = orient_exif(frame.data, orientation=o)
    sensor = frame.sensor
    changes = {}
    if frame.encoding is Encoding.CFA and sensor.cfa is not None:
        changes["cfa"] = _oriented_cfa(sensor.cfa, h, w, o)
    if sensor.crop_px is not None:
        top, left, ch, cw = sensor.crop_px
        corners = [orient_point(y, x, h, w, o) for y in (top, top + ch - 1) for x in (left, left + cw - 1)]
        ys, xs = [c[0] for c in corners], [c[1] for c in corners]
        changes["crop_px"] = (min(ys), min(xs), max(ys) - min(ys) + 1, max(xs) - min(xs) + 1)
    if changes:
        sensor = dataclasses.replace(sensor, **changes)
    capture = dataclasses.replace(frame.capture, orientation=1)
    return frame.replace(data=data, sensor=sensor, capture=capture)
