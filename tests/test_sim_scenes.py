"""Scenes and camera models of the simulator."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.sim import builtin_cameras, load_camera
from rawlab.sim.capture import capture
from rawlab.sim.scene import SCENES, hdr_window, make_scene, render_supersampled, slanted_edge, srgb_to_linear

pytestmark = pytest.mark.filterwarnings("ignore:.*Aligning")


def test_builtin_cameras_load():
    assert {"phone-1in", "phone-small", "fullframe"} <= set(builtin_cameras())
    small = load_camera("phone-small")
    assert (small.sensor.width_px, small.sensor.height_px) == (4032, 3024)
    assert small.gain_e_per_dn(small.sensor.iso_base * 4) == pytest.approx(small.sensor.conversion_gain_e_per_dn / 4)


@pytest.mark.parametrize("name", sorted(SCENES))
@pytest.mark.parametrize("size", [(64, 48), (65, 47)])  # odd sizes too
def test_every_scene_renders_and_captures(name, size):
    scene_ = make_scene(name, size)
    assert (scene_.width, scene_.height) == size
    cap = capture(scene_, "phone-small", seed=1)
    assert cap.frame.data.shape == (size[1], size[0])
    assert np.isfinite(cap.truth_xyz).all() and cap.truth_xyz.dtype == np.float32
    assert cap.truth["scene"] == name


def test_hdr_window_ratio():
    s = hdr_window((256, 192), ratio=2.0**16)
    assert s.gain.max() / s.gain.min() == pytest.approx(2.0**16, rel=1e-3)
    assert s.geometry["radiance_ratio"] == pytest.approx(2.0**16, rel=1e-3)


def test_supersampling_integrates_pixel_area():
    # a half-plane x >= 10.25 covers 3/4 of pixel column 10
    out = render_supersampled(lambda x, y: (x + 0 * y >= 10.25).astype(np.float32), 4, 16, supersample=8)
    assert out[0, 10] == pytest.approx(0.75) and out[0, 9] == 0 and out[0, 11] == 1


def test_slanted_edge_geometry_matches_pixels():
    s = slanted_edge((64, 64), angle_deg=0.0, low=0.1, high=0.8)
    assert s.gain[10, 31] == pytest.approx(0.1) and s.gain[10, 32] == pytest.approx(0.8)


def test_srgb_decoding_reference_values():
    np.testing.assert_allclose(srgb_to_linear(np.array([0.0, 0.04045, 0.5, 1.0])),
                               [0.0, 0.04045 / 12.92, 0.21404114, 1.0], rtol=1e-5)


def test_image_file_scene(tmp_path):
    import cv2

    img = np.zeros((30, 40, 3), np.uint8)
    img[..., 2] = 200  # red in BGR
    path = tmp_path / "red.png"
    cv2.imwrite(str(path), img)
    s = make_scene(str(path), (20, 15))
    assert s.coefficients.shape == (15, 20, 3)
    assert s.coefficients[..., 0].min() > 0.5 and s.coefficients[..., 1:].max() == 0
