"""White balance: as-shot neutral, AsShotWhiteXY, gray world and manual gains,
on every CFA phase, LinearRaw frames and X-Trans-like repeats."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.color.whitebalance import (
    WhiteBalanceParams,
    apply_white_balance_gains,
    neutral_gray_world,
    white_balance,
)
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern, ColorCalibration, SensorInfo
from rawlab.errors import InvalidParams, StageError

NEUTRAL = np.array([0.45, 1.0, 0.7])


def cfa_frame(data, pattern="RGGB", **color):
    return Frame(np.asarray(data, np.float32), Encoding.CFA, sensor=SensorInfo(cfa=CfaPattern.from_string(pattern)),
                 color=ColorCalibration(**color), clip_level=[1, 1, 1])


@pytest.mark.parametrize("pattern", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_as_shot_neutral_on_every_cfa_phase(pattern):
    rng = np.random.default_rng(0)
    data = rng.random((9, 11), dtype=np.float32)
    out = white_balance(cfa_frame(data, pattern, as_shot_neutral=NEUTRAL * 2.0))  # any scale
    index = CfaPattern.from_string(pattern).color_index_map(9, 11)
    np.testing.assert_allclose(out.data, data / NEUTRAL[index], rtol=1e-6)
    np.testing.assert_allclose(out.color.applied_neutral, NEUTRAL, rtol=1e-12)
    np.testing.assert_allclose(out.clip_level, 1 / NEUTRAL, rtol=1e-6)
    assert out.encoding is Encoding.CFA and out.history[-1].stage == "white_balance"


def test_camera_rgb_frames_and_non_bayer_repeats():
    rgb = np.random.default_rng(1).random((5, 6, 3), dtype=np.float32)
    frame = Frame(rgb, Encoding.CAMERA_RGB, color=ColorCalibration(as_shot_neutral=NEUTRAL))
    np.testing.assert_allclose(white_balance(frame).data, rgb / NEUTRAL, rtol=1e-6)
    xtrans = CfaPattern(((1, 0, 2), (2, 1, 1), (0, 1, 1)))
    data = np.ones((7, 8), np.float32)
    out = apply_white_balance_gains(data, gains_rgb=1 / NEUTRAL, cfa=xtrans)
    np.testing.assert_allclose(out, 1 / NEUTRAL[xtrans.color_index_map(7, 8)], rtol=1e-6)


def test_gray_world_recovers_the_neutral_despite_outliers_and_clipping():
    rng = np.random.default_rng(2)
    grey = rng.uniform(0.05, 0.6, size=(200, 240)).astype(np.float32)
    rgb = grey[..., None] * NEUTRAL.astype(np.float32)
    rgb[:5, :5] = [50.0, 0.1, 0.1]  # a few hot pixels
    rgb[100:140, 100:140] = 1.0  # a clipped highlight (white at the clip level)
    frame = Frame(rgb, Encoding.CAMERA_RGB, clip_level=[1, 1, 1])
    out = white_balance(frame, WhiteBalanceParams(mode="gray_world"))
    np.testing.assert_allclose(out.color.applied_neutral, NEUTRAL, rtol=0.01)
    # same scene as a mosaic
    pattern = CfaPattern.from_string("GBRG")
    mosaic = np.take_along_axis(rgb, pattern.color_index_map(200, 240)[..., None].astype(np.intp), axis=2)[..., 0]
    np.testing.assert_allclose(neutral_gray_world(mosaic, cfa=pattern, clip_level=[1, 1, 1]), NEUTRAL, rtol=0.01)
    # as_shot without any as-shot information falls back to gray world
    fallback = white_balance(Frame(rgb, Encoding.CAMERA_RGB, clip_level=[1, 1, 1]))
    np.testing.assert_allclose(fallback.color.applied_neutral, out.color.applied_neutral)
    # a black frame carries no information: unity gains
    np.testing.assert_array_equal(neutral_gray_world(np.zeros((4, 4, 3), np.float32)), [1, 1, 1])


def test_manual_gains_count_by_their_ratios():
    data = np.full((4, 4), 0.5, np.float32)
    out = white_balance(cfa_frame(data), WhiteBalanceParams(mode="manual", multipliers=(4.0, 2.0, 3.0)))
    np.testing.assert_allclose(out.color.applied_neutral, [0.5, 1.0, 2 / 3], rtol=1e-12)
    np.testing.assert_allclose(out.data[0::2, 0::2], 1.0)  # R gain 2
    np.testing.assert_allclose(out.data[1::2, 1::2], 0.75)  # B gain 1.5
    with pytest.raises(InvalidParams):
        WhiteBalanceParams(mode="manual", multipliers=(1.0, 0.0, 1.0))
    with pytest.raises(InvalidParams):
        WhiteBalanceParams(mode="auto")


def test_rebalancing_replaces_rather_than_compounds():
    data = np.random.default_rng(3).random((6, 6), dtype=np.float32)
    frame = cfa_frame(data, as_shot_neutral=NEUTRAL)
    once = white_balance(frame, WhiteBalanceParams(mode="manual", multipliers=(2.0, 1.0, 1.5)))
    twice = white_balance(once)  # as shot again
    direct = white_balance(frame)
    np.testing.assert_allclose(twice.data, direct.data, rtol=1e-6)
    np.testing.assert_allclose(twice.color.applied_neutral, direct.color.applied_neutral)
    np.testing.assert_allclose(twice.clip_level, direct.clip_level, rtol=1e-6)


def test_bad_input_is_a_clear_error():
    with pytest.raises(StageError, match="AsShotNeutral must be 3 positive"):
        white_balance(cfa_frame(np.zeros((2, 2)), as_shot_neutral=[0.5, -1.0, 0.5]))
    with pytest.raises(StageError, match="no CFA pattern"):
        white_balance(Frame(np.zeros((2, 2), np.float32), Encoding.CFA))
    with pytest.raises(StageError, match="expects a frame encoded as"):
        white_balance(Frame(np.zeros((2, 2, 3), np.float32), Encoding.XYZ_D50))
