"""The ``normalize`` stage: raw digital numbers -> linear 0..1 sensor values.

Implements "Mapping Raw Values to Linear Reference Values" of the DNG
specification (Adobe, Digital Negative Specification 1.6, chapter 5), without
the final clip:

1. **Linearization**: each stored value ``v`` is replaced by
   ``LinearizationTable[min(v, len - 1)]`` when the table is present.
2. **Black subtraction**: the black level of a pixel is the BlackLevel repeat
   pattern (``BlackLevelRepeatDim`` rows x cols, per sample) plus
   ``BlackLevelDeltaV[row]`` plus ``BlackLevelDeltaH[col]``.  As the
   specification states, the origin of the repeat pattern and the index of the
   delta tables are the top-left corner of the **ActiveArea** (the deltas hold
   one value per active row / column).
3. **Rescaling**: the result is multiplied by ``1 / (WhiteLevel - max black)``
   per sample, where "max black" is the largest black level of that sample
   over the image (pattern plus deltas), as the specification and the DNG SDK
   do; so a pixel at WhiteLevel is at least 1.0.
4. **Active area**: only the ActiveArea rectangle is kept.

The CFA pattern and the default crop in :class:`SensorInfo` are already
relative to the active area, so they are carried unchanged; the noise profile
is in normalised units already (DNG NoiseProfile) and is also unchanged.
Nothing is clipped: noise below black stays negative.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import SensorInfo
from rawlab.core.params import Params
from rawlab.core.stage import stage
from rawlab.errors import StageError

__all__ = ["NormalizeParams", "normalize", "normalize_dng_levels", "normalize_dng_levels_reference"]


@dataclass(frozen=True)
class NormalizeParams(Params):
    """The ``normalize`` stage has no parameters: the file's levels decide."""

    VERSION: ClassVar[int] = 1


def _prepare(
    raw_dn: NDArray,
    black_level_dn: NDArray,
    white_level_dn: NDArray,
    black_level_delta_h_dn: NDArray | None,
    black_level_delta_v_dn: NDArray | None,
    linearization_table: NDArray | None,
    active_area: tuple[int, int, int, int] | None,
):
    """Validate the levels and bring them into the shapes the kernels use."""
    raw = np.asarray(raw_dn)
    if raw.ndim == 2:
        raw3 = raw[:, :, None]
    elif raw.ndim == 3:
        raw3 = raw
    else:
        raise StageError(f"normalize: expected an (H, W) or (H, W, samples) buffer, got shape {raw.shape}")
    height, width, samples = raw3.shape
    if active_area is None:
        top, left, bottom, right = 0, 0, height, width
    else:
        top, left, bottom, right = (int(v) for v in active_area)
        if not (0 <= top < bottom <= height and 0 <= left < right <= width):
            raise StageError(
                f"normalize: active area (top, left, bottom, right) = {tuple(active_area)} "
                f"does not fit the {height}x{width} image"
            )
    h, w = bottom - top, right - left

    black = np.asarray(black_level_dn, dtype=np.float64)
    if black.ndim != 3:
        black = black.reshape(black.shape[:2] + (-1,)) if black.ndim == 2 else black.reshape(1, 1, -1)
    if black.shape[2] == 1 and samples > 1:
        black = np.repeat(black, samples, axis=2)
    if black.shape[2] != samples or black.shape[0] < 1 or black.shape[1] < 1:
        raise StageError(
            f"normalize: black level pattern of shape {black.shape} does not fit "
            f"{samples} sample(s) per pixel"
        )
    white = np.asarray(white_level_dn, dtype=np.float64).reshape(-1)
    if white.size == 1:
        white = np.repeat(white, samples)
    if white.size != samples:
        raise StageError(f"normalize: {white.size} white levels for {samples} sample(s) per pixel")

    def delta(values: NDArray | None, active: int, stored: int, start: int, name: str) -> NDArray:
        if values is None:
            return np.zeros(active, dtype=np.float64)
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == active:
            return values
        if values.size == stored:  # lenient: a writer that counted the stored size
            return values[start : start + active]
        raise StageError(
            f"normalize: {name} has {values.size} values, expected {active} (one per active line)"
        )

    delta_h = delta(black_level_delta_h_dn, w, width, left, "BlackLevelDeltaH")
    delta_v = delta(black_level_delta_v_dn, h, height, top, "BlackLevelDeltaV")

    # Largest black per sample over the image: pattern phase + the largest
    # deltas of the rows / columns in that phase.
    rep_r, rep_c = black.shape[:2]
    n_r, n_c = min(rep_r, h), min(rep_c, w)
    max_v = np.array([delta_v[j::rep_r].max() for j in range(n_r)])
    max_h = np.array([delta_h[k::rep_c].max() for k in range(n_c)])
    max_black = (black[:n_r, :n_c] + max_v[:, None, None] + max_h[None, :, None]).max(axis=(0, 1))
    span = white - max_black
    if np.any(~np.isfinite(span)) or np.any(span <= 0):
        raise StageError(
            f"normalize: white level {white.tolist()} is not above the black level {max_black.tolist()}"
        )
    scale = 1.0 / span

    if linearization_table is None:
        table = np.zeros(0, dtype=np.float64)
    else:
        table = np.asarray(linearization_table, dtype=np.float64).reshape(-1)
        if table.size == 0:
            raise StageError("normalize: empty linearization table")
    return raw3, (top, left, h, w), black, delta_h, delta_v, table, scale, max_black


def normalize_dng_levels(
    raw_dn: NDArray,
    *,
    black_level_dn: NDArray | float,
    white_level_dn: NDArray | float,
    black_level_delta_h_dn: NDArray | None = None,
    black_level_delta_v_dn: NDArray | None = None,
    linearization_table: NDArray | None = None,
    active_area: tuple[int, int, int, int] | None = None,
) -> NDArray[np.float32]:
    """Map stored raw values to linear values with black 0 and white 1 (DNG 1.6, ch. 5).

    Parameters
    ----------
    raw_dn
        Stored samples in digital numbers, ``(H, W)`` for a mosaic or
        ``(H, W, samples)`` for LinearRaw data (any numeric dtype; float32
        holding integers is what readers give).
    black_level_dn
        BlackLevel repeat pattern ``(rows, cols, samples)`` (a scalar or
        per-sample vector also works), origin at the active area's top-left.
    white_level_dn
        WhiteLevel, one value or one per sample.
    black_level_delta_h_dn, black_level_delta_v_dn
        BlackLevelDeltaH (one per active column) / DeltaV (one per active row).
    linearization_table
        LinearizationTable; stored values index it, clamped to its last entry.
    active_area
        ``(top, left, bottom, right)`` in the stored array, or ``None``.

    Returns
    -------
    numpy.ndarray
        float32 ``(bottom - top, right - left[, samples])``: black 0, white 1
        (at least), not clipped, so noise below black stays negative.
    """
    raw3, (top, left, h, w), black, delta_h, delta_v, table, scale, _ = _prepare(
        raw_dn, black_level_dn, white_level_dn, black_level_delta_h_dn, black_level_delta_v_dn,
        linearization_table, active_area,
    )
    if raw3.dtype != np.float32:
        raw3 = raw3.astype(np.float32)
    out = np.empty((h, w, raw3.shape[2]), dtype=np.float32)
    _normalize_kernel(raw3, top, left, table, black, delta_h, delta_v, scale, out)
    return out[:, :, 0] if np.asarray(raw_dn).ndim == 2 else out


@njit(parallel=True, cache=True)
def _normalize_kernel(raw, top, left, table, black, delta_h, delta_v, scale, out):  # pragma: no cover
    h, w, samples = out.shape
    rep_r, rep_c = black.shape[0], black.shape[1]
    n_table = table.size
    for y in prange(h):
        by = y % rep_r
        dv = delta_v[y]
        for x in range(w):
            bx = x % rep_c
            dh = delta_h[x]
            for s in range(samples):
                v = np.float64(raw[top + y, left + x, s])
                if n_table > 0:  # nearest entry, clamped (NaN -> entry 0)
                    if v >= n_table - 1:
                        i = n_table - 1
                    elif v > 0.0:
                        i = int(v + 0.5)
                    else:
                        i = 0
                    v = table[i]
                out[y, x, s] = np.float32((v - black[by, bx, s] - dv - dh) * scale[s])


def normalize_dng_levels_reference(
    raw_dn: NDArray,
    *,
    black_level_dn: NDArray | float,
    white_level_dn: NDArray | float,
    black_level_delta_h_dn: NDArray | None = None,
    black_level_delta_v_dn: NDArray | None = None,
    linearization_table: NDArray | None = None,
    active_area: tuple[int, int, int, int] | None = None,
) -> NDArray[np.float32]:
    """NumPy twin of :func:`normalize_dng_levels` (tests compare the two)."""
    raw3, (top, left, h, w), black, delta_h, delta_v, table, scale, _ = _prepare(
        raw_dn, black_level_dn, white_level_dn, black_level_delta_h_dn, black_level_delta_v_dn,
        linearization_table, active_area,
    )
    values = raw3[top : top + h, left : left + w].astype(np.float64)
    if table.size:
        clean = np.nan_to_num(np.maximum(values, 0.0), nan=0.0, posinf=table.size)
        index = np.clip(np.floor(clean + 0.5), 0, table.size - 1).astype(np.intp)
        values = table[index]
    rep_r, rep_c = black.shape[:2]
    pattern = np.tile(black, (-(-h // rep_r), -(-w // rep_c), 1))[:h, :w]
    level = pattern + delta_v[:, None, None] + delta_h[None, :, None]
    out = ((values - level) * scale).astype(np.float32)
    return out[:, :, 0] if np.asarray(raw_dn).ndim == 2 else out


def _is_normalized(sensor: SensorInfo) -> bool:
    return (
        sensor.linearization_table is None
        and sensor.active_area is None
        and sensor.black_level_delta_h_dn is None
        and sensor.black_level_delta_v_dn is None
        and bool(np.all(sensor.black_level_dn == 0.0))
        and bool(np.all(sensor.white_level_dn == 1.0))
    )


@stage("normalize", params=NormalizeParams, consumes=(Encoding.CFA, Encoding.CAMERA_RGB))
def normalize(frame: Frame, p: NormalizeParams) -> Frame:
    """Linearize, subtract black, scale white to 1 and keep the active area.

    In: ``CFA`` ``(H, W)`` or LinearRaw ``CAMERA_RGB`` ``(H, W, 3)`` in DN.
    Out: same encoding, linear, black 0 and white 1, not clipped; the sensor
    info says black 0 / white 1 with no table and no active area, and
    ``clip_level`` (DN, as readers give it) is mapped to the normalised scale:
    1.0 for a clip at WhiteLevel, 1.0 where unknown.  Already normalised data
    passes unchanged.
    """
    sensor = frame.sensor
    if _is_normalized(sensor):
        return frame
    levels = dict(
        black_level_dn=sensor.black_level_dn,
        white_level_dn=sensor.white_level_dn,
        black_level_delta_h_dn=sensor.black_level_delta_h_dn,
        black_level_delta_v_dn=sensor.black_level_delta_v_dn,
        linearization_table=sensor.linearization_table,
        active_area=sensor.active_area,
    )
    data = normalize_dng_levels(frame.data, **levels)
    new_sensor = dataclasses.replace(
        sensor,
        black_level_dn=np.zeros((1, 1, 1)),
        black_level_delta_h_dn=None,
        black_level_delta_v_dn=None,
        white_level_dn=np.ones(1),
        linearization_table=None,
        active_area=None,
    )
    return frame.replace(data=data, sensor=new_sensor, clip_level=_normalized_clip_level(frame, levels))


def _normalized_clip_level(frame: Frame, levels: dict) -> NDArray[np.float32]:
    """The frame's clip level (DN, per colour) on the normalised scale; 1.0 where unknown.

    A clip level at WhiteLevel becomes exactly 1.0 (the pixels with the
    largest black level clip there first).
    """
    *_, scale, max_black = _prepare(
        frame.data, levels["black_level_dn"], levels["white_level_dn"], levels["black_level_delta_h_dn"],
        levels["black_level_delta_v_dn"], levels["linearization_table"], levels["active_area"],
    )
    if scale.size == 1:
        scale, max_black = np.repeat(scale, 3), np.repeat(max_black, 3)
    clip_dn = np.asarray(frame.clip_level, dtype=np.float64)
    clip = np.where(np.isfinite(clip_dn), (clip_dn - max_black) * scale, 1.0)
    return np.where(clip > 0, clip, 1.0).astype(np.float32)
