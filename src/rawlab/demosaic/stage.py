"""The ``demosaic`` stage: CFA mosaic -> camera RGB.

Takes a normalised Bayer mosaic (linear, camera space, scene-referred) and
gives a linear ``(H, W, 3)`` camera-RGB frame of the same size.  The method is
chosen by name; each lives in its own module with its citation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from rawlab.core.frame import Encoding, Frame
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.demosaic.bilinear import demosaic_bayer_bilinear
from rawlab.demosaic.malvar2004 import demosaic_bayer_malvar2004
from rawlab.demosaic.menon2007 import demosaic_bayer_menon2007
from rawlab.errors import StageError

__all__ = ["DemosaicParams", "demosaic"]

_METHODS = {
    "bilinear": demosaic_bayer_bilinear,
    "malvar2004": demosaic_bayer_malvar2004,
    "menon2007": demosaic_bayer_menon2007,  # with the refining step
}


@dataclass(frozen=True)
class DemosaicParams(Params):
    """Parameters of the ``demosaic`` stage."""

    VERSION: ClassVar[int] = 1
    method: str = param(
        "malvar2004",
        choices=tuple(_METHODS),
        doc="bilinear, Malvar-He-Cutler 2004 gradient-corrected linear interpolation, "
        "or Menon-Andriani-Calvagno 2007 directional filtering with a posteriori decision (DDFAPD)",
    )


@stage("demosaic", params=DemosaicParams, consumes=Encoding.CFA, produces=Encoding.CAMERA_RGB)
def demosaic(frame: Frame, p: DemosaicParams) -> Frame:
    """Interpolate the missing colours of a Bayer mosaic (any phase, any size).

    In: ``CFA``, linear, normalised.  Out: ``CAMERA_RGB``, linear, same size and
    scale; ``clip_level`` and all metadata are carried unchanged.  A non-Bayer
    mosaic (X-Trans, ...) is refused with a :class:`StageError`.
    """
    cfa = frame.sensor.cfa
    if cfa is None:
        raise StageError("demosaic: the frame is a mosaic but its sensor info has no CFA pattern")
    rgb = _METHODS[p.method](frame.data, cfa)
    return frame.replace(data=rgb, encoding=Encoding.CAMERA_RGB)
