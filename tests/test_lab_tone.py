"""OECF, dynamic range and clipping (rawlab.lab.tone)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.lab.tone import clipping_fractions, measure_tone_steps


def _step_chart(full_well_e, read_noise_e, *, seed, sat_L=2.0**-1.4, n_steps=48, size=128):
    """Linear sensor: Poisson shot noise + Gaussian read noise, clipped at full well, normalised to 1."""
    rng = np.random.default_rng(seed)
    L = 2.0 ** (-np.arange(n_steps) / 3.0)
    gain = full_well_e / sat_L
    patches = [
        np.minimum(rng.poisson(lum * gain, (size, size)) + rng.normal(0.0, read_noise_e, (size, size)), full_well_e)
        / full_well_e
        for lum in L
    ]
    return patches, L, sat_L


@pytest.mark.parametrize("full_well_e, read_noise_e", [(20000.0, 15.0), (40000.0, 12.0), (8000.0, 20.0)])
def test_dynamic_range_on_a_synthetic_step_chart(full_well_e, read_noise_e):
    patches, L, sat_L = _step_chart(full_well_e, read_noise_e, seed=int(full_well_e))
    r = measure_tone_steps(patches, relative_luminance=L)
    assert r.saturation_reached
    assert np.log2(r.saturation_luminance / sat_L) == pytest.approx(0.0, abs=0.02)
    assert r.dynamic_range_snr1_ev == pytest.approx(np.log2(full_well_e / read_noise_e), abs=0.1)
    # SNR = 10 where S^2 = 100 (S + read^2), shot + read noise
    s10 = (100 + np.sqrt(100**2 + 400 * read_noise_e**2)) / 2
    assert r.dynamic_range_snr10_ev == pytest.approx(np.log2(full_well_e / s10), abs=0.1)
    # OECF: linear below saturation
    ok = r.clipped_fraction == 0
    slope = np.polyfit(np.log(L[::-1][ok][-10:]), np.log(r.mean[ok][-10:]), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.01)


def test_chart_that_does_not_reach_snr1_reports_nan():
    patches, L, _ = _step_chart(20000.0, 15.0, seed=1, n_steps=27)
    r = measure_tone_steps(patches, relative_luminance=L)
    assert np.isnan(r.luminance_snr1) and np.isnan(r.dynamic_range_snr1_ev)
    assert np.isfinite(r.dynamic_range_snr10_ev)


def test_unsorted_steps_and_8bit_scale():
    patches, L, sat_L = _step_chart(20000.0, 15.0, seed=2)
    order = np.random.default_rng(0).permutation(len(L))
    r1 = measure_tone_steps(patches, relative_luminance=L)
    r2 = measure_tone_steps([255.0 * patches[i] for i in order], relative_luminance=L[order], clip_level=255.0)
    assert r2.dynamic_range_snr1_ev == pytest.approx(r1.dynamic_range_snr1_ev, abs=1e-9)


def test_clipping_fractions():
    img = np.full((10, 10, 3), 0.5)
    img[:2, :, 0] = 1.0  # 20 % red clipped
    img[9, :5, :] = 0.0  # 5 % black in every channel
    c = clipping_fractions(img)
    np.testing.assert_allclose(c.highlight_pct, [20.0, 0.0, 0.0])
    np.testing.assert_allclose(c.shadow_pct, [5.0, 5.0, 5.0])
    assert c.highlight_any_pct == 20.0 and c.shadow_any_pct == 5.0
    u8 = (img * 255).astype(np.uint8)
    assert clipping_fractions(u8, clip_level=255).highlight_any_pct == 20.0


def test_bad_input():
    with pytest.raises(InvalidParams):
        measure_tone_steps([np.ones((8, 8))] * 3, relative_luminance=[1, 2, 3])
    with pytest.raises(InvalidParams):
        measure_tone_steps([np.ones((8, 8))] * 4, relative_luminance=[1, 2, 3, -1])
    with pytest.raises(InvalidParams):
        clipping_fractions(np.ones(5))
