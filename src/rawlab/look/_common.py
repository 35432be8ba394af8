"""Small helpers shared by the look operations (private)."""

from __future__ import annotations

import functools

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Frame, Primaries, Transfer
from rawlab.errors import StageError

#: Middle grey of a scene-referred linear image (18 % reflectance).
MIDDLE_GREY = 0.18

_SPACE_OF = {
    Primaries.SRGB: "srgb",
    Primaries.DISPLAY_P3: "display_p3",
    Primaries.REC2020: "rec2020",
    Primaries.PROPHOTO: "prophoto",
}


@functools.lru_cache(maxsize=8)
def _luminance_weights(space: str) -> tuple[float, float, float]:
    from rawlab.color.spaces import matrix_XYZ_D50_to_RGB

    M_RGB_to_XYZ = np.linalg.inv(matrix_XYZ_D50_to_RGB(space))
    row = M_RGB_to_XYZ[1]
    row = row / row.sum()
    return float(row[0]), float(row[1]), float(row[2])


def luminance_weights(primaries: Primaries | None) -> NDArray[np.float32]:
    """Weights ``(wR, wG, wB)`` (sum 1) of CIE Y for linear RGB in ``primaries``.

    The Y row of the RGB -> XYZ (D50 white, Bradford) matrix of the working
    space (for sRGB about 0.22, 0.72, 0.06, IEC 61966-2-1 / ITU-R BT.709).
    """
    space = _SPACE_OF.get(primaries, "srgb")  # type: ignore[arg-type]
    return np.array(_luminance_weights(space), dtype=np.float32)


def require_transfer(frame: Frame, stage_name: str, transfer: Transfer) -> None:
    """Raise a one-line :class:`StageError` unless ``frame.transfer`` is ``transfer``."""
    if frame.transfer is not transfer:
        raise StageError(
            f"{stage_name}: expects {transfer.value} RGB, got transfer {frame.transfer.value}; "
            "place it where the look ordering puts it (rawlab.look.apply_look)"
        )


def rows3(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """``(H, W, 3)`` as an ``(H*W, 3)`` view (C-contiguous float32)."""
    return np.ascontiguousarray(data, dtype=np.float32).reshape(-1, 3)
