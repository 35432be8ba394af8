"""Burst merge: robust pairwise Wiener merge of aligned tiles in the frequency domain.

Hasinoff et al., "Burst photography for high dynamic range and low-light
imaging on mobile cameras", ACM TOG 35(6), 2016, section 5.  Per Bayer plane
and per tile (16 x 16 plane pixels, overlapping by half), with ``T_0`` the
reference tile's DFT and ``T_z`` that of the aligned tile of frame ``z``:

.. math::

    D_z = T_0 - T_z, \\qquad
    A_z = \\frac{|D_z|^2}{|D_z|^2 + c\\,\\sigma_D^2}, \\qquad
    \\tilde T = \\frac{1}{N} \\sum_{z=0}^{N-1} \\big(T_z + A_z D_z\\big)

so that a frequency where a frame agrees with the reference within the noise
is averaged, and one where it differs (motion, misalignment) falls back to the
reference: no ghosts.  In addition (our addition, not in the paper) a tile
gate: with ``r`` the tile's mean ``|D_z|^2 / sigma_D^2`` (about 1 for noise
alone), every ``A_z`` of the tile is at least ``clip((r - g) / g, 0, 1)``
(``g = 2.5``), so a tile that differs as a whole (a moving object, a
misaligned tile) is not let through in its weaker frequencies, while a static
tile is averaged fully (which a small ``c`` alone does not give).  ``sigma_D^2 = 2 n^2 sigma^2`` is the expected
``|D_z|^2`` of pure noise for an ``n x n`` tile (unnormalised DFT), with the
pixel variance ``sigma^2 = S x + O`` from the NoiseProfile at the reference
tile's mean ``x``; ``c`` is the robustness (larger: more averaging).

The merged tiles are brought back by the inverse DFT, weighted by the raised
cosine window ``1/2 - 1/2 cos(2 pi (x + 1/2) / n)`` (which sums to one over
half-overlapping tiles) and added.

The merged variance per frequency is
``((1 + sum A_z)^2 + sum (1 - A_z)^2) / N^2`` times a single frame's; its
mean over all tiles and frequencies is returned as the variance factor that
the merged NoiseProfile is scaled by.

Values: linear, normalised (black 0, white 1) planes in, the same out; float32;
nothing clipped.
"""

from __future__ import annotations

import numpy as np
import scipy.fft
from numba import njit, prange
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from rawlab.burst._planes import STRIDE_PX, TILE_PX, tile_count
from rawlab.burst.align import Alignment

__all__ = [
    "raised_cosine_window",
    "wiener_accumulate",
    "wiener_accumulate_reference",
    "merge_plane_hasinoff2016",
    "aligned_tiles",
    "overlap_add",
]

FFT_WORKERS = 2


def raised_cosine_window(n: int = TILE_PX) -> NDArray[np.float32]:
    """2-D window ``w(y) w(x)``, ``w(x) = 1/2 - 1/2 cos(2 pi (x + 1/2) / n)`` (Hasinoff 2016, §5)."""
    x = np.arange(n, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * (x + 0.5) / n)
    return np.outer(w, w).astype(np.float32)


@njit(parallel=True, cache=True)
def _wiener_kernel(ref_f, alt_f, noise_d, c, gate, acc, sum_a, sum_b):  # pragma: no cover - compiled
    n_t, n_u, n_v = ref_f.shape
    for t in prange(n_t):
        nd = noise_d[t]
        kt = c * nd
        # tile gate: energy of the difference over its noise-only expectation
        e = 0.0
        cnt = 0.0
        for u in range(n_u):
            for v in range(n_v):
                wb = 1.0 if (v == 0 or v == n_v - 1) else 2.0
                d = ref_f[t, u, v] - alt_f[t, u, v]
                e += wb * (d.real * d.real + d.imag * d.imag)
                cnt += wb
        ratio = e / (cnt * nd) if nd > 0 else 0.0
        a_tile = (ratio - gate) / gate
        if a_tile < 0.0:
            a_tile = 0.0
        elif a_tile > 1.0:
            a_tile = 1.0
        for u in range(n_u):
            for v in range(n_v):
                r = ref_f[t, u, v]
                a = alt_f[t, u, v]
                dr = r.real - a.real
                di = r.imag - a.imag
                m = dr * dr + di * di
                den = m + kt
                w = m / den if den > 0 else 0.0
                if w < a_tile:
                    w = a_tile
                acc[t, u, v] += a + np.float32(w) * (r - a)
                sum_a[t, u, v] += w
                sum_b[t, u, v] += (1 - w) * (1 - w)


def wiener_accumulate(
    ref_f: NDArray[np.complex64],
    alt_f: NDArray[np.complex64],
    noise_d: NDArray[np.float32],
    acc: NDArray[np.complex64],
    sum_a: NDArray[np.float32],
    sum_b: NDArray[np.float32],
    *,
    robustness: float,
    gate: float,
) -> None:
    """Add one frame's robust contribution ``T_z + A_z (T_0 - T_z)`` to ``acc`` in place.

    Parameters
    ----------
    ref_f, alt_f
        ``(tiles, n, n // 2 + 1)`` complex64 DFTs (``rfft2``) of the reference and aligned tiles.
    noise_d
        ``(tiles,)`` float32 ``sigma_D^2``: expected ``|D|^2`` per frequency for noise alone.
    acc
        Accumulated merged spectrum (updated).
    sum_a, sum_b
        Running ``sum A_z`` and ``sum (1 - A_z)^2`` per frequency (updated).
    robustness
        ``c`` of the per-frequency shrinkage.
    gate
        Tile gate ``g``: with ``r`` the tile's mean ``|D|^2 / sigma_D^2``, every
        frequency's ``A_z`` is at least ``clip((r - g) / g, 0, 1)``.
    """
    _wiener_kernel(ref_f, alt_f, noise_d, np.float32(robustness), np.float32(gate), acc, sum_a, sum_b)


def wiener_accumulate_reference(ref_f, alt_f, noise_d, acc, sum_a, sum_b, *, robustness, gate) -> None:
    """NumPy twin of :func:`wiener_accumulate`."""
    d = ref_f - alt_f
    m = (d.real**2 + d.imag**2).astype(np.float64)
    n_v = m.shape[-1]
    wb = np.full(n_v, 2.0)
    wb[0] = 1.0
    wb[-1] = 1.0
    nd = noise_d.astype(np.float64)
    ratio = np.where(nd > 0, (m * wb).sum(axis=(1, 2)) / (wb.sum() * m.shape[1] * np.where(nd > 0, nd, 1)), 0.0)
    a_tile = np.clip((ratio - gate) / gate, 0.0, 1.0)
    den = m + robustness * nd[:, None, None]
    w = np.where(den > 0, m / np.where(den > 0, den, 1), 0.0)
    w = np.maximum(w, a_tile[:, None, None])
    acc += (alt_f + w * d).astype(acc.dtype)
    sum_a += w.astype(np.float32)
    sum_b += ((1 - w) ** 2).astype(np.float32)


def aligned_tiles(plane: NDArray[np.float32], offsets_px: NDArray[np.int64] | None) -> NDArray[np.float32]:
    """The 16 x 16 merge tiles of ``plane`` displaced by ``offsets_px``.

    Parameters
    ----------
    plane
        ``(h, w)`` float32 Bayer plane.
    offsets_px
        ``(ny, nx, 2)`` integer ``(dy, dx)`` per tile, or ``None`` for none.

    Returns
    -------
    numpy.ndarray
        ``(ny, nx, 16, 16)`` float32 tiles; outside the plane the plane is
        mirrored (the border pixel is not repeated).
    """
    h, w = plane.shape
    ny, nx = tile_count(h), tile_count(w)
    reach = 0 if offsets_px is None else int(np.abs(offsets_px).max(initial=0))
    margin = STRIDE_PX + reach
    extra_y = (ny - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - h
    extra_x = (nx - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - w
    padded = np.pad(plane, ((margin, margin + extra_y), (margin, margin + extra_x)), mode="reflect") \
        if margin < min(h, w) else np.pad(plane, ((margin, margin + extra_y), (margin, margin + extra_x)), mode="symmetric")
    windows = sliding_window_view(padded, (TILE_PX, TILE_PX))
    oy = np.arange(ny) * STRIDE_PX + reach
    ox = np.arange(nx) * STRIDE_PX + reach
    if offsets_px is None:
        return np.ascontiguousarray(windows[reach::STRIDE_PX, reach::STRIDE_PX][:ny, :nx])
    return windows[oy[:, None] + offsets_px[..., 0], ox[None, :] + offsets_px[..., 1]]


def overlap_add(tiles: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """Window the ``(ny, nx, 16, 16)`` tiles and add them back into an ``(height, width)`` plane."""
    ny, nx = tiles.shape[:2]
    s = STRIDE_PX
    wt = tiles * raised_cosine_window(TILE_PX)
    # quadrants of each tile land on 8 x 8 output blocks: block (by, bx) gets
    # tile (by, bx)'s bottom-right, (by, bx+1)'s bottom-left, (by+1, bx)'s top-right, (by+1, bx+1)'s top-left
    blocks = wt[1:, 1:, :s, :s] + wt[1:, :-1, :s, s:] + wt[:-1, 1:, s:, :s] + wt[:-1, :-1, s:, s:]
    out = blocks.transpose(0, 2, 1, 3).reshape((ny - 1) * s, (nx - 1) * s)
    return np.ascontiguousarray(out[:height, :width])


def merge_plane_hasinoff2016(
    planes: list[NDArray[np.float32]],
    alignments: list[Alignment | None],
    *,
    ref_index: int,
    noise_scale: float,
    noise_offset: float,
    robustness: float = 32.0,
    gate: float = 2.5,
    accumulate=wiener_accumulate,
) -> tuple[NDArray[np.float32], float]:
    """Merge one Bayer plane of a burst onto the reference (Hasinoff 2016, §5).

    Parameters
    ----------
    planes
        One ``(h, w)`` float32 plane per frame, linear, black 0, white 1.
    alignments
        Per frame its :class:`Alignment` (``None`` for the reference).
    ref_index
        Index of the reference frame.
    noise_scale, noise_offset
        NoiseProfile ``(S, O)`` of this plane's colour: variance ``S x + O``.
    robustness
        ``c``: a frequency is rejected when ``|D|^2`` passes ``c`` times its
        expected value for noise alone.
    gate
        Tile gate: a tile whose difference energy passes ``gate`` times the
        noise-only expectation is rejected progressively, fully at twice that.
    accumulate
        The accumulation kernel (its NumPy twin in tests).

    Returns
    -------
    tuple
        ``(merged plane (h, w) float32, variance factor)``: the merged noise
        variance over a single frame's (``1 / N`` for a static scene).
    """
    ref = planes[ref_index]
    h, w = ref.shape
    n_frames = len(planes)
    ref_tiles = aligned_tiles(ref, None)
    ny, nx = ref_tiles.shape[:2]
    flat_ref = ref_tiles.reshape(ny * nx, TILE_PX, TILE_PX)
    ref_f = scipy.fft.rfft2(flat_ref, workers=FFT_WORKERS)
    mean = flat_ref.mean(axis=(1, 2), dtype=np.float64)
    sigma2 = noise_scale * np.maximum(mean, 0.0) + noise_offset
    noise_d = (2.0 * TILE_PX * TILE_PX * np.maximum(sigma2, 1e-20)).astype(np.float32)
    acc = ref_f.copy()
    sum_a = np.zeros(ref_f.shape, np.float32)
    sum_b = np.zeros(ref_f.shape, np.float32)
    for z, (plane, alignment) in enumerate(zip(planes, alignments)):
        if z == ref_index:
            continue
        tiles = aligned_tiles(plane, alignment.offsets_px if alignment is not None else None)
        alt_f = scipy.fft.rfft2(tiles.reshape(ny * nx, TILE_PX, TILE_PX), workers=FFT_WORKERS)
        accumulate(ref_f, alt_f, noise_d, acc, sum_a, sum_b, robustness=robustness, gate=gate)
    acc *= np.float32(1.0 / n_frames)
    merged = scipy.fft.irfft2(acc, s=(TILE_PX, TILE_PX), workers=FFT_WORKERS).astype(np.float32, copy=False)
    out = overlap_add(merged.reshape(ny, nx, TILE_PX, TILE_PX), h, w)
    # variance factor, averaged over tiles and frequencies (half spectrum: inner columns count twice)
    factor = ((1.0 + sum_a) ** 2 + sum_b) / float(n_frames * n_frames)
    col_w = np.full(factor.shape[-1], 2.0)
    col_w[0] = 1.0
    if TILE_PX % 2 == 0:
        col_w[-1] = 1.0
    mean_factor = float((factor.mean(axis=(0, 1), dtype=np.float64) * col_w).sum() / col_w.sum())
    return out, mean_factor
