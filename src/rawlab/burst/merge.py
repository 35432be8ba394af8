r"""Burst merge: robust pairwise Wiener merge of aligned tiles in the frequency domain.

Hasinoff et al., "Burst photography for high dynamic range and low-light
imaging on mobile cameras", ACM TOG 35(6), 2016, section 5.  Per Bayer plane
and per tile (16 x 16 plane pixels, overlapping by half), with ``T_0`` the
reference tile's DFT and ``T_z`` that of the aligned tile of frame ``z``:

.. math::

    D_z = T_0 - T_z, \qquad
    A_z = \frac{|D_z|^2}{|D_z|^2 + c\,\sigma_D^2}

``A_z`` is the paper's shrinkage: about 0 where frame ``z`` agrees with the
reference within the noise, about 1 where it differs (motion, misalignment).
``sigma_D^2 = 2 n^2 sigma^2`` is the expected ``|D_z|^2`` of pure noise for an
``n x n`` tile (unnormalised DFT), with the pixel variance ``sigma^2 = S x + O``
from the NoiseProfile at the reference tile's mean ``x``; ``c`` is the
robustness (larger: more averaging).

The paper merges ``(1/N) sum_z (T_z + A_z D_z)``: a rejected frequency is
replaced by the reference's, which then counts more than once, so that a
burst with rejected frames keeps more of the reference's noise than the
average of its accepted frames (at low noise, where frames that are half a
plane pixel off -- an odd mosaic shift, which integer plane offsets cannot
align -- are rejected, 2 dB more in the Mildenhall et al. 2018 protocol of the
tests).  Here each alternate frame is given the weight ``1 - A_z`` and the
weights are normalised, as in the robustness-weighted accumulation of
Wronski et al., "Handheld multi-frame super-resolution", ACM TOG 38(4), 2019,
section 5:

.. math::

    \tilde T = \frac{T_0 + \sum_{z \ne 0} (1 - A_z)\, T_z}{1 + \sum_{z \ne 0} (1 - A_z)}

which is the paper's merge where every frame is accepted (``A_z = 0``: the
plain average) and where it is rejected by all (``A_z = 1``: the reference),
and the average of the accepted frames in between.  In addition (our
addition, not in the papers) a tile gate: with ``r`` the tile's mean
``|D_z|^2 / sigma_D^2`` (about 1 for noise alone), every ``A_z`` of the tile is
at least ``clip((r - g) / g, 0, 1)``, so a tile that differs as a whole (a
moving object, a misaligned tile) is not let through in its weaker
frequencies, while a static tile is averaged fully (which a small ``c`` alone
does not give).

The merged tiles are brought back by the inverse DFT, weighted by the raised
cosine window ``1/2 - 1/2 cos(2 pi (x + 1/2) / n)`` (which sums to one over
half-overlapping tiles) and added.

The merged variance per frequency is ``(1 + sum (1 - A_z)^2) / (1 + sum (1 - A_z))^2``
times a single frame's; its mean over all tiles and frequencies is returned as
the variance factor that the merged NoiseProfile is scaled by.

NaN policy: non-finite input is refused where the burst is normalised
(:func:`rawlab.burst.normalized_planes`); the kernels are compiled without
the fast-math assumption that values are finite
(:data:`rawlab.burst._planes.FINITE_SAFE_FASTMATH`).

Values: linear, normalised (black 0, white 1) planes in, the same out; float32;
nothing clipped.

Speed (none of it changes the result): the reference tiles' DFTs are computed
once and shared by every frame; real-input DFTs (``rfft2``, complex64); tiles
are gathered by a Numba kernel straight from a once-padded plane; the tiles
are processed in batches of tile rows so that tiles, spectra and running sums
stay in cache while every frame is added in.  The kernels are serial and
release the GIL: :func:`rawlab.burst.merge_burst` merges the four planes on
parallel threads (no barrier per kernel call, which matters on shared cores).
"""

from __future__ import annotations

import cv2
import numpy as np
import scipy.fft
from numba import njit
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from rawlab.burst._planes import FINITE_SAFE_FASTMATH, STRIDE_PX, TILE_PX, tile_count
from rawlab.burst.align import Alignment

__all__ = [
    "raised_cosine_window",
    "wiener_accumulate",
    "wiener_accumulate_reference",
    "merge_plane_hasinoff2016",
    "merge_plane_reference",
    "aligned_tiles",
    "aligned_tiles_reference",
    "overlap_add",
    "overlap_add_reference",
]

#: FFT threads inside one plane's merge: 1, as the planes are merged in parallel
#: (see :func:`rawlab.burst.merge_burst`).
FFT_WORKERS = 1
#: Tiles per batch of the merge (tiles, spectra and sums of a batch fit in cache).
TILE_BATCH = 2048


def raised_cosine_window(n: int = TILE_PX) -> NDArray[np.float32]:
    """2-D window ``w(y) w(x)``, ``w(x) = 1/2 - 1/2 cos(2 pi (x + 1/2) / n)`` (Hasinoff 2016, §5)."""
    x = np.arange(n, dtype=np.float64)
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * (x + 0.5) / n)
    return np.outer(w, w).astype(np.float32)


@njit(nogil=True, cache=True, fastmath=FINITE_SAFE_FASTMATH)
def _wiener_kernel(ref_f, alt_f, noise_d, c, gate, acc, sum_w, sum_w2):  # pragma: no cover - compiled
    n_t, n_u, n_v = ref_f.shape
    for t in range(n_t):
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
                k = 1.0 - w  # the frame's weight
                acc[t, u, v] += np.float32(k) * a
                sum_w[t, u, v] += k
                sum_w2[t, u, v] += k * k


def wiener_accumulate(
    ref_f: NDArray[np.complex64],
    alt_f: NDArray[np.complex64],
    noise_d: NDArray[np.float32],
    acc: NDArray[np.complex64],
    sum_w: NDArray[np.float32],
    sum_w2: NDArray[np.float32],
    *,
    robustness: float,
    gate: float,
) -> None:
    """Add one frame's robust contribution ``(1 - A_z) T_z`` to ``acc`` in place.

    Parameters
    ----------
    ref_f, alt_f
        ``(tiles, n, n // 2 + 1)`` complex64 DFTs (``rfft2``) of the reference and aligned tiles.
    noise_d
        ``(tiles,)`` float32 ``sigma_D^2``: expected ``|D|^2`` per frequency for noise alone.
    acc
        Accumulated weighted spectrum (updated; starts as the reference's).
    sum_w, sum_w2
        Running ``sum (1 - A_z)`` and ``sum (1 - A_z)^2`` per frequency (updated;
        start at 1, the reference's weight).
    robustness
        ``c`` of the per-frequency shrinkage.
    gate
        Tile gate ``g``: with ``r`` the tile's mean ``|D|^2 / sigma_D^2``, every
        frequency's ``A_z`` is at least ``clip((r - g) / g, 0, 1)``.
    """
    _wiener_kernel(ref_f, alt_f, noise_d, np.float32(robustness), np.float32(gate), acc, sum_w, sum_w2)


def wiener_accumulate_reference(ref_f, alt_f, noise_d, acc, sum_w, sum_w2, *, robustness, gate) -> None:
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
    k = 1.0 - w
    acc += (k * alt_f).astype(acc.dtype)
    sum_w += k.astype(np.float32)
    sum_w2 += (k * k).astype(np.float32)


@njit(nogil=True, cache=True)
def _normalize_and_variance(acc, sum_w, sum_w2, out):  # pragma: no cover - compiled
    # acc /= sum_w; out[v] += sum over tiles and rows of sum_w2 / sum_w^2, per spectrum column v
    n_t, n_u, n_v = acc.shape
    for t in range(n_t):
        for u in range(n_u):
            for v in range(n_v):
                s = sum_w[t, u, v]
                acc[t, u, v] *= np.float32(1.0 / s)
                out[v] += sum_w2[t, u, v] / (s * s)


def _padded_plane(plane: NDArray[np.float32], reach: int) -> NDArray[np.float32]:
    """``plane`` mirrored outwards (border pixel not repeated) so that every merge
    tile displaced by at most ``reach`` lies inside; tile ``(i, j)`` displaced by
    ``(dy, dx)`` starts at ``(8 i + reach + dy, 8 j + reach + dx)``."""
    h, w = plane.shape
    ny, nx = tile_count(h), tile_count(w)
    margin = STRIDE_PX + reach
    extra_y = (ny - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - h
    extra_x = (nx - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - w
    if margin < min(h, w):  # OpenCV's BORDER_REFLECT_101 is NumPy's "reflect", several times faster
        return cv2.copyMakeBorder(
            plane, margin, margin + extra_y, margin, margin + extra_x, cv2.BORDER_REFLECT_101
        )
    return np.pad(plane, ((margin, margin + extra_y), (margin, margin + extra_x)), mode="symmetric")


@njit(nogil=True, cache=True)
def _gather_tiles_kernel(padded, base, row0, row1, nx, offsets, out):  # pragma: no cover - compiled
    for t in range((row1 - row0) * nx):
        ii = t // nx
        j = t - ii * nx
        i = row0 + ii
        y = i * STRIDE_PX + base + offsets[i, j, 0]
        x = j * STRIDE_PX + base + offsets[i, j, 1]
        for u in range(TILE_PX):
            for v in range(TILE_PX):
                out[t, u, v] = padded[y + u, x + v]


def _gather_tiles(padded, reach, offsets, row0, row1, out=None) -> NDArray[np.float32]:
    """Tiles of tile rows ``row0..row1`` from a :func:`_padded_plane`, as ``(tiles, 16, 16)``."""
    nx = offsets.shape[1]
    if out is None:
        out = np.empty(((row1 - row0) * nx, TILE_PX, TILE_PX), np.float32)
    _gather_tiles_kernel(padded, reach, row0, row1, nx, offsets, out)
    return out


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
    if offsets_px is None:
        offsets_px = np.zeros((ny, nx, 2), np.int64)
    offsets_px = np.ascontiguousarray(offsets_px, dtype=np.int64)
    reach = int(np.abs(offsets_px).max(initial=0))
    padded = _padded_plane(np.asarray(plane, dtype=np.float32), reach)
    return _gather_tiles(padded, reach, offsets_px, 0, ny).reshape(ny, nx, TILE_PX, TILE_PX)


def aligned_tiles_reference(
    plane: NDArray[np.float32], offsets_px: NDArray[np.int64] | None
) -> NDArray[np.float32]:
    """NumPy twin of :func:`aligned_tiles` (tests compare the two)."""
    h, w = plane.shape
    ny, nx = tile_count(h), tile_count(w)
    reach = 0 if offsets_px is None else int(np.abs(offsets_px).max(initial=0))
    margin = STRIDE_PX + reach
    extra_y = (ny - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - h
    extra_x = (nx - 1) * STRIDE_PX + TILE_PX - STRIDE_PX - w
    mode = "reflect" if margin < min(h, w) else "symmetric"
    padded = np.pad(plane, ((margin, margin + extra_y), (margin, margin + extra_x)), mode=mode)
    windows = sliding_window_view(padded, (TILE_PX, TILE_PX))
    oy = np.arange(ny) * STRIDE_PX + reach
    ox = np.arange(nx) * STRIDE_PX + reach
    if offsets_px is None:
        return np.ascontiguousarray(windows[reach::STRIDE_PX, reach::STRIDE_PX][:ny, :nx])
    return windows[oy[:, None] + offsets_px[..., 0], ox[None, :] + offsets_px[..., 1]]


@njit(nogil=True, cache=True)
def _overlap_add_kernel(tiles, window, out):  # pragma: no cover - compiled
    ny, nx = tiles.shape[0], tiles.shape[1]
    h, w = out.shape
    s = STRIDE_PX
    for by in range(ny - 1):
        for bx in range(nx - 1):
            for u in range(s):
                y = by * s + u
                if y >= h:
                    break
                for v in range(s):
                    x = bx * s + v
                    if x >= w:
                        break
                    out[y, x] = (
                        tiles[by + 1, bx + 1, u, v] * window[u, v]
                        + tiles[by + 1, bx, u, v + s] * window[u, v + s]
                        + tiles[by, bx + 1, u + s, v] * window[u + s, v]
                        + tiles[by, bx, u + s, v + s] * window[u + s, v + s]
                    )


def overlap_add(tiles: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """Window the ``(ny, nx, 16, 16)`` tiles and add them back into an ``(height, width)`` plane."""
    out = np.empty((height, width), np.float32)
    _overlap_add_kernel(np.ascontiguousarray(tiles, dtype=np.float32), raised_cosine_window(TILE_PX), out)
    return out


def overlap_add_reference(tiles: NDArray[np.float32], height: int, width: int) -> NDArray[np.float32]:
    """NumPy twin of :func:`overlap_add`."""
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
    ny, nx = tile_count(h), tile_count(w)
    zero = np.zeros((ny, nx, 2), np.int64)
    sources = []  # (padded plane, reach, offsets) of the reference first, then of every other frame
    for z in [ref_index] + [z for z in range(n_frames) if z != ref_index]:
        a = alignments[z] if z != ref_index else None
        offsets = zero if a is None else np.ascontiguousarray(a.offsets_px, dtype=np.int64)
        reach = int(np.abs(offsets).max(initial=0))
        sources.append((_padded_plane(np.asarray(planes[z], dtype=np.float32), reach), reach, offsets))
    merged_tiles = np.empty((ny * nx, TILE_PX, TILE_PX), np.float32)
    n_v = TILE_PX // 2 + 1
    factor_sum = np.zeros(n_v, np.float64)
    # batches of tile rows, so that the tiles and spectra of a batch stay in cache
    # while every frame is added in
    rows = max(1, TILE_BATCH // nx)
    tiles = np.empty((rows * nx, TILE_PX, TILE_PX), np.float32)
    for row0 in range(0, ny, rows):
        row1 = min(ny, row0 + rows)
        n_t = (row1 - row0) * nx
        padded, reach, offsets = sources[0]
        ref_tiles = _gather_tiles(padded, reach, offsets, row0, row1, tiles[:n_t])
        ref_f = scipy.fft.rfft2(ref_tiles, workers=FFT_WORKERS)
        mean = ref_tiles.mean(axis=(1, 2), dtype=np.float64)
        sigma2 = noise_scale * np.maximum(mean, 0.0) + noise_offset
        noise_d = (2.0 * TILE_PX * TILE_PX * np.maximum(sigma2, 1e-20)).astype(np.float32)
        acc = ref_f.copy()
        sum_w = np.ones(ref_f.shape, np.float32)  # the reference's weight, 1
        sum_w2 = np.ones(ref_f.shape, np.float32)
        for padded, reach, offsets in sources[1:]:
            alt_tiles = _gather_tiles(padded, reach, offsets, row0, row1, tiles[:n_t])
            alt_f = scipy.fft.rfft2(alt_tiles, workers=FFT_WORKERS)
            accumulate(ref_f, alt_f, noise_d, acc, sum_w, sum_w2, robustness=robustness, gate=gate)
        _normalize_and_variance(acc, sum_w, sum_w2, factor_sum)
        merged_tiles[row0 * nx : row1 * nx] = scipy.fft.irfft2(acc, s=(TILE_PX, TILE_PX), workers=FFT_WORKERS)
    out = overlap_add(merged_tiles.reshape(ny, nx, TILE_PX, TILE_PX), h, w)
    # variance factor, averaged over tiles and frequencies (half spectrum: inner columns count twice)
    factor = factor_sum / (float(ny * nx) * TILE_PX)
    col_w = np.full(n_v, 2.0)
    col_w[0] = 1.0
    if TILE_PX % 2 == 0:
        col_w[-1] = 1.0
    mean_factor = float((factor * col_w).sum() / col_w.sum())
    return out, mean_factor


def merge_plane_reference(
    planes: list[NDArray[np.float32]],
    alignments: list[Alignment | None],
    *,
    ref_index: int,
    noise_scale: float,
    noise_offset: float,
    robustness: float = 32.0,
    gate: float = 2.5,
) -> tuple[NDArray[np.float32], float]:
    """NumPy twin of :func:`merge_plane_hasinoff2016`: every tile at once, in float64
    where the kernels accumulate, no batching (tests compare the two)."""
    ref = planes[ref_index]
    h, w = ref.shape
    ny, nx = tile_count(h), tile_count(w)
    ref_t = aligned_tiles_reference(ref, None).reshape(-1, TILE_PX, TILE_PX).astype(np.float64)
    ref_f = np.fft.rfft2(ref_t)
    sigma2 = noise_scale * np.maximum(ref_t.mean(axis=(1, 2)), 0.0) + noise_offset
    noise_d = 2.0 * TILE_PX * TILE_PX * np.maximum(sigma2, 1e-20)
    acc = ref_f.copy()
    sum_w = np.ones(ref_f.shape)
    sum_w2 = np.ones(ref_f.shape)
    for z, a in enumerate(alignments):
        if z == ref_index:
            continue
        offsets = None if a is None else a.offsets_px
        alt_f = np.fft.rfft2(aligned_tiles_reference(planes[z], offsets).reshape(-1, TILE_PX, TILE_PX))
        wiener_accumulate_reference(ref_f, alt_f, noise_d, acc, sum_w, sum_w2,
                                    robustness=robustness, gate=gate)
    merged = np.fft.irfft2(acc / sum_w, s=(TILE_PX, TILE_PX)).astype(np.float32)
    col_w = np.full(ref_f.shape[-1], 2.0)
    col_w[0] = 1.0
    if TILE_PX % 2 == 0:
        col_w[-1] = 1.0
    factor = float(((sum_w2 / sum_w**2) * col_w).sum() / (col_w.sum() * sum_w.shape[0] * sum_w.shape[1]))
    return overlap_add_reference(merged.reshape(ny, nx, TILE_PX, TILE_PX), h, w), factor
