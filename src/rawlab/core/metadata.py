"""Metadata that travels with a :class:`~rawlab.core.frame.Frame`.

All classes are frozen.  Arrays held here are made read-only on construction so
that a frame's metadata cannot be changed behind its back; use
:func:`dataclasses.replace` to derive new metadata.

Units are in the names: ``_dn`` is a raw digital number, ``_s`` seconds,
``_mm`` millimetres, ``_ev`` stops.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

#: Colour index of each CFA cell: 0 red, 1 green, 2 blue (DNG CFAPlaneColor order).
RED, GREEN, BLUE = 0, 1, 2
_LETTERS = {"R": RED, "G": GREEN, "B": BLUE}


def frozen_array(value: Any, dtype: Any = np.float64, shape: tuple[int, ...] | None = None) -> NDArray | None:
    """Return ``value`` as a read-only array (``None`` stays ``None``)."""
    if value is None:
        return None
    array = np.array(value, dtype=dtype, copy=True)
    if shape is not None:
        array = array.reshape(shape)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, slots=True)
class CfaPattern:
    """A colour filter array layout, repeated over the mosaic.

    Parameters
    ----------
    pattern
        Rows of colour indices (0 red, 1 green, 2 blue), e.g. ``((0, 1), (1, 2))``
        for RGGB.  Any repeat size is allowed (2x2 Bayer, 6x6 X-Trans).
    """

    pattern: tuple[tuple[int, ...], ...]

    def __post_init__(self) -> None:
        rows = tuple(tuple(int(c) for c in row) for row in self.pattern)
        if not rows or any(len(r) != len(rows[0]) for r in rows) or not rows[0]:
            raise ValueError(f"CFA pattern must be a non-empty rectangle, got {self.pattern!r}")
        if any(c not in (RED, GREEN, BLUE) for row in rows for c in row):
            raise ValueError(f"CFA pattern colours must be 0, 1 or 2, got {self.pattern!r}")
        object.__setattr__(self, "pattern", rows)

    @classmethod
    def from_string(cls, name: str) -> "CfaPattern":
        """Build a 2x2 Bayer pattern from its name (``"RGGB"``, ``"GRBG"``, ...)."""
        letters = name.strip().upper()
        if len(letters) != 4 or any(ch not in _LETTERS for ch in letters):
            raise ValueError(f"expected a 2x2 CFA name such as RGGB, got {name!r}")
        idx = [_LETTERS[ch] for ch in letters]
        return cls(((idx[0], idx[1]), (idx[2], idx[3])))

    @property
    def shape(self) -> tuple[int, int]:
        """Repeat size ``(rows, cols)``."""
        return len(self.pattern), len(self.pattern[0])

    @property
    def is_bayer(self) -> bool:
        """True for a 2x2 pattern with one red, two greens and one blue."""
        flat = sorted(c for row in self.pattern for c in row)
        return self.shape == (2, 2) and flat == [RED, GREEN, GREEN, BLUE]

    @property
    def name(self) -> str:
        """Letters of the pattern, row by row (``"RGGB"``)."""
        return "".join("RGB"[c] for row in self.pattern for c in row)

    def as_array(self) -> NDArray[np.int8]:
        """The pattern as a small int8 array."""
        return np.array(self.pattern, dtype=np.int8)

    def shifted(self, dy: int, dx: int) -> "CfaPattern":
        """Pattern of the mosaic cropped at offset ``(dy, dx)``."""
        ry, rx = self.shape
        rows = tuple(
            tuple(self.pattern[(y + dy) % ry][(x + dx) % rx] for x in range(rx)) for y in range(ry)
        )
        return CfaPattern(rows)

    def color_index_map(self, height: int, width: int) -> NDArray[np.int8]:
        """Colour index of every pixel of a ``height`` x ``width`` mosaic."""
        ry, rx = self.shape
        reps = (-(-height // ry), -(-width // rx))
        return np.tile(self.as_array(), reps)[:height, :width]

    def masks(self, height: int, width: int) -> NDArray[np.bool_]:
        """Boolean masks, shape ``(3, height, width)``, one per colour."""
        index = self.color_index_map(height, width)
        return np.stack([index == c for c in (RED, GREEN, BLUE)])


@dataclass(frozen=True, slots=True, eq=False)
class SensorInfo:
    """What the sensor delivered and how to normalise it.

    Attributes
    ----------
    cfa
        The mosaic layout, or ``None`` for data that is already RGB (LinearRaw).
    bits_per_sample
        Container bit depth of the stored samples.
    black_level_dn
        Black level pattern, shape ``(rows, cols, samples)`` (DNG BlackLevel with
        BlackLevelRepeatDim); it repeats over the image.
    black_level_delta_h_dn, black_level_delta_v_dn
        Per-column and per-row black offsets (DNG BlackLevelDeltaH/V), or ``None``.
    white_level_dn
        Saturation level per sample.
    linearization_table
        DNG LinearizationTable (raw value -> linear value), or ``None``.
    active_area
        ``(top, left, bottom, right)`` of the real image inside the stored data,
        or ``None`` when it is the whole array.
    crop_px
        DNG default crop as ``(top, left, height, width)`` relative to the active
        area, or ``None`` for no crop.
    noise_profile
        DNG NoiseProfile: per sample ``(scale, offset)``, variance =
        ``scale * x + offset`` for the signal ``x`` normalised to 0..1.
    """

    cfa: CfaPattern | None = None
    bits_per_sample: int = 16
    black_level_dn: NDArray[np.float64] = field(default_factory=lambda: frozen_array([[[0.0]]]))
    black_level_delta_h_dn: NDArray[np.float64] | None = None
    black_level_delta_v_dn: NDArray[np.float64] | None = None
    white_level_dn: NDArray[np.float64] = field(default_factory=lambda: frozen_array([65535.0]))
    linearization_table: NDArray[np.float64] | None = None
    active_area: tuple[int, int, int, int] | None = None
    crop_px: tuple[int, int, int, int] | None = None
    noise_profile: tuple[tuple[float, float], ...] | None = None

    def __post_init__(self) -> None:
        black = np.asarray(self.black_level_dn, dtype=np.float64)
        if black.ndim == 0:
            black = black.reshape(1, 1, 1)
        elif black.ndim == 1:
            black = black.reshape(1, 1, -1)
        elif black.ndim == 2:
            black = black[:, :, None]
        object.__setattr__(self, "black_level_dn", frozen_array(black))
        object.__setattr__(self, "white_level_dn", frozen_array(np.atleast_1d(self.white_level_dn)))
        for name in ("black_level_delta_h_dn", "black_level_delta_v_dn", "linearization_table"):
            object.__setattr__(self, name, frozen_array(getattr(self, name)))
        for name in ("active_area", "crop_px"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(int(v) for v in value))
        if self.noise_profile is not None:
            object.__setattr__(
                self, "noise_profile", tuple((float(s), float(o)) for s, o in self.noise_profile)
            )


@dataclass(frozen=True, slots=True, eq=False)
class ColorCalibration:
    """DNG colour metadata of the camera (DNG specification 1.6, chapter 6).

    Matrices follow the DNG tags and their maths names:

    * ``M_XYZ_to_camera_1/2`` -- ColorMatrix1/2 (XYZ -> reference camera space),
    * ``M_camera_calibration_1/2`` -- CameraCalibration1/2,
    * ``M_forward_1/2`` -- ForwardMatrix1/2 (white-balanced camera -> XYZ D50),
    * ``illuminant_1/2`` -- CalibrationIlluminant1/2 as EXIF LightSource codes
      (17 Standard A, 21 D65, 23 D50, ...).

    ``as_shot_neutral`` is the camera response to the scene white (AsShotNeutral)
    and ``as_shot_white_xy`` the alternative AsShotWhiteXY chromaticity.
    ``applied_neutral`` is set by the white-balance stage: the camera-space
    neutral that the data has been divided by, so that later colour stages undo
    it consistently.
    """

    M_XYZ_to_camera_1: NDArray[np.float64] | None = None
    M_XYZ_to_camera_2: NDArray[np.float64] | None = None
    M_camera_calibration_1: NDArray[np.float64] | None = None
    M_camera_calibration_2: NDArray[np.float64] | None = None
    M_forward_1: NDArray[np.float64] | None = None
    M_forward_2: NDArray[np.float64] | None = None
    illuminant_1: int | None = None
    illuminant_2: int | None = None
    analog_balance: NDArray[np.float64] | None = None
    as_shot_neutral: NDArray[np.float64] | None = None
    as_shot_white_xy: tuple[float, float] | None = None
    baseline_exposure_ev: float = 0.0
    applied_neutral: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        for name in (
            "M_XYZ_to_camera_1",
            "M_XYZ_to_camera_2",
            "M_camera_calibration_1",
            "M_camera_calibration_2",
            "M_forward_1",
            "M_forward_2",
        ):
            value = getattr(self, name)
            if value is not None:
                array = np.asarray(value, dtype=np.float64)
                if array.ndim == 1:
                    array = array.reshape(-1, 3) if "forward" not in name else array.reshape(3, -1)
                object.__setattr__(self, name, frozen_array(array))
        for name in ("analog_balance", "as_shot_neutral", "applied_neutral"):
            object.__setattr__(self, name, frozen_array(getattr(self, name)))
        if self.as_shot_white_xy is not None:
            object.__setattr__(self, "as_shot_white_xy", tuple(float(v) for v in self.as_shot_white_xy))
        object.__setattr__(self, "baseline_exposure_ev", float(self.baseline_exposure_ev))

    @property
    def has_matrices(self) -> bool:
        """True when at least ColorMatrix1 is known."""
        return self.M_XYZ_to_camera_1 is not None


@dataclass(frozen=True, slots=True)
class CaptureInfo:
    """How the shot was taken (from EXIF / DNG tags)."""

    make: str | None = None
    model: str | None = None
    unique_camera_model: str | None = None
    software: str | None = None
    iso: float | None = None
    exposure_time_s: float | None = None
    f_number: float | None = None
    focal_length_mm: float | None = None
    focal_length_35mm_mm: float | None = None
    datetime_original: str | None = None
    orientation: int = 1
    artist: str | None = None

    def __post_init__(self) -> None:
        if self.orientation not in range(1, 9):
            object.__setattr__(self, "orientation", 1)


@dataclass(frozen=True, slots=True)
class LensInfo:
    """The lens, as far as the file says."""

    make: str | None = None
    model: str | None = None
    focal_min_mm: float | None = None
    focal_max_mm: float | None = None
    f_number_min_at_min_focal: float | None = None
    f_number_min_at_max_focal: float | None = None
