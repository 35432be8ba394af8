"""``look_vignette``: keep a share of the lens's own fall-off, and/or add a vignette.

The lens's fall-off is known only when the frame carries a correction for it:
DNG ``GainMap`` opcodes (OpcodeList2 or 3; the simulator writes one) or a
``FixVignetteRadial`` opcode (DNG 1.6, sections 7.3.7 and 7.3.10).  Their gain
``G(x, y) >= 1`` is what a full correction would multiply the image by, so the
lens's relative illumination is ``1 / G``.  Keeping a share ``keep`` of the
fall-off means the result has relative illumination ``G ** -keep``:

* when no earlier stage applied the correction (the default recipe has none),
  the image is multiplied by ``G ** (1 - keep)`` (``keep = 1``: unchanged,
  ``keep = 0``: fully corrected);
* when the opcode stages already applied it (the opcode is in
  ``frame.applied_opcodes``), the fall-off is put back: ``G ** -keep``.

Without such opcodes the lens part does nothing (nothing is guessed).  An added
vignette multiplies by ``2 ** (amount_ev * smoothstep(midpoint, 1, r))``, ``r``
the distance from the centre relative to the half-diagonal.

Linear RGB in and out (scene-referred, before the tone curve, so the fall-off
is in light units).  The frame must still have the sensor's pixel grid: the
stage runs before ``crop`` and ``orientation``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.opcodes import FixVignetteRadial, GainMap
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError
from rawlab.look._common import require_transfer

__all__ = [
    "VignetteParams",
    "look_vignette",
    "lens_correction_gain",
    "gain_map_field",
    "radial_vignette_field",
]

_GEOMETRY_STAGES = ("crop", "orientation", "mode_crop")


@dataclass(frozen=True)
class VignetteParams(Params):
    """Parameters of ``look_vignette``."""

    VERSION: ClassVar[int] = 1
    keep_lens_falloff: float = param(1.0, min=0.0, max=1.0, doc="share of the lens's own fall-off kept (1 = all)")
    amount_ev: float = param(0.0, min=-3.0, max=1.0, unit="EV", doc="added vignette at the corners (< 0 darker)")
    midpoint: float = param(0.5, min=0.0, max=0.95, doc="relative radius where the added vignette starts")


def gain_map_field(op: GainMap, height: int, width: int, *, rows=None, cols=None) -> NDArray[np.float32]:
    """A GainMap's first plane on an ``height`` x ``width`` grid (or at pixel ``rows`` x ``cols`` of it),
    placed exactly as the opcode stages apply it (:func:`rawlab.sensor.opcodes.gain_map_field`)."""
    from rawlab.sensor.opcodes import gain_map_field as field_at

    rows = np.arange(height) if rows is None else np.asarray(rows)
    cols = np.arange(width) if cols is None else np.asarray(cols)
    return field_at(op, rows, cols, height=height, width=width)


def _radius(height: int, width: int, cy: float, cx: float, norm: float) -> NDArray[np.float32]:
    y = (np.arange(height, dtype=np.float32) + np.float32(0.5) - np.float32(cy))[:, None]
    x = (np.arange(width, dtype=np.float32) + np.float32(0.5) - np.float32(cx))[None, :]
    return np.sqrt(x * x + y * y) * np.float32(1.0 / norm)


def radial_vignette_field(op: FixVignetteRadial, height: int, width: int) -> NDArray[np.float32]:
    """The FixVignetteRadial gain on an ``height`` x ``width`` grid (DNG 1.6, 7.3.7),
    as the opcode stages apply it."""
    from rawlab.optics.dng_vignette import fix_vignette_radial_gain

    return fix_vignette_radial_gain(height, width, k=tuple(op.k), center=tuple(op.center))


def lens_correction_gain(frame: Frame, opcodes=None, *, rows=None, cols=None) -> NDArray[np.float32] | None:
    """The lens's vignetting correction ``G`` on the frame's grid, or ``None`` when unknown.

    Returns ``(H, W)`` when the correction is the same for every channel, else
    ``(H, W, 3)``; with ``rows`` and ``cols`` (pixel indices), only at those
    pixels: ``(len(rows), len(cols))`` or ``(len(rows), len(cols), 3)``.
    Per-CFA-colour GainMaps (OpcodeList2 maps whose row/column pitch equals the
    CFA period) go to their CFA colour; maps in OpcodeList3 go to their planes;
    others to all channels.  Several maps for one channel are averaged (the two
    greens of a Bayer sensor).
    """
    h, w = frame.height, frame.width
    per_channel: list[list[NDArray[np.float32]]] = [[], [], []]
    cfa = frame.sensor.cfa
    for op in (frame.opcodes if opcodes is None else opcodes):
        if isinstance(op, GainMap) and op.list_index in (2, 3) and op.gains.size:
            field = gain_map_field(op, h, w, rows=rows, cols=cols)
            if op.list_index == 3:
                channels = [c for c in range(op.area.plane, op.area.plane + op.area.planes) if c < 3]
            elif cfa is not None and (op.area.row_pitch, op.area.col_pitch) == cfa.shape:
                ry, rx = cfa.shape
                channels = [cfa.pattern[op.area.top % ry][op.area.left % rx]]
            else:
                channels = [0, 1, 2]
        elif isinstance(op, FixVignetteRadial) and any(op.k):
            field, channels = radial_vignette_field(op, h, w), [0, 1, 2]
            if rows is not None or cols is not None:
                field = field[np.ix_(np.arange(h) if rows is None else np.asarray(rows),
                                     np.arange(w) if cols is None else np.asarray(cols))]
        else:
            continue
        for c in channels:
            per_channel[c].append(field)
    if not any(per_channel):
        return None
    fields = [sum(f) / len(f) if f else None for f in per_channel]
    known = [f for f in fields if f is not None]
    fields = [f if f is not None else sum(known) / len(known) for f in fields]
    if all(f is fields[0] for f in fields):
        return np.asarray(fields[0], np.float32)
    return np.ascontiguousarray(np.stack(fields, axis=-1), dtype=np.float32)


def _ran(frame: Frame, names: tuple[str, ...]) -> bool:
    return any(r.stage in names and not r.skipped for r in frame.history)


@stage("look_vignette", params=VignetteParams, consumes=Encoding.RGB)
def look_vignette(frame: Frame, p: VignetteParams) -> Frame:
    """Keep a share of the lens's fall-off and/or add a vignette. In and out: ``RGB``, linear."""
    require_transfer(frame, "look_vignette", Transfer.LINEAR)
    h, w = frame.height, frame.width
    multiplier: NDArray[np.float32] | None = None
    keep = p.keep_lens_falloff
    pending = lens_correction_gain(frame) if keep != 1.0 else None  # not applied yet: G ** (1 - keep)
    applied = lens_correction_gain(frame, frame.applied_opcodes) if keep != 0.0 and frame.applied_opcodes else None
    for G, exponent in ((pending, 1.0 - keep), (applied, -keep)):
        if G is None:
            continue
        if _ran(frame, _GEOMETRY_STAGES):
            raise StageError("look_vignette: must run before crop and orientation (the lens model "
                             "is on the sensor's pixel grid)")
        m = np.power(np.maximum(G, np.float32(1e-6)), np.float32(exponent))
        multiplier = m if multiplier is None else multiplier * m
    if p.amount_ev != 0.0:
        r = _radius(h, w, h / 2.0, w / 2.0, 0.5 * float(np.hypot(h, w)))
        t = np.clip((r - np.float32(p.midpoint)) / np.float32(1.0 - p.midpoint), 0.0, 1.0)
        added = np.exp2(np.float32(p.amount_ev) * t * t * (np.float32(3.0) - np.float32(2.0) * t))
        multiplier = added if multiplier is None else (multiplier * (added[..., None] if multiplier.ndim == 3 else added))
    if multiplier is None:
        return frame
    m = multiplier if multiplier.ndim == 3 else multiplier[..., None]
    return frame.replace(data=np.multiply(frame.data, m, dtype=np.float32))
