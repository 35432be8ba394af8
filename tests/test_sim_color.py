"""Colour of the simulator: spectra, fitted DNG matrices, RGB unprocessing."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

from rawlab.sim import load_camera
from rawlab.sim import spectral
from rawlab.sim.capture import capture
from rawlab.sim.colorfit import XYZ_D50_WHITE, fit_color
from rawlab.sim.scene import colorchecker, flat_field, rgb_photo

pytestmark = pytest.mark.filterwarnings("ignore:.*Aligning")


def _d5100():
    return spectral.camera_sensitivities(load_camera("fullframe").spectral)


def test_colorchecker_xyz_matches_colour_science():
    names, refl = spectral.colorchecker_reflectances()
    ours = spectral.xyz_of(refl, spectral.illuminant_spd("D65"))
    data = colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    ref = np.array([colour.sd_to_XYZ(data[n], cmfs, colour.SDS_ILLUMINANTS["D65"]) for n in names]) / 100
    np.testing.assert_allclose(ours, ref, atol=2e-3)


def _mean_de_reference(fit, illuminant: str) -> float:
    """Mean CIEDE2000 of the fitted ColorMatrix on the ColorChecker, computed
    with colour-science's own Lab and dE (independent of the fit's code)."""
    names, refl = spectral.colorchecker_reflectances()
    spd = spectral.illuminant_spd(illuminant)
    sens = _d5100()
    cam = spectral.camera_response(refl, spd, sens)
    cam = cam / spectral.camera_response(np.ones((1, spd.size)), spd, sens).max()
    xyz_true = spectral.xyz_of(refl, spd)
    white = spectral.white_xyz(spd)
    xyz_fit = cam @ np.linalg.inv(fit.M_XYZ_to_camera).T
    # the ColorMatrix is normalised: undo its scale so white maps to white
    xyz_fit *= white[1] / (np.linalg.inv(fit.M_XYZ_to_camera) @ fit.camera_neutral)[1]
    xy_w = colour.XYZ_to_xy(white)
    lab_t = colour.XYZ_to_Lab(xyz_true, xy_w)
    lab_f = colour.XYZ_to_Lab(xyz_fit, xy_w)
    return float(colour.delta_E(lab_t, lab_f, method="CIE 2000").mean())


def test_d5100_d65_matrix_delta_e_meets_the_bar():
    fit = fit_color(_d5100(), "D65")
    de = _mean_de_reference(fit, "D65")
    assert de <= 1.1
    assert de == pytest.approx(fit.mean_delta_E2000, abs=0.02)


def test_d5100_d65_least_squares_is_about_0_99():
    fit = fit_color(_d5100(), "D65", method="lstsq")
    assert _mean_de_reference(fit, "D65") == pytest.approx(0.99, abs=0.05)


@pytest.mark.parametrize("camera_name", ["fullframe", "phone-small", "phone-1in"])
@pytest.mark.parametrize("illuminant", ["A", "D65"])
def test_matrix_conventions(illuminant, camera_name):
    """The fit is white-point preserving (Finlayson and Drew 1996): the ColorMatrix
    maps the illuminant's white exactly to the camera neutral (the AsShotNeutral
    the simulator writes), as a DNG reader assumes."""
    sens = spectral.camera_sensitivities(load_camera(camera_name).spectral)
    fit = fit_color(sens, illuminant)
    white = spectral.white_xyz(spectral.illuminant_spd(illuminant))
    neutral = fit.M_XYZ_to_camera @ white
    assert neutral.max() == pytest.approx(1.0)
    np.testing.assert_allclose(neutral / neutral.max(), fit.camera_neutral / fit.camera_neutral.max(), rtol=1e-9)
    np.testing.assert_allclose(fit.M_forward @ np.ones(3), XYZ_D50_WHITE, atol=1e-9)
    # the constraint costs nothing: the fit still beats the unconstrained least squares
    assert fit.mean_delta_E2000 < fit_color(sens, illuminant, method="lstsq").mean_delta_E2000


def test_unknown_fit_method_is_an_error():
    from rawlab.errors import InvalidParams

    with pytest.raises(InvalidParams, match="method"):
        fit_color(_d5100(), "D65", method="bogus")


def test_parametric_sensitivities_peaks():
    cam = load_camera("phone-small")
    s = spectral.camera_sensitivities(cam.spectral)
    peaks = spectral.WAVELENGTHS_NM[np.argmax(s, axis=0)]
    assert 585 <= peaks[0] <= 610 and 525 <= peaks[1] <= 545 and 450 <= peaks[2] <= 470
    assert s.max() == pytest.approx(1.0) and s.min() >= 0


M_SRGB_TO_XYZ = np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_RGB_to_XYZ)


def _photo_colours() -> np.ndarray:
    """Linear sRGB test colours: a random cloud, the cube's corners (black, white,
    primaries and secondaries: the gamut's extremes) and the ColorChecker."""
    rng = np.random.default_rng(0)
    corners = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], np.float64)
    _, refl = spectral.colorchecker_reflectances()
    checker = np.clip(spectral.xyz_of(refl, spectral.illuminant_spd("D65")) @ np.linalg.inv(M_SRGB_TO_XYZ).T, 0, 1)
    return np.concatenate([rng.uniform(0.0, 1.0, (232, 3)), corners, checker])  # 264 colours


def _delta_e(xyz_a: np.ndarray, xyz_b: np.ndarray, white_xyz: np.ndarray) -> np.ndarray:
    xy_w = colour.XYZ_to_xy(white_xyz)
    return colour.delta_E(colour.XYZ_to_Lab(xyz_a, xy_w), colour.XYZ_to_Lab(xyz_b, xy_w), method="CIE 2000")


def test_mallett2019_basis_is_bounded_and_reproduces_srgb_under_d65():
    basis = spectral.srgb_reflectance_basis_mallett2019()
    assert basis.min() >= 0.0 and basis.max() <= 1.0
    np.testing.assert_allclose(basis.sum(axis=0), 1.0, atol=1e-12)
    d65 = spectral.illuminant_spd("D65")
    np.testing.assert_allclose(spectral.xyz_of(basis, d65).T, M_SRGB_TO_XYZ, atol=5e-4)
    rgb = _photo_colours()
    spectra = rgb @ basis
    assert spectra.min() >= 0.0 and spectra.max() <= 1.0 + 1e-12  # physically plausible reflectances
    de = _delta_e(spectral.xyz_of(spectra, d65), rgb @ M_SRGB_TO_XYZ.T, spectral.white_xyz(d65))
    assert de.max() <= 0.1, de.max()


@pytest.mark.parametrize("camera_name", ["fullframe", "phone-small", "phone-1in"])
def test_rgb_photo_spectra_bounded_and_camera_responses_nonnegative(camera_name):
    rgb = _photo_colours().reshape(8, 33, 3).astype(np.float32)
    scene_ = rgb_photo(rgb, encoded=False)
    per_pixel = scene_.coefficients.reshape(-1, 3).astype(np.float64) @ scene_.spectra
    assert per_pixel.min() >= 0.0 and per_pixel.max() <= 1.0 + 1e-6
    sens = spectral.camera_sensitivities(load_camera(camera_name).spectral)
    for name in spectral.ILLUMINANTS:
        cam, xyz = scene_.linear_images(spectral.illuminant_spd(name), sens)
        assert cam.min() >= 0.0 and xyz.min() >= 0.0, name


def test_rgb_photo_truth_is_the_photo_under_d65():
    rng = np.random.default_rng(0)
    linear = rng.uniform(0.02, 0.9, size=(32, 48, 3)).astype(np.float32)
    cap = capture(rgb_photo(linear, encoded=False), "phone-small", noise=False)
    np.testing.assert_allclose(cap.truth_srgb_linear, linear, atol=5e-3)


@pytest.mark.parametrize("illuminant, mean_de_max", [("D65", 0.05), ("D50", 1.5), ("A", 3.0), ("F2", 3.0),
                                                      ("F11", 3.0), ("LED", 2.0)])
def test_rgb_photo_colours_under_the_scene_illuminant(illuminant, mean_de_max):
    """XYZ of the recovered spectra under the scene light against the photo's XYZ
    carried to that light's white by the Bradford transform.  Under D65 they are
    the photo's colours; under other lights the gap is the metamerism between
    smooth real reflectances and a von Kries adaptation (measured: mean dE2000
    0.65 D50, 2.2 A, 1.8 F2, 1.6 F11, 0.9 LED)."""
    from rawlab.sim.colorfit import bradford_cat

    rgb = _photo_colours().reshape(8, 33, 3).astype(np.float32)
    cap = capture(rgb_photo(rgb, encoded=False), "phone-small", illuminant=illuminant, noise=False)
    white = spectral.white_xyz(spectral.illuminant_spd(illuminant))
    d65 = spectral.white_xyz(spectral.illuminant_spd("D65"))
    photo_xyz = rgb.reshape(-1, 3).astype(np.float64) @ M_SRGB_TO_XYZ.T @ bradford_cat(d65, white).T
    de = _delta_e(cap.truth_xyz.reshape(-1, 3).astype(np.float64), photo_xyz, white)
    assert float(de.mean()) <= mean_de_max, float(de.mean())


_CIE_NAMES = {"D65": "D65", "D50": "D50", "A": "A", "F2": "FL2", "F11": "FL11", "LED": "LED-B3"}


@pytest.mark.parametrize("illuminant", ["D50", "F2", "F11", "D65", "A", "LED"])
def test_white_chromaticity_matches_the_illuminant(illuminant):
    """The white diffuser's truth chromaticity is the illuminant's white
    (colour-science's CIE 1931 table); the ColorChecker's white 9.5 patch,
    whose reflectance is not quite flat, lies within 0.003 of it; the raw
    camera response to a flat grey is the AsShotNeutral."""
    ref_xy = np.asarray(colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"][_CIE_NAMES[illuminant]])
    cam = load_camera("fullframe")
    cam = dataclasses.replace(cam, sensor=dataclasses.replace(cam.sensor, prnu_fraction=0.0, dsnu_e=0.0,
                                                              hot_pixel_fraction=0.0))
    flat = capture(flat_field((64, 64), reflectance=0.9), cam, illuminant=illuminant, noise=False)
    xyz = flat.truth_xyz[8:56, 8:56].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(xyz[:2] / xyz.sum(), ref_xy, atol=5e-4)
    np.testing.assert_allclose(flat.truth["illuminant_white_xy"], ref_xy, atol=5e-4)
    data = flat.frame.data[16:48, 16:48] - cam.sensor.black_level_dn
    raw = np.array([data[0::2, 0::2].mean(), data[0::2, 1::2].mean(), data[1::2, 1::2].mean()])
    np.testing.assert_allclose(raw / raw.max(), flat.frame.color.as_shot_neutral, rtol=2e-3)
    checker = capture(colorchecker((300, 200)), "fullframe", illuminant=illuminant, noise=False)
    top, left, bottom, right = checker.truth["geometry"]["patches"][18]["box"]  # white 9.5
    xyz = checker.truth_xyz[top:bottom, left:right].reshape(-1, 3).mean(0)
    np.testing.assert_allclose(xyz[:2] / xyz.sum(), ref_xy, atol=3e-3)


def test_colorchecker_truth_and_neutral():
    cap = capture(colorchecker((300, 200)), "fullframe", illuminant="A", noise=False)
    assert cap.truth["illuminant"] == "A"
    box = cap.truth["geometry"]["patches"][18]["box"]  # white 9.5
    top, left, bottom, right = box
    srgb = cap.truth_srgb_linear[top:bottom, left:right].reshape(-1, 3).mean(0)
    assert np.ptp(srgb) < 0.02  # white stays neutral after adaptation
    fit_a = fit_color(_d5100(), "A")
    np.testing.assert_allclose(cap.frame.color.as_shot_neutral, fit_a.camera_neutral, rtol=1e-6)
