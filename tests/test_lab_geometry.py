"""Vignetting, distortion from a dot grid, lateral CA (rawlab.lab.geometry)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.lab.geometry import (
    distortion_dot_grid,
    find_dots,
    lateral_ca_dot_grid,
    render_dot_grid,
    vignetting_ev,
)

SHAPE = (480, 640)


def test_vignetting_of_a_piecewise_flat_field_is_exact():
    img = np.ones(SHAPE)
    s = int(round(0.05 * min(SHAPE)))
    img[:s, :s] = 0.5  # -1 EV
    img[-s:, -s:] = 0.25  # -2 EV
    r = vignetting_ev(img)
    np.testing.assert_allclose(r.corner_ev, [-1.0, 0.0, 0.0, -2.0], atol=1e-12)
    assert r.worst_ev == -2.0 and r.mean_ev == -0.75


def test_vignetting_of_a_cos4_falloff():
    h, w = SHAPE
    yy, xx = np.mgrid[0:h, 0:w]
    f_px = 500.0
    r2 = ((xx - (w - 1) / 2) ** 2 + (yy - (h - 1) / 2) ** 2) / f_px**2
    img = np.stack([np.cos(np.arctan(np.sqrt(r2))) ** 4] * 3, axis=-1)
    r = vignetting_ev(img, corner_fraction=0.02)
    corner = np.log2(np.cos(np.arctan(np.hypot(w / 2, h / 2) / f_px)) ** 4)
    np.testing.assert_allclose(r.corner_ev, corner, atol=0.05)


@pytest.mark.parametrize("k1, k2", [(0.0, 0.0), (-0.05, 0.0), (0.03, -0.01), (-0.02, 0.005)])
def test_distortion_from_a_dot_grid(k1, k2):
    img = render_dot_grid(SHAPE, pitch_px=32.0, dot_sigma_px=2.5, k1=k1, k2=k2)
    r = distortion_dot_grid(img)
    assert r.distortion_corner_pct == pytest.approx(100 * (k1 + k2), abs=0.1)
    assert len(r.dots_xy) > 200
    assert r.residual_rms_px < 0.2


def test_dot_centroids_are_subpixel_accurate():
    img = render_dot_grid(SHAPE, pitch_px=40.0, dot_sigma_px=3.0)
    dots = find_dots(img)
    c = np.array([(SHAPE[1] - 1) / 2, (SHAPE[0] - 1) / 2])
    rel = (dots - c) / 40.0
    assert np.abs(rel - np.round(rel)).max() * 40.0 < 0.02


def test_lateral_ca_from_channel_scales():
    red = render_dot_grid(SHAPE, scale=1.002)
    green = render_dot_grid(SHAPE)
    blue = render_dot_grid(SHAPE, scale=0.999)
    r = lateral_ca_dot_grid(np.stack([red, green, blue], axis=-1))
    ok = np.isfinite(r.red_shift_px)
    np.testing.assert_allclose(r.red_shift_px[ok], 0.002 * r.radius_px[ok], atol=0.03)
    np.testing.assert_allclose(r.blue_shift_px[ok], -0.001 * r.radius_px[ok], atol=0.03)
    assert r.red_px > 0 > r.blue_px
    assert r.max_px == pytest.approx(0.002 * r.radius_px[ok].max(), abs=0.05)


def test_bad_input():
    with pytest.raises(InvalidParams):
        vignetting_ev(np.zeros(SHAPE))
    with pytest.raises(InvalidParams):
        distortion_dot_grid(np.ones(SHAPE))
    with pytest.raises(InvalidParams):
        lateral_ca_dot_grid(np.ones(SHAPE))
