"""OpcodeList3 (``dng_opcodes_rgb``): WarpRectilinear, FixVignetteRadial, list-2 kinds in list 3.

References: the WarpRectilinear and FixVignetteRadial formulas of DNG 1.6
(7.3.1, 7.3.3) evaluated by hand at chosen points.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame
from rawlab.core.opcodes import FixVignetteRadial, GainMap, OpcodeArea, WarpFisheye, WarpRectilinear
from rawlab.optics.dng_vignette import fix_vignette_radial_gain
from rawlab.optics.dng_warp import (
    DngOpcodesRgbParams,
    apply_warp_rectilinear,
    dng_opcodes_rgb,
    warp_rectilinear_maps,
    warp_rectilinear_source_point,
)


def _warp(coefficients, center=(0.5, 0.5)):
    return WarpRectilinear(list_index=3, opcode_id=1, coefficients=tuple(map(tuple, coefficients)), center=center)


def _blob(h, w, y0, x0, sigma=1.5):
    y, x = np.mgrid[0:h, 0:w] + 0.5  # pixel centres
    return np.exp(-((y - y0) ** 2 + (x - x0) ** 2) / (2 * sigma**2)).astype(np.float32)


def _centroid(img):
    y, x = np.mgrid[0:img.shape[0], 0:img.shape[1]] + 0.5
    return float((img * y).sum() / img.sum()), float((img * x).sum() / img.sum())


def test_source_point_matches_the_dng_formula_by_hand():
    # 200 x 100 image, centre (100, 50), m = hypot(100, 50)
    h, w = 100, 200
    k = (1.0, 0.1, 0.0, 0.0, 0.0, 0.0)
    m = math.hypot(100, 50)
    dx, dy = (150.5 - 100) / m, (80.5 - 50) / m
    f = 1.0 + 0.1 * (dx * dx + dy * dy)
    xs, ys = warp_rectilinear_source_point(150.5, 80.5, height=h, width=w, coefficients=k, center=(0.5, 0.5))
    assert xs == pytest.approx(100 + m * f * dx) and ys == pytest.approx(50 + m * f * dy)
    map_x, map_y = warp_rectilinear_maps(h, w, coefficients=k, center=(0.5, 0.5))
    assert map_x[80, 150] == pytest.approx(xs - 0.5, abs=1e-3)
    assert map_y[80, 150] == pytest.approx(ys - 0.5, abs=1e-3)


@pytest.mark.parametrize("center", [(0.5, 0.5), (0.3, 0.6)])
def test_maps_equal_the_scalar_formula_everywhere_with_tangential_terms(center):
    h, w = 37, 53
    k = (0.98, 0.05, -0.02, 0.01, 0.003, -0.002)
    map_x, map_y = warp_rectilinear_maps(h, w, coefficients=k, center=center)
    rng = np.random.default_rng(0)
    for r, c in zip(rng.integers(0, h, 40), rng.integers(0, w, 40)):
        xs, ys = warp_rectilinear_source_point(c + 0.5, r + 0.5, height=h, width=w, coefficients=k, center=center)
        assert map_x[r, c] == pytest.approx(xs - 0.5, abs=1e-3)
        assert map_y[r, c] == pytest.approx(ys - 0.5, abs=1e-3)


def test_identity_warp_leaves_the_image_unchanged():
    data = np.random.default_rng(1).uniform(0, 1, (21, 30, 3)).astype(np.float32)
    out = apply_warp_rectilinear(data, _warp([(1, 0, 0, 0, 0, 0)]), interpolation="linear")
    np.testing.assert_allclose(out, data, atol=1e-4)


def test_warp_moves_a_point_where_the_formula_says():
    h, w = 120, 160
    k = (1.0, -0.08, 0.0, 0.0, 0.0, 0.0)  # barrel correction
    dst = (100.5, 140.5)  # (y, x) destination point
    xs, ys = warp_rectilinear_source_point(dst[1], dst[0], height=h, width=w, coefficients=k, center=(0.5, 0.5))
    assert math.hypot(xs - dst[1], ys - dst[0]) > 3  # the warp does move it
    blob = _blob(h, w, ys, xs)
    out = apply_warp_rectilinear(np.repeat(blob[..., None], 3, axis=2), _warp([k]), interpolation="cubic")
    cy, cx = _centroid(np.maximum(out[..., 1], 0))
    # the scale of the warp near the point is < 1, so the blob is sharper but centred on dst
    assert cy == pytest.approx(dst[0], abs=0.15) and cx == pytest.approx(dst[1], abs=0.15)


def test_per_plane_coefficients_shift_planes_differently():
    h, w = 80, 80
    sets = [(1.0, 0, 0, 0, 0, 0), (1.0, 0, 0, 0, 0, 0), (1.02, 0, 0, 0, 0, 0)]  # lateral CA in blue
    dst = (20.5, 65.5)
    blob_src = {}
    for p, k in enumerate(sets):
        xs, ys = warp_rectilinear_source_point(dst[1], dst[0], height=h, width=w, coefficients=k, center=(0.5, 0.5))
        blob_src[p] = _blob(h, w, ys, xs, sigma=2.0)
    data = np.stack([blob_src[p] for p in range(3)], axis=-1)
    out = apply_warp_rectilinear(data, _warp(sets), interpolation="linear")
    for p in range(3):
        cy, cx = _centroid(out[..., p])
        assert cy == pytest.approx(dst[0], abs=0.1) and cx == pytest.approx(dst[1], abs=0.1)


def test_fix_vignette_radial_hand_values():
    g = fix_vignette_radial_gain(10, 20, k=(0.5, 0.25, 0, 0, 0), center=(0.25, 0.5))
    # centre (5, 5); farthest corner (20, 0) or (20, 10): distance hypot(15, 5)
    r2 = ((7.5 - 5) ** 2 + (2.5 - 5) ** 2) / (15**2 + 5**2)
    assert g[2, 7] == pytest.approx(1 + 0.5 * r2 + 0.25 * r2**2, rel=1e-6)
    assert g.dtype == np.float32 and g.shape == (10, 20)


def test_list3_stage_applies_vignette_warp_and_gain_map_keeps_fisheye():
    h, w = 24, 32
    data = np.ones((h, w, 3), np.float32)
    vig = FixVignetteRadial(list_index=3, opcode_id=3, k=(0.3, 0, 0, 0, 0), center=(0.5, 0.5))
    gains = np.stack([np.full((2, 2), g, np.float32) for g in (1.0, 2.0, 3.0)], axis=-1)
    gm = GainMap(list_index=3, opcode_id=9, area=OpcodeArea(top=0, left=0, bottom=h, right=w, plane=0, planes=3),
                 points_v=2, points_h=2, spacing_v=1.0, spacing_h=1.0, origin_v=0.0, origin_h=0.0, map_planes=3,
                 gains=gains)
    fisheye = WarpFisheye(list_index=3, opcode_id=2, coefficients=((1.0, 0, 0, 0),), center=(0.5, 0.5))
    identity = _warp([(1, 0, 0, 0, 0, 0)])
    other_list = GainMap(list_index=2, opcode_id=9, area=gm.area, points_v=2, points_h=2, spacing_v=1.0,
                         spacing_h=1.0, origin_v=0.0, origin_h=0.0, map_planes=3, gains=gains)
    frame = Frame(data, Encoding.CAMERA_RGB, clip_level=np.ones(3, np.float32),
                  opcodes=(other_list, vig, gm, fisheye, identity))
    out = dng_opcodes_rgb(frame, DngOpcodesRgbParams(interpolation="linear"))
    assert out.opcodes == (other_list, fisheye)
    expected = fix_vignette_radial_gain(h, w, k=vig.k, center=vig.center)[..., None] * np.array([1.0, 2.0, 3.0])
    np.testing.assert_allclose(out.data, expected, rtol=1e-4)
    assert frame.data.max() == 1.0  # input untouched
    off = dng_opcodes_rgb(frame, DngOpcodesRgbParams(apply=False))
    assert off.opcodes == frame.opcodes and off.data is frame.data


def test_bad_warp_is_kept_not_raised():
    bad = _warp([(1, 0, 0, 0, 0, 0), (1, 0, 0, 0, 0, 0)])  # two sets for three planes
    frame = Frame(np.ones((4, 4, 3), np.float32), Encoding.CAMERA_RGB, opcodes=(bad,))
    out = dng_opcodes_rgb(frame)
    assert out.opcodes == (bad,)
    np.testing.assert_array_equal(out.data, frame.data)
