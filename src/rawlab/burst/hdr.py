"""Bracketed HDR: frames of different exposures merged in linear raw space.

After Debevec and Malik, "Recovering high dynamic range radiance maps from
photographs", SIGGRAPH 1997 (a weighted average of exposure-normalised
linear values, leaving out saturated ones), with the weights chosen by the
noise model (inverse variance, i.e. signal-to-noise ratio: Granados et al.,
"Optimal HDR reconstruction with linear digital cameras", CVPR 2010) and the
ghost protection of a robust merge (Hasinoff et al. 2016, §5, here in the
pixel domain):

1. every frame ``k`` is normalised (0..1) and divided by its exposure gain
   ``g_k = E_k / E_min`` (``E`` = exposure time x ISO), so all frames estimate
   one radiance in units of the shortest frame (white 1 = its saturation);
2. each frame is aligned to the reference (Hasinoff 2016, §4) on images
   clipped at a common level, and warped by its tile displacements;
3. per pixel, ``w_k = g_k^2 / (S x_k + O)`` (inverse variance of the
   normalised estimate, ``x_k`` the expected raw level from a smoothed first
   estimate), zero where the frame is clipped (raw >= ``clip_fraction``);
4. ghosts: where frame and reference are both unclipped, the 5x5-mean
   difference ``D`` is compared with its noise variance ``v``; the weight is
   multiplied by ``1 - D^2 / (D^2 + c v)``; where the reference is clipped
   (it then says "at least my clip level"), a frame more than 3 sigma below
   that level is left out;
5. ``y = sum w_k y_k / sum w_k``; where no frame is left (all clipped or
   rejected), the shortest frame's value, but not below the reference's.

Values out: linear, black 0, white 1 = saturation of the shortest exposure,
not clipped; the reference's brightness is restored by BaselineExposure
(``+log2 g_ref`` EV), so the tone mapper gets the extended range.  The
NoiseProfile is the inverse-variance combination with every frame unclipped:
``S' = S / sum g_k``, ``O' = O / sum g_k^2``.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.burst import Progress, merged_frame, prepare_burst
from rawlab.burst._planes import join_planes
from rawlab.burst.align import align_tiles_hasinoff2016
from rawlab.burst.merge import aligned_tiles, overlap_add
from rawlab.core.frame import Frame, StageRecord
from rawlab.errors import InvalidParams

__all__ = ["exposure_gains", "merge_hdr"]


def exposure_gains(frames: Sequence[Frame], exposure_ev: Sequence[float] | None = None) -> NDArray[np.float64]:
    """Relative exposure of each frame (the shortest is 1).

    From ``exposure_ev`` when given, else from exposure time x ISO of the
    frames' capture info.
    """
    if exposure_ev is not None:
        if len(exposure_ev) != len(frames):
            raise InvalidParams(f"{len(exposure_ev)} exposure values for {len(frames)} frames")
        e = 2.0 ** np.asarray(exposure_ev, dtype=np.float64)
    else:
        values = []
        for i, f in enumerate(frames):
            t = f.capture.exposure_time_s
            if t is None or not t > 0:
                raise InvalidParams(f"HDR frame {i} has no exposure time; give exposure_ev")
            values.append(t * (f.capture.iso or 100.0))
        e = np.asarray(values, dtype=np.float64)
    return e / e.min()


def _warp(plane: NDArray[np.float32], offsets: NDArray[np.int64]) -> NDArray[np.float32]:
    h, w = plane.shape
    return overlap_add(aligned_tiles(plane, offsets), h, w)


def merge_hdr(
    frames: Sequence[Frame],
    *,
    exposure_ev: Sequence[float] | None = None,
    reference: int | None = None,
    robustness: float = 16.0,
    clip_fraction: float = 0.95,
    progress: Progress | None = None,
) -> Frame:
    """Merge an exposure bracket into one extended-range CFA frame.

    Parameters
    ----------
    frames
        CFA frames of one scene at different exposures (DN or normalised).
    exposure_ev
        Exposure of each frame in EV (any zero point); default from the
        frames' exposure time and ISO.
    reference
        Frame the others are aligned to and protected against; default the
        median exposure.
    robustness
        Ghost threshold ``c`` (larger: fewer rejections).
    clip_fraction
        Raw level (of white) from which a frame's pixel counts as clipped.

    Returns
    -------
    Frame
        CFA, black 0, white 1 = saturation of the shortest exposure, with
        BaselineExposure raised by ``log2`` of the reference's gain.
    """
    frames = list(frames)
    gains = exposure_gains(frames, exposure_ev)
    planes, noise, _ = prepare_burst(frames)
    n = len(frames)
    ref = int(np.argsort(gains)[n // 2]) if reference is None else int(reference)
    if not 0 <= ref < n:
        raise InvalidParams(f"reference frame {ref} is not in 0..{n - 1}")
    S = noise[:, 0][:, None, None].astype(np.float32)
    O = noise[:, 1][:, None, None].astype(np.float32)
    y = [p / np.float32(g) for p, g in zip(planes, gains)]
    clipped = [(p >= clip_fraction).astype(np.float32) for p in planes]

    # align on grey images clipped at the level both frames still see
    gray = [yi.mean(axis=0) for yi in y]
    warped_y, warped_clip = [], []
    for k in range(n):
        if k == ref:
            warped_y.append(y[k])
            warped_clip.append(clipped[k] > 0)
            continue
        level = np.float32(clip_fraction * 0.9 / max(gains[k], gains[ref]))
        a = align_tiles_hasinoff2016(np.minimum(gray[ref], level), np.minimum(gray[k], level), subpixel="none")
        warped_y.append(np.stack([_warp(y[k][c], a.offsets_px) for c in range(4)]))
        warped_clip.append(np.stack([_warp(clipped[k][c], a.offsets_px) for c in range(4)]) > 0.01)
        if progress is not None:
            progress(f"aligned frame {k}")

    # first estimate: from the longest unclipped frame per pixel (smoothed), for the weights
    order = np.argsort(-gains)
    first = np.array(warped_y[order[-1]], copy=True)
    for k in order[::-1][1:]:  # shorter to longer: longer frames overwrite where unclipped
        np.copyto(first, warped_y[k], where=~warped_clip[k])
    first = np.stack([cv2.blur(p, (3, 3)) for p in first])
    first = np.maximum(first, 0.0)

    num = np.zeros_like(first)
    den = np.zeros_like(first)
    ref_ok = ~warped_clip[ref]
    for k in range(n):
        g = np.float32(gains[k])
        var_y = (S * first * g + O) / (g * g)  # variance of y_k
        w = np.where(warped_clip[k], 0.0, 1.0 / var_y).astype(np.float32)
        if k != ref:
            var_ref = (S * first * np.float32(gains[ref]) + O) / np.float32(gains[ref] ** 2)
            d = np.stack([cv2.blur(p, (5, 5)) for p in (warped_y[k] - y[ref])])
            v = (var_y + var_ref) / 25.0
            ghost = d * d / (d * d + robustness * v)
            w = np.where(ref_ok & ~warped_clip[k], w * (1.0 - ghost), w)
            # where the reference is clipped it still says "at least its clip level":
            # a frame darker than that by more than its noise shows something else
            level = np.float32(clip_fraction / gains[ref])
            sigma = np.sqrt((S * level * g + O) / (g * g))
            w = np.where(~ref_ok & (warped_y[k] < level - 3.0 * sigma), 0.0, w)
        num += w * warped_y[k]
        den += w
    # where every frame is clipped (or rejected) the shortest frame's value is kept,
    # but never below the reference's: a clipped reference is a lower bound
    shortest = int(np.argmin(gains))
    fallback = np.maximum(warped_y[shortest], y[ref])
    merged = np.where(den > 0, num / np.where(den > 0, den, 1.0), fallback).astype(np.float32)
    if progress is not None:
        progress("merged")

    factor_s = 1.0 / float(gains.sum())
    factor_o = 1.0 / float((gains**2).sum())
    noise_out = np.stack([noise[:, 0] * factor_s, noise[:, 1] * factor_o], axis=1)
    out = merged_frame(
        frames[ref], join_planes(merged), noise_per_plane=noise_out, variance_factor=1.0,
        record=StageRecord("burst.hdr", 1, f"c={robustness:g},clip={clip_fraction:g}"),
    )
    color = dataclasses.replace(out.color, baseline_exposure_ev=out.color.baseline_exposure_ev + float(np.log2(gains[ref])))
    return out.replace(color=color)
