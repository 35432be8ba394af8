"""Night mode: as many frames as the noise model says, merged, then lifted.

Hasinoff et al. 2016 (section 2, "exposure and frame count") and Liba et al.,
"Handheld mobile photography in very low light", ACM TOG 38(6), 2019: in low
light a phone under-exposes every frame (short, sharp shutter times) and
recovers the signal-to-noise ratio by merging frames; the brightness is then
restored by a digital gain.

* Frame count: at the scene's median level ``x`` (normalised, reference
  frame's green), one frame has ``SNR_1 = x / sqrt(S x + O)``; merging ``N``
  frames divides the variance by ``N``, so ``N = ceil((SNR_target / SNR_1)^2)``,
  limited to the frames available.
* Lift: the gain that brings the median to ``target_median`` is stored as
  DNG BaselineExposure (EV) on the merged frame, so it is applied by the
  develop's exposure stage on linear data: signal and noise scale together
  (the SNR of the merge is kept) and nothing is clipped or quantised in the
  raw frame.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

from rawlab.burst import MergeParams, Progress, merge_burst, merged_frame, prepare_burst
from rawlab.burst._planes import normalized_mosaic, plane_colors
from rawlab.core.frame import Frame, StageRecord
from rawlab.errors import InvalidParams

__all__ = ["frames_needed", "merge_night"]


def frames_needed(median_level: float, *, noise_scale: float, noise_offset: float, target_snr: float) -> int:
    """Frames to merge for ``target_snr`` at ``median_level`` (normalised 0..1).

    ``N = ceil((target_snr / SNR_1)^2)`` with ``SNR_1 = x / sqrt(S x + O)``; at least 1.
    """
    if not target_snr > 0:
        raise InvalidParams(f"target_snr must be > 0, got {target_snr}")
    x = max(float(median_level), 1e-6)
    snr1 = x / np.sqrt(max(noise_scale * x + noise_offset, 1e-20))
    return max(1, int(np.ceil((target_snr / snr1) ** 2 - 1e-9)))


def merge_night(
    frames: Sequence[Frame],
    *,
    target_snr: float = 20.0,
    target_median: float = 0.18,
    max_lift_ev: float = 8.0,
    params: MergeParams | None = None,
    progress: Progress | None = None,
) -> Frame:
    """Night mode: merge the needed number of under-exposed frames and lift them.

    Parameters
    ----------
    frames
        CFA frames of one exposure (a burst), in DN or normalised.
    target_snr
        SNR wanted at the scene's median level; sets the number of frames used
        (the first ones; at most all of them).
    target_median
        Level (normalised, linear) the median is lifted to.
    max_lift_ev
        Upper bound of the lift (EV).

    Returns
    -------
    Frame
        The merged CFA frame (see :func:`rawlab.burst.merge`); the lift is in
        ``color.baseline_exposure_ev`` (added to the file's own).
    """
    frames = list(frames)
    planes, noise, _ = prepare_burst(frames[:1])
    green = plane_colors(frames[0].sensor.cfa).index(1)
    median = float(np.median(planes[0][green]))
    n = min(len(frames), frames_needed(median, noise_scale=float(noise[:, 0].mean()),
                                       noise_offset=float(noise[:, 1].mean()), target_snr=target_snr))
    if n >= 2:
        merged, _ = merge_burst(frames[:n], params=params, progress=progress)
    else:
        merged = _single(frames[0], noise)
    lift_ev = float(np.clip(np.log2(target_median / max(median, 1e-6)), 0.0, max_lift_ev))
    color = dataclasses.replace(merged.color, baseline_exposure_ev=merged.color.baseline_exposure_ev + lift_ev)
    return merged.replace(color=color)


def _single(frame: Frame, noise: np.ndarray) -> Frame:
    """One frame is enough: normalise it and give it the output's form."""
    return merged_frame(frame, np.ascontiguousarray(normalized_mosaic(frame)), noise_per_plane=noise,
                        variance_factor=1.0, record=StageRecord("burst.night", 1, "single-frame"))
