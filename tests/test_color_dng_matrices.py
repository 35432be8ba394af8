"""camera_to_xyz: the DNG 1.6 chapter 6 colour model, checked against
colour-science (Bradford adaptation, xy <-> XYZ, Robertson CCT) and hand-written
readings of the specification."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rawlab.color.dng_matrices import (
    CameraToXYZParams,
    calibration_weight,
    camera_neutral_to_xy,
    camera_to_xyz,
    camera_to_xyz_d50_matrix,
    interpolation_weight,
    xy_to_camera_neutral,
)
from rawlab.color.illuminants import light_source_CCT, light_source_xy
from rawlab.color.whitebalance import white_balance
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import ColorCalibration
from rawlab.errors import StageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

XY_D50 = np.array([0.3457, 0.3585])
XY_D65 = np.array([0.3127, 0.3290])
XY_A = np.array([0.44757, 0.40745])
XYZ_D50 = colour.xy_to_XYZ(XY_D50)

# Two plausible camera matrices (XYZ -> camera), for Standard A and D65.
CM_A = np.array([[0.8, -0.15, -0.1], [-0.35, 1.25, 0.1], [-0.05, 0.3, 0.35]])
CM_D65 = np.array([[0.7, -0.1, -0.07], [-0.45, 1.3, 0.18], [-0.1, 0.22, 0.62]])


def sdk_normalised(CM):
    """ColorMatrix scaled so the largest camera channel of D50 is 1 (what the stage does internally)."""
    return CM / (CM @ XYZ_D50).max()


def bradford(XYZ, xy_from, xy_to):
    return colour.adaptation.chromatic_adaptation_VonKries(
        XYZ, colour.xy_to_XYZ(xy_from), colour.xy_to_XYZ(xy_to), transform="Bradford"
    )


def robertson_CCT(xy):
    return float(colour.uv_to_CCT(colour.xy_to_UCS_uv(np.asarray(xy)), method="Robertson 1968")[0])


def planckian_xy(T):
    return colour.UCS_uv_to_xy(colour.CCT_to_uv(np.array([T, 0.0]), method="Robertson 1968"))


def camera_frame(camera_rgb, color):
    return Frame(np.asarray(camera_rgb, np.float32).reshape(-1, 1, 3), Encoding.CAMERA_RGB, color=color,
                 clip_level=[1, 1, 1])


@pytest.fixture
def xyz_colours():
    rng = np.random.default_rng(11)
    return rng.uniform(0.02, 0.9, size=(50, 3))


def test_calibration_illuminants_CCT():
    expected_K = {17: 2856, 18: 4874, 19: 6774, 20: 5503, 21: 6504, 22: 7504, 23: 5003, 24: 3200, 1: 5503,
                  2: 4230, 3: 2856, 4: 5503, 9: 5503, 10: 6504, 11: 7504, 12: 6430, 13: 5000, 14: 4230, 15: 3450}
    for code, kelvin in expected_K.items():
        assert abs(light_source_CCT(code) - kelvin) < 10, code
    assert light_source_CCT(0) is None and light_source_CCT(255) is None and light_source_xy(99) is None
    np.testing.assert_allclose(light_source_xy(21), XY_D65, atol=1e-4)


def test_interpolation_weight_by_hand():
    # DNG 1.6 ch. 6: linear in 1/T between the calibration temperatures, clamped
    g = (1 / 4000 - 1 / 6504) / (1 / 2856 - 1 / 6504)
    assert interpolation_weight(4000, 2856, 6504) == pytest.approx(g, abs=1e-12)
    assert interpolation_weight(4000, 6504, 2856) == pytest.approx(1 - g, abs=1e-12)
    assert g == pytest.approx(0.49009, abs=1e-5)
    assert interpolation_weight(2000, 2856, 6504) == 1.0 and interpolation_weight(9000, 2856, 6504) == 0.0
    assert interpolation_weight(9000, 6504, 2856) == 1.0
    assert interpolation_weight(4000, None, 6504) == 1.0 and interpolation_weight(4000, 5000, 5000) == 1.0


def test_single_matrix_round_trip_and_white_scale(xyz_colours):
    """(a) ColorMatrix1 at D65, neutral = CM . XYZ(D65): XYZ -> camera -> WB -> stage
    gives the Bradford-adapted XYZ (D50), and balanced (1, 1, 1) is D50 with Y = 1."""
    neutral = CM_D65 @ colour.xy_to_XYZ(XY_D65)
    color = ColorCalibration(M_XYZ_to_camera_1=CM_D65, illuminant_1=21, as_shot_neutral=neutral)
    # the matrix itself, in float64
    M = camera_to_xyz_d50_matrix(color, neutral=neutral, applied_neutral=neutral / neutral[1])
    np.testing.assert_allclose(M @ np.ones(3), XYZ_D50, atol=1e-9)
    np.testing.assert_allclose(
        M @ ((CM_D65 @ xyz_colours.T).T / (neutral / neutral[1])).T,
        neutral[1] * bradford(xyz_colours, XY_D65, XY_D50).T, atol=1e-9,
    )
    # the stages, in float32
    frame = camera_frame(xyz_colours @ CM_D65.T, color)
    out = camera_to_xyz(white_balance(frame))
    assert out.encoding is Encoding.XYZ_D50
    expected = neutral[1] * bradford(xyz_colours, XY_D65, XY_D50)
    np.testing.assert_allclose(out.data.reshape(-1, 3), expected, atol=1e-6)
    # without white balance first, the stage balances with AsShotNeutral itself
    np.testing.assert_allclose(camera_to_xyz(frame).data.reshape(-1, 3), expected, atol=1e-6)


def test_dual_illuminant_weight_iteration_and_round_trip(xyz_colours):
    """(b) CM1 at Standard A, CM2 at D65, scene white on the Planckian locus at 4000 K."""
    color = ColorCalibration(M_XYZ_to_camera_1=CM_A, M_XYZ_to_camera_2=CM_D65, illuminant_1=17, illuminant_2=21)
    xy = planckian_xy(4000.0)
    T, T1, T2 = robertson_CCT(xy), robertson_CCT(XY_A), robertson_CCT(light_source_xy(21))
    g = (1 / T - 1 / T2) / (1 / T1 - 1 / T2)
    assert 0.4 < g < 0.6
    assert calibration_weight(color, xy) == pytest.approx(g, abs=1e-9)
    XYZ_to_camera = g * sdk_normalised(CM_A) + (1 - g) * sdk_normalised(CM_D65)
    neutral = XYZ_to_camera @ colour.xy_to_XYZ(xy)
    # the spec's iteration finds the white again from its camera neutral
    np.testing.assert_allclose(camera_neutral_to_xy(color, neutral), xy, atol=1e-7)
    # ... and the whole path round-trips colours lit by that white
    frame = camera_frame(xyz_colours @ XYZ_to_camera.T, ColorCalibration(
        M_XYZ_to_camera_1=CM_A, M_XYZ_to_camera_2=CM_D65, illuminant_1=17, illuminant_2=21, as_shot_neutral=neutral))
    out = camera_to_xyz(white_balance(frame))
    np.testing.assert_allclose(out.data.reshape(-1, 3), neutral[1] * bradford(xyz_colours, xy, XY_D50), atol=2e-6)
    # at a calibration white the other matrix has no say
    n_A = sdk_normalised(CM_A) @ colour.xy_to_XYZ(XY_A)
    np.testing.assert_allclose(camera_neutral_to_xy(color, n_A), XY_A, atol=1e-7)
    assert calibration_weight(color, XY_A) == 1.0 and calibration_weight(color, planckian_xy(9000.0)) == 0.0


def forward_from_color(CM, xy_white):
    """A ForwardMatrix consistent with ColorMatrix CM at its calibration white."""
    reference_neutral = CM @ colour.xy_to_XYZ(xy_white)
    A = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        colour.xy_to_XYZ(xy_white), XYZ_D50, transform="Bradford")
    return A @ np.linalg.inv(CM) @ np.diag(reference_neutral)


def test_forward_matrix_path_equals_color_matrix_path():
    """(c) with FM built from CM, both paths agree at the calibration whites, also
    with AnalogBalance and CameraCalibration in play."""
    AB = np.array([1.1, 1.0, 0.9])
    CC = np.array([[1.02, 0.01, 0.0], [0.0, 0.98, 0.02], [0.01, 0.0, 1.05]])
    color = ColorCalibration(
        M_XYZ_to_camera_1=CM_A, M_XYZ_to_camera_2=CM_D65, illuminant_1=17, illuminant_2=21,
        M_camera_calibration_1=CC, M_camera_calibration_2=CC, analog_balance=AB,
        M_forward_1=forward_from_color(CM_A, XY_A), M_forward_2=forward_from_color(CM_D65, light_source_xy(21)),
    )
    for CM, xy in ((CM_A, XY_A), (CM_D65, light_source_xy(21))):
        neutral = np.diag(AB) @ CC @ CM @ colour.xy_to_XYZ(xy)
        for applied in (None, neutral / neutral[1]):
            M_fm = camera_to_xyz_d50_matrix(color, neutral=neutral, applied_neutral=applied, matrix="forward")
            M_cm = camera_to_xyz_d50_matrix(color, neutral=neutral, applied_neutral=applied, matrix="color")
            M_auto = camera_to_xyz_d50_matrix(color, neutral=neutral, applied_neutral=applied)
            np.testing.assert_allclose(M_fm, M_cm, atol=1e-9)
            np.testing.assert_array_equal(M_auto, M_fm)
        # the white: balanced (1, 1, 1) -> D50 with Y = 1
        np.testing.assert_allclose(M_fm @ np.ones(3), XYZ_D50, atol=1e-9)
    with pytest.raises(StageError, match="no ForwardMatrix"):
        camera_to_xyz_d50_matrix(ColorCalibration(M_XYZ_to_camera_1=CM_D65), neutral=None, matrix="forward")


def test_as_shot_white_xy_gives_the_neutral(xyz_colours):
    """(d) AsShotWhiteXY -> neutral = XYZtoCamera(xy) . XYZ(xy), green 1."""
    xy = planckian_xy(5200.0)
    color = ColorCalibration(M_XYZ_to_camera_1=CM_A, M_XYZ_to_camera_2=CM_D65, illuminant_1=17, illuminant_2=21,
                             analog_balance=[1.0, 1.0, 1.2], as_shot_white_xy=tuple(xy))
    g = calibration_weight(color, xy)
    hand = np.diag([1.0, 1.0, 1.2]) @ (g * sdk_normalised(CM_A) + (1 - g) * sdk_normalised(CM_D65)) @ colour.xy_to_XYZ(xy)
    np.testing.assert_allclose(xy_to_camera_neutral(color, xy), hand / hand[1], rtol=1e-12)
    frame = camera_frame(np.tile(hand, (4, 1)) * 0.5, color)
    balanced = white_balance(frame)
    np.testing.assert_allclose(balanced.color.applied_neutral, hand / hand[1], rtol=1e-12)
    np.testing.assert_allclose(balanced.data.reshape(-1, 3), 0.5 * hand[1], rtol=1e-6)
    # that white, not balanced first, lands on D50 as well
    out = camera_to_xyz(frame).data.reshape(-1, 3)
    np.testing.assert_allclose(out, np.tile(0.5 * hand[1] * XYZ_D50, (4, 1)), atol=1e-6)


def test_no_matrices_fall_back_to_srgb_primaries():
    frame = camera_frame([[1.0, 1.0, 1.0], [1.0, 0.0, 0.0], [0.2, 0.4, 0.6]], ColorCalibration())
    out = camera_to_xyz(frame).data.reshape(-1, 3)
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    M_rgb_to_XYZ = colour.normalised_primary_matrix(srgb.primaries, srgb.whitepoint)
    expected = bradford(frame.data.reshape(-1, 3).astype(float) @ M_rgb_to_XYZ.T, srgb.whitepoint, XY_D50)
    np.testing.assert_allclose(out, expected, atol=1e-6)
    np.testing.assert_allclose(out[0], XYZ_D50, atol=1e-6)


def test_four_colour_matrices_and_bad_neutrals_are_refused():
    cmyg = ColorCalibration(M_XYZ_to_camera_1=np.ones((4, 3)))
    with pytest.raises(StageError, match="4-colour"):
        camera_to_xyz(camera_frame([[0.5, 0.5, 0.5]], cmyg))
    with pytest.raises(StageError, match="3 positive numbers"):
        camera_to_xyz(camera_frame([[0.5, 0.5, 0.5]], ColorCalibration(M_XYZ_to_camera_1=CM_D65,
                                                                        as_shot_neutral=[0.5, 0.0, 0.4])))
    with pytest.raises(StageError, match="singular"):
        camera_to_xyz(camera_frame([[0.5, 0.5, 0.5]], ColorCalibration(M_XYZ_to_camera_1=[[1, 0, 0], [1, 0, 0], [0, 0, 1]],
                                                                        as_shot_neutral=[0.5, 1.0, 0.4])))


def test_stage_params_and_clip_level():
    neutral = CM_D65 @ colour.xy_to_XYZ(XY_D65)
    color = ColorCalibration(M_XYZ_to_camera_1=CM_D65, illuminant_1=21, as_shot_neutral=neutral)
    frame = white_balance(camera_frame([[0.3, 0.3, 0.3]], color))
    out = camera_to_xyz(frame, CameraToXYZParams(matrix="color"))
    # the balanced clip levels are 1 / neutral: the lowest neutral clips first (at green, 1)
    level = np.min(frame.clip_level)
    np.testing.assert_allclose(out.clip_level, level * XYZ_D50, rtol=1e-6)
    assert out.history[-1].stage == "camera_to_xyz"
    with pytest.raises(Exception):
        CameraToXYZParams(matrix="magic")


def test_dcraw_convention_matrix_by_hand():
    """matrix='dcraw': camera -> sRGB is inv(rows-normalised(CM . M_sRGB_to_XYZ)) (dcraw cam_xyz_coeff)."""
    from rawlab.color.spaces import matrix_XYZ_D50_to_RGB

    color = ColorCalibration(M_XYZ_to_camera_1=CM_A, M_XYZ_to_camera_2=CM_D65, illuminant_1=17, illuminant_2=21)
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    M_srgb_to_XYZ = colour.normalised_primary_matrix(srgb.primaries, srgb.whitepoint)
    camera_from_srgb = CM_D65 @ M_srgb_to_XYZ  # the D65 calibration is the one used
    hand = np.linalg.inv(camera_from_srgb / camera_from_srgb.sum(axis=1, keepdims=True))
    neutral = np.array([0.6, 1.0, 0.8])
    M = camera_to_xyz_d50_matrix(color, neutral=neutral, applied_neutral=neutral, matrix="dcraw")
    np.testing.assert_allclose(matrix_XYZ_D50_to_RGB("srgb") @ M, hand, atol=3e-4)  # published sRGB rounding
    np.testing.assert_allclose(M @ np.ones(3), XYZ_D50, atol=1e-9)
    with pytest.raises(StageError, match="needs a ColorMatrix"):
        camera_to_xyz_d50_matrix(ColorCalibration(M_forward_1=np.eye(3)), neutral=None, matrix="dcraw")


def test_agrees_with_libraw_on_a_real_raw(shared_data):
    """Canon D30 CRW decoded by LibRaw: our normalize + white balance + bilinear +
    camera_to_xyz(dcraw) + xyz_to_rgb against LibRaw's own LINEAR develop with the
    same white balance: mean CIEDE2000 below 1."""
    import rawpy

    from rawlab.color.spaces import xyz_to_rgb
    from rawlab.core.metadata import CfaPattern, SensorInfo
    from rawlab.demosaic.stage import DemosaicParams, demosaic
    from rawlab.sensor.normalize import normalize

    path = str(shared_data / "raw" / "canon_eos_d30" / "RAW_CANON_D30_SRGB.CRW")
    with rawpy.imread(path) as raw:
        mosaic = raw.raw_image_visible.astype(np.float32)
        colors = raw.raw_colors_visible[:2, :2]
        letters = "".join(raw.color_desc.decode()[c] for c in colors.reshape(-1))
        black = np.asarray(raw.black_level_per_channel, float)[colors][:, :, None]
        white = float(raw.white_level)
        CM = np.asarray(raw.rgb_xyz_matrix[:3], dtype=np.float64)
    frame = Frame(mosaic, Encoding.CFA, sensor=SensorInfo(cfa=CfaPattern.from_string(letters), black_level_dn=black,
                                                        white_level_dn=[white]),
                  color=ColorCalibration(M_XYZ_to_camera_1=CM, illuminant_1=21), clip_level=[white] * 3)
    balanced = white_balance(normalize(frame))  # no as-shot neutral: gray world
    ours_frame = xyz_to_rgb(camera_to_xyz(demosaic(balanced, DemosaicParams(method="bilinear")),
                                          CameraToXYZParams(matrix="dcraw")))
    gains = 1.0 / balanced.color.applied_neutral
    with rawpy.imread(path) as raw:
        theirs = raw.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR, user_wb=[gains[0], gains[1], gains[2], gains[1]],
            no_auto_bright=True, gamma=(1, 1), output_bps=16, output_color=rawpy.ColorSpace.sRGB,
            highlight_mode=rawpy.HighlightMode.Clip, user_flip=0,
        ).astype(np.float64) / 65535
    ours = ours_frame.data.astype(np.float64)
    assert ours.shape == theirs.shape
    ours, theirs = ours[4:-4, 4:-4], theirs[4:-4, 4:-4]
    valid = (theirs.max(axis=2) < 0.9) & (theirs.min(axis=2) > 0.005)
    scale = np.sum(ours[valid] * theirs[valid]) / np.sum(ours[valid] ** 2)  # LibRaw scales by its own multipliers
    valid &= ours.max(axis=2) * scale < 0.9
    assert valid.mean() > 0.5
    lab = lambda rgb: colour.XYZ_to_Lab(colour.RGB_to_XYZ(rgb, "sRGB"), XY_D65)  # noqa: E731
    delta_e = colour.delta_E(lab(ours[valid] * scale), lab(theirs[valid]), method="CIE 2000")
    print(f"\nCanon D30 vs LibRaw: mean dE2000 {delta_e.mean():.3f}, scale {scale:.4f}")
    assert delta_e.mean() < 1.0
