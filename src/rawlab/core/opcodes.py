"""Typed records of DNG opcodes (DNG specification 1.6, chapter 7).

The parser and writer live in :mod:`rawlab.io.opcodes`; here are only the
types, so that a :class:`~rawlab.core.frame.Frame` can carry its opcode lists.
An opcode rawlab does not know is kept as :class:`UnknownOpcode` with its
parameter bytes, so it is reported and written back, never dropped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

#: DNG opcode ids and their names.
OPCODE_NAMES: dict[int, str] = {
    1: "WarpRectilinear",
    2: "WarpFisheye",
    3: "FixVignetteRadial",
    4: "FixBadPixelsConstant",
    5: "FixBadPixelsList",
    6: "TrimBounds",
    7: "MapTable",
    8: "MapPolynomial",
    9: "GainMap",
    10: "DeltaPerRow",
    11: "DeltaPerColumn",
    12: "ScalePerRow",
    13: "ScalePerColumn",
    14: "WarpRectilinear2",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OpcodeArea:
    """The region an opcode acts on: rows ``top..bottom``, columns ``left..right``
    (exclusive ends), planes ``plane..plane+planes``, every ``row_pitch``-th row
    and ``col_pitch``-th column."""

    top: int
    left: int
    bottom: int
    right: int
    plane: int = 0
    planes: int = 1
    row_pitch: int = 1
    col_pitch: int = 1


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class Opcode:
    """Common header of every opcode.

    Attributes
    ----------
    list_index
        1, 2 or 3: OpcodeList1 (raw, before linearisation), OpcodeList2 (after
        linearisation, before demosaic) or OpcodeList3 (after demosaic).
    opcode_id
        The DNG opcode id.
    dng_version
        The DNG version the opcode was written for.
    optional
        Flag bit 0: a reader may skip it.
    preview_skip
        Flag bit 1: may be skipped for previews.
    """

    list_index: int
    opcode_id: int
    dng_version: tuple[int, int, int, int] = (1, 3, 0, 0)
    optional: bool = False
    preview_skip: bool = False

    @property
    def name(self) -> str:
        """The DNG name of the opcode (``"Unknown(N)"`` for an unknown id)."""
        return OPCODE_NAMES.get(self.opcode_id, f"Unknown({self.opcode_id})")


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class UnknownOpcode(Opcode):
    """An opcode rawlab does not interpret; its parameter bytes are kept verbatim."""

    payload: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class WarpRectilinear(Opcode):
    """Radial and tangential distortion per plane: ``coefficients[p]`` is
    ``(kr0, kr1, kr2, kr3, kt0, kt1)``; ``center`` is the optical centre in
    relative coordinates ``(cx, cy)``."""

    coefficients: tuple[tuple[float, ...], ...] = ()
    center: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class WarpFisheye(Opcode):
    """Fisheye to rectilinear per plane: ``coefficients[p]`` is ``(kr0..kr3)``."""

    coefficients: tuple[tuple[float, ...], ...] = ()
    center: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FixVignetteRadial(Opcode):
    """Radial gain ``1 + k0 r^2 + k1 r^4 + ... + k4 r^10`` around ``center``."""

    k: tuple[float, float, float, float, float] = (0.0, 0.0, 0.0, 0.0, 0.0)
    center: tuple[float, float] = (0.5, 0.5)


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FixBadPixelsConstant(Opcode):
    """Pixels equal to ``constant`` are defective."""

    constant: int = 0
    bayer_phase: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class FixBadPixelsList(Opcode):
    """Listed defective pixels ``(row, col)`` and rectangles ``(top, left, bottom, right)``."""

    bayer_phase: int = 0
    bad_points: tuple[tuple[int, int], ...] = ()
    bad_rects: tuple[tuple[int, int, int, int], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class TrimBounds(Opcode):
    """Crop the image to ``(top, left, bottom, right)``."""

    top: int = 0
    left: int = 0
    bottom: int = 0
    right: int = 0


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MapTable(Opcode):
    """Look-up table applied to 16-bit samples in ``area``."""

    area: OpcodeArea
    table: NDArray[np.uint16]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class MapPolynomial(Opcode):
    """Polynomial ``sum(c[i] x^i)`` applied to normalised samples in ``area``."""

    area: OpcodeArea
    coefficients: tuple[float, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class GainMap(Opcode):
    """A grid of gains (lens shading), bilinearly interpolated over ``area``.

    ``gains`` has shape ``(points_v, points_h, map_planes)``; grid point
    ``(i, j)`` sits at relative position ``(origin_v + i * spacing_v,
    origin_h + j * spacing_h)`` of the image.
    """

    area: OpcodeArea
    points_v: int
    points_h: int
    spacing_v: float
    spacing_h: float
    origin_v: float
    origin_h: float
    map_planes: int
    gains: NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DeltaPerRow(Opcode):
    """An offset per row of ``area`` (normalised units)."""

    area: OpcodeArea
    values: NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class DeltaPerColumn(Opcode):
    """An offset per column of ``area`` (normalised units)."""

    area: OpcodeArea
    values: NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ScalePerRow(Opcode):
    """A scale per row of ``area``."""

    area: OpcodeArea
    values: NDArray[np.float32]


@dataclass(frozen=True, slots=True, kw_only=True, eq=False)
class ScalePerColumn(Opcode):
    """A scale per column of ``area``."""

    area: OpcodeArea
    values: NDArray[np.float32]
