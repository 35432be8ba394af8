"""The ``crop`` stage: the DNG default crop.

DNG DefaultCropOrigin / DefaultCropSize (DNG 1.6, chapter 4) give the part of
the active area meant to be shown; readers store it in ``sensor.crop_px`` as
``(top, left, height, width)`` relative to the active area, which after the
``normalize`` stage is the array origin.  A crop that runs past the image is
clamped to it; one that misses the image entirely leaves the frame whole.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError

__all__ = ["CropParams", "crop", "clamp_crop_px", "crop_array"]


@dataclass(frozen=True)
class CropParams(Params):
    """Parameters of the ``crop`` stage."""

    VERSION: ClassVar[int] = 1
    mode: str = param("default", choices=("default", "none"), doc="default: the file's DNG default crop")


def clamp_crop_px(
    crop_px: tuple[int, int, int, int], height: int, width: int
) -> tuple[int, int, int, int] | None:
    """Clamp ``(top, left, height, width)`` to an image of ``height`` x ``width``.

    Returns ``None`` when nothing of the rectangle lies inside the image.
    """
    top, left, h, w = (int(v) for v in crop_px)
    t0, l0 = max(top, 0), max(left, 0)
    t1, l1 = min(top + h, height), min(left + w, width)
    if t1 <= t0 or l1 <= l0:
        return None
    return t0, l0, t1 - t0, l1 - l0


def crop_array(data: NDArray, *, crop_px: tuple[int, int, int, int]) -> NDArray[np.float32]:
    """``data[top:top+height, left:left+width]`` as a new C-contiguous float32 array.

    Parameters
    ----------
    data
        ``(H, W)`` or ``(H, W, C)``, any values.
    crop_px
        ``(top, left, height, width)``; clamped to the image (see
        :func:`clamp_crop_px`), the whole image when nothing is left.
    """
    rect = clamp_crop_px(crop_px, data.shape[0], data.shape[1])
    if rect is None:
        return np.ascontiguousarray(data, dtype=np.float32)
    top, left, h, w = rect
    return np.ascontiguousarray(data[top : top + h, left : left + w], dtype=np.float32)


@stage(
    "crop",
    params=CropParams,
    consumes=(Encoding.CFA, Encoding.CAMERA_RGB, Encoding.XYZ_D50, Encoding.RGB),
)
def crop(frame: Frame, p: CropParams) -> Frame:
    """Crop to the DNG default crop (``sensor.crop_px``).

    Any encoding, values unchanged.  Sets ``sensor.crop_px`` to ``None`` and,
    for a mosaic, shifts the CFA pattern to the new origin.
    """
    sensor = frame.sensor
    if p.mode == "none" or sensor.crop_px is None:
        return frame
    if sensor.active_area is not None:
        raise StageError("crop: the frame still has an active area; run the normalize stage first")
    rect = clamp_crop_px(sensor.crop_px, frame.height, frame.width)
    if rect is None:
        return frame.replace(sensor=dataclasses.replace(sensor, crop_px=None))
    top, left, h, w = rect
    data = np.ascontiguousarray(frame.data[top : top + h, left : left + w])
    cfa = sensor.cfa
    if frame.encoding is Encoding.CFA and cfa is not None:
        cfa = cfa.shifted(top, left)
    return frame.replace(data=data, sensor=dataclasses.replace(sensor, crop_px=None, cfa=cfa))
