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
3. per pixel, ``w_k = g_k^2 / (S_k x_k + O_k)`` (inverse variance of the
   normalised estimate, ``x_k`` the expected raw level from a smoothed first
   estimate, ``(S_k, O_k)`` frame ``k``'s own NoiseProfile: a bracket may
   change the ISO), zero where the frame is clipped (raw >= ``clip_fraction``);
4. ghosts, where frame and reference are both unclipped: with ``d = y_k - y_ref``
   and ``v`` its noise variance, two statistics over a 5 x 5 window (sums
   ``B``): the mean test ``z^2 = B(d)^2 / B(v)`` (about 1 for noise alone: finds
   a faint offset, such as a low-contrast object) and the energy test
   ``r = B(d^2) / B(v)`` (about 1 for noise alone, with a standard deviation
   of about 0.3: finds a difference that changes sign inside the window --
   texture against texture, which the mean averages away).  The weight is
   multiplied by ``m = c / (z^2 + c) x clip((2 g - r) / g, 0, 1)`` (``c`` the
   robustness, ``g`` the energy gate: ``m`` falls from ``r = g`` and is 0 from
   ``r = 2 g``), and then ``m`` is replaced by its minimum over the 5 x 5
   window (an erosion): a pixel is merged only where every window that holds
   it looks static, so that the edge of a moving object, which only part of a
   window sees, is not let through.  Where the reference is clipped (it then
   says "at least my clip level"), a frame more than 3 sigma below that level
   is left out;
5. ``y = sum w_k y_k / sum w_k``; where no frame is left (all clipped or
   rejected), the shortest frame's value, but not below the reference's.

Values out: linear, black 0, white 1 = saturation of the shortest exposure,
not clipped; the reference's brightness is restored by BaselineExposure
(``+log2 g_ref`` EV), so the tone mapper gets the extended range.  The
NoiseProfile is the inverse-variance combination with every frame unclipped,
term by term: ``S' = (sum g_k / S_k)^-1`` and ``O' = (sum g_k^2 / O_k)^-1``
(for equal ``S_k, O_k``: ``S / sum g_k`` and ``O / sum g_k^2``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.burst import Progress, frame_noise_per_plane, merged_frame, normalized_planes
from rawlab.burst._planes import join_planes
from rawlab.burst.align import align_tiles_hasinoff2016
from rawlab.burst.merge import aligned_tiles, overlap_add
from rawlab.core.frame import Frame, StageRecord
from rawlab.core.params import Params, param
from rawlab.errors import InvalidParams

__all__ = ["HdrParams", "exposure_gains", "ghost_multiplier", "merge_hdr"]

#: Side of the ghost test's window (pixels of a Bayer plane).
GHOST_WINDOW_PX = 5


@dataclass(frozen=True)
class HdrParams(Params):
    """Parameters of the bracketed HDR merge (``mode="hdr"``).

    Versions: 1, the first (mean test only, no erosion); 2, per-frame noise
    profiles, the energy test and the erosion of the ghost weight.
    """

    VERSION: ClassVar[int] = 2
    robustness: float = param(
        16.0, min=0.5, max=1e4,
        doc="mean test c: the weight is multiplied by c / (z^2 + c) (larger: fewer rejections)",
    )
    energy_gate: float = param(
        2.0, min=1.05, max=1e4,
        doc="energy test g: the weight falls from r = g (r about 1 for noise alone) and is 0 from r = 2 g",
    )
    clip_fraction: float = param(
        0.95, min=0.5, max=1.0, doc="raw level (of white) from which a pixel counts as clipped"
    )


def exposure_gains(frames: Sequence[Frame], exposure_ev: Sequence[float] | None = None) -> NDArray[np.float64]:
    """Relative exposure of each frame (the shortest is 1).

    From ``exposure_ev`` when given, else from exposure time x ISO of the
    frames' capture info.
    """
    if exposure_ev is not None:
        if len(exposure_ev) != len(frames):
            raise InvalidParams(f"{len(exposure_ev)} exposure values for {len(frames)} frames")
        e = 2.0 ** np.asarray(exposure_ev, dtype=np.float64)
        if not np.all(np.isfinite(e)):
            raise InvalidParams(f"exposure values must be finite, got {list(exposure_ev)}")
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


def _box(planes: NDArray[np.float32]) -> NDArray[np.float32]:
    """5 x 5 window sums of each plane (mirrored at the borders)."""
    k = (GHOST_WINDOW_PX, GHOST_WINDOW_PX)
    border = cv2.BORDER_REFLECT_101
    return np.stack([cv2.boxFilter(p, -1, k, normalize=False, borderType=border) for p in planes])


def ghost_multiplier(
    d: NDArray[np.float32], v: NDArray[np.float32], *, robustness: float, energy_gate: float
) -> NDArray[np.float32]:
    """Weight multiplier of a frame against the reference (1: static, 0: ghost).

    Parameters
    ----------
    d
        ``(planes, h, w)`` float32 difference frame - reference (radiance units).
    v
        Its noise variance per pixel (same shape).
    robustness, energy_gate
        ``c`` and ``g`` (see the module docstring).

    Returns
    -------
    numpy.ndarray
        ``(planes, h, w)`` float32 in [0, 1]: ``c / (z^2 + c) x clip((2 g - r) / g, 0, 1)``
        with the mean and energy statistics over 5 x 5 windows, then its
        minimum over the 5 x 5 window.
    """
    bv = np.maximum(_box(v), np.float32(1e-30))
    bd = _box(d)
    z2 = bd * bd / bv
    r = _box(d * d) / bv
    g = np.float32(energy_gate)
    c = np.float32(robustness)
    m = (c / (z2 + c)) * np.clip((2 * g - r) / g, 0.0, 1.0)
    kernel = np.ones((GHOST_WINDOW_PX, GHOST_WINDOW_PX), np.uint8)
    return np.stack([cv2.erode(p, kernel, borderType=cv2.BORDER_REFLECT_101) for p in m.astype(np.float32)])


def merge_hdr(
    frames: Sequence[Frame],
    *,
    exposure_ev: Sequence[float] | None = None,
    reference: int | None = None,
    params: HdrParams | None = None,
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
    params
        :class:`HdrParams` (ghost test, clip level).
    progress
        Optional callback, called with a short text after each step.

    Returns
    -------
    Frame
        CFA, black 0, white 1 = saturation of the shortest exposure, with
        BaselineExposure raised by ``log2`` of the reference's gain.
    """
    p = params or HdrParams()
    frames = list(frames)
    gains = exposure_gains(frames, exposure_ev)
    planes = normalized_planes(frames)
    n = len(frames)
    ref = int(np.argsort(gains)[n // 2]) if reference is None else int(reference)
    if not 0 <= ref < n:
        raise InvalidParams(f"reference frame {ref} is not in 0..{n - 1}")
    # each frame's own noise model, (4, 2) per plane: a bracket may change the ISO
    noise = [frame_noise_per_plane(f, pl)[0] for f, pl in zip(frames, planes)]
    S = [nk[:, 0][:, None, None].astype(np.float32) for nk in noise]
    O = [nk[:, 1][:, None, None].astype(np.float32) for nk in noise]
    y = [pl / np.float32(g) for pl, g in zip(planes, gains)]
    clipped = [(pl >= p.clip_fraction).astype(np.float32) for pl in planes]

    # align on grey images clipped at the level both frames still see
    gray = [yi.mean(axis=0) for yi in y]
    warped_y, warped_clip = [], []
    for k in range(n):
        if k == ref:
            warped_y.append(y[k])
            warped_clip.append(clipped[k] > 0)
            continue
        level = np.float32(p.clip_fraction * 0.9 / max(gains[k], gains[ref]))
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
    first = np.stack([cv2.blur(pl, (3, 3)) for pl in first])
    first = np.maximum(first, 0.0)

    def variance(k: int) -> NDArray[np.float32]:
        g = np.float32(gains[k])
        return (S[k] * first * g + O[k]) / (g * g)  # variance of y_k

    num = np.zeros_like(first)
    den = np.zeros_like(first)
    ref_ok = ~warped_clip[ref]
    var_ref = variance(ref)
    for k in range(n):
        var_y = variance(k)
        w = np.where(warped_clip[k], 0.0, 1.0 / var_y).astype(np.float32)
        if k != ref:
            both = ref_ok & ~warped_clip[k]
            # the ghost test sees only where both frames are unclipped
            d = np.where(both, warped_y[k] - y[ref], 0.0).astype(np.float32)
            v = np.where(both, var_y + var_ref, 0.0).astype(np.float32)
            m = ghost_multiplier(d, v, robustness=p.robustness, energy_gate=p.energy_gate)
            w = np.where(both, w * m, w)
            # where the reference is clipped it still says "at least its clip level":
            # a frame darker than that by more than its noise shows something else
            g = np.float32(gains[k])
            level = np.float32(p.clip_fraction / gains[ref])
            sigma = np.sqrt((S[k] * level * g + O[k]) / (g * g))
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

    # inverse-variance combination of the exposure-normalised frames, all unclipped
    inv_s = sum(gains[k] / np.maximum(noise[k][:, 0], 1e-30) for k in range(n))
    inv_o = sum(gains[k] ** 2 / np.maximum(noise[k][:, 1], 1e-30) for k in range(n))
    noise_out = np.stack([1.0 / inv_s, 1.0 / inv_o], axis=1)
    out = merged_frame(
        frames[ref], join_planes(merged), noise_per_plane=noise_out, variance_factor=1.0,
        record=StageRecord("burst.hdr", HdrParams.VERSION, p.params_hash()),
    )
    color = dataclasses.replace(out.color, baseline_exposure_ev=out.color.baseline_exposure_ev + float(np.log2(gains[ref])))
    return out.replace(color=color)
