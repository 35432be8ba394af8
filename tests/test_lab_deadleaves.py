"""Dead-leaves texture MTF with noise-power subtraction, CPIQ acutance (rawlab.lab.deadleaves)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate
from scipy.ndimage import gaussian_filter

from rawlab.errors import InvalidParams
from rawlab.lab.deadleaves import (
    acutance_cpiq,
    csf_cpiq,
    pixels_per_degree,
    radial_psd,
    render_dead_leaves,
    texture_mtf_dead_leaves,
)

SIGMA_PX = 1.0
NOISE = 0.015


@pytest.fixture(scope="module")
def chart():
    return render_dead_leaves((768, 768), radius_min_px=1.0, radius_max_px=200.0, seed=1)


def test_chart_is_seeded_and_scale_invariant(chart):
    assert chart.dtype == np.float32 and chart.shape == (768, 768)
    assert 0.2 <= chart.min() and chart.max() <= 0.8
    again = render_dead_leaves((768, 768), radius_min_px=1.0, radius_max_px=200.0, seed=1)
    assert np.array_equal(chart, again)
    # A dead-leaves image with 1/r^3 radii has a power-law spectrum close to 1/f^2
    # (Cao et al. 2010 measure exponents near 1.9 on the printed chart).
    f, psd = radial_psd(chart, n_bins=64)
    sel = (f > 0.02) & (f < 0.2)
    slope = np.polyfit(np.log(f[sel]), np.log(psd[sel]), 1)[0]
    assert -2.4 < slope < -1.6


def test_noise_corrected_texture_mtf_matches_the_gaussian_and_uncorrected_fails(chart):
    rng = np.random.default_rng(11)
    blurred = gaussian_filter(chart.astype(np.float64), SIGMA_PX, mode="reflect", truncate=5.0)
    image = blurred + rng.normal(0.0, NOISE, blurred.shape)
    flat = 0.5 + rng.normal(0.0, NOISE, (768, 768))
    r = texture_mtf_dead_leaves(image, reference=chart, flat=flat, n_bins=32)
    f = r.frequency_cy_px
    analytic = np.exp(-2 * np.pi**2 * SIGMA_PX**2 * f**2)
    sel = f <= 0.3
    corrected_err = np.abs(r.mtf[sel] / analytic[sel] - 1)
    raw_err = np.abs(r.mtf_uncorrected[sel] / analytic[sel] - 1)
    assert corrected_err.max() < 0.05, corrected_err
    assert raw_err.max() > 0.05, raw_err  # noise power inflates the uncorrected MTF
    assert raw_err.max() > 3 * corrected_err.max()
    # the noise PSD of white noise is flat at sigma^2 (periodogram normalisation)
    assert np.median(r.psd_noise) == pytest.approx(NOISE**2, rel=0.05)


def test_noiseless_blur_is_measured_without_flat(chart):
    blurred = gaussian_filter(chart.astype(np.float64), 1.5, mode="reflect", truncate=5.0)
    r = texture_mtf_dead_leaves(blurred, reference=chart, n_bins=32)
    f = r.frequency_cy_px
    sel = f <= 0.25
    np.testing.assert_allclose(r.mtf[sel], np.exp(-2 * np.pi**2 * 1.5**2 * f[sel] ** 2), rtol=0.05, atol=0.005)
    assert np.all(r.psd_noise == 0)
    np.testing.assert_array_equal(r.mtf, r.mtf_uncorrected)


def test_acutance_against_direct_integration():
    ppd = pixels_per_degree()
    assert ppd == pytest.approx(2 * 0.5 * np.tan(np.radians(0.5)) / 0.254e-3, rel=1e-12)
    assert acutance_cpiq([0.0, 0.5], [1.0, 1.0]) == pytest.approx(1.0, abs=1e-9)
    sigma = 1.0
    f = np.linspace(0, 0.5, 200)
    mtf = np.exp(-2 * np.pi**2 * sigma**2 * f**2)
    num = integrate.quad(lambda v: np.exp(-2 * np.pi**2 * sigma**2 * (v / ppd) ** 2) * csf_cpiq(v), 0, 0.5 * ppd)[0]
    den = integrate.quad(csf_cpiq, 0, 0.5 * ppd)[0]
    assert acutance_cpiq(f, mtf) == pytest.approx(num / den, rel=2e-3)
    # viewed from further away the same blur matters less
    assert acutance_cpiq(f, mtf, pixels_per_deg=4 * ppd) > acutance_cpiq(f, mtf)


def test_bad_input():
    with pytest.raises(InvalidParams):
        texture_mtf_dead_leaves(np.zeros((8, 8)), reference=np.zeros((64, 64)))
    bad = np.ones((64, 64))
    bad[1, 1] = np.nan
    with pytest.raises(InvalidParams):
        texture_mtf_dead_leaves(bad, reference=np.ones((64, 64)))
    with pytest.raises(InvalidParams):
        render_dead_leaves((64, 64), radius_min_px=5, radius_max_px=2)
