"""The ``highlights`` stage: what the develop does with clipped sensor values.

After white balance each channel's clip level is the sensor's white times its
gain: under daylight the red and blue gains are about 2 and 1.5, so where the
sensor clipped (a bright sky, a specular highlight, an overexposed white), the
green value stops at 1 while red and blue go on to their own, higher clip
levels.  Left alone, a clipped white renders magenta-pink; the colour
matrices and the tone curve then turn that into a visible cast (on the
simulator's ColorChecker at +3 EV the white patch developed to sRGB
(0.99, 0.87, 0.97)).

``mode = "clip"`` (the default) clips every channel at the lowest
white-balanced clip level, so a value no channel can exceed is white: a
clipped white renders white.  It is the "clip" highlight mode of dcraw
(``-H 0``) and LibRaw (``highlight = 0``, rawpy's default), and what
darktable's highlight module does in its clip mode.  Colours brighter than
that level in one channel (a lamp, a red neon) lose the part above it; a
reconstruction of that part from the unclipped channels is not done here.
``mode = "none"`` keeps every value (for measurements on raw data that need
the channels' own ranges).

``clip_level`` becomes the level clipped to, the same for every channel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.params import Params, param
from rawlab.core.stage import stage

__all__ = ["HighlightsParams", "highlights", "clip_highlights"]


@dataclass(frozen=True)
class HighlightsParams(Params):
    """Parameters of the ``highlights`` stage."""

    VERSION: ClassVar[int] = 1
    mode: str = param("clip", choices=("clip", "none"),
                      doc="clip: every channel at the lowest white-balanced clip level (clipped whites stay "
                          "white); none: values kept")


def clip_highlights(data: NDArray[np.float32], clip_level: NDArray) -> tuple[NDArray[np.float32], float | None]:
    """``(data clipped at min(clip_level), that level)``; data unchanged (and None) when the levels are unknown.

    Parameters
    ----------
    data
        ``(H, W)`` mosaic or ``(H, W, 3)``, white balanced, float32.
    clip_level
        The three channels' clip levels in the units of ``data``.
    """
    levels = np.asarray(clip_level, dtype=np.float64).reshape(-1)
    finite = levels[np.isfinite(levels) & (levels > 0)]
    if finite.size != levels.size or not finite.size:
        return data, None
    level = float(finite.min())
    return np.minimum(data, np.float32(level)), level


@stage("highlights", params=HighlightsParams, consumes=(Encoding.CFA, Encoding.CAMERA_RGB))
def highlights(frame: Frame, p: HighlightsParams) -> Frame:
    """Clip every channel at the lowest clip level, so clipped whites stay white (see the module docstring).

    In and out: ``CFA`` or ``CAMERA_RGB``, linear, white balanced.
    """
    if p.mode == "none":
        return frame
    data, level = clip_highlights(frame.data, frame.clip_level)
    if level is None:
        return frame
    return frame.replace(data=data, clip_level=np.full(3, level, dtype=np.float32))
