"""The ``white_balance`` stage: divide camera data by the camera neutral.

The neutral is the camera's response to the scene white, scaled so its green
sample is 1; the gains are its inverse (green gain 1), applied to every CFA
site by its colour or to every channel of camera RGB.  Where the neutral comes
from:

* ``as_shot``: DNG AsShotNeutral; else AsShotWhiteXY converted with the colour
  matrices (``XYZtoCamera(xy) . XYZ(xy, Y = 1)``, DNG 1.6 chapter 6); else gray
  world.
* ``gray_world``: the mean of each channel over unclipped pixels is taken as
  the neutral (Buchsbaum, "A spatial processor model for object colour
  perception", J. Franklin Institute 310(1), 1980), every colour averaged over
  the same CFA cells (or pixels): a cell with any site at or above 95 % of its
  clip level is left out, and the darkest and brightest 1 % are trimmed
  (version 2; version 1 dropped clipped sites per channel, which biased a
  channel that clips first towards a low mean).
* ``manual``: gains given as (R, G, B); only their ratios count (they are
  scaled to green 1 -- brightness is the exposure stage's job).

The neutral is recorded in ``color.applied_neutral`` so the colour stages can
undo it consistently, and ``clip_level`` is multiplied by the gains.  Running
the stage on data already balanced re-balances from the raw data (the new
gains are relative to the applied neutral): it never compounds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.color.dng_matrices import xy_to_camera_neutral
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError

__all__ = [
    "WhiteBalanceParams",
    "white_balance",
    "apply_white_balance_gains",
    "neutral_gray_world",
]

_GRAY_WORLD_MAX_SAMPLES = 1 << 20  # per channel; a strided subsample of bigger frames
_GRAY_WORLD_TRIM = 0.01
_GRAY_WORLD_CLIP_FRACTION = 0.95


@dataclass(frozen=True)
class WhiteBalanceParams(Params):
    """Parameters of the ``white_balance`` stage.

    Version 2: gray world averages every colour over the same CFA cells.
    """

    VERSION: ClassVar[int] = 2
    mode: str = param(
        "as_shot",
        choices=("as_shot", "gray_world", "manual"),
        doc="as_shot: the camera's neutral (gray world when the file has none); gray_world; manual gains",
    )
    multipliers: tuple[float, float, float] = param(
        (1.0, 1.0, 1.0), min=1e-3, max=1e3, doc="manual mode: R, G, B gains (only the ratios count)"
    )


def apply_white_balance_gains(
    data: NDArray[np.float32], *, gains_rgb: NDArray, cfa: CfaPattern | None = None
) -> NDArray[np.float32]:
    """Multiply each CFA site (``cfa`` given) or each channel of ``(H, W, 3)`` data by its gain.

    Parameters
    ----------
    data
        ``(H, W)`` mosaic with ``cfa``, or ``(H, W, 3)`` camera RGB; linear,
        any range (not clipped).
    gains_rgb
        Three gains (R, G, B).
    cfa
        The mosaic's pattern (any repeat size) when ``data`` is a mosaic.

    Returns
    -------
    numpy.ndarray
        A new float32 array of the same shape.
    """
    gains = np.asarray(gains_rgb, dtype=np.float32).reshape(3)
    data = np.ascontiguousarray(data, dtype=np.float32)
    if cfa is None:
        if data.ndim != 3 or data.shape[2] != 3:
            raise StageError(
                f"white_balance: expected (H, W, 3) data without a CFA pattern, got {data.shape}"
            )
        return np.multiply(data, gains[None, None, :], dtype=np.float32)
    if data.ndim != 2:
        raise StageError(f"white_balance: a mosaic must be 2-D, got shape {data.shape}")
    site_gains = gains[cfa.as_array().astype(np.intp)]
    out = np.empty_like(data)
    _gain_kernel(data, np.ascontiguousarray(site_gains, dtype=np.float32), out)
    return out


@njit(parallel=True, cache=True)
def _gain_kernel(data, site_gains, out):  # pragma: no cover - compiled
    h, w = data.shape
    ry, rx = site_gains.shape
    for y in prange(h):
        row = site_gains[y % ry]
        for x in range(w):
            out[y, x] = data[y, x] * row[x % rx]


def _cell_samples(data: NDArray, cfa: CfaPattern | None) -> tuple[NDArray[np.float32], NDArray[np.intp]]:
    """A strided subsample of CFA cells (or pixels): ``(cells, sites)`` values and each site's colour.

    A mosaic is cut into its CFA repeat cells (2 x 2 for Bayer); each sampled
    cell keeps all its sites, so that the colours of one cell are judged
    together.  At most ~:data:`_GRAY_WORLD_MAX_SAMPLES` cells are kept.
    """
    if cfa is None:
        flat = data.reshape(-1, 3)
        step = max(1, flat.shape[0] // _GRAY_WORLD_MAX_SAMPLES)
        return flat[::step], np.arange(3)
    ry, rx = cfa.shape
    h, w = data.shape
    ny, nx = h // ry, w // rx
    step = max(1, int(np.ceil(np.sqrt(ny * nx / _GRAY_WORLD_MAX_SAMPLES))))
    cells = data[: ny * ry, : nx * rx].reshape(ny, ry, nx, rx)[::step, :, ::step, :]
    cells = cells.transpose(0, 2, 1, 3).reshape(-1, ry * rx)
    colours = np.array([cfa.pattern[dy][dx] for dy in range(ry) for dx in range(rx)], dtype=np.intp)
    return cells, colours


def neutral_gray_world(
    data: NDArray[np.float32], *, cfa: CfaPattern | None = None, clip_level: NDArray | None = None
) -> NDArray[np.float64]:
    """Gray-world camera neutral (green = 1) of a mosaic or camera-RGB frame.

    The scene is assumed grey on average (Buchsbaum 1980): the neutral is the
    mean of each colour over the same set of places.  Places are CFA repeat
    cells (2 x 2 for Bayer) or pixels; one is left out when any of its sites is
    at or above 95 % of its clip level or not finite (a clipped channel would
    bias its own mean down -- each colour must be averaged over the same
    places), and the darkest and brightest 1 % (by the sum of their colour
    means) are trimmed.

    Parameters
    ----------
    data
        ``(H, W)`` mosaic with ``cfa``, or ``(H, W, 3)`` camera RGB; linear.
    cfa
        The mosaic's pattern when ``data`` is a mosaic.
    clip_level
        Per-channel clip levels.

    Returns
    -------
    numpy.ndarray
        float64 ``(3,)`` neutral, green 1; ``(1, 1, 1)`` when nothing usable
        is left (a black, clipped or empty frame carries no colour information).
    """
    clip = np.full(3, np.inf) if clip_level is None else np.asarray(clip_level, dtype=np.float64).reshape(3)
    cells, colours = _cell_samples(np.asarray(data, dtype=np.float32), cfa)
    limit = (_GRAY_WORLD_CLIP_FRACTION * clip[colours]).astype(np.float32)
    usable = np.all(np.isfinite(cells) & (cells < limit), axis=1)
    cells = cells[usable].astype(np.float64)
    if cells.shape[0] == 0:
        return np.ones(3)
    # per place, the mean of each colour's sites: (places, 3)
    weights = np.zeros((colours.size, 3))
    weights[np.arange(colours.size), colours] = 1.0
    counts = weights.sum(axis=0)
    if np.any(counts == 0):
        return np.ones(3)
    per_colour = cells @ (weights / counts)
    level = per_colour.sum(axis=1)
    lo, hi = np.quantile(level, [_GRAY_WORLD_TRIM, 1.0 - _GRAY_WORLD_TRIM])
    kept = per_colour[(level >= lo) & (level <= hi)]
    means = (kept if kept.shape[0] else per_colour).mean(axis=0)
    if not np.all(means > 0):
        return np.ones(3)  # a black or empty frame: no information, leave the colours alone
    return means / means[1]


def _neutral(frame: Frame, p: WhiteBalanceParams) -> NDArray[np.float64]:
    color = frame.color
    if p.mode == "manual":
        gains = np.asarray(p.multipliers, dtype=np.float64)
        neutral = 1.0 / gains
        return neutral / neutral[1]
    if p.mode == "as_shot":
        if color.as_shot_neutral is not None:
            neutral = np.asarray(color.as_shot_neutral, dtype=np.float64).reshape(-1)
            if neutral.size != 3 or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
                raise StageError(
                    f"white_balance: AsShotNeutral must be 3 positive numbers, got {neutral.tolist()}"
                )
            return neutral / neutral[1]
        if color.as_shot_white_xy is not None and color.has_matrices:
            return xy_to_camera_neutral(color, color.as_shot_white_xy)
    # gray world (asked for, or as-shot without any as-shot information)
    data = frame.data
    clip = frame.clip_level
    cfa = frame.sensor.cfa if frame.encoding is Encoding.CFA else None
    if frame.encoding is Encoding.CFA and cfa is None:
        raise StageError("white_balance: the frame is a mosaic but its sensor info has no CFA pattern")
    if color.applied_neutral is not None:  # measure on the raw values
        applied = np.asarray(color.applied_neutral, dtype=np.float64)
        data = apply_white_balance_gains(data, gains_rgb=applied, cfa=cfa)
        clip = np.asarray(clip, dtype=np.float64) * applied
    return neutral_gray_world(data, cfa=cfa, clip_level=clip)


@stage("white_balance", params=WhiteBalanceParams, consumes=(Encoding.CFA, Encoding.CAMERA_RGB))
def white_balance(frame: Frame, p: WhiteBalanceParams) -> Frame:
    """Divide the camera data by the scene-white neutral (green gain 1).

    In: ``CFA`` or ``CAMERA_RGB``, linear, normalised.  Out: the same encoding,
    white balanced (a neutral surface has equal R, G, B), not clipped;
    ``color.applied_neutral`` records the neutral and ``clip_level`` is
    multiplied by the gains.
    """
    if frame.encoding is Encoding.CFA and frame.sensor.cfa is None:
        raise StageError("white_balance: the frame is a mosaic but its sensor info has no CFA pattern")
    neutral = _neutral(frame, p)
    previous = frame.color.applied_neutral
    previous = np.ones(3) if previous is None else np.asarray(previous, dtype=np.float64).reshape(3)
    gains = previous / neutral  # relative to what the data is already divided by
    cfa = frame.sensor.cfa if frame.encoding is Encoding.CFA else None
    data = apply_white_balance_gains(frame.data, gains_rgb=gains, cfa=cfa)
    color = dataclasses.replace(frame.color, applied_neutral=neutral)
    clip = (np.asarray(frame.clip_level, dtype=np.float64) * gains).astype(np.float32)
    return frame.replace(data=data, color=color, clip_level=clip)
