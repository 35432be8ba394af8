"""The built-in sample (``rawlab.sample``): an sRGB photo unprocessed into a DNG.

References: the develop contract written out here independently (sRGB
decoding from colour-science, the filmic curve inverted numerically with
scipy), LibRaw reading the written DNG, and the DNG NoiseProfile definition
(variance = S x + O of the normalised signal x).
"""

from __future__ import annotations

import hashlib
import math
import time

import colour
import numpy as np
import pytest
import rawpy
from scipy.optimize import brentq

from rawlab.errors import InvalidParams
from rawlab.sample import (
    M_XYZ_TO_CAMERA_CANON_5D2_D65,
    filmic_inverse,
    filmic_k,
    make_sample,
    noise_profile,
    unprocess,
)

T, W = 0.6, 4.0
BLACK, WHITE = 512.0, 16383.0
RANGE = WHITE - BLACK


def _filmic_forward(x: float) -> float:
    k = filmic_k(t=T, w=W)
    if x <= T:
        return x
    return T + (1 - T) * (1 - math.exp(-k * (x - T))) / (1 - math.exp(-k * (W - T)))


def _scene_value(code: int) -> float:
    """8-bit sRGB code -> scene-referred linear value, inverted numerically."""
    display = float(colour.cctf_decoding(code / 255.0, function="sRGB"))
    if display >= 1.0:
        return W
    return brentq(lambda x: _filmic_forward(x) - display, 0.0, W, xtol=1e-12)


def _neutral() -> np.ndarray:
    xyz_d65 = colour.xy_to_XYZ(np.array([0.3127, 0.3290]))
    camera = M_XYZ_TO_CAMERA_CANON_5D2_D65 @ xyz_d65
    return camera / camera[1]


def _sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------- filmic curve
def test_filmic_k_solves_the_slope_condition():
    k = filmic_k(t=T, w=W)
    assert k > 0
    assert (1 - T) * k / (1 - math.exp(-k * (W - T))) == pytest.approx(1.0, abs=1e-12)


def test_filmic_inverse_inverts_the_forward_curve():
    x = np.concatenate([np.linspace(0, T, 7), np.linspace(T, 3.9, 50)])
    y = np.array([_filmic_forward(v) for v in x])
    np.testing.assert_allclose(filmic_inverse(y, t=T, w=W), x, rtol=2e-5, atol=1e-6)
    assert filmic_inverse(np.array([1.0]))[0] == pytest.approx(W, rel=1e-6)
    assert filmic_inverse(np.array([0.3]))[0] == pytest.approx(0.3)  # identity below t
    assert filmic_inverse(np.array([1.5]))[0] == pytest.approx(W, rel=1e-6)  # clipped at w
    assert np.all(np.diff(filmic_inverse(np.linspace(0, 1, 1001))) >= 0)


def test_noise_profile_scales_with_iso():
    s100, o100 = noise_profile(iso=100)
    s400, o400 = noise_profile(iso=400)
    assert s400 == pytest.approx(4 * s100)
    assert o400 > o100
    # base ISO: ~60000 e- full well, a few DN of read noise on the 14-bit scale
    assert 1 / s100 == pytest.approx(60000)
    assert 3.0 < math.sqrt(o100) * RANGE < 8.0


# ----------------------------------------------------------------- the file
def test_same_seed_same_bytes(tmp_path):
    a = make_sample(tmp_path / "a.dng", seed=3)
    b = make_sample(tmp_path / "b.dng", seed=3)
    c = make_sample(tmp_path / "c.dng", seed=4)
    assert _sha(a) == _sha(b)
    assert _sha(a) != _sha(c)


def test_default_sample_is_fast(tmp_path):
    make_sample(tmp_path / "warm.dng")  # imports
    start = time.perf_counter()
    make_sample(tmp_path / "s.dng")
    assert time.perf_counter() - start < 2.0


def test_dng_opens_in_libraw_with_its_metadata(tmp_path):
    path = make_sample(tmp_path / "s.dng", image="astronaut", seed=0)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image_visible.shape == (528, 528)  # 512 + 2 x 8 px border
        assert raw.raw_pattern.tolist() == [[0, 1], [3, 2]] and raw.color_desc == b"RGBG"
        assert raw.black_level_per_channel == [512] * 4
        assert raw.white_level == 16383
        # LibRaw turns ColorMatrix1 into camera -> sRGB: rows of
        # ColorMatrix1 . M_sRGB_to_XYZ normalised to sum 1, then inverted.
        camera_from_srgb = M_XYZ_TO_CAMERA_CANON_5D2_D65 @ colour.RGB_COLOURSPACES["sRGB"].matrix_RGB_to_XYZ
        camera_from_srgb /= camera_from_srgb.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(raw.color_matrix[:, :3], np.linalg.inv(camera_from_srgb), atol=2e-3)
        multipliers = np.asarray(raw.camera_whitebalance[:3])
        np.testing.assert_allclose(multipliers / multipliers[1], 1 / _neutral(), rtol=1e-4)
        data = raw.raw_image_visible
        assert data.min() >= 0 and data.max() < 0.95 * RANGE + BLACK  # nothing clips
        rgb = raw.postprocess(use_camera_wb=True, output_bps=8)  # LibRaw can develop it
        assert rgb.shape[:2] == (528, 528)


def test_dng_reads_back_through_rawlab(tmp_path):
    from rawlab.io.read import read

    path = make_sample(tmp_path / "s.dng", image="coffee", seed=0, iso=200)
    frame = read(path)
    assert frame.data.shape == (416, 616)
    assert frame.sensor.crop_px == (8, 8, 400, 600)
    assert frame.sensor.cfa.name == "RGGB"
    np.testing.assert_allclose(frame.color.as_shot_neutral, _neutral(), rtol=1e-6)
    assert frame.color.illuminant_1 == 21
    s, o = noise_profile(iso=200)
    assert frame.sensor.noise_profile[0] == pytest.approx((s, o), rel=1e-6)
    assert (frame.capture.make, frame.capture.model) == ("rawlab", "unprocessed sample")
    assert frame.capture.iso == 200 and frame.capture.orientation == 1
    assert frame.capture.datetime_original == "2024:06:21 12:00:00"
    # s puts the brightest scene value (w on the green channel) at 90 %
    scale = 2.0 ** -frame.color.baseline_exposure_ev
    assert W * scale == pytest.approx(0.9, rel=0.01)


@pytest.mark.parametrize("size", [(640, 480), (101, 77)])
def test_size_resizes_the_photo(tmp_path, size):
    path = make_sample(tmp_path / "s.dng", size=size)
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image_visible.shape == (size[1] + 16, size[0] + 16)


def test_bad_arguments(tmp_path):
    with pytest.raises(InvalidParams, match="unknown sample image"):
        make_sample(tmp_path / "x.dng", image="not-a-photo")
    with pytest.raises(InvalidParams, match="size"):
        make_sample(tmp_path / "x.dng", size=(8, 8))
    with pytest.raises(InvalidParams, match="uint8"):
        unprocess(np.zeros((16, 16, 3), dtype=np.float32))
    with pytest.raises(InvalidParams, match="uint8"):
        unprocess(np.zeros((16, 16), dtype=np.uint8))
    with pytest.raises(InvalidParams, match="RGGB"):
        unprocess(np.zeros((16, 16, 3), dtype=np.uint8), cfa="RGBW")
    with pytest.raises(InvalidParams, match="iso"):
        unprocess(np.zeros((16, 16, 3), dtype=np.uint8), iso=0)


# ------------------------------------------------- flat fields: mean and noise
CODES = (0, 40, 120, 200, 240)
PATCH = 96


def _flat_patches() -> np.ndarray:
    image = np.zeros((PATCH, PATCH * len(CODES), 3), dtype=np.uint8)
    for i, code in enumerate(CODES):
        image[:, i * PATCH : (i + 1) * PATCH] = code
    return image


@pytest.fixture(scope="module")
def flat_sample(tmp_path_factory):
    path = make_sample(tmp_path_factory.mktemp("flat") / "flat.dng", image=_flat_patches(), seed=11)
    with rawpy.imread(str(path)) as raw:
        mosaic = raw.raw_image_visible.astype(np.float64)
    return mosaic


@pytest.mark.parametrize("index", range(len(CODES)))
def test_flat_patch_mean_is_the_expected_dn(flat_sample, index):
    """Grey code v -> scene value x (inverse sRGB, inverse filmic) -> camera
    x * neutral (grey is the D65 white) -> times s -> DN."""
    scale = 0.9 / W  # green is the strongest channel of this camera at D65
    x = _scene_value(CODES[index])
    neutral = _neutral()
    cells = _patch_cells(flat_sample, index)
    for (dy, dx), color in {(0, 0): 0, (0, 1): 1, (1, 0): 1, (1, 1): 2}.items():
        expected = BLACK + scale * x * neutral[color] * RANGE
        assert cells[dy][dx].mean() == pytest.approx(expected, abs=max(1.0, 0.004 * (expected - BLACK)))


def _patch_cells(mosaic: np.ndarray, index: int) -> list[list[np.ndarray]]:
    top, left = 8 + 8, 8 + index * PATCH + 8  # skip the border and 8 px of each patch edge
    patch = mosaic[top : top + PATCH - 16, left : left + PATCH - 16]
    # top and left are even: the patch starts on an R site of the RGGB mosaic
    return [[patch[dy::2, dx::2] for dx in range(2)] for dy in range(2)]


def test_libraw_develops_grey_patches_neutral(tmp_path):
    """LibRaw, from ColorMatrix1 and AsShotNeutral alone, renders the grey
    patches grey (within 1.5 %) and in the ratio of their scene values."""
    path = make_sample(tmp_path / "flat.dng", image=_flat_patches(), seed=11)
    with rawpy.imread(str(path)) as raw:
        rgb = raw.postprocess(
            use_camera_wb=True, gamma=(1, 1), no_auto_bright=True, output_bps=16, user_flip=0,
            output_color=rawpy.ColorSpace.sRGB,
        ).astype(np.float64)
    means = []
    for index in range(1, len(CODES) - 1):  # skip black and the shoulder (LibRaw clips at white)
        top, left = 8 + 16, 8 + index * PATCH + 16
        means.append(rgb[top : top + PATCH - 32, left : left + PATCH - 32].reshape(-1, 3).mean(axis=0))
    means = np.array(means)
    np.testing.assert_allclose(means / means.mean(axis=1, keepdims=True), 1.0, atol=0.015)
    scene = np.array([_scene_value(code) for code in CODES[1:-1]])
    np.testing.assert_allclose(means[:, 1] / means[-1, 1], scene / scene[-1], rtol=0.02)


@pytest.mark.parametrize("index", range(len(CODES)))
def test_flat_patch_noise_follows_the_noise_profile(flat_sample, index):
    s, o = noise_profile(iso=100)
    for row in _patch_cells(flat_sample, index):
        for cell in row:
            x = (cell.mean() - BLACK) / RANGE
            measured = cell.var(ddof=1) / RANGE**2
            assert measured == pytest.approx(s * x + o, rel=0.10)


def test_unprocess_cfa_phases_and_border():
    image = np.zeros((20, 30, 3), dtype=np.uint8)
    image[..., 0] = 200  # red photo: the red sites carry the largest raw values
    for cfa in ("RGGB", "GRBG", "GBRG", "BGGR"):
        mosaic, sensor, _ = unprocess(image, cfa=cfa, seed=0)
        assert mosaic.shape == (36, 46) and mosaic.dtype == np.uint16
        assert sensor.cfa.name == cfa and sensor.crop_px == (8, 8, 20, 30)
        red = sensor.cfa.masks(36, 46)[0]
        assert mosaic[red].mean() > mosaic[~red].mean()


# ------------------------------------- optional: the develop contract end to end
def _colorchecker_srgb8() -> np.ndarray:
    checker = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    XYZ = colour.xyY_to_XYZ(np.array(list(checker.data.values())))
    rgb = colour.XYZ_to_RGB(
        XYZ,
        colour.RGB_COLOURSPACES["sRGB"],
        illuminant=checker.illuminant,
        chromatic_adaptation_transform="Bradford",
        apply_cctf_encoding=True,
    )
    return np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)


def test_colorchecker_patches_develop_back(tmp_path):
    """Flat ColorChecker patches (no demosaicing error inside a patch): the
    developed patch means match the photo within 1 CIEDE2000."""
    develop = pytest.importorskip("rawlab.pipeline").develop
    from rawlab.io.read import read

    colors = _colorchecker_srgb8()
    side = 40
    image = np.zeros((4 * side, 6 * side, 3), dtype=np.uint8)
    for i, rgb in enumerate(colors):
        r, c = divmod(i, 6)
        image[r * side : (r + 1) * side, c * side : (c + 1) * side] = rgb
    out = develop(read(make_sample(tmp_path / "cc.dng", image=image, seed=5)))
    assert out.data.shape == image.shape
    developed = []
    for i in range(24):
        r, c = divmod(i, 6)
        patch = out.data[r * side + 8 : (r + 1) * side - 8, c * side + 8 : (c + 1) * side - 8]
        linear = colour.cctf_decoding(np.clip(patch.astype(np.float64), 0, 1), function="sRGB")
        developed.append(colour.cctf_encoding(linear.reshape(-1, 3).mean(axis=0), function="sRGB"))
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    d65 = colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"]

    def lab(values):
        return colour.XYZ_to_Lab(colour.RGB_to_XYZ(values, srgb, apply_cctf_decoding=True), d65)

    delta_e = colour.delta_E(lab(np.array(developed)), lab(colors / 255.0), method="CIE 2000")
    assert delta_e.max() < 1.0, delta_e.round(2)
