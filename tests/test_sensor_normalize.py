"""Sensor normalisation (DNG 1.6 chapter 5): linearization, black pattern and
deltas relative to the active area, white scaling, active-area crop."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame, Primaries
from rawlab.core.metadata import CfaPattern, SensorInfo
from rawlab.errors import StageError
from rawlab.sensor.normalize import normalize, normalize_dng_levels, normalize_dng_levels_reference


def expected_by_hand(raw, black, white, *, dh=None, dv=None, table=None, area=None):
    """Pixel-by-pixel reading of the DNG specification, written independently of the module."""
    raw = np.asarray(raw, dtype=np.float64)
    if raw.ndim == 2:
        raw = raw[:, :, None]
    H, W, S = raw.shape
    top, left, bottom, right = area if area is not None else (0, 0, H, W)
    black = np.asarray(black, dtype=np.float64)
    R, C = black.shape[:2]
    white = np.broadcast_to(np.asarray(white, dtype=np.float64), (S,))
    h, w = bottom - top, right - left
    dh = np.zeros(w) if dh is None else np.asarray(dh, float)
    dv = np.zeros(h) if dv is None else np.asarray(dv, float)
    levels = np.zeros((h, w, S))
    for y in range(h):
        for x in range(w):
            for s in range(S):
                levels[y, x, s] = black[y % R, x % C, s if black.shape[2] > 1 else 0] + dv[y] + dh[x]
    out = np.zeros((h, w, S))
    for s in range(S):
        max_black = levels[:, :, s].max()
        for y in range(h):
            for x in range(w):
                v = raw[top + y, left + x, s]
                if table is not None:
                    v = table[min(int(v), len(table) - 1)]
                out[y, x, s] = (v - levels[y, x, s]) / (white[s] - max_black)
    return out[:, :, 0] if S == 1 else out


def test_uniform_black_and_white_exact_values():
    raw = np.array([[600, 15520, 0], [1000, 8060, 599]], dtype=np.float32)
    out = normalize_dng_levels(raw, black_level_dn=600, white_level_dn=15520)
    expected = (raw.astype(np.float64) - 600) / 14920
    assert out.dtype == np.float32 and out.shape == (2, 3)
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-7)
    assert out[0, 1] == 1.0 and out[0, 0] == 0.0 and out[0, 2] < 0  # not clipped


def test_black_pattern_origin_is_the_active_area_corner():
    # 2x2 black pattern, active area starting at an odd row and column:
    # the pattern's (0, 0) entry applies to the active area's first pixel.
    raw = np.full((5, 7), 1100.0, dtype=np.float32)
    black = np.array([[100.0, 200.0], [300.0, 400.0]])[:, :, None]
    out = normalize_dng_levels(raw, black_level_dn=black, white_level_dn=1400.0, active_area=(1, 3, 5, 7))
    # max black 400 -> scale 1 / 1000
    np.testing.assert_allclose(out, [[1.0, 0.9, 1.0, 0.9], [0.8, 0.7, 0.8, 0.7]] * 2, atol=1e-6)


def test_black_deltas_are_per_active_row_and_column():
    raw = np.full((4, 5), 500.0, dtype=np.float32)
    dh = np.array([0.0, 10.0, 20.0])
    dv = np.array([0.0, 5.0])
    out = normalize_dng_levels(
        raw, black_level_dn=100.0, white_level_dn=1125.0, black_level_delta_h_dn=dh, black_level_delta_v_dn=dv,
        active_area=(2, 1, 4, 4),
    )
    # max black = 100 + 20 + 5 = 125 -> scale 1 / 1000
    np.testing.assert_allclose(out, [[0.4, 0.39, 0.38], [0.395, 0.385, 0.375]], atol=1e-6)
    # a writer that stored one delta per *stored* column is read leniently
    out2 = normalize_dng_levels(
        raw, black_level_dn=100.0, white_level_dn=1125.0, black_level_delta_h_dn=[9, 0, 10, 20, 9],
        black_level_delta_v_dn=[7, 7, 0, 5], active_area=(2, 1, 4, 4),
    )
    np.testing.assert_allclose(out2, out, atol=1e-7)
    with pytest.raises(StageError, match="BlackLevelDeltaH has 2 values, expected 3"):
        normalize_dng_levels(raw, black_level_dn=0, white_level_dn=1, black_level_delta_h_dn=[1, 2],
                             active_area=(2, 1, 4, 4))


def test_linearization_table_with_index_clamp():
    table = np.array([0.0, 10.0, 40.0, 90.0, 160.0])  # quadratic
    raw = np.array([[0, 1, 2], [3, 4, 9]], dtype=np.float32)  # 9 is past the end -> last entry
    out = normalize_dng_levels(raw, black_level_dn=10.0, white_level_dn=160.0, linearization_table=table)
    np.testing.assert_allclose(out, [[-10 / 150, 0.0, 0.2], [0.5333333, 1.0, 1.0]], atol=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_random_configurations_match_the_hand_reading_and_the_numpy_twin(seed):
    rng = np.random.default_rng(seed)
    H, W = rng.integers(5, 20, size=2)
    samples = (1, 3)[seed % 2]
    raw = rng.integers(0, 4096, size=(H, W, samples)).astype(np.float32)
    if samples == 1:
        raw = raw[:, :, 0]
    R, C = rng.integers(1, 4, size=2)
    black = rng.uniform(50, 250, size=(R, C, samples if seed % 4 == 1 else 1))
    top, left = rng.integers(0, 3, size=2)
    bottom, right = H - rng.integers(0, 3), W - rng.integers(0, 3)
    h, w = bottom - top, right - left
    dh = rng.uniform(-5, 5, w) if seed >= 2 else None
    dv = rng.uniform(-5, 5, h) if seed >= 2 else None
    table = np.sort(rng.uniform(0, 5000, 3000)) if seed % 2 == 0 else None
    white = rng.uniform(3500, 4095, samples)
    kwargs = dict(black_level_dn=black, white_level_dn=white, black_level_delta_h_dn=dh, black_level_delta_v_dn=dv,
                  linearization_table=table, active_area=(top, left, bottom, right))
    out = normalize_dng_levels(raw, **kwargs)
    expected = expected_by_hand(raw, black, white, dh=dh, dv=dv, table=table, area=(top, left, bottom, right))
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(out, normalize_dng_levels_reference(raw, **kwargs), rtol=1e-6, atol=1e-7)


def test_linear_raw_per_sample_levels():
    raw = np.array([[[10, 20, 30], [255, 255, 255]]], dtype=np.float32)
    out = normalize_dng_levels(raw, black_level_dn=[[[10, 20, 0]]], white_level_dn=[110, 220, 300])
    np.testing.assert_allclose(out, [[[0, 0, 0.1], [2.45, 1.175, 0.85]]], atol=1e-6)


def test_bad_levels_are_clear_errors():
    raw = np.zeros((4, 4), np.float32)
    with pytest.raises(StageError, match="white level"):
        normalize_dng_levels(raw, black_level_dn=100, white_level_dn=100)
    with pytest.raises(StageError, match="active area"):
        normalize_dng_levels(raw, black_level_dn=0, white_level_dn=1, active_area=(0, 0, 5, 4))
    with pytest.raises(StageError, match="white levels for 3 sample"):
        normalize_dng_levels(np.zeros((2, 2, 3), np.float32), black_level_dn=0, white_level_dn=[1, 2])


def cfa_frame(raw, **sensor):
    return Frame(np.asarray(raw, np.float32), Encoding.CFA, sensor=SensorInfo(**sensor))


def test_stage_updates_the_sensor_info_and_is_idempotent():
    rng = np.random.default_rng(1)
    raw = rng.integers(0, 1024, size=(12, 14)).astype(np.float32)
    pattern = CfaPattern.from_string("GRBG")
    frame = cfa_frame(
        raw, cfa=pattern, black_level_dn=[[[60], [64]], [[62], [61]]], white_level_dn=[1023],
        black_level_delta_v_dn=np.linspace(0, 3, 10), active_area=(1, 2, 11, 14), crop_px=(1, 1, 8, 10),
        noise_profile=((1e-4, 1e-6),),
    )
    out = normalize(frame)
    assert out.encoding is Encoding.CFA and out.data.shape == (10, 12)
    s = out.sensor
    assert s.cfa == pattern and s.crop_px == (1, 1, 8, 10) and s.noise_profile == ((1e-4, 1e-6),)
    assert s.active_area is None and s.linearization_table is None and s.black_level_delta_v_dn is None
    assert np.all(s.black_level_dn == 0) and np.all(s.white_level_dn == 1)
    np.testing.assert_array_equal(out.clip_level, [1, 1, 1])
    expected = expected_by_hand(raw, np.array([[[60], [64]], [[62], [61]]]), 1023, dv=np.linspace(0, 3, 10),
                                area=(1, 2, 11, 14))
    np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-7)
    again = normalize(out)
    assert again.data is out.data and again.history[-1].stage == "normalize"


def test_stage_on_linear_raw_frames():
    raw = np.full((3, 4, 3), 128.0, np.float32)
    frame = Frame(raw, Encoding.CAMERA_RGB, sensor=SensorInfo(black_level_dn=0, white_level_dn=[255, 255, 255]))
    out = normalize(frame)
    assert out.encoding is Encoding.CAMERA_RGB
    np.testing.assert_allclose(out.data, 128 / 255, rtol=1e-6)
    with pytest.raises(StageError, match="expects a frame encoded as"):
        normalize(Frame(np.zeros((2, 2, 3), np.float32), Encoding.RGB, primaries=Primaries.SRGB))


def test_matches_rawpy_on_a_real_dng(shared_data):
    """Magic Lantern colorchart.dng: our normalisation of the stored data equals
    LibRaw's visible area with its black and white levels."""
    import rawpy

    path = shared_data / "charts" / "canon_eos_550d_ml_colorchecker" / "colorchart.dng"
    with rawpy.imread(str(path)) as raw:
        stored = raw.raw_image.astype(np.float32)
        visible = raw.raw_image_visible.astype(np.float64)
        sizes = raw.sizes
        colors = raw.raw_colors_visible[:2, :2]
        black = np.asarray(raw.black_level_per_channel, float)[colors][:, :, None]
        white = float(raw.white_level)
    area = (sizes.top_margin, sizes.left_margin, sizes.top_margin + sizes.height, sizes.left_margin + sizes.width)
    out = normalize_dng_levels(stored, black_level_dn=black, white_level_dn=white, active_area=area)
    black_map = np.tile(black[:, :, 0], (visible.shape[0] // 2 + 1, visible.shape[1] // 2 + 1))[
        : visible.shape[0], : visible.shape[1]
    ]
    expected = (visible - black_map) / (white - black.max())
    assert out.shape == visible.shape
    np.testing.assert_allclose(out, expected, rtol=1e-6, atol=1e-6)


def test_clip_level_in_dn_is_mapped_to_the_normalised_scale():
    raw = np.full((4, 4), 700.0, np.float32)
    sensor = dict(cfa=CfaPattern.from_string("RGGB"), black_level_dn=[[[100], [120]], [[110], [100]]],
                  white_level_dn=[1120])
    at_white = Frame(raw, Encoding.CFA, sensor=SensorInfo(**sensor), clip_level=[1120, 1120, 1120])
    np.testing.assert_array_equal(normalize(at_white).clip_level, [1, 1, 1])
    lower = Frame(raw, Encoding.CFA, sensor=SensorInfo(**sensor), clip_level=[1120, 620, np.inf])
    np.testing.assert_allclose(normalize(lower).clip_level, [1.0, 0.5, 1.0])


def test_hostile_values_never_index_outside_the_table():
    raw = np.array([[np.nan, 1e30, -5, 2.4, 2.6, 7, np.inf]], np.float32)
    table = np.arange(5.0) * 10
    expected = [[0, 1, 0, 0.5, 0.75, 1, 1]]
    for func in (normalize_dng_levels, normalize_dng_levels_reference):
        np.testing.assert_allclose(func(raw, black_level_dn=0, white_level_dn=40, linearization_table=table), expected)
    out = normalize_dng_levels(raw, black_level_dn=0, white_level_dn=40)  # without a table NaN stays NaN
    assert np.isnan(out[0, 0]) and out[0, 2] < 0
