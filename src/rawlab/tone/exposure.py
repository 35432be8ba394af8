"""The ``exposure`` stage: scale linear data by a power of two.

Exposure in stops (EV): ``out = in * 2 ** (exposure_ev + BaselineExposure)``,
where the DNG BaselineExposure (DNG 1.6, "BaselineExposure": the camera's
zero point, in EV) is added unless ``baseline`` is false.  Linear,
scene-referred, any encoding except a mosaic; nothing is clipped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError

__all__ = ["ExposureParams", "exposure", "apply_exposure_ev"]


@dataclass(frozen=True)
class ExposureParams(Params):
    """Parameters of the ``exposure`` stage."""

    VERSION: ClassVar[int] = 1
    exposure_ev: float = param(0.0, min=-10.0, max=10.0, unit="EV", doc="exposure change in stops")
    baseline: bool = param(True, doc="also apply the file's BaselineExposure (DNG)")


def apply_exposure_ev(data: NDArray[np.float32], *, exposure_ev: float) -> NDArray[np.float32]:
    """Multiply linear data by ``2 ** exposure_ev``.

    Parameters
    ----------
    data
        Linear float32 data, any shape and range.
    exposure_ev
        Change in stops (EV); 0 returns an unchanged copy.

    Returns
    -------
    numpy.ndarray
        New float32 array, not clipped.
    """
    gain = np.float32(2.0 ** float(exposure_ev))
    return np.multiply(data, gain, dtype=np.float32)


@stage(
    "exposure",
    params=ExposureParams,
    consumes=(Encoding.RGB, Encoding.CAMERA_RGB, Encoding.XYZ_D50),
    pointwise=True,
)
def exposure(frame: Frame, p: ExposureParams) -> Frame:
    """Brighten or darken linear data by ``exposure_ev`` (+ BaselineExposure) stops.

    In and out: ``RGB`` / ``CAMERA_RGB`` / ``XYZ_D50``, linear, scene-referred;
    ``clip_level`` is scaled by the same gain.
    """
    if frame.transfer is not Transfer.LINEAR:
        raise StageError(f"exposure: expects linear data, got transfer {frame.transfer.value}")
    ev = p.exposure_ev + (frame.color.baseline_exposure_ev if p.baseline else 0.0)
    if ev == 0.0:
        return frame
    gain = 2.0**ev
    clip = (np.asarray(frame.clip_level, dtype=np.float64) * gain).astype(np.float32)
    return frame.replace(data=apply_exposure_ev(frame.data, exposure_ev=ev), clip_level=clip)
