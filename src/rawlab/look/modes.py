"""Focal-length modes: ``35mm``, ``50mm``, ``90mm`` field-of-view crops and a ``65x24`` panorama.

A 35 mm-equivalent focal length ``f_eq`` describes the field of view by the
diagonal (CIPA DC-008 / EXIF FocalLengthIn35mmFilm: the focal length giving
the same angle of view on a 36 x 24 mm frame).  Cropping the centre of the
image by ``s = f_eq / f_target`` in both directions scales the diagonal by
``s``, so the crop has the field of view of ``f_target`` — the "digital
zoom" steps of phone cameras.  A mode can only narrow the view: a target
wider than the capture is refused ("cannot widen").  ``f_eq`` comes from
:func:`rawlab.look.focal.equivalent_focal_length` (the file's
FocalLengthIn35mmFilm, or the focal length times the crop factor from the
file's focal-plane data or the lensfun camera database); when it cannot be
known the mode says so and why.

``65x24`` crops the centre to a 65:24 landscape strip (the aspect of the
Hasselblad XPan panorama: 65 x 24 mm on 35 mm film), full width when the
image is tall enough, else full height.

The ``mode_crop`` stage runs last, on the upright image (after ``orientation``);
it sets ``capture.focal_length_35mm_mm`` to the mode's value so the caption
shows it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from rawlab.core.frame import Encoding, Frame
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError
from rawlab.look.focal import equivalent_focal_length

__all__ = ["MODES", "ModeCropParams", "mode_crop", "mode_crop_box"]

#: Mode name -> 35 mm-equivalent focal length (None: an aspect crop).
MODES: dict[str, float | None] = {"35mm": 35.0, "50mm": 50.0, "90mm": 90.0, "65x24": None}
PANORAMA_ASPECT = 65.0 / 24.0


@dataclass(frozen=True)
class ModeCropParams(Params):
    """Parameters of ``mode_crop``."""

    VERSION: ClassVar[int] = 1
    mode: str = param("50mm", choices=tuple(MODES), doc="35mm, 50mm, 90mm field of view, or the 65x24 panorama")


def mode_crop_box(
    height: int, width: int, *, mode: str, focal_length_35mm_mm: float | None
) -> tuple[int, int, int, int]:
    """``(top, left, height, width)`` of the centred crop of ``mode``.

    Raises
    ------
    StageError
        The equivalent focal length is unknown, or the mode would need to widen the view.
    """
    target = MODES[mode]
    if target is None:
        h = int(round(width / PANORAMA_ASPECT))
        w = width
        if h > height:
            h, w = height, int(round(height * PANORAMA_ASPECT))
    else:
        if not focal_length_35mm_mm or not np.isfinite(focal_length_35mm_mm) or focal_length_35mm_mm <= 0:
            raise StageError(f"mode {mode}: the capture's 35 mm-equivalent focal length is unknown")
        scale = float(focal_length_35mm_mm) / target
        if scale > 1.0 + 1e-6:
            raise StageError(
                f"mode {mode}: cannot widen the field of view: the capture is {focal_length_35mm_mm:.0f} mm "
                f"equivalent, narrower than {target:g} mm; a crop can only narrow it"
            )
        h, w = max(1, int(round(height * scale))), max(1, int(round(width * scale)))
    return (height - h) // 2, (width - w) // 2, h, w


@stage("mode_crop", params=ModeCropParams, consumes=Encoding.RGB)
def mode_crop(frame: Frame, p: ModeCropParams) -> Frame:
    """Centre crop of a focal-length mode. In and out: ``RGB`` (any transfer), values unchanged."""
    target = MODES[p.mode]
    f_eq = None
    if target is not None:
        eq = equivalent_focal_length(frame.capture)
        if eq.mm is None:
            raise StageError(f"mode {p.mode}: the capture's 35 mm-equivalent focal length is unknown and "
                             f"cannot be computed: {eq.why}")
        f_eq = eq.mm
    top, left, h, w = mode_crop_box(frame.height, frame.width, mode=p.mode, focal_length_35mm_mm=f_eq)
    data = np.ascontiguousarray(frame.data[top : top + h, left : left + w])
    capture = frame.capture
    if target is not None:
        capture = dataclasses.replace(capture, focal_length_35mm_mm=target)
    return frame.replace(data=data, capture=capture)
