"""Burst alignment (Hasinoff 2016 §4) against the simulator's true motion."""

from __future__ import annotations

import dataclasses

import numpy as np

from rawlab.burst import align_burst, prepare_burst
from rawlab.burst.align import (
    Alignment,
    quadratic_subpixel,
    tile_distances,
    tile_distances_reference,
)
from rawlab.burst.merge import aligned_tiles


def test_tile_distance_kernel_matches_numpy_twin():
    rng = np.random.default_rng(0)
    ref = rng.random((60, 70)).astype(np.float32)
    alt = rng.random((60, 70)).astype(np.float32)
    oy, ox = np.array([10, 20, 30]), np.array([12, 28])
    cy = rng.integers(-4, 5, (3, 2, 5))
    cx = rng.integers(-4, 5, (3, 2, 5))
    for norm in ("l1", "l2"):
        a = tile_distances(ref, alt, origins_y=oy, origins_x=ox, cand_y=cy, cand_x=cx, tile_px=8, norm=norm)
        b = tile_distances_reference(ref, alt, origins_y=oy, origins_x=ox, cand_y=cy, cand_x=cx, tile_px=8, norm=norm)
        np.testing.assert_allclose(a, b, rtol=1e-4)


def test_quadratic_subpixel_finds_an_analytic_minimum():
    g = np.array([-1.0, 0.0, 1.0])
    y, x = np.meshgrid(g, g, indexing="ij")
    for y0, x0 in ((0.3, -0.2), (-0.45, 0.1), (0.0, 0.0)):
        cost = 2.0 * (x - x0) ** 2 + 1.0 * (y - y0) ** 2 + 0.5 * (x - x0) * (y - y0) + 3.0
        np.testing.assert_allclose(quadratic_subpixel(cost), [y0, x0], atol=1e-6)
    assert np.all(quadratic_subpixel(-np.ones((3, 3))) == 0)  # not a bowl: no offset


def _true_flow(motion, cy, cx, width, height):
    """Displacement d(p) with alt(p + d) = ref(p) for the simulator's motion
    (content shifted by (dx, dy) and turned counter-clockwise on screen about the centre)."""
    dx, dy, rot = motion
    t = np.deg2rad(rot)
    c0x, c0y = width / 2 - 0.5, height / 2 - 0.5
    Y, X = np.meshgrid(cy, cx, indexing="ij")
    qx = np.cos(t) * (X - c0x) + np.sin(t) * (Y - c0y) + c0x + dx
    qy = -np.sin(t) * (X - c0x) + np.cos(t) * (Y - c0y) + c0y + dy
    return qy - Y, qx - X


def test_alignment_error_against_simulator_motion():
    """Handheld motion up to 30 px and 1 degree: mean error <= 0.1 px on textured tiles."""
    from rawlab.sim import capture, load_camera, scene

    cam = load_camera("phone-small")
    # a lens without distortion or lateral CA, so the true motion is rigid
    cam = dataclasses.replace(
        cam, optics=dataclasses.replace(cam.optics, distortion_k1=0.0, distortion_k2=0.0,
                                        ca_magnification=(1.0, 1.0, 1.0))
    )
    w, h = 512, 384
    sc = scene.dead_leaves((w, h), seed=3)
    motions = [(0.0, 0.0, 0.0), (12.3, -7.6, 0.4), (-20.2, 14.9, -0.7), (29.0, -3.3, 1.0), (-8.4, -25.7, 0.9)]
    frames = [capture(sc, cam, iso=100, seed=1, frame_index=i, motion=m).frame for i, m in enumerate(motions)]
    planes, _, _ = prepare_burst(frames)
    ref, alignments = align_burst(planes, reference=0)
    cy, cx = Alignment.tile_centers_mosaic_px(h, w)
    # textured tiles: the smaller eigenvalue of the structure tensor in the upper half
    tiles = aligned_tiles(planes[0].mean(axis=0), None).astype(np.float64)
    gy, gx = np.gradient(tiles, axis=(2, 3))
    a, b, c = (gy * gy).sum((2, 3)), (gy * gx).sum((2, 3)), (gx * gx).sum((2, 3))
    lam_min = 0.5 * (a + c - np.sqrt((a - c) ** 2 + 4 * b * b))
    inner = np.zeros(lam_min.shape, bool)
    inner[2:-2, 2:-2] = True
    textured = inner & (lam_min >= np.median(lam_min[inner]))
    errors = []
    for motion, al in zip(motions[1:], alignments[1:]):
        ty, tx = _true_flow(motion, cy, cx, w, h)
        err = np.hypot(al.flow_mosaic_px[..., 0] - ty, al.flow_mosaic_px[..., 1] - tx)
        errors.append(err[textured].mean())
    print("alignment mean error per frame (mosaic px):", np.round(errors, 3))
    assert np.mean(errors) <= 0.1, errors
    assert max(errors) <= 0.15, errors


def test_flat_tiles_keep_the_predicted_displacement():
    """Where every candidate costs the same (flat or clipped areas) the search keeps
    its centre instead of drifting to a corner of the window."""
    from rawlab.burst.align import align_tiles_hasinoff2016

    flat = np.full((96, 160), 0.5, np.float32)
    a = align_tiles_hasinoff2016(flat, flat.copy(), subpixel="none")
    assert np.all(a.offsets_px == 0)
    rng = np.random.default_rng(3)
    ref = rng.random((96, 160)).astype(np.float32)
    clipped = np.minimum(ref, 0.0)  # a fully clipped frame: no evidence of motion
    a = align_tiles_hasinoff2016(clipped, clipped.copy(), subpixel="none")
    assert np.all(a.offsets_px == 0)


def test_fused_fine_search_matches_the_generic_search():
    """The fused finest-level kernel gives the displacements and flow of the
    generic search run with the NumPy twin of the distance kernel."""
    from rawlab.burst.align import align_tiles_hasinoff2016

    rng = np.random.default_rng(4)
    import cv2

    base = cv2.GaussianBlur(rng.random((140, 190)).astype(np.float32), (0, 0), 1.5)
    ref = base[10:106, 10:170]
    alt = base[13:109, 8:168] + 0.01 * rng.standard_normal((96, 160)).astype(np.float32)
    for subpixel in ("quadratic", "lucas_kanade"):
        a = align_tiles_hasinoff2016(ref, alt, subpixel=subpixel)
        b = align_tiles_hasinoff2016(ref, alt, subpixel=subpixel, distances=tile_distances_reference)
        np.testing.assert_array_equal(a.offsets_px, b.offsets_px)
        np.testing.assert_allclose(a.flow_mosaic_px, b.flow_mosaic_px, atol=1e-3)
        assert np.all(a.offsets_px[2:-2, 2:-2] == [-3, 2])  # alt(p + d) = ref(p)
