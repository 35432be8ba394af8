"""Tone: OECF from grey steps, dynamic range at SNR = 1 and 10, clipping.

ISO 14524:2009 (opto-electronic conversion function: the mean output of each
step of a grey-step chart against its scene luminance) and ISO 15739:2013
(dynamic range: the ratio of the luminance at which the output saturates to
the luminance at which the signal-to-noise ratio falls to 1; SNR = 10 is the
"acceptable" threshold reported alongside).  Luminances are relative; dynamic
range is expressed in EV (log2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import InvalidParams


@dataclass(frozen=True, slots=True)
class ToneResult:
    """OECF and dynamic range of a grey-step capture (steps sorted by luminance, darkest first).

    Attributes
    ----------
    relative_luminance
        (N,) scene luminance of each step, as given (sorted ascending).
    mean, std, snr
        (N,) output mean, standard deviation and mean/std of each step.
    clipped_fraction
        (N,) fraction of pixels of the step at or above ``clip_level``.
    saturation_luminance
        Luminance at which the output reaches ``clip_level`` (log-log extrapolation of the two
        brightest unclipped steps, bounded by the first clipped step); the brightest step when
        nothing clips (``saturation_reached`` False).
    saturation_reached
        Whether any step clipped.
    luminance_snr1, luminance_snr10
        Luminance where the SNR rises through 1 and 10 (log-log interpolation between
        steps); NaN when the chart does not reach that low.
    dynamic_range_snr1_ev, dynamic_range_snr10_ev
        log2(saturation_luminance / luminance_snrX).
    """

    relative_luminance: NDArray[np.float64]
    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    snr: NDArray[np.float64]
    clipped_fraction: NDArray[np.float64]
    saturation_luminance: float
    saturation_reached: bool
    luminance_snr1: float
    luminance_snr10: float
    dynamic_range_snr1_ev: float
    dynamic_range_snr10_ev: float


def _luminance_at_snr(L: NDArray[np.float64], snr: NDArray[np.float64], level: float) -> float:
    """Lowest luminance above which the SNR stays >= level, interpolated between bracketing steps."""
    above = snr >= level
    if not above.any() or above[0]:
        return float("nan")  # never reaches it, or the chart does not go low enough
    # last step below the threshold that is followed only by steps at or above it
    i = int(np.nonzero(~above)[0][-1])
    if i + 1 >= L.size:
        return float("nan")
    s0, s1 = snr[i], snr[i + 1]
    l0, l1 = np.log(L[i]), np.log(L[i + 1])
    if s0 > 0:
        t = (np.log(level) - np.log(s0)) / (np.log(s1) - np.log(s0))
    else:
        t = (level - s0) / (s1 - s0)
    return float(np.exp(l0 + t * (l1 - l0)))


def measure_tone_steps(
    step_patches: Sequence[ArrayLike],
    *,
    relative_luminance: ArrayLike,
    clip_level: float = 1.0,
    clipped_fraction_limit: float = 0.01,
) -> ToneResult:
    """OECF and dynamic range from the patches of a grey-step chart.

    Parameters
    ----------
    step_patches
        One 2-D array per step (one channel, e.g. G or luminance), linear output
        with black at 0 (raw data after black subtraction, or a linear develop);
        at least 4 steps, each at least 16 pixels.  Noise is the spatial standard
        deviation inside the patch: use a uniformly lit chart (or patches from a
        frame difference) so that chart texture and shading do not count as noise.
    relative_luminance
        (N,) scene luminance of each step (relative; 10^-density for a reflective chart).
    clip_level
        Output value at which the pipeline saturates (1.0 for normalised data, 255 for 8-bit).
    clipped_fraction_limit
        A step counts as clipped when more than this fraction of its pixels reach ``clip_level``.

    Returns
    -------
    ToneResult
    """
    L = np.asarray(relative_luminance, dtype=np.float64)
    if L.ndim != 1 or L.size != len(step_patches) or L.size < 4:
        raise InvalidParams(
            f"need >= 4 steps and one luminance per step, got {len(step_patches)} patches, {L.size} luminances"
        )
    if not np.all(np.isfinite(L)) or np.any(L <= 0):
        raise InvalidParams("relative_luminance must be finite and > 0")
    if not clip_level > 0:
        raise InvalidParams(f"clip_level must be > 0, got {clip_level}")
    mean, std, clipped = np.empty(L.size), np.empty(L.size), np.empty(L.size)
    tol = 1e-6 * clip_level
    for i, p in enumerate(step_patches):  # a loop over steps
        a = np.asarray(p, dtype=np.float64)
        if a.size < 16 or not np.all(np.isfinite(a)):
            raise InvalidParams(f"step {i}: a patch needs >= 16 finite pixels")
        mean[i] = a.mean()
        std[i] = a.std(ddof=1)
        clipped[i] = np.count_nonzero(a >= clip_level - tol) / a.size
    order = np.argsort(L)
    L, mean, std, clipped = L[order], mean[order], std[order], clipped[order]
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(std > 0, mean / std, np.inf)

    is_clipped = clipped > clipped_fraction_limit
    saturation_reached = bool(is_clipped.any())
    if saturation_reached:
        first = int(np.nonzero(is_clipped)[0][0])
        unclipped = np.arange(first)
        L_sat = float(L[first])
        if unclipped.size >= 2 and mean[first - 1] > 0 and mean[first - 2] > 0:
            a_, b_ = first - 2, first - 1
            slope = (np.log(mean[b_]) - np.log(mean[a_])) / (np.log(L[b_]) - np.log(L[a_]))
            if slope > 0:
                est = np.exp(np.log(L[b_]) + (np.log(clip_level) - np.log(mean[b_])) / slope)
                L_sat = float(np.clip(est, L[b_], L[first]))
        valid = np.arange(L.size) < first
    else:
        L_sat = float(L[-1])
        valid = np.ones(L.size, dtype=bool)
    L_snr1 = _luminance_at_snr(L[valid], snr[valid], 1.0)
    L_snr10 = _luminance_at_snr(L[valid], snr[valid], 10.0)
    return ToneResult(
        relative_luminance=L,
        mean=mean,
        std=std,
        snr=snr,
        clipped_fraction=clipped,
        saturation_luminance=L_sat,
        saturation_reached=saturation_reached,
        luminance_snr1=L_snr1,
        luminance_snr10=L_snr10,
        dynamic_range_snr1_ev=float(np.log2(L_sat / L_snr1)),
        dynamic_range_snr10_ev=float(np.log2(L_sat / L_snr10)),
    )


@dataclass(frozen=True, slots=True)
class ClippingResult:
    """Fractions of pixels (in percent) at or beyond the output range, per channel and any channel."""

    highlight_pct: NDArray[np.float64]
    shadow_pct: NDArray[np.float64]
    highlight_any_pct: float
    shadow_any_pct: float


def clipping_fractions(
    image: ArrayLike, *, clip_level: float = 1.0, black_level: float = 0.0
) -> ClippingResult:
    """Highlight and shadow clipping of an image.

    Parameters
    ----------
    image
        (H, W) or (H, W, C) output image on the scale of ``clip_level`` (any transfer).
    clip_level
        Value at or above which a pixel counts as highlight-clipped (1.0, or 255 for 8-bit).
    black_level
        Value at or below which a pixel counts as shadow-clipped.

    Returns
    -------
    ClippingResult
        Percentages per channel (one entry for a 2-D image) and for "any channel".
    """
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.size == 0:
        raise InvalidParams(f"image must be (H, W) or (H, W, C), got shape {np.shape(image)}")
    hi = a >= clip_level
    lo = a <= black_level
    n = a.shape[0] * a.shape[1]
    return ClippingResult(
        highlight_pct=100.0 * hi.reshape(n, -1).sum(axis=0) / n,
        shadow_pct=100.0 * lo.reshape(n, -1).sum(axis=0) / n,
        highlight_any_pct=100.0 * float(hi.any(axis=-1).sum()) / n,
        shadow_any_pct=100.0 * float(lo.any(axis=-1).sum()) / n,
    )
