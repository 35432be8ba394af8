"""The one image type that flows through rawlab.

A :class:`Frame` holds a float32 buffer and says what that buffer *is* right
now (mosaic, camera RGB, XYZ D50 or RGB in given primaries and transfer),
together with everything later stages need: sensor levels, colour calibration,
capture settings, opcodes, the EXIF blob and how the frame was made.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from rawlab.core.metadata import CaptureInfo, ColorCalibration, LensInfo, SensorInfo
from rawlab.core.opcodes import Opcode


class Encoding(enum.Enum):
    """What the buffer holds."""

    CFA = "cfa"  #: (H, W) colour filter array mosaic
    CAMERA_RGB = "camera_rgb"  #: (H, W, 3) in the camera's own RGB
    XYZ_D50 = "xyz_d50"  #: (H, W, 3) CIE XYZ, D50 white (the DNG/ICC connection space)
    RGB = "rgb"  #: (H, W, 3) RGB in ``Frame.primaries``


class Primaries(enum.Enum):
    """RGB primaries (and white point) of an ``Encoding.RGB`` frame."""

    SRGB = "srgb"  #: ITU-R BT.709 primaries, D65
    DISPLAY_P3 = "display_p3"  #: DCI-P3 primaries, D65
    REC2020 = "rec2020"  #: ITU-R BT.2020 primaries, D65
    PROPHOTO = "prophoto"  #: ROMM RGB, D50


class Transfer(enum.Enum):
    """Transfer function of the buffer's values."""

    LINEAR = "linear"
    SRGB = "srgb"  #: IEC 61966-2-1 piecewise curve (also used by Display P3)


@dataclass(frozen=True, slots=True)
class StageRecord:
    """One step of a frame's history: which stage, which params version, which
    params (as a short hash), so any output can be traced and reproduced."""

    stage: str
    version: int
    params_hash: str
    skipped: bool = False


@dataclass(frozen=True, slots=True, eq=False)
class Frame:
    """An image buffer and what it is.

    Attributes
    ----------
    data
        float32, C-contiguous; ``(H, W)`` for a mosaic, ``(H, W, 3)`` otherwise.
        Raw frames from a reader hold digital numbers (DN); after normalisation
        black is 0 and the sensor's white 1.  Values are never clipped inside
        the pipeline.
    encoding, primaries, transfer
        What the buffer holds now.
    clip_level
        Per colour channel (3 values), the value at which the sensor saturated,
        carried through every stage so highlight handling knows where data
        stops being real.
    sensor, color, capture, lens, opcodes, exif
        Metadata; ``exif`` is an EXIF blob (``b"Exif\\0\\0"`` + TIFF) for the encoder.
    history
        How this frame was made.
    """

    data: NDArray[np.float32]
    encoding: Encoding
    primaries: Primaries | None = None
    transfer: Transfer = Transfer.LINEAR
    clip_level: NDArray[np.float32] = field(
        default_factory=lambda: np.full(3, np.inf, dtype=np.float32)
    )
    sensor: SensorInfo = field(default_factory=SensorInfo)
    color: ColorCalibration = field(default_factory=ColorCalibration)
    capture: CaptureInfo = field(default_factory=CaptureInfo)
    lens: LensInfo | None = None
    opcodes: tuple[Opcode, ...] = ()
    exif: bytes | None = None
    history: tuple[StageRecord, ...] = ()
    applied_opcodes: tuple[Opcode, ...] = ()

    def __post_init__(self) -> None:
        data = self.data
        if not isinstance(data, np.ndarray):
            raise TypeError(f"Frame.data must be a numpy array, got {type(data).__name__}")
        if data.dtype != np.float32 or not data.flags.c_contiguous:
            data = np.ascontiguousarray(data, dtype=np.float32)
            object.__setattr__(self, "data", data)
        if self.encoding is Encoding.CFA:
            if data.ndim != 2:
                raise ValueError(f"a CFA frame needs a 2-D buffer, got shape {data.shape}")
        elif data.ndim != 3 or data.shape[2] != 3:
            raise ValueError(f"a {self.encoding.value} frame needs an (H, W, 3) buffer, got shape {data.shape}")
        if self.encoding is Encoding.RGB and self.primaries is None:
            raise ValueError("an RGB frame must say its primaries")
        clip = np.asarray(self.clip_level, dtype=np.float32).reshape(-1)
        if clip.size == 1:
            clip = np.repeat(clip, 3)
        if clip.size != 3:
            raise ValueError(f"clip_level needs 3 values, got {clip.size}")
        object.__setattr__(self, "clip_level", clip)
        object.__setattr__(self, "opcodes", tuple(self.opcodes))
        object.__setattr__(self, "applied_opcodes", tuple(self.applied_opcodes))
        object.__setattr__(self, "history", tuple(self.history))

    @property
    def height(self) -> int:
        """Rows of the buffer."""
        return int(self.data.shape[0])

    @property
    def width(self) -> int:
        """Columns of the buffer."""
        return int(self.data.shape[1])

    def replace(self, **changes: Any) -> "Frame":
        """A new frame with some fields changed (see :func:`dataclasses.replace`)."""
        return replace(self, **changes)

    def with_record(self, record: StageRecord) -> "Frame":
        """The same frame with ``record`` appended to its history."""
        return replace(self, history=self.history + (record,))
