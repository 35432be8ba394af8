"""Demosaicing false colour and zipper (rawlab.lab.artifacts)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.lab.artifacts import false_color_achromatic, zipper_excess_lu_tan2003, zipper_lu_tan2003


def _siemens_star(n=257, spokes=36):
    yy, xx = np.mgrid[0:n, 0:n] - (n - 1) / 2
    theta = np.arctan2(yy, xx)
    star = 0.1 + 0.8 * (np.sin(spokes / 2 * theta) > 0)
    return np.repeat(star[..., None], 3, axis=2)


def _mosaic_bilinear(rgb):
    """RGGB mosaic then bilinear demosaic (a simple renderer that makes false colour)."""
    from scipy.ndimage import convolve

    h, w, _ = rgb.shape
    m = np.zeros((h, w, 3))
    m[0::2, 0::2, 0] = 1
    m[0::2, 1::2, 1] = 1
    m[1::2, 0::2, 1] = 1
    m[1::2, 1::2, 2] = 1
    k_rb = np.array([[0.25, 0.5, 0.25], [0.5, 1, 0.5], [0.25, 0.5, 0.25]])
    k_g = np.array([[0, 0.25, 0], [0.25, 1, 0.25], [0, 0.25, 0]])
    out = np.empty_like(rgb)
    for c, k in ((0, k_rb), (1, k_g), (2, k_rb)):
        out[..., c] = convolve(rgb[..., c] * m[..., c], k, mode="mirror")
    return out


def test_false_color_is_zero_on_a_neutral_rendering_and_grows_with_demosaicing():
    star = _siemens_star()
    clean = false_color_achromatic(star, transfer="linear")
    assert clean.mean_chroma < 1e-6 and clean.above_threshold_pct == 0.0
    # a global cast is white-balanced away, not counted
    cast = false_color_achromatic(star * np.array([1.0, 0.9, 0.7]), transfer="linear")
    assert cast.mean_chroma < 1e-6
    demosaicked = false_color_achromatic(_mosaic_bilinear(star), transfer="linear")
    assert demosaicked.mean_chroma > 2.0 and demosaicked.above_threshold_pct > 5.0
    mask = np.zeros(star.shape[:2], bool)
    mask[:20, :20] = True
    assert np.isnan(false_color_achromatic(star, mask=mask, transfer="linear").chroma_map[100, 100])


def test_zipper_zero_for_identical_and_positive_for_bilinear():
    star = _siemens_star()
    assert zipper_lu_tan2003(star, star, transfer="linear") == 0.0
    z = zipper_lu_tan2003(_mosaic_bilinear(star), star, transfer="linear")
    assert 1.0 < z < 100.0
    # a stronger (double) alternating error makes more zipper than a weak one
    rng = np.random.default_rng(0)
    weak = np.clip(star + 0.002 * rng.standard_normal(star.shape), 0, 1)
    assert zipper_lu_tan2003(weak, star, transfer="linear") < z


def test_zipper_mask_and_noise_floor():
    star = _siemens_star()
    demosaicked = _mosaic_bilinear(star)
    whole = zipper_lu_tan2003(demosaicked, star, transfer="linear")
    left = np.zeros(star.shape[:2], bool)
    left[:, :128] = True
    part = zipper_lu_tan2003(demosaicked, star, transfer="linear", mask=left)
    assert 0.0 < part < 100.0 and part != whole
    with pytest.raises(InvalidParams, match="no interior"):
        zipper_lu_tan2003(demosaicked, star, transfer="linear", mask=np.zeros(star.shape[:2], bool))
    # demosaicing zipper sits at the edges: far above the (zero) floor of the uniform areas
    z = zipper_excess_lu_tan2003(demosaicked, star, transfer="linear")
    assert z.flat_pct < 1.0 and z.excess_pct > 10.0
    # noise alone raises the measure everywhere alike: almost no excess at the edges
    rng = np.random.default_rng(5)
    noisy = np.clip(star + 0.03 * rng.standard_normal(star.shape), 0, 1)
    zn = zipper_excess_lu_tan2003(noisy, star, transfer="linear")
    assert zn.flat_pct > 20.0 and zn.excess_pct < 0.25 * zn.edge_pct


def test_bad_input():
    with pytest.raises(InvalidParams):
        false_color_achromatic(np.ones((8, 8)))
    with pytest.raises(InvalidParams):
        zipper_lu_tan2003(np.ones((8, 8, 3)), np.ones((9, 8, 3)))
    with pytest.raises(InvalidParams):
        false_color_achromatic(np.ones((8, 8, 3)), transfer="gamma")
