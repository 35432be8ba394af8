"""ISO 12233 e-SFR on synthetic Gaussian edges (rawlab.lab.sfr).

The edges are rendered point-wise at pixel centres (an erf profile, no pixel
aperture), so the analytic MTF along the edge normal is the Gaussian's alone:
exp(-2 pi^2 sigma^2 f^2), MTF50 = sqrt(2 ln 2) / (2 pi sigma) = 0.18739 / sigma.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import ndtr

from rawlab.errors import InvalidParams
from rawlab.lab.sfr import render_gaussian_edge, sfr_slanted_edge_iso12233

MTF50_GAUSS = np.sqrt(2.0 * np.log(2.0)) / (2.0 * np.pi)  # 0.187390...
SHAPE = (100, 128)


def test_constant_is_the_published_one():
    assert MTF50_GAUSS == pytest.approx(0.18739, abs=1e-5)


@pytest.mark.parametrize("sigma_px", [0.7, 1.0, 1.5, 2.0])
@pytest.mark.parametrize("angle_deg", [2.0, 3.5, 5.0, 8.0])
def test_mtf50_and_angle_on_gaussian_edges(sigma_px, angle_deg):
    img = render_gaussian_edge(SHAPE, angle_deg=angle_deg, sigma_px=sigma_px, offset_px=0.3)
    r = sfr_slanted_edge_iso12233(img)
    assert r.orientation == "vertical"
    assert r.mtf50_cy_px == pytest.approx(MTF50_GAUSS / sigma_px, rel=0.01)
    assert abs(r.edge_angle_deg - angle_deg) < 0.1
    # the whole curve up to Nyquist, not only its 50 % point
    f = r.frequency_cy_px
    sel = f <= 0.5
    np.testing.assert_allclose(r.mtf[sel], np.exp(-2 * np.pi**2 * sigma_px**2 * f[sel] ** 2), atol=0.01)
    assert abs(r.overshoot_pct) < 0.2 and abs(r.undershoot_pct) < 0.2
    assert r.mtf50p_cy_px == pytest.approx(r.mtf50_cy_px, rel=1e-9)  # no sharpening: peak at f = 0


def test_subpixel_offsets_give_the_same_mtf50():
    values = []
    for off in np.linspace(0.0, 1.0, 9)[:-1]:
        img = render_gaussian_edge(SHAPE, angle_deg=5.0, sigma_px=1.2, offset_px=off)
        values.append(sfr_slanted_edge_iso12233(img).mtf50_cy_px)
    values = np.array(values)
    assert values.max() / values.min() - 1.0 < 0.01
    assert np.all(np.abs(values / (MTF50_GAUSS / 1.2) - 1.0) < 0.01)


@pytest.mark.parametrize("orientation", ["vertical", "horizontal"])
@pytest.mark.parametrize("angle_deg", [-6.0, 4.0])
@pytest.mark.parametrize("falling", [False, True])
def test_orientation_sign_and_polarity(orientation, angle_deg, falling):
    low, high = (0.8, 0.1) if falling else (0.1, 0.8)
    img = render_gaussian_edge(
        SHAPE[::-1] if orientation == "horizontal" else SHAPE,
        angle_deg=angle_deg,
        sigma_px=1.0,
        low=low,
        high=high,
        orientation=orientation,
    )
    r = sfr_slanted_edge_iso12233(img)
    assert r.orientation == orientation
    assert abs(r.edge_angle_deg - angle_deg) < 0.1
    assert r.mtf50_cy_px == pytest.approx(MTF50_GAUSS, rel=0.01)


def test_sharpened_edge_overshoot_and_mtf50p_match_the_analytic_values():
    # Unsharp mask of a Gaussian edge: ESF = (1 + k) Phi(d/s1) - k Phi(d/s2), s2 = sqrt(s1^2 + r^2).
    s1, r_px, k = 1.0, 1.5, 0.8
    s2 = np.hypot(s1, r_px)
    h, w = SHAPE
    y = np.arange(h)[:, None] - (h - 1) / 2
    x = np.arange(w)[None, :] - (w - 1) / 2
    t = np.radians(5.0)
    d = x * np.cos(t) - y * np.sin(t)
    img = 0.2 + 0.6 * ((1 + k) * ndtr(d / s1) - k * ndtr(d / s2))
    r = sfr_slanted_edge_iso12233(img)
    dd = np.linspace(-10, 10, 200001)
    esf = (1 + k) * ndtr(dd / s1) - k * ndtr(dd / s2)
    assert r.overshoot_pct == pytest.approx(100 * (esf.max() - 1), abs=0.5)
    assert r.undershoot_pct == pytest.approx(100 * (-esf.min()), abs=0.5)
    f = np.linspace(0, 0.5, 500001)
    mtf = (1 + k) * np.exp(-2 * np.pi**2 * s1**2 * f**2) - k * np.exp(-2 * np.pi**2 * s2**2 * f**2)
    peak_i = np.argmax(mtf)
    f50p = f[peak_i + np.nonzero(mtf[peak_i:] < 0.5 * mtf[peak_i])[0][0]]
    assert r.mtf_peak == pytest.approx(mtf.max(), rel=0.01)
    assert r.mtf50p_cy_px == pytest.approx(f50p, rel=0.01)
    assert r.mtf50p_cy_px < r.mtf50_cy_px


def test_noisy_edge_stays_close():
    rng = np.random.default_rng(7)
    img = render_gaussian_edge(SHAPE, angle_deg=5.0, sigma_px=1.0) + rng.normal(0, 0.005, SHAPE)
    r = sfr_slanted_edge_iso12233(img)
    assert r.mtf50_cy_px == pytest.approx(MTF50_GAUSS, rel=0.03)
    assert abs(r.edge_angle_deg - 5.0) < 0.1


def test_polynomial_fit_and_windows_agree_on_a_straight_edge():
    img = render_gaussian_edge(SHAPE, angle_deg=5.0, sigma_px=1.0)
    ref = sfr_slanted_edge_iso12233(img).mtf50_cy_px
    for kwargs in ({"polynomial_degree": 3}, {"window": "tukey"}, {"window": "none"}, {"oversampling": 8}):
        assert sfr_slanted_edge_iso12233(img, **kwargs).mtf50_cy_px == pytest.approx(ref, rel=0.01)


def test_bad_regions_raise_one_line_errors():
    img = render_gaussian_edge(SHAPE, angle_deg=5.0, sigma_px=1.0)
    bad = img.copy()
    bad[3, 4] = np.nan
    for arr, kwargs in [
        (bad, {}),
        (np.full(SHAPE, 0.5), {}),
        (render_gaussian_edge(SHAPE, angle_deg=0.0, sigma_px=1.0), {}),
        (img[:, :, None], {}),
        (img[:5, :10], {}),
        (img, {"window": "kaiser"}),
        (img, {"oversampling": 1}),
    ]:
        with pytest.raises(InvalidParams) as e:
            sfr_slanted_edge_iso12233(arr, **kwargs)
        assert "\n" not in str(e.value)
