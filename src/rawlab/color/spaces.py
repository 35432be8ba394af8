"""The ``xyz_to_rgb`` stage: CIE XYZ (D50) -> linear RGB of an output space.

The XYZ D50 data is adapted to the space's white with the linear Bradford
transform (Lam 1985) and mapped with the space's XYZ -> RGB matrix:

* ``srgb``: IEC 61966-2-1 (ITU-R BT.709 primaries), D65;
* ``display_p3``: DCI-P3 primaries with a D65 white (Apple Display P3);
* ``rec2020``: ITU-R BT.2020, D65;
* ``prophoto``: ROMM RGB (ISO 22028-2), D50 -- no adaptation.

The matrices come from colour-science and are computed once per space, on
first use.  Values out of the space's gamut stay (negative or above 1); the
encoder decides what to do with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.color._matrix import apply_matrix_3x3, propagate_clip_level
from rawlab.color.dng_matrices import XY_D50, xy_to_XYZ
from rawlab.core.frame import Encoding, Frame, Primaries
from rawlab.core.params import Params, param
from rawlab.core.stage import stage

__all__ = ["XYZToRGBParams", "xyz_to_rgb", "matrix_XYZ_D50_to_RGB", "PRIMARIES_BY_SPACE"]

#: Stage parameter value -> frame primaries.
PRIMARIES_BY_SPACE: dict[str, Primaries] = {
    "srgb": Primaries.SRGB,
    "display_p3": Primaries.DISPLAY_P3,
    "rec2020": Primaries.REC2020,
    "prophoto": Primaries.PROPHOTO,
}

_COLOUR_NAMES = {
    "srgb": "sRGB",
    "display_p3": "Display P3",
    "rec2020": "ITU-R BT.2020",
    "prophoto": "ProPhoto RGB",
}

_CACHE: dict[str, NDArray[np.float64]] = {}


@dataclass(frozen=True)
class XYZToRGBParams(Params):
    """Parameters of the ``xyz_to_rgb`` stage."""

    VERSION: ClassVar[int] = 1
    space: str = param("srgb", choices=tuple(PRIMARIES_BY_SPACE), doc="output RGB primaries")


def matrix_XYZ_D50_to_RGB(space: str) -> NDArray[np.float64]:
    """3x3 matrix: XYZ with a D50 white -> linear RGB of ``space`` (Bradford adapted).

    Parameters
    ----------
    space
        ``"srgb"``, ``"display_p3"``, ``"rec2020"`` or ``"prophoto"``.

    Returns
    -------
    numpy.ndarray
        float64 ``(3, 3)`` (a read-only cached array).
    """
    if space not in _CACHE:
        import colour

        from rawlab.color.dng_matrices import matrix_bradford

        colourspace = colour.RGB_COLOURSPACES[_COLOUR_NAMES[space]]
        white = tuple(float(v) for v in colourspace.whitepoint)
        M = np.asarray(colourspace.matrix_XYZ_to_RGB, dtype=np.float64)
        if not np.allclose(white, XY_D50, atol=1e-4):
            M = M @ matrix_bradford(XY_D50, white)
        M.setflags(write=False)
        _CACHE[space] = M
    return _CACHE[space]


@stage("xyz_to_rgb", params=XYZToRGBParams, consumes=Encoding.XYZ_D50, produces=Encoding.RGB, pointwise=True)
def xyz_to_rgb(frame: Frame, p: XYZToRGBParams) -> Frame:
    """Convert linear XYZ D50 to linear RGB in the chosen primaries.

    In: ``XYZ_D50``, linear.  Out: ``RGB`` with ``primaries`` set, linear; the
    D50 white (Y = 1) becomes RGB (1, 1, 1).  ``clip_level`` is mapped the
    same way.
    """
    M = matrix_XYZ_D50_to_RGB(p.space)
    return frame.replace(
        data=apply_matrix_3x3(frame.data, M),
        encoding=Encoding.RGB,
        primaries=PRIMARIES_BY_SPACE[p.space],
        clip_level=propagate_clip_level(frame.clip_level, M, xy_to_XYZ(XY_D50)),
    )
