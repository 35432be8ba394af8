"""Read and write DNG opcode lists (DNG specification 1.6, chapter 7).

An opcode list (tags OpcodeList1 51008, OpcodeList2 51009, OpcodeList3 51022)
is always big-endian, whatever the byte order of the TIFF file:

* ``uint32`` number of opcodes, then per opcode
* ``uint32`` opcode id, 4 bytes DNG version, ``uint32`` flags (bit 0: optional,
  bit 1: may be skipped for previews), ``uint32`` parameter byte count, and the
  parameters.

Every opcode id that :mod:`rawlab.core.opcodes` has a record for is parsed into
that record; any other id becomes an :class:`~rawlab.core.opcodes.UnknownOpcode`
holding its parameter bytes, so that :func:`serialize_opcode_list` writes it
back unchanged.  ``serialize_opcode_list(parse_opcode_list(b, i)) == b`` for
every well-formed list whose flags use only the two defined bits.

A malformed list raises :class:`~rawlab.errors.CorruptFile` naming the list
(``"OpcodeList2: ..."``); nothing is allocated beyond the size of the list.
"""

from __future__ import annotations

import struct
from typing import Sequence

import numpy as np

from rawlab.core.opcodes import (
    OPCODE_NAMES,
    DeltaPerColumn,
    DeltaPerRow,
    FixBadPixelsConstant,
    FixBadPixelsList,
    FixVignetteRadial,
    GainMap,
    MapPolynomial,
    MapTable,
    Opcode,
    OpcodeArea,
    ScalePerColumn,
    ScalePerRow,
    TrimBounds,
    UnknownOpcode,
    WarpFisheye,
    WarpRectilinear,
)
from rawlab.errors import CorruptFile

__all__ = ["parse_opcode_list", "serialize_opcode_list", "MAX_OPCODES"]

#: More opcodes than this in one list is taken as a corrupt count.
MAX_OPCODES = 1_000_000
#: MapPolynomial degrees above this are outside the specification.
MAX_POLYNOMIAL_DEGREE = 8

_HEADER = struct.Struct(">I4sII")
_AREA = struct.Struct(">8I")
_AREA_SIZE = _AREA.size  # 32 bytes
_GAIN_MAP_HEAD = struct.Struct(">II4dI")  # points v/h, spacing v/h, origin v/h, planes

_PER_ROW_COLUMN = {10: DeltaPerRow, 11: DeltaPerColumn, 12: ScalePerRow, 13: ScalePerColumn}
_PER_ROW_COLUMN_IDS = {cls: opcode_id for opcode_id, cls in _PER_ROW_COLUMN.items()}


class _Malformed(Exception):
    """Raised inside the per-opcode parsers; turned into CorruptFile with context."""


def _area(params: bytes) -> OpcodeArea:
    top, left, bottom, right, plane, planes, row_pitch, col_pitch = _AREA.unpack_from(params, 0)
    return OpcodeArea(
        top=top,
        left=left,
        bottom=bottom,
        right=right,
        plane=plane,
        planes=planes,
        row_pitch=row_pitch,
        col_pitch=col_pitch,
    )


def _area_bytes(area: OpcodeArea) -> bytes:
    return _AREA.pack(
        area.top, area.left, area.bottom, area.right, area.plane, area.planes, area.row_pitch, area.col_pitch
    )


def _need(params: bytes, size: int, what: str) -> None:
    if len(params) != size:
        raise _Malformed(f"{what} needs {size} parameter bytes, the header gives {len(params)}")


def _read_only(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


def _parse_params(opcode_id: int, params: bytes, common: dict) -> Opcode:
    """Typed record of one opcode from its parameter bytes."""
    n = len(params)
    if opcode_id in (1, 2):  # WarpRectilinear, WarpFisheye
        per_plane = 6 if opcode_id == 1 else 4
        if n < 4:
            raise _Malformed(f"{OPCODE_NAMES[opcode_id]} needs at least 4 parameter bytes, has {n}")
        (planes,) = struct.unpack_from(">I", params, 0)
        if planes < 1 or planes > 4:
            raise _Malformed(f"{OPCODE_NAMES[opcode_id]} has {planes} planes, expected 1 to 4")
        _need(params, 4 + planes * per_plane * 8 + 16, OPCODE_NAMES[opcode_id])
        values = struct.unpack_from(f">{planes * per_plane + 2}d", params, 4)
        coefficients = tuple(
            tuple(values[p * per_plane : (p + 1) * per_plane]) for p in range(planes)
        )
        center = (values[-2], values[-1])
        cls = WarpRectilinear if opcode_id == 1 else WarpFisheye
        return cls(coefficients=coefficients, center=center, **common)
    if opcode_id == 3:
        _need(params, 56, "FixVignetteRadial")
        values = struct.unpack(">7d", params)
        return FixVignetteRadial(k=tuple(values[:5]), center=(values[5], values[6]), **common)
    if opcode_id == 4:
        _need(params, 8, "FixBadPixelsConstant")
        constant, phase = struct.unpack(">II", params)
        return FixBadPixelsConstant(constant=constant, bayer_phase=phase, **common)
    if opcode_id == 5:
        if n < 12:
            raise _Malformed(f"FixBadPixelsList needs at least 12 parameter bytes, has {n}")
        phase, n_points, n_rects = struct.unpack_from(">III", params, 0)
        if n_points > n // 8 or n_rects > n // 16:
            raise _Malformed(
                f"FixBadPixelsList declares {n_points} points and {n_rects} rectangles in {n} bytes"
            )
        _need(params, 12 + 8 * n_points + 16 * n_rects, "FixBadPixelsList")
        values = np.frombuffer(params, dtype=">u4", offset=12).astype(np.int64)
        points = values[: 2 * n_points].reshape(-1, 2)
        rects = values[2 * n_points :].reshape(-1, 4)
        return FixBadPixelsList(
            bayer_phase=phase,
            bad_points=tuple((int(r), int(c)) for r, c in points),
            bad_rects=tuple(tuple(int(v) for v in rect) for rect in rects),
            **common,
        )
    if opcode_id == 6:
        _need(params, 16, "TrimBounds")
        top, left, bottom, right = struct.unpack(">4I", params)
        return TrimBounds(top=top, left=left, bottom=bottom, right=right, **common)
    if opcode_id == 7:
        if n < _AREA_SIZE + 4:
            raise _Malformed(f"MapTable needs at least {_AREA_SIZE + 4} parameter bytes, has {n}")
        (size,) = struct.unpack_from(">I", params, _AREA_SIZE)
        if size < 1 or size > 65536:
            raise _Malformed(f"MapTable has {size} entries, expected 1 to 65536")
        _need(params, _AREA_SIZE + 4 + 2 * size, "MapTable")
        table = np.frombuffer(params, dtype=">u2", offset=_AREA_SIZE + 4).astype(np.uint16)
        return MapTable(area=_area(params), table=_read_only(table), **common)
    if opcode_id == 8:
        if n < _AREA_SIZE + 4:
            raise _Malformed(f"MapPolynomial needs at least {_AREA_SIZE + 4} parameter bytes, has {n}")
        (degree,) = struct.unpack_from(">I", params, _AREA_SIZE)
        if degree > MAX_POLYNOMIAL_DEGREE:
            raise _Malformed(f"MapPolynomial has degree {degree}, the maximum is {MAX_POLYNOMIAL_DEGREE}")
        _need(params, _AREA_SIZE + 4 + 8 * (degree + 1), "MapPolynomial")
        coefficients = struct.unpack_from(f">{degree + 1}d", params, _AREA_SIZE + 4)
        return MapPolynomial(area=_area(params), coefficients=tuple(coefficients), **common)
    if opcode_id == 9:
        head = _AREA_SIZE + _GAIN_MAP_HEAD.size
        if n < head:
            raise _Malformed(f"GainMap needs at least {head} parameter bytes, has {n}")
        points_v, points_h, spacing_v, spacing_h, origin_v, origin_h, planes = _GAIN_MAP_HEAD.unpack_from(
            params, _AREA_SIZE
        )
        if points_v < 1 or points_h < 1 or planes < 1:
            raise _Malformed(f"GainMap of {points_v}x{points_h} points and {planes} planes; each must be 1 or more")
        count = points_v * points_h * planes
        if head + 4 * count != n:
            raise _Malformed(
                f"GainMap of {points_v}x{points_h} points and {planes} planes needs "
                f"{head + 4 * count} parameter bytes, the header gives {n}"
            )
        gains = np.frombuffer(params, dtype=">f4", offset=head).astype(np.float32)
        return GainMap(
            area=_area(params),
            points_v=points_v,
            points_h=points_h,
            spacing_v=spacing_v,
            spacing_h=spacing_h,
            origin_v=origin_v,
            origin_h=origin_h,
            map_planes=planes,
            gains=_read_only(gains.reshape(points_v, points_h, planes)),
            **common,
        )
    if opcode_id in _PER_ROW_COLUMN:
        cls = _PER_ROW_COLUMN[opcode_id]
        if n < _AREA_SIZE + 4:
            raise _Malformed(f"{cls.__name__} needs at least {_AREA_SIZE + 4} parameter bytes, has {n}")
        (count,) = struct.unpack_from(">I", params, _AREA_SIZE)
        if _AREA_SIZE + 4 + 4 * count != n:
            raise _Malformed(
                f"{cls.__name__} with {count} values needs {_AREA_SIZE + 4 + 4 * count} "
                f"parameter bytes, the header gives {n}"
            )
        values = np.frombuffer(params, dtype=">f4", offset=_AREA_SIZE + 4).astype(np.float32)
        return cls(area=_area(params), values=_read_only(values), **common)
    return UnknownOpcode(payload=bytes(params), **common)


def parse_opcode_list(data: bytes, list_index: int, *, path: str | None = None) -> tuple[Opcode, ...]:
    """Parse one DNG opcode list into typed records.

    Parameters
    ----------
    data
        The raw bytes of an OpcodeList1/2/3 tag (big-endian, DNG 1.6 section 7.1).
    list_index
        1, 2 or 3: which list this is (stored in every record).
    path
        The file the list came from, for error messages.

    Returns
    -------
    tuple of Opcode
        In file order.  Unknown opcode ids are kept as ``UnknownOpcode``.
        Empty ``data`` gives an empty tuple.

    Raises
    ------
    CorruptFile
        The count exceeds ``MAX_OPCODES`` or the data, a parameter byte count
        runs past the end, or an opcode's parameters do not match their size.
    """
    if list_index not in (1, 2, 3):
        raise ValueError(f"list_index must be 1, 2 or 3, got {list_index!r}")
    name = f"OpcodeList{list_index}"
    data = bytes(data)
    if not data:
        return ()

    def fail(message: str) -> CorruptFile:
        return CorruptFile(f"{name}: {message}", path=path)

    if len(data) < 4:
        raise fail(f"{len(data)} bytes, too short to hold the opcode count")
    (count,) = struct.unpack_from(">I", data, 0)
    if count > MAX_OPCODES:
        raise fail(f"declares {count} opcodes, more than the limit of {MAX_OPCODES}")
    if 4 + count * _HEADER.size > len(data):
        raise fail(f"declares {count} opcodes but holds only {len(data)} bytes")
    opcodes: list[Opcode] = []
    pos = 4
    for i in range(count):
        if pos + _HEADER.size > len(data):
            raise fail(f"opcode {i + 1} of {count} starts past the end of the list ({len(data)} bytes)")
        opcode_id, version, flags, n_bytes = _HEADER.unpack_from(data, pos)
        label = OPCODE_NAMES.get(opcode_id, f"opcode id {opcode_id}")
        pos += _HEADER.size
        if n_bytes > len(data) - pos:
            raise fail(
                f"opcode {i + 1} of {count} ({label}) declares {n_bytes} parameter bytes "
                f"but only {len(data) - pos} remain"
            )
        common = dict(
            list_index=list_index,
            opcode_id=opcode_id,
            dng_version=tuple(version),
            optional=bool(flags & 1),
            preview_skip=bool(flags & 2),
        )
        try:
            opcodes.append(_parse_params(opcode_id, data[pos : pos + n_bytes], common))
        except _Malformed as exc:
            raise fail(f"opcode {i + 1} of {count}: {exc}") from None
        pos += n_bytes
    trailing = data[pos:]
    if trailing.strip(b"\0"):
        raise fail(f"{len(trailing)} unexpected bytes after the last of {count} opcodes")
    return tuple(opcodes)


def _params_bytes(op: Opcode) -> bytes:
    """Parameter bytes of one opcode record (inverse of ``_parse_params``)."""
    if isinstance(op, UnknownOpcode):
        return bytes(op.payload)
    if isinstance(op, (WarpRectilinear, WarpFisheye)):
        per_plane = 6 if isinstance(op, WarpRectilinear) else 4
        planes = len(op.coefficients)
        if any(len(c) != per_plane for c in op.coefficients):
            raise ValueError(f"{op.name} needs {per_plane} coefficients per plane")
        flat = [float(v) for c in op.coefficients for v in c] + [float(op.center[0]), float(op.center[1])]
        return struct.pack(">I", planes) + struct.pack(f">{len(flat)}d", *flat)
    if isinstance(op, FixVignetteRadial):
        return struct.pack(">7d", *(float(v) for v in op.k), float(op.center[0]), float(op.center[1]))
    if isinstance(op, FixBadPixelsConstant):
        return struct.pack(">II", op.constant, op.bayer_phase)
    if isinstance(op, FixBadPixelsList):
        head = struct.pack(">III", op.bayer_phase, len(op.bad_points), len(op.bad_rects))
        values = [v for point in op.bad_points for v in point] + [v for rect in op.bad_rects for v in rect]
        return head + np.asarray(values, dtype=">u4").tobytes()
    if isinstance(op, TrimBounds):
        return struct.pack(">4I", op.top, op.left, op.bottom, op.right)
    if isinstance(op, MapTable):
        table = np.asarray(op.table).reshape(-1)
        return _area_bytes(op.area) + struct.pack(">I", table.size) + table.astype(">u2").tobytes()
    if isinstance(op, MapPolynomial):
        coefficients = [float(c) for c in op.coefficients]
        return (
            _area_bytes(op.area)
            + struct.pack(">I", len(coefficients) - 1)
            + struct.pack(f">{len(coefficients)}d", *coefficients)
        )
    if isinstance(op, GainMap):
        gains = np.asarray(op.gains, dtype=np.float32)
        if gains.size != op.points_v * op.points_h * op.map_planes:
            raise ValueError(
                f"GainMap gains hold {gains.size} values, {op.points_v}x{op.points_h}x{op.map_planes} expected"
            )
        head = _GAIN_MAP_HEAD.pack(
            op.points_v, op.points_h, op.spacing_v, op.spacing_h, op.origin_v, op.origin_h, op.map_planes
        )
        return _area_bytes(op.area) + head + gains.astype(">f4").tobytes()
    if isinstance(op, (DeltaPerRow, DeltaPerColumn, ScalePerRow, ScalePerColumn)):
        values = np.asarray(op.values, dtype=np.float32).reshape(-1)
        return _area_bytes(op.area) + struct.pack(">I", values.size) + values.astype(">f4").tobytes()
    raise TypeError(f"cannot serialise opcode record {type(op).__name__}")


def _expected_id(op: Opcode) -> int | None:
    """The opcode id a typed record must carry (None for UnknownOpcode)."""
    table = {
        WarpRectilinear: 1,
        WarpFisheye: 2,
        FixVignetteRadial: 3,
        FixBadPixelsConstant: 4,
        FixBadPixelsList: 5,
        TrimBounds: 6,
        MapTable: 7,
        MapPolynomial: 8,
        GainMap: 9,
        **_PER_ROW_COLUMN_IDS,
    }
    return table.get(type(op))


def serialize_opcode_list(opcodes: Sequence[Opcode]) -> bytes:
    """Write opcode records as one DNG opcode list (big-endian, DNG 1.6 section 7.1).

    Parameters
    ----------
    opcodes
        Records from :mod:`rawlab.core.opcodes`, in the order they apply.

    Returns
    -------
    bytes
        The value of an OpcodeList1/2/3 tag: count, then per opcode id,
        version, flags, parameter byte count and parameters.

    Raises
    ------
    ValueError
        A record is inconsistent (wrong id for its type, gain map size that
        does not match its point counts, ...).
    """
    parts = [struct.pack(">I", len(opcodes))]
    for op in opcodes:
        expected = _expected_id(op)
        if expected is not None and op.opcode_id != expected:
            raise ValueError(f"{type(op).__name__} record carries opcode id {op.opcode_id}, expected {expected}")
        params = _params_bytes(op)
        version = bytes(int(v) & 0xFF for v in op.dng_version)
        if len(version) != 4:
            raise ValueError(f"dng_version needs 4 numbers, got {op.dng_version!r}")
        flags = (1 if op.optional else 0) | (2 if op.preview_skip else 0)
        parts.append(_HEADER.pack(op.opcode_id, version, flags, len(params)))
        parts.append(params)
    return b"".join(parts)
