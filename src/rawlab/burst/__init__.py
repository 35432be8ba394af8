"""Burst photography: align and merge several RAW frames into one.

* ``mode="merge"`` -- HDR+-class align and merge of a burst of equal
  exposures (Hasinoff et al. 2016): :mod:`rawlab.burst.align`,
  :mod:`rawlab.burst.merge`.
* ``mode="night"`` -- pick the number of frames from the noise model, merge
  under-exposed frames and lift them: :mod:`rawlab.burst.night`.
* ``mode="hdr"`` -- an exposure bracket merged in linear raw space:
  :mod:`rawlab.burst.hdr`.

Every mode takes CFA frames (in DN with their levels, or normalised) and
returns one CFA frame, normalised (black 0, white 1; nothing clipped), with a
NoiseProfile that describes the merged noise, so it develops like any RAW and
can be written as a DNG.

>>> from rawlab.burst import merge
>>> merged = merge(frames)                       # doctest: +SKIP
>>> night = merge(frames, mode="night")          # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Sequence

import numpy as np
from numpy.typing import NDArray

from rawlab.burst._planes import (
    check_finite,
    check_frames,
    estimate_noise_profile,
    join_planes,
    noise_profile_per_color,
    normalized_mosaic,
    plane_colors,
    split_planes,
)
from rawlab.burst.align import Alignment, _RefPyramid, align_tiles_hasinoff2016, choose_reference_frame, zero_alignment
from rawlab.burst.merge import merge_plane_hasinoff2016
from rawlab.core.frame import Frame, StageRecord
from rawlab.core.params import Params, param
from rawlab.errors import InvalidParams

__all__ = [
    "MergeParams",
    "BurstAlignment",
    "align_burst",
    "frame_noise_per_plane",
    "merge",
    "merge_burst",
    "normalized_planes",
    "prepare_burst",
]

#: A progress callback: called with a short description of each finished step.
Progress = Callable[[str], None]


def burst_threads() -> int:
    """Threads for the burst's independent pieces of work (frames, Bayer planes).

    The kernels are serial and release the GIL; parallelism comes from running
    frames (alignment) and planes (merge) side by side.  This has no barrier per
    kernel call, so it keeps its speed when other processes share the cores.
    """
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class MergeParams(Params):
    """Parameters of the align-and-merge (``mode="merge"``).

    Versions: 1, the first; 2, (a) the alignment's search breaks ties between
    equal costs towards the predicted displacement (a flat or clipped tile no
    longer drifts to a corner of its search window), which changes the
    integer offsets on such tiles; (b) the merge normalises the frames'
    robust weights (a rejected frequency is left out instead of being replaced
    by the reference's, see :mod:`rawlab.burst.merge`); (c) the noise model
    is the reference frame's, not frame 0's.
    """

    VERSION: ClassVar[int] = 2
    robustness: float = param(
        32.0, min=0.5, max=1e4,
        doc="Wiener threshold c: a frequency falls back to the reference when |D|^2 > c x its noise-only expectation",
    )
    gate: float = param(2.5, min=1.05, max=1e4, doc="tile gate: tiles whose difference energy passes gate x noise are rejected")
    reference_candidates: int = param(3, min=1, max=64, doc="reference = the sharpest of the first N frames")


@dataclass(frozen=True, eq=False)
class BurstAlignment:
    """A burst prepared for merging: normalised planes, noise model and alignment.

    Attributes
    ----------
    planes
        Per frame ``(4, H/2, W/2)`` float32 Bayer planes, black 0, white 1.
    ref_index
        The reference frame.
    alignments
        Per frame its :class:`~rawlab.burst.align.Alignment` (zeros for the reference).
    noise_per_plane
        ``(4, 2)`` NoiseProfile ``(S, O)`` of each plane's colour (the reference's).
    noise_estimated
        True when the profile was estimated from the data (no NoiseProfile in the file).
    """

    planes: list[NDArray[np.float32]]
    ref_index: int
    alignments: list[Alignment]
    noise_per_plane: NDArray[np.float64]
    noise_estimated: bool


def normalized_planes(frames: Sequence[Frame]) -> list[NDArray[np.float32]]:
    """Check the burst, normalise every frame (black 0, white 1) and split it into Bayer planes.

    Raises :class:`~rawlab.errors.InvalidParams` for a burst that cannot be
    merged (see :func:`~rawlab.burst._planes.check_frames`) and for a frame
    with non-finite samples (NaN or infinity) or a NoiseProfile that is not
    finite and >= 0: the burst's NaN policy is to refuse them here, at the
    boundary, with the frame's index (the kernels do not assume finite values
    either, see :data:`~rawlab.burst._planes.FINITE_SAFE_FASTMATH`).
    """
    frames = list(frames)
    check_frames(frames)

    def one(item: tuple[int, Frame]) -> NDArray[np.float32]:
        i, frame = item
        mosaic = normalized_mosaic(frame)
        check_finite(mosaic, f"burst frame {i}")
        noise_profile_per_color(frame, f"burst frame {i}")  # validated here, used later
        return split_planes(mosaic)

    with ThreadPoolExecutor(max_workers=burst_threads()) as pool:
        return list(pool.map(one, enumerate(frames)))


def frame_noise_per_plane(frame: Frame, planes: NDArray[np.float32]) -> tuple[NDArray[np.float64], bool]:
    """``(4, 2)`` NoiseProfile ``(S, O)`` of each Bayer plane's colour of ``frame``.

    From the frame's NoiseProfile (normalised units, as DNG defines it), or
    estimated from its ``planes`` when it has none; returns ``(noise, estimated?)``.
    """
    colors = plane_colors(frame.sensor.cfa)
    per_color = noise_profile_per_color(frame)
    estimated = per_color is None
    if estimated:
        S, O = estimate_noise_profile(planes)
        per_color = np.array([[S, O]] * 3)
    return np.array([per_color[c] for c in colors], dtype=np.float64), estimated


def prepare_burst(
    frames: Sequence[Frame], *, noise_frame: int = 0
) -> tuple[list[NDArray[np.float32]], NDArray[np.float64], bool]:
    """Normalise every frame and split it into Bayer planes; the noise model per plane.

    Returns ``(planes per frame, (4, 2) noise (S, O) per plane, estimated?)``;
    the noise model is the NoiseProfile of frame ``noise_frame`` (estimated
    from that frame when it has none).  :func:`merge_burst` takes it from the
    reference frame, once that is chosen.
    """
    frames = list(frames)
    planes = normalized_planes(frames)
    if not 0 <= noise_frame < len(frames):
        raise InvalidParams(f"noise frame {noise_frame} is not in 0..{len(frames) - 1}")
    noise, estimated = frame_noise_per_plane(frames[noise_frame], planes[noise_frame])
    return planes, noise, estimated


def align_burst(
    planes: list[NDArray[np.float32]],
    *,
    reference: int | None = None,
    reference_candidates: int = 3,
    subpixel: str = "lucas_kanade",
    progress: Progress | None = None,
) -> tuple[int, list[Alignment]]:
    """Choose the reference and align every frame to it (Hasinoff 2016, §4).

    Parameters
    ----------
    planes
        Per frame ``(4, H/2, W/2)`` normalised Bayer planes.
    reference
        Force the reference frame; default: the sharpest of the first
        ``reference_candidates``.
    subpixel
        Sub-pixel method of the reported flow (see
        :func:`~rawlab.burst.align.align_tiles_hasinoff2016`).

    Returns
    -------
    tuple
        ``(reference index, alignments per frame)``.
    """
    with ThreadPoolExecutor(max_workers=burst_threads()) as pool:
        grays = list(pool.map(lambda p: p.mean(axis=0, dtype=np.float32), planes))
    if reference is None:
        ref_index = choose_reference_frame(grays, candidates=reference_candidates)
    else:
        if not 0 <= reference < len(planes):
            raise InvalidParams(f"reference frame {reference} is not in 0..{len(planes) - 1}")
        ref_index = int(reference)
    pyramid = _RefPyramid(grays[ref_index])
    alignments: list[Alignment] = [zero_alignment(*grays[ref_index].shape)] * len(grays)
    others = [i for i in range(len(grays)) if i != ref_index]
    with ThreadPoolExecutor(max_workers=burst_threads()) as pool:
        jobs = [pool.submit(align_tiles_hasinoff2016, pyramid, grays[i], subpixel=subpixel) for i in others]
        for i, job in zip(others, jobs):
            alignments[i] = job.result()
            if progress is not None:
                progress(f"aligned frame {i}")
    return ref_index, alignments


def merge_burst(
    frames: Sequence[Frame],
    *,
    params: MergeParams | None = None,
    reference: int | None = None,
    progress: Progress | None = None,
) -> tuple[Frame, BurstAlignment]:
    """Align and merge a burst of equal exposures (Hasinoff 2016, §4-5).

    Returns the merged frame (see :func:`merge`) and the burst's alignment.
    """
    p = params or MergeParams()
    frames = list(frames)
    planes = normalized_planes(frames)
    # the merge uses integer tile offsets (Hasinoff 2016); the cheap quadratic
    # fit is enough for the reported flow here (align_burst gives the refined one)
    ref_index, alignments = align_burst(
        planes, reference=reference, reference_candidates=p.reference_candidates, subpixel="quadratic",
        progress=progress,
    )
    # the noise model of the reference: the merge compares every frame with it
    noise, estimated = frame_noise_per_plane(frames[ref_index], planes[ref_index])
    merged = np.empty_like(planes[ref_index])
    factors = []

    def merge_one(k: int) -> float:
        merged[k], factor = merge_plane_hasinoff2016(
            [pl[k] for pl in planes],
            [None if i == ref_index else a for i, a in enumerate(alignments)],
            ref_index=ref_index, noise_scale=float(noise[k, 0]), noise_offset=float(noise[k, 1]),
            robustness=p.robustness, gate=p.gate,
        )
        return factor

    with ThreadPoolExecutor(max_workers=min(4, burst_threads())) as pool:
        for k, factor in enumerate(pool.map(merge_one, range(4))):
            factors.append(factor)
            if progress is not None:
                progress(f"merged plane {k}")
    burst = BurstAlignment(planes, ref_index, alignments, noise, estimated)
    out = merged_frame(
        frames[ref_index], join_planes(merged), noise_per_plane=noise, variance_factor=float(np.mean(factors)),
        record=StageRecord("burst.merge", MergeParams.VERSION, p.params_hash()),
    )
    return out, burst


def merged_frame(
    reference: Frame,
    mosaic: NDArray[np.float32],
    *,
    noise_per_plane: NDArray[np.float64],
    variance_factor: float,
    record: StageRecord,
    **changes: Any,
) -> Frame:
    """The output frame: the reference's metadata, normalised levels and the merged NoiseProfile."""
    S = float(np.mean(noise_per_plane[:, 0])) * variance_factor
    O = float(np.mean(noise_per_plane[:, 1])) * variance_factor
    h, w = mosaic.shape
    crop = reference.sensor.crop_px
    if crop is not None:
        top, left, ch, cw = crop
        top, left = min(top, h - 1), min(left, w - 1)
        crop = (top, left, max(1, min(ch, h - top)), max(1, min(cw, w - left)))
    sensor = dataclasses.replace(
        reference.sensor,
        black_level_dn=np.zeros((1, 1, 1)),
        black_level_delta_h_dn=None,
        black_level_delta_v_dn=None,
        white_level_dn=np.ones(1),
        linearization_table=None,
        active_area=None,
        crop_px=crop,
        noise_profile=((S, O),),
    )
    return reference.replace(
        data=mosaic, sensor=sensor, clip_level=np.ones(3, np.float32),
        history=reference.history + (record,), **changes,
    )


def merge(frames: Sequence[Frame], *, mode: str = "merge", progress: Progress | None = None, **options: Any) -> Frame:
    """Merge a burst of CFA frames into one CFA frame.

    Parameters
    ----------
    frames
        Two or more ``Encoding.CFA`` frames of one camera and size (2x2 Bayer),
        in DN with their black/white levels or already normalised.  One frame
        is accepted and returned normalised.
    mode
        ``"merge"`` (equal exposures, :func:`merge_burst`), ``"night"``
        (:func:`rawlab.burst.night.merge_night`) or ``"hdr"`` (an exposure
        bracket, :func:`rawlab.burst.hdr.merge_hdr`).
    progress
        Optional callback, called with a short text after each step.
    **options
        Passed to the mode: ``params`` (:class:`MergeParams`) and ``reference``
        for ``"merge"``; ``params`` (:class:`~rawlab.burst.hdr.HdrParams`),
        ``exposure_ev`` and ``reference`` for ``"hdr"``; see the mode's
        function otherwise.

    Returns
    -------
    Frame
        ``Encoding.CFA``, black 0 and white 1 (``sensor`` says so), float32,
        not clipped, size of the frames (cropped to even rows/columns), the
        reference frame's metadata and a NoiseProfile describing the merged noise.
    """
    if mode == "merge":
        return merge_burst(frames, progress=progress, **options)[0]
    if mode == "night":
        from rawlab.burst.night import merge_night

        return merge_night(frames, progress=progress, **options)
    if mode == "hdr":
        from rawlab.burst.hdr import merge_hdr

        return merge_hdr(frames, progress=progress, **options)
    raise InvalidParams(f"unknown burst mode {mode!r}; expected merge, night or hdr")
