"""Geometry: DNG default crop and EXIF orientation (against Pillow's exif_transpose)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageOps

from rawlab.core.frame import Encoding, Frame, Primaries
from rawlab.core.metadata import CaptureInfo, CfaPattern, SensorInfo
from rawlab.demosaic.malvar2004 import demosaic_bayer_malvar2004
from rawlab.errors import StageError
from rawlab.geometry.crop import CropParams, clamp_crop_px, crop, crop_array
from rawlab.geometry.orientation import OrientationParams, orient_exif, orient_point, orientation


def rgb_frame(data, **kw):
    return Frame(np.asarray(data, np.float32), Encoding.RGB, primaries=Primaries.SRGB, **kw)


# ------------------------------------------------------------------ crop


def test_crop_to_the_default_crop():
    data = np.arange(8 * 10 * 3, dtype=np.float32).reshape(8, 10, 3)
    out = crop(rgb_frame(data, sensor=SensorInfo(crop_px=(1, 2, 5, 6))))
    np.testing.assert_array_equal(out.data, data[1:6, 2:8])
    assert out.sensor.crop_px is None and out.data.flags.c_contiguous
    assert crop(rgb_frame(data, sensor=SensorInfo(crop_px=(1, 2, 5, 6))), CropParams(mode="none")).data.shape == (8, 10, 3)
    uncropped = rgb_frame(data)
    assert crop(uncropped).data is uncropped.data  # no default crop: untouched


def test_crop_is_clamped_never_fails():
    data = np.zeros((8, 10), np.float32)
    assert clamp_crop_px((-2, 3, 20, 20), 8, 10) == (0, 3, 8, 7)
    assert clamp_crop_px((9, 0, 2, 2), 8, 10) is None
    np.testing.assert_array_equal(crop_array(np.arange(80.0).reshape(8, 10), crop_px=(-2, 3, 20, 20)),
                                  np.arange(80.0).reshape(8, 10)[:, 3:])
    assert crop_array(data, crop_px=(9, 0, 2, 2)).shape == (8, 10)
    frame = Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), crop_px=(50, 50, 4, 4)))
    out = crop(frame)
    assert out.data.shape == (8, 10) and out.sensor.crop_px is None
    with pytest.raises(StageError, match="normalize"):
        crop(Frame(data, Encoding.CFA, sensor=SensorInfo(crop_px=(1, 1, 2, 2), active_area=(0, 0, 8, 10))))


@pytest.mark.parametrize("top, left", [(0, 0), (1, 0), (0, 1), (1, 1), (3, 2)])
def test_cropping_a_mosaic_shifts_the_cfa_phase(top, left):
    pattern = CfaPattern.from_string("GRBG")
    data = np.random.default_rng(0).random((12, 14), dtype=np.float32)
    frame = Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=pattern, crop_px=(top, left, 8, 9)))
    out = crop(frame)
    expected = pattern.color_index_map(12, 14)[top : top + 8, left : left + 9]
    np.testing.assert_array_equal(out.sensor.cfa.color_index_map(8, 9), expected)


# ------------------------------------------------------------------ orientation


@pytest.fixture
def asymmetric():
    rng = np.random.default_rng(4)
    return rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("code", range(1, 9))
def test_all_eight_orientations_match_pillow(asymmetric, code):
    image = Image.fromarray(asymmetric)
    exif = image.getexif()
    exif[0x0112] = code
    image.info["exif"] = exif.tobytes()
    reference = np.asarray(ImageOps.exif_transpose(image))
    ours = orient_exif(asymmetric.astype(np.float32), orientation=code)
    assert ours.dtype == np.float32 and ours.flags.c_contiguous
    np.testing.assert_array_equal(ours, reference)
    grey = orient_exif(asymmetric[..., 0].astype(np.float32), orientation=code)
    np.testing.assert_array_equal(grey, reference[..., 0])
    # orient_point follows the pixels
    for y, x in ((0, 0), (1, 5), (4, 6)):
        i, j = orient_point(y, x, 5, 7, code)
        np.testing.assert_array_equal(ours[i, j], asymmetric[y, x])


@pytest.mark.parametrize("code", range(1, 9))
@pytest.mark.parametrize("shape", [(6, 8), (7, 9), (5, 6)])
def test_orienting_a_mosaic_moves_the_cfa_pattern_with_it(code, shape):
    pattern = CfaPattern.from_string("GBRG")
    data = np.random.default_rng(1).random(shape, dtype=np.float32)
    frame = Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=pattern), capture=CaptureInfo(orientation=code))
    out = orientation(frame)
    assert out.capture.orientation == 1
    moved = orient_exif(pattern.color_index_map(*shape).astype(np.float32), orientation=code)
    np.testing.assert_array_equal(out.sensor.cfa.color_index_map(*out.data.shape), moved)
    # demosaicing then orienting equals orienting then demosaicing (the mosaic stays consistent)
    if min(shape) >= 2:
        a = orient_exif(demosaic_bayer_malvar2004(data, pattern), orientation=code)
        b = demosaic_bayer_malvar2004(out.data, out.sensor.cfa)
        np.testing.assert_allclose(a[2:-2, 2:-2], b[2:-2, 2:-2], atol=1e-6)


@pytest.mark.parametrize("code", range(1, 9))
def test_pending_crop_moves_with_the_pixels(code):
    data = np.random.default_rng(2).random((9, 12, 3), dtype=np.float32)
    frame = rgb_frame(data, sensor=SensorInfo(crop_px=(1, 2, 5, 7)), capture=CaptureInfo(orientation=code))
    crop_then_orient = orient_exif(crop(frame).data, orientation=code)
    orient_then_crop = crop(orientation(frame)).data
    np.testing.assert_array_equal(orient_then_crop, crop_then_orient)


def test_orientation_stage_switches():
    data = np.random.default_rng(3).random((3, 4, 3), dtype=np.float32)
    frame = rgb_frame(data, capture=CaptureInfo(orientation=6))
    out = orientation(frame)
    assert out.data.shape == (4, 3, 3) and out.capture.orientation == 1
    assert orientation(frame, OrientationParams(apply=False)).data is frame.data
    upright = rgb_frame(data)
    assert orientation(upright).data is upright.data
