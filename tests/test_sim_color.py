"""Colour of the simulator: spectra, fitted DNG matrices, RGB unprocessing."""

from __future__ import annotations

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
from rawlab.sim.scene import colorchecker, rgb_photo

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


@pytest.mark.parametrize("illuminant", ["A", "D65"])
def test_matrix_conventions(illuminant):
    fit = fit_color(_d5100(), illuminant)
    white = spectral.white_xyz(spectral.illuminant_spd(illuminant))
    neutral = fit.M_XYZ_to_camera @ white
    assert neutral.max() == pytest.approx(1.0)
    np.testing.assert_allclose(neutral / neutral.max(), fit.camera_neutral / fit.camera_neutral.max(), rtol=0.03)
    np.testing.assert_allclose(fit.M_forward @ np.ones(3), XYZ_D50_WHITE, atol=1e-9)


def test_parametric_sensitivities_peaks():
    cam = load_camera("phone-small")
    s = spectral.camera_sensitivities(cam.spectral)
    peaks = spectral.WAVELENGTHS_NM[np.argmax(s, axis=0)]
    assert 585 <= peaks[0] <= 610 and 525 <= peaks[1] <= 545 and 450 <= peaks[2] <= 470
    assert s.max() == pytest.approx(1.0) and s.min() >= 0


def test_srgb_basis_reproduces_primaries_under_d65():
    basis = spectral.srgb_reflectance_basis()
    xyz = spectral.xyz_of(basis, spectral.illuminant_spd("D65"))
    M = np.asarray(colour.models.RGB_COLOURSPACE_sRGB.matrix_RGB_to_XYZ)
    np.testing.assert_allclose(xyz.T, M, atol=3e-3)
    np.testing.assert_allclose(basis.sum(axis=0), 1.0, atol=1e-12)


def test_rgb_photo_truth_is_the_photo_under_d65():
    rng = np.random.default_rng(0)
    linear = rng.uniform(0.02, 0.9, size=(32, 48, 3)).astype(np.float32)
    cap = capture(rgb_photo(linear, encoded=False), "phone-small", noise=False)
    np.testing.assert_allclose(cap.truth_srgb_linear, linear, atol=5e-3)


def test_colorchecker_truth_and_neutral():
    cap = capture(colorchecker((300, 200)), "fullframe", illuminant="A", noise=False)
    assert cap.truth["illuminant"] == "A"
    box = cap.truth["geometry"]["patches"][18]["box"]  # white 9.5
    top, left, bottom, right = box
    srgb = cap.truth_srgb_linear[top:bottom, left:right].reshape(-1, 3).mean(0)
    assert np.ptp(srgb) < 0.02  # white stays neutral after adaptation
    fit_a = fit_color(_d5100(), "A")
    np.testing.assert_allclose(cap.frame.color.as_shot_neutral, fit_a.camera_neutral, rtol=1e-6)
