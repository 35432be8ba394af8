"""Bursts: hand-shake trajectories, moving objects and exposure brackets.

The hand-shake is a smooth random walk: per axis, white noise low-pass
filtered (a sum of a few random sinusoids, periods of 4..20 frames) scaled to
``shake_px`` standard deviation of translation and ``shake_deg`` of rotation;
frame 0 is the reference (no motion), as a burst merge aligns to it.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rawlab.errors import InvalidParams
from rawlab.sim.camera import CameraModel
from rawlab.sim.capture import MovingDisc, SimCapture, capture
from rawlab.sim.scene import Scene


def handshake_trajectory(
    n_frames: int, *, seed: int = 0, shake_px: float = 2.0, shake_deg: float = 0.05
) -> list[tuple[float, float, float]]:
    """``n_frames`` motions ``(dx_px, dy_px, rotation_deg)``; frame 0 is (0, 0, 0)."""
    if n_frames < 1:
        raise InvalidParams(f"a burst needs at least 1 frame, got {n_frames}")
    rng = np.random.default_rng([int(seed), 7919])
    t = np.arange(n_frames, dtype=np.float64)
    out = np.zeros((n_frames, 3))
    for axis, scale in enumerate((shake_px, shake_px, shake_deg)):
        periods = rng.uniform(4.0, 20.0, size=4)
        phases = rng.uniform(0, 2 * np.pi, size=4)
        amps = rng.normal(size=4)
        walk = (amps[:, None] * np.sin(2 * np.pi * t[None, :] / periods[:, None] + phases[:, None])).sum(0)
        walk -= walk[0]
        out[:, axis] = walk / 2.0 * scale  # sum of 4 unit sinusoids: std about 1.4; /2 -> about 0.7*scale
    return [(float(a), float(b), float(c)) for a, b, c in out]


def parse_bracket(text: str) -> list[float]:
    """``"-2,0,2"`` -> ``[-2.0, 0.0, 2.0]`` (EV offsets)."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise InvalidParams(f"--bracket must be EV values separated by commas, got {text!r}") from None
    if not values or any(abs(v) > 10 for v in values):
        raise InvalidParams(f"--bracket values must lie in -10..10 EV, got {text!r}")
    return values


def capture_burst(
    scene: Scene,
    camera: CameraModel | str,
    *,
    n_frames: int | None = None,
    iso: float | None = None,
    illuminant: str = "D65",
    exposure_time_s: float | None = None,
    bracket_ev: Sequence[float] | None = None,
    f_number: float | None = None,
    scene_luminance_cd_m2: float | None = None,
    seed: int = 0,
    shake_px: float = 2.0,
    shake_deg: float = 0.05,
    moving_objects: Sequence[MovingDisc] = (),
    gainmap_opcode: bool = False,
) -> list[SimCapture]:
    """A burst of ``n_frames`` (default 8) along a hand-shake trajectory.

    With ``bracket_ev`` the burst is an exposure bracket: one frame per EV
    offset; ``n_frames`` may then be left out or must equal the number of
    offsets.  The exposure of frame 0 is metered once and reused, so the
    frames differ only by their offsets.  ``f_number``,
    ``scene_luminance_cd_m2`` and ``gainmap_opcode`` apply to every frame
    (see :func:`rawlab.sim.capture.capture`).

    Raises
    ------
    InvalidParams
        ``n_frames`` below 1, or ``n_frames`` and ``bracket_ev`` disagreeing.
    """
    if bracket_ev is not None and len(bracket_ev) == 0:
        raise InvalidParams("bracket_ev must hold at least one EV offset")
    if bracket_ev is not None:
        if n_frames is not None and n_frames != len(bracket_ev):
            raise InvalidParams(
                f"n_frames={n_frames} disagrees with the {len(bracket_ev)} bracket offsets (one frame per offset)"
            )
        offsets = [float(v) for v in bracket_ev]
    else:
        n = 8 if n_frames is None else int(n_frames)
        if n < 1:
            raise InvalidParams(f"a burst needs at least 1 frame, got {n}")
        offsets = [0.0] * n
    motions = handshake_trajectory(len(offsets), seed=seed, shake_px=shake_px, shake_deg=shake_deg)
    frames: list[SimCapture] = []
    base_time = exposure_time_s
    for i, (ev, motion) in enumerate(zip(offsets, motions)):
        cap = capture(
            scene, camera, iso=iso, illuminant=illuminant, exposure_time_s=base_time, exposure_ev=ev,
            f_number=f_number, scene_luminance_cd_m2=scene_luminance_cd_m2, seed=seed, frame_index=i,
            motion=motion, moving_objects=moving_objects, gainmap_opcode=gainmap_opcode,
        )
        if base_time is None:
            base_time = cap.truth["exposure_time_s"] / 2.0 ** ev
        frames.append(cap)
    return frames
