"""Private helpers of :mod:`rawlab.burst`: normalised mosaics, Bayer planes,
noise profiles and tile grids.

A 2x2 Bayer mosaic ``(H, W)`` (H and W even) is handled as four planes
``(4, H/2, W/2)`` in the order of the cells ``(0,0), (0,1), (1,0), (1,1)``;
plane ``k`` holds colour ``cfa.pattern[k // 2][k % 2]``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern
from rawlab.errors import InvalidParams
from rawlab.sensor.normalize import normalize_dng_levels

#: Numba fast-math flags of the burst kernels: free reassociation (so that sums
#: vectorise), fused multiply-add, no signed zeros and reciprocals -- but not
#: ``nnan``/``ninf``: the compiler may not assume that values are finite, so a
#: non-finite value that reaches a kernel gives a defined (NaN) result instead
#: of an arbitrary one.  Non-finite input is refused at the boundary anyway
#: (:func:`check_finite`).
FINITE_SAFE_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}

#: Tile size (plane pixels) of the merge and the finest alignment level, and its stride.
TILE_PX = 16
STRIDE_PX = TILE_PX // 2


def frame_mismatch(frame: object, first: Frame) -> str | None:
    """Why ``frame`` cannot be merged with ``first`` (the burst's frame 0), or None."""
    if not isinstance(frame, Frame) or frame.encoding is not Encoding.CFA:
        return "expected a CFA frame"
    cfa = frame.sensor.cfa
    if cfa is None or not cfa.is_bayer:
        return f"only 2x2 Bayer mosaics can be merged, got {cfa and cfa.name}"
    if cfa.pattern != first.sensor.cfa.pattern:
        return f"CFA {cfa.name} differs from frame 0 ({first.sensor.cfa.name})"
    if normalized_shape(frame) != normalized_shape(first):
        h, w = normalized_shape(frame)
        h0, w0 = normalized_shape(first)
        return f"size {w}x{h} differs from frame 0 ({w0}x{h0})"
    return None


def check_frames(frames: list[Frame]) -> CfaPattern:
    """Check that ``frames`` is a burst of 2x2 Bayer frames of one size; return the pattern."""
    if len(frames) == 0:
        raise InvalidParams("a burst needs at least one frame")
    first = frames[0]
    problem = frame_mismatch(first, first)
    if problem is not None:
        raise InvalidParams(f"burst frame 0: {problem}")
    for i, frame in enumerate(frames[1:], start=1):
        problem = frame_mismatch(frame, first)
        if problem is not None:
            raise InvalidParams(f"burst frame {i}: {problem}")
    h, w = normalized_shape(first)
    if h < 2 * TILE_PX or w < 2 * TILE_PX:
        raise InvalidParams(f"burst frames of {w}x{h} are too small; need at least {2 * TILE_PX} px a side")
    return first.sensor.cfa


def check_finite(mosaic: NDArray[np.float32], what: str) -> None:
    """Raise InvalidParams when ``mosaic`` holds NaN or infinite samples (``what`` names it)."""
    if np.isfinite(np.sum(mosaic, dtype=np.float32)):  # one cheap pass; a non-finite sample makes it NaN/inf
        return
    bad = int(np.count_nonzero(~np.isfinite(mosaic)))
    if bad:
        raise InvalidParams(f"{what}: {bad} samples are NaN or infinite; a burst needs finite raw data")


def normalized_shape(frame: Frame) -> tuple[int, int]:
    """Shape of the frame's active area, cropped to even rows and columns."""
    area = frame.sensor.active_area
    h, w = frame.data.shape if area is None else (area[2] - area[0], area[3] - area[1])
    return h - h % 2, w - w % 2


def is_normalized(frame: Frame) -> bool:
    """True when the frame's data already has black 0 and white 1."""
    s = frame.sensor
    return (
        s.linearization_table is None
        and s.active_area is None
        and s.black_level_delta_h_dn is None
        and s.black_level_delta_v_dn is None
        and bool(np.all(s.black_level_dn == 0.0))
        and bool(np.all(s.white_level_dn == 1.0))
    )


def normalized_mosaic(frame: Frame) -> NDArray[np.float32]:
    """The frame's mosaic with black 0 and white 1 (DNG levels), cropped to even size."""
    if is_normalized(frame):
        data = frame.data
    else:
        s = frame.sensor
        data = normalize_dng_levels(
            frame.data,
            black_level_dn=s.black_level_dn,
            white_level_dn=s.white_level_dn,
            black_level_delta_h_dn=s.black_level_delta_h_dn,
            black_level_delta_v_dn=s.black_level_delta_v_dn,
            linearization_table=s.linearization_table,
            active_area=s.active_area,
        )
    h, w = data.shape
    return data[: h - h % 2, : w - w % 2]


def split_planes(mosaic: NDArray[np.float32]) -> NDArray[np.float32]:
    """``(H, W)`` mosaic -> ``(4, H/2, W/2)`` C-contiguous planes (cells 00, 01, 10, 11)."""
    h, w = mosaic.shape
    return np.ascontiguousarray(mosaic.reshape(h // 2, 2, w // 2, 2).transpose(1, 3, 0, 2).reshape(4, h // 2, w // 2))


def join_planes(planes: NDArray[np.float32]) -> NDArray[np.float32]:
    """Inverse of :func:`split_planes`."""
    _, h2, w2 = planes.shape
    return np.ascontiguousarray(planes.reshape(2, 2, h2, w2).transpose(2, 0, 3, 1).reshape(2 * h2, 2 * w2))


def plane_colors(cfa: CfaPattern) -> tuple[int, int, int, int]:
    """Colour index (0 R, 1 G, 2 B) of each of the four planes."""
    return tuple(int(cfa.pattern[k // 2][k % 2]) for k in range(4))  # type: ignore[return-value]


def noise_profile_per_color(frame: Frame, what: str = "frame") -> NDArray[np.float64] | None:
    """The frame's NoiseProfile as a ``(3, 2)`` array (R, G, B rows of ``(S, O)``), or None.

    Raises InvalidParams (naming ``what``) for a profile that is not finite and >= 0.
    """
    profile = frame.sensor.noise_profile
    if not profile:
        return None
    arr = np.asarray(profile, dtype=np.float64).reshape(-1, 2)
    if not np.all(np.isfinite(arr)) or np.any(arr < 0):
        pairs = tuple(map(tuple, arr.tolist()))
        raise InvalidParams(f"{what}: NoiseProfile {pairs}: expected finite (S, O) pairs >= 0")
    if arr.shape[0] == 1:
        arr = np.repeat(arr, 3, axis=0)
    return arr[:3]


def estimate_noise_profile(planes: NDArray[np.float32], *, block_px: int = 16) -> tuple[float, float]:
    """Estimate a NoiseProfile ``(S, O)`` (variance = S x + O) from one normalised frame.

    Used when a frame carries no profile (headerless dumps).  On each plane
    the residual ``(p00 - p01 - p10 + p11) / 2`` of 2x2 neighbours (variance
    equal to the pixel noise variance for independent noise, zero for a linear
    gradient) is taken per block of ``block_px``; the block's mean and its
    robust (MAD) variance are paired, the least-textured half of the blocks
    per brightness bin kept, and ``S``, ``O`` fitted by least squares (both
    clamped to be >= 0, ``O`` at least 1e-10).

    Returns
    -------
    tuple
        ``(S, O)`` in normalised units (signal 0..1).
    """
    means, variances = [], []
    for p in planes:
        h, w = p.shape
        h2, w2 = (h // 2) * 2, (w // 2) * 2
        q = p[:h2, :w2]
        r = 0.5 * (q[0::2, 0::2] - q[0::2, 1::2] - q[1::2, 0::2] + q[1::2, 1::2])
        m = 0.25 * (q[0::2, 0::2] + q[0::2, 1::2] + q[1::2, 0::2] + q[1::2, 1::2])
        b = block_px // 2
        bh, bw = r.shape[0] // b, r.shape[1] // b
        if bh == 0 or bw == 0:
            continue
        rb = r[: bh * b, : bw * b].reshape(bh, b, bw, b).transpose(0, 2, 1, 3).reshape(bh * bw, b * b)
        mb = m[: bh * b, : bw * b].reshape(bh, b, bw, b).transpose(0, 2, 1, 3).reshape(bh * bw, b * b)
        med = np.median(rb, axis=1)
        mad = np.median(np.abs(rb - med[:, None]), axis=1)
        variances.append((1.4826 * mad) ** 2)
        means.append(mb.mean(axis=1))
    if not means:
        return 1e-4, 1e-6
    mean = np.concatenate(means).astype(np.float64)
    var = np.concatenate(variances).astype(np.float64)
    ok = np.isfinite(mean) & np.isfinite(var) & (mean < 0.9)
    mean, var = mean[ok], var[ok]
    if mean.size < 8:
        return 1e-4, 1e-6
    edges = np.quantile(mean, np.linspace(0, 1, 17))
    keep_m, keep_v = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):  # 16 brightness bins, not a pixel loop
        sel = (mean >= lo) & (mean <= hi)
        if sel.sum() < 4:
            continue
        v = var[sel]
        cut = np.median(v)
        keep_m.append(mean[sel][v <= cut])
        keep_v.append(v[v <= cut])
    m_all, v_all = np.concatenate(keep_m), np.concatenate(keep_v)
    A = np.stack([np.maximum(m_all, 0.0), np.ones_like(m_all)], axis=1)
    (S, O), *_ = np.linalg.lstsq(A, v_all, rcond=None)
    S = max(float(S), 0.0)
    O = max(float(O), 1e-10)
    return S, O


def tile_count(n: int) -> int:
    """Number of merge tiles along an axis of ``n`` plane pixels (stride 8, first tile at -8)."""
    return -(-n // STRIDE_PX) + 1


def tile_origins(n: int) -> NDArray[np.int64]:
    """Plane coordinate of the first pixel of each merge tile along an axis."""
    return np.arange(tile_count(n), dtype=np.int64) * STRIDE_PX - STRIDE_PX
