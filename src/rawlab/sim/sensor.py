"""Sensor of the simulator: photo-electrons to digital numbers.

The model (EMVA 1288 release 4.0, section 2, linear camera model): a pixel
collects ``mu_e`` photo-electrons (quantum efficiency included) plus dark
current; shot noise is Poisson; photo-response non-uniformity (PRNU) scales
the signal per pixel and dark-signal non-uniformity (DSNU) offsets it; the
well saturates at ``full_well_e``; read noise is Gaussian (e-); the system
gain ``K = 1 / g`` (DN/e-, ``g`` the conversion gain in e-/DN scaled by ISO)
turns electrons into DN on top of the black offset; the ADC rounds and clips
to ``0..white_level``.

The matching DNG NoiseProfile (DNG 1.6, tag 51041) for a signal ``x`` in 0..1
(``x = (DN - black) / (white - black)``) is ``var(x) = S x + O`` with
``S = 1 / (g (white - black))`` and
``O = (sigma_read^2 / g^2 + 1/12) / (white - black)^2`` (the 1/12 DN^2 is
the quantisation noise).  It describes temporal noise; PRNU and DSNU are
fixed patterns and are not in it.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from rawlab.sim.camera import CameraModel, SensorModel

#: Row bands simulated in parallel (fixed, so results do not depend on the CPU count).
NOISE_BANDS = 4

#: Hot pixels' dark current, in multiples of 1000 e-/s (uniform 1..20).
HOT_PIXEL_RATE_E_PER_S = (1000.0, 20000.0)


@dataclass(frozen=True, eq=False)
class FixedPatterns:
    """Per-pixel fixed patterns of one sensor: gain (1 + PRNU), dark offset
    (DSNU, e-) and extra dark current of hot pixels (e-/s)."""

    prnu_gain: NDArray[np.float32]
    dsnu_e: NDArray[np.float32]
    hot_rate_e_per_s: NDArray[np.float32]
    hot_pixels: tuple[tuple[int, int], ...]


@lru_cache(maxsize=4)
def fixed_patterns(sensor: SensorModel, height: int, width: int) -> FixedPatterns:
    """The sensor's fixed patterns, drawn from ``sensor.fixed_pattern_seed`` (so
    they are the same in every capture of that sensor at that size)."""
    rng = np.random.default_rng([sensor.fixed_pattern_seed, height, width])
    prnu = 1.0 + sensor.prnu_fraction * rng.standard_normal((height, width), dtype=np.float32)
    dsnu = sensor.dsnu_e * rng.standard_normal((height, width), dtype=np.float32)
    n_hot = int(round(sensor.hot_pixel_fraction * height * width))
    hot = np.zeros((height, width), np.float32)
    flat = rng.choice(height * width, size=n_hot, replace=False) if n_hot else np.zeros(0, np.int64)
    flat = np.sort(flat)
    hot.reshape(-1)[flat] = rng.uniform(*HOT_PIXEL_RATE_E_PER_S, size=flat.size).astype(np.float32)
    for a in (prnu, dsnu, hot):
        a.setflags(write=False)
    points = tuple((int(i // width), int(i % width)) for i in flat)
    return FixedPatterns(prnu, dsnu, hot, points)


def noise_profile(camera: CameraModel, iso: float) -> tuple[float, float]:
    """DNG NoiseProfile ``(S, O)`` of the model at ``iso`` (normalised units)."""
    s = camera.sensor
    g = camera.gain_e_per_dn(iso)
    span = s.white_level_dn - s.black_level_dn
    scale = 1.0 / (g * span)
    offset = (s.read_noise_e**2 / g**2 + 1.0 / 12.0) / span**2
    return scale, offset


def electrons_to_dn(
    mean_e: NDArray[np.float32],
    camera: CameraModel,
    *,
    iso: float,
    exposure_time_s: float,
    rng: np.random.Generator,
    fixed: FixedPatterns | None = None,
    noise: bool = True,
) -> NDArray[np.float32]:
    """Simulate the sensor read-out of a mosaic of mean photo-electrons.

    Parameters
    ----------
    mean_e
        (H, W) float32, expected photo-electrons per pixel (>= 0).
    camera, iso, exposure_time_s
        The model, the ISO (scales the conversion gain) and the exposure
        (dark current).
    rng
        Random generator (seeded by the caller: same seed, same output).
    fixed
        Fixed patterns (default: those of the sensor at this size).
    noise
        False gives the noise-free expected DN (no rounding), for tests.

    Returns
    -------
    ndarray
        (H, W) float32 digital numbers, integers in ``0..white_level`` when
        ``noise`` is true.
    """
    s = camera.sensor
    h, w = mean_e.shape
    if fixed is None:
        fixed = fixed_patterns(s, h, w)
    g = np.float32(camera.gain_e_per_dn(iso))
    t = np.float32(exposure_time_s)
    out = np.empty((h, w), np.float32)
    # NOISE_BANDS row bands, each with its own child generator: the numbers
    # depend only on the seed, never on the thread count or timing.
    rngs = rng.spawn(NOISE_BANDS)
    edges = np.linspace(0, h, NOISE_BANDS + 1).astype(int)

    def band(k: int) -> None:
        rows = slice(edges[k], edges[k + 1])
        signal = mean_e[rows] * fixed.prnu_gain[rows]
        signal += np.float32(s.dark_current_e_per_s) * t
        signal += fixed.hot_rate_e_per_s[rows] * t
        electrons = rngs[k].poisson(signal).astype(np.float32) if noise else signal
        np.minimum(electrons, np.float32(s.full_well_e), out=electrons)
        electrons += fixed.dsnu_e[rows]
        if noise and s.read_noise_e > 0:
            electrons += np.float32(s.read_noise_e) * rngs[k].standard_normal(electrons.shape, dtype=np.float32)
        dn = electrons / g
        dn += np.float32(s.black_level_dn)
        if noise:
            np.rint(dn, out=dn)
        np.clip(dn, 0.0, np.float32(s.white_level_dn), out=out[rows])

    with ThreadPoolExecutor(max_workers=min(NOISE_BANDS, os.cpu_count() or 1)) as pool:
        list(pool.map(band, range(NOISE_BANDS)))
    return out
