"""DNG opcode lists 1 and 2: ``dng_opcodes_raw`` and ``dng_opcodes_linear``.

Applies the opcodes a DNG carries in OpcodeList1 (on the stored raw data, in
DN, before linearisation) and OpcodeList2 (on the linearised, normalised data
of the active area, before white balance and demosaicing), with the semantics
of the DNG specification 1.6 (Adobe, 2020), chapter 7 "Opcode List Processing":

* every area opcode acts on rows ``top, top + RowPitch, ... < bottom`` and
  columns ``left, left + ColPitch, ... < right`` of the planes
  ``Plane .. Plane + Planes - 1``, clipped to the image (and its planes);
* **MapTable** (7.3.8) replaces a 16-bit sample ``v`` by ``table[min(v, n-1)]``;
* **MapPolynomial** (7.3.9) replaces ``x`` by ``sum(c[i] x^i)``, ``x`` in 0..1;
* **GainMap** (7.3.10) multiplies by a bilinearly interpolated gain grid whose
  points sit at relative positions ``origin + i * spacing`` of the *image*;
  pixel ``(r, c)`` is at ``((r + 0.5) / H, (c + 0.5) / W)``; outside the grid
  the edge values hold; image plane ``p`` uses map plane ``min(p, MapPlanes-1)``;
* **DeltaPerRow/Column** (7.3.11-12) add, **ScalePerRow/Column** (7.3.13-14)
  multiply one value per selected row / column;
* **FixBadPixelsConstant** / **FixBadPixelsList** (7.3.4-5) replace a defective
  sample by the mean of its good same-colour neighbours;
* **TrimBounds** (7.3.6) crops the image;
* **FixVignetteRadial** (7.3.3, :mod:`rawlab.optics.dng_vignette`) multiplies
  by a radial gain.

Value scale: list-1 data are DN held in float32.  As in the DNG SDK, whose
stage-1 image is 16-bit, a stored sample counts as a fraction of 65535 for the
opcodes defined on 0..1 values (``full_scale = 65535``): MapPolynomial maps
``65535 * f(v / 65535)`` and a delta ``d`` adds ``65535 * d``.  List-2 data are
normalised (``full_scale = 1``): MapTable indexes ``x * 65535``.  Nothing is
clipped: the SDK pins results to 0..1, rawlab keeps out-of-range values.

Applied and unapplied opcodes
-----------------------------
An opcode that was applied is removed from ``frame.opcodes``, so no stage can
apply it twice.  An opcode the stage cannot apply (an unknown id, a warp in the
wrong list, a malformed area, a non-Bayer CFA for the bad-pixel fixes) is kept
in ``frame.opcodes`` whether or not it is optional: after a develop,
``frame.opcodes`` lists exactly what was *not* applied, which ``rawlab info``-
like reports can show.  The develop never fails on an opcode.  Applied
lens-shading opcodes (GainMap, FixVignetteRadial) are what a look that puts a
share of the lens fall-off back needs: when :class:`~rawlab.core.frame.Frame`
has an ``applied_opcodes`` field they are appended there (see
:func:`record_applied`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern, SensorInfo
from rawlab.core.opcodes import (
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
)
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.optics.dng_vignette import fix_vignette_radial_gain
from rawlab.errors import StageError

__all__ = [
    "DngOpcodesRawParams",
    "DngOpcodesLinearParams",
    "OpcodeNotApplicable",
    "OpcodeResult",
    "dng_opcodes_raw",
    "dng_opcodes_linear",
    "apply_opcode_list",
    "apply_map_table",
    "apply_map_polynomial",
    "apply_gain_map",
    "gain_map_field",
    "apply_per_row_column",
    "fix_bad_pixels",
    "bad_pixel_mask_constant",
    "bad_pixel_mask_list",
    "trim_frame",
    "record_applied",
    "BAYER_PHASES",
]

#: DNG BayerPhase (FixBadPixels opcodes) -> CFA layout of the image's top-left 2x2.
BAYER_PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
#: The 16-bit range the DNG 0..1 opcodes are defined on.
FULL_SCALE_16BIT = 65535.0
#: Bad-pixel replacement gives up on a pixel with no good same-colour neighbour
#: within this many pixels (it stays as it was).
MAX_BAD_PIXEL_RADIUS = 16
_CHUNK = 200_000


class OpcodeNotApplicable(Exception):
    """Raised by an applier for an opcode it cannot apply (the opcode is kept)."""


@dataclass(frozen=True)
class DngOpcodesRawParams(Params):
    """Parameters of ``dng_opcodes_raw`` (OpcodeList1)."""

    VERSION: ClassVar[int] = 1
    apply: bool = param(True, doc="apply OpcodeList1 (false: leave the opcodes in the frame)")


@dataclass(frozen=True)
class DngOpcodesLinearParams(Params):
    """Parameters of ``dng_opcodes_linear`` (OpcodeList2)."""

    VERSION: ClassVar[int] = 1
    apply: bool = param(True, doc="apply OpcodeList2 (false: leave the opcodes in the frame)")


# --------------------------------------------------------------------- areas
def _as_planes(data: NDArray[np.float32]) -> NDArray[np.float32]:
    """``(H, W, P)`` view of a 2-D or 3-D buffer."""
    return data[:, :, None] if data.ndim == 2 else data


def _area_slices(area: OpcodeArea, shape: tuple[int, int, int]) -> tuple[slice, slice, slice] | None:
    """Row, column and plane slices of ``area`` clipped to ``shape``; ``None`` when empty."""
    h, w, planes = shape
    if area.row_pitch < 1 or area.col_pitch < 1:
        raise OpcodeNotApplicable(f"row/column pitch {area.row_pitch}/{area.col_pitch} must be 1 or more")
    if area.bottom <= area.top or area.right <= area.left or area.planes < 1:
        raise OpcodeNotApplicable(
            f"empty area (top, left, bottom, right) = {(area.top, area.left, area.bottom, area.right)}"
        )
    if area.top >= h or area.left >= w or area.plane >= planes:
        return None
    return (
        slice(area.top, min(area.bottom, h), area.row_pitch),
        slice(area.left, min(area.right, w), area.col_pitch),
        slice(area.plane, min(area.plane + area.planes, planes)),
    )


def _selected(start: int, stop: int, pitch: int, size: int) -> NDArray[np.intp]:
    return np.arange(start, min(stop, size), pitch, dtype=np.intp)


# ---------------------------------------------------------------- the kernels
def apply_map_table(data: NDArray[np.float32], op: MapTable, *, full_scale: float) -> None:
    """MapTable (DNG 1.6, 7.3.8), in place.

    Parameters
    ----------
    data
        float32 ``(H, W)`` or ``(H, W, P)``, modified in place.
    op
        The opcode; sample ``v`` becomes ``table[min(v, n - 1)]``, ``v`` on the
        16-bit scale.  Non-integer samples (list 2) interpolate linearly
        between entries, which equals the lookup at the integers.
    full_scale
        The buffer value of 16-bit 65535: 65535 for DN data, 1 for normalised.
    """
    sel = _area_slices(op.area, _as_planes(data).shape)
    if sel is None:
        return
    table = np.asarray(op.table, dtype=np.float32)
    if table.size == 0:
        raise OpcodeNotApplicable("empty table")
    view = _as_planes(data)[sel]
    to16 = FULL_SCALE_16BIT / full_scale
    index = np.arange(table.size, dtype=np.float32)
    mapped = np.interp(view * np.float32(to16), index, table) * (1.0 / to16)
    view[...] = mapped


def apply_map_polynomial(data: NDArray[np.float32], op: MapPolynomial, *, full_scale: float) -> None:
    """MapPolynomial (DNG 1.6, 7.3.9), in place: ``x -> sum(c[i] x^i)`` with ``x = v / full_scale``.

    ``data`` is float32 ``(H, W)`` or ``(H, W, P)``; the result is not clipped.
    """
    sel = _area_slices(op.area, _as_planes(data).shape)
    if sel is None or not op.coefficients:
        return
    view = _as_planes(data)[sel]
    x = view * np.float32(1.0 / full_scale) if full_scale != 1.0 else view.copy()
    acc = np.full_like(x, np.float32(op.coefficients[-1]))
    for c in reversed(op.coefficients[:-1]):  # Horner
        acc *= x
        acc += np.float32(c)
    if full_scale != 1.0:
        acc *= np.float32(full_scale)
    view[...] = acc


def _interp_weights(
    index: NDArray[np.intp], size: int, origin: float, spacing: float, points: int
) -> NDArray[np.float32]:
    """Dense ``(n, points)`` bilinear weights of grid points for pixel indices."""
    if points == 1:
        return np.ones((index.size, 1), dtype=np.float32)
    if not spacing > 0:
        raise OpcodeNotApplicable(f"map spacing {spacing!r} must be positive")
    f = ((index + 0.5) / size - origin) / spacing
    f = np.clip(f, 0.0, points - 1)
    i0 = np.minimum(np.floor(f).astype(np.intp), points - 2)
    frac = (f - i0).astype(np.float32)
    weights = np.zeros((index.size, points), dtype=np.float32)
    rows = np.arange(index.size)
    weights[rows, i0] = 1.0 - frac
    weights[rows, i0 + 1] += frac
    return weights


def gain_map_field(
    op: GainMap,
    rows: NDArray[np.intp],
    cols: NDArray[np.intp],
    *,
    height: int,
    width: int,
    map_plane: int = 0,
) -> NDArray[np.float32]:
    """The gains of a GainMap (DNG 1.6, 7.3.10) at the given pixel rows and columns.

    Parameters
    ----------
    op
        The GainMap.
    rows, cols
        Pixel indices in an image of ``height`` x ``width``.
    map_plane
        Which plane of the map.

    Returns
    -------
    numpy.ndarray
        float32 ``(len(rows), len(cols))``: bilinear interpolation of the grid
        at ``((r + 0.5) / height, (c + 0.5) / width)``, edge values outside.
    """
    if not np.all(np.isfinite([op.origin_v, op.origin_h, op.spacing_v, op.spacing_h])):
        raise OpcodeNotApplicable("map origin and spacing must be finite")
    grid = np.asarray(op.gains, dtype=np.float32)[:, :, map_plane]
    w_rows = _interp_weights(np.asarray(rows), height, op.origin_v, op.spacing_v, op.points_v)
    w_cols = _interp_weights(np.asarray(cols), width, op.origin_h, op.spacing_h, op.points_h)
    return np.ascontiguousarray(w_rows @ (grid @ w_cols.T), dtype=np.float32)


def apply_gain_map(data: NDArray[np.float32], op: GainMap) -> None:
    """GainMap (DNG 1.6, 7.3.10), in place: multiply the area's samples by the map.

    ``data`` is float32 ``(H, W)`` (a mosaic: row/column pitch 2 picks one CFA
    site) or ``(H, W, P)`` (image plane ``p`` uses map plane
    ``min(p, MapPlanes - 1)``).  Positions are relative to the whole image.
    Gains are linear factors; nothing is clipped.
    """
    planes_view = _as_planes(data)
    h, w, _ = planes_view.shape
    sel = _area_slices(op.area, planes_view.shape)
    if sel is None:
        return
    rows = _selected(op.area.top, op.area.bottom, op.area.row_pitch, h)
    cols = _selected(op.area.left, op.area.right, op.area.col_pitch, w)
    for p in range(sel[2].start, sel[2].stop):
        field = gain_map_field(op, rows, cols, height=h, width=w, map_plane=min(p, op.map_planes - 1))
        planes_view[sel[0], sel[1], p] *= field


def apply_per_row_column(
    data: NDArray[np.float32],
    op: DeltaPerRow | DeltaPerColumn | ScalePerRow | ScalePerColumn,
    *,
    full_scale: float,
) -> None:
    """DeltaPerRow/Column and ScalePerRow/Column (DNG 1.6, 7.3.11-14), in place.

    Value ``k`` belongs to the ``k``-th selected row (column) of the area,
    ``top + k * RowPitch``.  Deltas are on the 0..1 scale (times
    ``full_scale`` on the buffer); scales are plain factors.
    """
    planes_view = _as_planes(data)
    h, w, _ = planes_view.shape
    sel = _area_slices(op.area, planes_view.shape)
    a = op.area
    per_row = isinstance(op, (DeltaPerRow, ScalePerRow))
    expected = -(-(a.bottom - a.top) // a.row_pitch) if per_row else -(-(a.right - a.left) // a.col_pitch)
    values = np.asarray(op.values, dtype=np.float32).reshape(-1)
    if values.size != expected:
        raise OpcodeNotApplicable(f"{values.size} values for {expected} selected {'rows' if per_row else 'columns'}")
    if sel is None:
        return
    view = planes_view[sel]
    n = view.shape[0] if per_row else view.shape[1]
    v = values[:n]
    v = v[:, None, None] if per_row else v[None, :, None]
    if isinstance(op, (DeltaPerRow, DeltaPerColumn)):
        view += v * np.float32(full_scale)
    else:
        view *= v


# ----------------------------------------------------------------- bad pixels
def bad_pixel_mask_constant(data: NDArray[np.float32], op: FixBadPixelsConstant, *, full_scale: float) -> NDArray[np.bool_]:
    """Samples equal to the opcode's constant (a 16-bit value, scaled to the buffer)."""
    target = np.float32(op.constant * full_scale / FULL_SCALE_16BIT)
    if full_scale == FULL_SCALE_16BIT:
        return data == target
    return np.abs(data - target) <= np.float32(0.5 * full_scale / FULL_SCALE_16BIT)


def bad_pixel_mask_list(shape: tuple[int, int], op: FixBadPixelsList) -> NDArray[np.bool_]:
    """Mask of the listed points ``(row, col)`` and rectangles ``(top, left, bottom, right)``
    (exclusive ends), clipped to ``shape``."""
    h, w = shape
    mask = np.zeros((h, w), dtype=bool)
    if op.bad_points:
        pts = np.asarray(op.bad_points, dtype=np.int64).reshape(-1, 2)
        keep = (pts[:, 0] >= 0) & (pts[:, 0] < h) & (pts[:, 1] >= 0) & (pts[:, 1] < w)
        mask[pts[keep, 0], pts[keep, 1]] = True
    for top, left, bottom, right in op.bad_rects:
        mask[max(top, 0) : min(bottom, h), max(left, 0) : min(right, w)] = True
    return mask


def _neighbour_offsets(radius: int) -> list[tuple[int, int]]:
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1) if (dy, dx) != (0, 0)]


def fix_bad_pixels(
    data: NDArray[np.float32],
    bad: NDArray[np.bool_],
    *,
    color_index: NDArray[np.int8] | None = None,
) -> None:
    """Replace bad samples by the mean of their good same-colour neighbours, in place.

    Parameters
    ----------
    data
        float32 ``(H, W)`` mosaic or ``(H, W, P)`` planes, modified in place.
    bad
        ``(H, W)`` (or ``(H, W, P)``) mask of defective samples.
    color_index
        ``(H, W)`` CFA colour of every site for a mosaic (same-colour
        neighbours only); ``None`` for planar data.

    Notes
    -----
    The window around a bad sample grows (radius 2, 4, 8, 16 px) until it
    holds a good same-colour neighbour; a sample with none within
    :data:`MAX_BAD_PIXEL_RADIUS` keeps its value.  Work is done in chunks, so a
    hostile list never allocates more than a few tens of MB.
    """
    planes_view = _as_planes(data)
    h, w, n_planes = planes_view.shape
    bad3 = bad[:, :, None] if bad.ndim == 2 else bad
    bad3 = np.broadcast_to(bad3, planes_view.shape)
    for p in range(n_planes):
        plane = planes_view[:, :, p]
        bad_p = bad3[:, :, p]
        ys, xs = np.nonzero(bad_p)
        radius = 2 if color_index is not None else 1
        while ys.size and radius <= MAX_BAD_PIXEL_RADIUS:
            offsets = np.array(_neighbour_offsets(radius), dtype=np.intp)
            todo_y, todo_x, values = [], [], []
            chunk = max(1, _CHUNK // len(offsets))
            for start in range(0, ys.size, chunk):
                y, x = ys[start : start + chunk], xs[start : start + chunk]
                ny = y[:, None] + offsets[None, :, 0]
                nx = x[:, None] + offsets[None, :, 1]
                ok = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
                ny_c, nx_c = np.clip(ny, 0, h - 1), np.clip(nx, 0, w - 1)
                ok &= ~bad_p[ny_c, nx_c]
                if color_index is not None:
                    ok &= color_index[ny_c, nx_c] == color_index[y, x][:, None]
                count = ok.sum(axis=1)
                total = np.where(ok, plane[ny_c, nx_c], 0.0).sum(axis=1, dtype=np.float64)
                found = count > 0
                todo_y.append(y[~found])
                todo_x.append(x[~found])
                values.append((y[found], x[found], (total[found] / count[found]).astype(np.float32)))
            for y, x, v in values:  # write after reading, so fixed samples are not used as sources
                plane[y, x] = v
            ys, xs = np.concatenate(todo_y), np.concatenate(todo_x)
            radius *= 2


# ---------------------------------------------------------------- trim bounds
def _trim_crop(crop: tuple[int, int, int, int] | None, top: int, left: int, h: int, w: int):
    if crop is None:
        return None
    ct, cl, ch, cw = crop
    t, l = max(ct - top, 0), max(cl - left, 0)
    b, r = min(ct + ch - top, h), min(cl + cw - left, w)
    return (t, l, b - t, r - l) if b > t and r > l else None


def trim_frame(frame: Frame, op: TrimBounds) -> Frame:
    """TrimBounds (DNG 1.6, 7.3.6): keep rows ``top..bottom`` and columns ``left..right``.

    The CFA phase, the default crop, the black-level pattern phase and deltas
    follow the new origin.  On raw data with an ActiveArea the trim must
    contain the active area (it then only moves it); otherwise the opcode is
    not applicable.
    """
    h, w = frame.height, frame.width
    top, left = max(op.top, 0), max(op.left, 0)
    bottom, right = min(op.bottom, h), min(op.right, w)
    if bottom <= top or right <= left:
        raise OpcodeNotApplicable(f"bounds {(op.top, op.left, op.bottom, op.right)} leave nothing of the {h}x{w} image")
    sensor = frame.sensor
    nh, nw = bottom - top, right - left
    if sensor.active_area is not None:
        at, al, ab, ar = sensor.active_area
        if not (top <= at and left <= al and ab <= bottom and ar <= right):
            raise OpcodeNotApplicable("bounds cut into the active area")
        new_sensor = dataclasses.replace(sensor, active_area=(at - top, al - left, ab - top, ar - left))
    else:
        black = np.asarray(sensor.black_level_dn)
        changes: dict = dict(
            crop_px=_trim_crop(sensor.crop_px, top, left, nh, nw),
            black_level_dn=np.roll(black, (-top, -left), axis=(0, 1)),
        )
        if sensor.cfa is not None:
            changes["cfa"] = sensor.cfa.shifted(top, left)
        if sensor.black_level_delta_v_dn is not None and len(sensor.black_level_delta_v_dn) == h:
            changes["black_level_delta_v_dn"] = np.asarray(sensor.black_level_delta_v_dn)[top:bottom]
        if sensor.black_level_delta_h_dn is not None and len(sensor.black_level_delta_h_dn) == w:
            changes["black_level_delta_h_dn"] = np.asarray(sensor.black_level_delta_h_dn)[left:right]
        new_sensor = dataclasses.replace(sensor, **changes)
    data = np.ascontiguousarray(frame.data[top:bottom, left:right])
    return frame.replace(data=data, sensor=new_sensor)


# -------------------------------------------------------------- the list driver
@dataclass(frozen=True)
class OpcodeResult:
    """What :func:`apply_opcode_list` did."""

    frame: Frame
    applied: tuple[Opcode, ...]
    not_applied: tuple[tuple[Opcode, str], ...]


def _touched_channels(frame: Frame, area: OpcodeArea) -> list[int]:
    """Colour channels (0..2) whose samples an area opcode changes."""
    if frame.data.ndim == 3:
        return [c for c in range(area.plane, area.plane + area.planes) if c < 3]
    cfa = frame.sensor.cfa
    if cfa is None or area.plane > 0:
        return [0, 1, 2] if area.plane == 0 else []
    ry, rx = cfa.shape
    rows = _selected(area.top, area.bottom, area.row_pitch, frame.height)[:ry]
    cols = _selected(area.left, area.right, area.col_pitch, frame.width)[:rx]
    index = cfa.as_array()
    return sorted({int(index[r % ry, c % rx]) for r in rows for c in cols})


def _update_clip(clip: NDArray[np.float32], channels: Sequence[int], func: Callable[[float], float]) -> None:
    for c in channels:
        if np.isfinite(clip[c]):
            clip[c] = np.float32(func(float(clip[c])))


def _map_scalar(op: Opcode, full_scale: float) -> Callable[[float], float]:
    """The opcode's mapping of one value (for the clip level)."""

    def f(v: float) -> float:
        sample = np.full((1, 1, 1), v, dtype=np.float32)
        area = dataclasses.replace(op.area, top=0, left=0, bottom=1, right=1, plane=0, planes=1,
                                   row_pitch=1, col_pitch=1)
        apply = apply_map_table if isinstance(op, MapTable) else apply_map_polynomial
        apply(sample, dataclasses.replace(op, area=area), full_scale=full_scale)
        return float(sample[0, 0, 0])

    return f


Applier = Callable[[Frame, NDArray[np.float32], Opcode, float], Frame | None]


def _apply_area_op(frame: Frame, data: NDArray[np.float32], op: Opcode, full_scale: float) -> Frame | None:
    """Apply one list-2-type opcode to ``data`` in place; update the clip level of ``frame``.

    Returns ``None`` when the opcode is not of a kind handled here.
    """
    clip = frame.clip_level.copy()
    if isinstance(op, (MapTable, MapPolynomial)):
        (apply_map_table if isinstance(op, MapTable) else apply_map_polynomial)(data, op, full_scale=full_scale)
        _update_clip(clip, _touched_channels(frame, op.area), _map_scalar(op, full_scale))
    elif isinstance(op, GainMap):
        apply_gain_map(data, op)
        lowest = min(1.0, float(np.min(op.gains))) if op.gains.size else 1.0
        _update_clip(clip, _touched_channels(frame, op.area), lambda v: v * lowest)
    elif isinstance(op, (DeltaPerRow, DeltaPerColumn, ScalePerRow, ScalePerColumn)):
        apply_per_row_column(data, op, full_scale=full_scale)
        values = np.asarray(op.values, dtype=np.float64)
        low = float(values.min()) if values.size else 0.0
        if isinstance(op, (DeltaPerRow, DeltaPerColumn)):
            _update_clip(clip, _touched_channels(frame, op.area), lambda v: v + min(0.0, low) * full_scale)
        else:
            _update_clip(clip, _touched_channels(frame, op.area), lambda v: v * min(1.0, low))
    elif isinstance(op, FixVignetteRadial):
        if not (np.all(np.isfinite(op.k)) and np.all(np.isfinite(op.center))):
            raise OpcodeNotApplicable("coefficients and centre must be finite")
        gain = fix_vignette_radial_gain(data.shape[0], data.shape[1], k=op.k, center=op.center)
        data *= gain[:, :, None] if data.ndim == 3 else gain
        lowest = min(1.0, float(gain.min()))
        _update_clip(clip, [0, 1, 2], lambda v: v * lowest)
    elif isinstance(op, (FixBadPixelsConstant, FixBadPixelsList)):
        color_index = None
        if data.ndim == 2:
            if op.bayer_phase not in range(4):
                raise OpcodeNotApplicable(f"BayerPhase {op.bayer_phase} is not 0..3")
            color_index = CfaPattern.from_string(BAYER_PHASES[op.bayer_phase]).color_index_map(*data.shape)
        if isinstance(op, FixBadPixelsConstant):
            bad = bad_pixel_mask_constant(data, op, full_scale=full_scale)
        else:
            bad = bad_pixel_mask_list(data.shape[:2], op)
        fix_bad_pixels(data, bad, color_index=color_index)
    else:
        return None
    return frame.replace(clip_level=clip)


def apply_opcode_list(
    frame: Frame,
    list_index: int,
    *,
    full_scale: float,
    extra: Applier | None = None,
) -> OpcodeResult:
    """Apply the opcodes of list ``list_index`` held by ``frame``, in file order.

    Parameters
    ----------
    frame
        The frame; its data are copied once, then changed in place.
    list_index
        1, 2 or 3.
    full_scale
        The buffer value of 1.0 (65535 for DN data, 1 for normalised data).
    extra
        An applier for further opcode kinds (warps); returns the new frame, or
        ``None`` for a kind it does not handle.

    Returns
    -------
    OpcodeResult
        The frame (``opcodes`` without the applied ones), and what was and was
        not applied with the reason.
    """
    ops = [op for op in frame.opcodes if op.list_index == list_index]
    if not ops:
        return OpcodeResult(frame, (), ())
    work = frame.replace(data=frame.data.copy())
    applied: list[Opcode] = []
    skipped: list[tuple[Opcode, str]] = []
    for op in ops:
        try:
            if isinstance(op, TrimBounds):
                new = trim_frame(work, op)
            else:
                new = _apply_area_op(work, work.data, op, full_scale)
                if new is None and extra is not None:
                    new = extra(work, work.data, op, full_scale)
            if new is None:
                skipped.append((op, f"{op.name} is not applied in OpcodeList{list_index}"))
                continue
        except OpcodeNotApplicable as exc:
            skipped.append((op, f"{op.name}: {exc}"))
            continue
        work = new
        applied.append(op)
    done = {id(op) for op in applied}
    remaining = tuple(op for op in frame.opcodes if id(op) not in done)
    out = record_applied(work.replace(opcodes=remaining), applied)
    return OpcodeResult(out, tuple(applied), tuple(skipped))


def record_applied(frame: Frame, applied: Sequence[Opcode]) -> Frame:
    """Keep the applied lens-shading opcodes where a look can find them.

    Appends the applied GainMap / FixVignetteRadial records to
    ``frame.applied_opcodes`` when the Frame type has that field; otherwise
    the frame is returned unchanged.
    """
    shading = tuple(op for op in applied if isinstance(op, (GainMap, FixVignetteRadial)))
    if not shading or "applied_opcodes" not in getattr(Frame, "__dataclass_fields__", {}):
        return frame
    return frame.replace(applied_opcodes=tuple(getattr(frame, "applied_opcodes")) + shading)


# --------------------------------------------------------------------- stages
@stage("dng_opcodes_raw", params=DngOpcodesRawParams, consumes=(Encoding.CFA, Encoding.CAMERA_RGB))
def dng_opcodes_raw(frame: Frame, p: DngOpcodesRawParams) -> Frame:
    """Apply OpcodeList1 to the stored raw data (DN), before ``normalize``.

    In and out: ``CFA`` or LinearRaw ``CAMERA_RGB`` in DN (coordinates of the
    stored image, 16-bit scale).  Applied opcodes leave ``frame.opcodes``;
    those that cannot be applied stay there.
    """
    if not p.apply:
        return frame
    return apply_opcode_list(frame, 1, full_scale=FULL_SCALE_16BIT).frame


def _check_normalized(frame: Frame) -> bool:
    s = frame.sensor
    return s.active_area is None and s.linearization_table is None and bool(np.all(s.white_level_dn == 1.0))


@stage("dng_opcodes_linear", params=DngOpcodesLinearParams, consumes=(Encoding.CFA, Encoding.CAMERA_RGB))
def dng_opcodes_linear(frame: Frame, p: DngOpcodesLinearParams) -> Frame:
    """Apply OpcodeList2 to linear, normalised data, after ``normalize``.

    In and out: ``CFA`` ``(H, W)`` or LinearRaw ``CAMERA_RGB`` ``(H, W, 3)``,
    linear, black 0 and white 1 (coordinates of the active area).  A frame
    that is not normalised yet is refused.
    """
    if not p.apply or not any(op.list_index == 2 for op in frame.opcodes):
        return frame
    if not _check_normalized(frame):
        raise StageError("dng_opcodes_linear: the frame is not normalised; run 'normalize' first")
    return apply_opcode_list(frame, 2, full_scale=1.0).frame
