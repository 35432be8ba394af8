"""CIEDE2000 and ColorChecker measurement (rawlab.lab.color)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_D50, Lab_to_XYZ, XYZ_to_Lab
from rawlab.lab.color import colorchecker_reference_Lab_D50, delta_e_ciede2000, measure_colorchecker

# The 34 test pairs of Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference
# formula: implementation notes, supplementary test data, and mathematical
# observations", Color Res. Appl. 30(1), Table 1: L1 a1 b1, L2 a2 b2, ΔE00.
SHARMA_2005 = np.array(
    [
        [50.0000, 2.6772, -79.7751, 50.0000, 0.0000, -82.7485, 2.0425],
        [50.0000, 3.1571, -77.2803, 50.0000, 0.0000, -82.7485, 2.8615],
        [50.0000, 2.8361, -74.0200, 50.0000, 0.0000, -82.7485, 3.4412],
        [50.0000, -1.3802, -84.2814, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -1.1848, -84.8006, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, -0.9009, -85.5211, 50.0000, 0.0000, -82.7485, 1.0000],
        [50.0000, 0.0000, 0.0000, 50.0000, -1.0000, 2.0000, 2.3669],
        [50.0000, -1.0000, 2.0000, 50.0000, 0.0000, 0.0000, 2.3669],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0009, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0010, 7.1792],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0011, 7.2195],
        [50.0000, 2.4900, -0.0010, 50.0000, -2.4900, 0.0012, 7.2195],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0009, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0010, -2.4900, 4.8045],
        [50.0000, -0.0010, 2.4900, 50.0000, 0.0011, -2.4900, 4.7461],
        [50.0000, 2.5000, 0.0000, 50.0000, 0.0000, -2.5000, 4.3065],
        [50.0000, 2.5000, 0.0000, 73.0000, 25.0000, -18.0000, 27.1492],
        [50.0000, 2.5000, 0.0000, 61.0000, -5.0000, 29.0000, 22.8977],
        [50.0000, 2.5000, 0.0000, 56.0000, -27.0000, -3.0000, 31.9030],
        [50.0000, 2.5000, 0.0000, 58.0000, 24.0000, 15.0000, 19.4535],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.1736, 0.5854, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2972, 0.0000, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 1.8634, 0.5757, 1.0000],
        [50.0000, 2.5000, 0.0000, 50.0000, 3.2592, 0.3350, 1.0000],
        [60.2574, -34.0099, 36.2677, 60.4626, -34.1751, 39.4387, 1.2644],
        [63.0109, -31.0961, -5.8663, 62.8187, -29.7946, -4.0864, 1.2630],
        [61.2901, 3.7196, -5.3901, 61.4292, 2.2480, -4.9620, 1.8731],
        [35.0831, -44.1164, 3.7933, 35.0232, -40.0716, 1.5901, 1.8645],
        [22.7233, 20.0904, -46.6940, 23.0331, 14.9730, -42.5619, 2.0373],
        [36.4612, 47.8580, 18.3852, 36.2715, 50.5065, 21.2231, 1.4146],
        [90.8027, -2.0831, 1.4410, 91.1528, -1.6435, 0.0447, 1.4441],
        [90.9257, -0.5406, -0.9208, 88.6381, -0.8985, -0.7239, 1.5381],
        [6.7747, -0.2908, -2.4247, 5.8714, -0.0985, -2.2286, 0.6377],
        [2.0776, 0.0795, -1.1350, 0.9033, -0.0636, -0.5514, 0.9082],
    ]
)


def test_ciede2000_reproduces_the_34_sharma_2005_pairs():
    dE = delta_e_ciede2000(SHARMA_2005[:, 0:3], SHARMA_2005[:, 3:6])
    assert dE.shape == (34,)
    np.testing.assert_allclose(dE, SHARMA_2005[:, 6], atol=1e-4, rtol=0)
    # symmetric in its arguments
    np.testing.assert_allclose(delta_e_ciede2000(SHARMA_2005[:, 3:6], SHARMA_2005[:, 0:3]), dE, atol=1e-4)


def test_ciede2000_matches_colour_science_on_random_colours():
    import colour

    rng = np.random.default_rng(3)
    Lab_1 = np.column_stack([rng.uniform(0, 100, 2000), rng.uniform(-100, 100, (2000, 2))])
    Lab_2 = Lab_1 + rng.normal(0, 8, Lab_1.shape)
    ours = delta_e_ciede2000(Lab_1, Lab_2)
    ref = colour.difference.delta_E_CIE2000(Lab_1, Lab_2)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-9)
    assert np.all(delta_e_ciede2000(Lab_1, Lab_1) == 0)


def test_colorimetry_helpers_match_colour_science():
    import colour

    XYZ = np.random.default_rng(1).uniform(0.0, 1.0, (50, 3))
    white_xy = colour.XYZ_to_xy(XYZ_D50)
    np.testing.assert_allclose(XYZ_to_Lab(XYZ), colour.XYZ_to_Lab(XYZ, white_xy), atol=1e-6)
    np.testing.assert_allclose(Lab_to_XYZ(XYZ_to_Lab(XYZ)), XYZ, atol=1e-12)


def _patches_from_Lab(Lab, *, scale=1.0):
    """Linear sRGB patch means that render the given Lab (D50) exactly."""
    XYZ = Lab_to_XYZ(Lab, XYZ_D50)
    return scale * XYZ @ np.linalg.inv(M_rgb_to_XYZ_D50("srgb")).T


def test_colorchecker_perfect_rendering_scores_zero_at_any_exposure():
    ref = colorchecker_reference_Lab_D50()
    assert ref.shape == (24, 3)
    assert 94 < ref[18, 0] < 97 and ref[23, 0] < 25  # white and black rows
    for scale in (1.0, 0.5, 1.7):
        r = measure_colorchecker(_patches_from_Lab(ref, scale=scale))
        assert r.delta_e_2000_max < 1e-6
        assert r.exposure_gain == pytest.approx(1.0 / scale, rel=1e-9)
        assert r.chroma_level_pct == pytest.approx(100.0, abs=1e-6)
        assert r.wb_error_delta_ab_mean < 1e-6
    unnormalised = measure_colorchecker(_patches_from_Lab(ref, scale=0.5), exposure_normalization="none")
    assert unnormalised.delta_e_2000_mean > 5.0


def test_colorchecker_srgb_encoded_input_equals_linear():
    from colour.models import eotf_inverse_sRGB

    ref = colorchecker_reference_Lab_D50()
    lin = np.clip(_patches_from_Lab(ref, scale=0.8), 0.0, None)
    a = measure_colorchecker(lin)
    b = measure_colorchecker(eotf_inverse_sRGB(lin), transfer="srgb")
    np.testing.assert_allclose(a.delta_e_2000, b.delta_e_2000, atol=1e-9)


def test_colorchecker_chroma_level_and_white_balance_error():
    ref = colorchecker_reference_Lab_D50()
    desat = ref.copy()
    desat[:, 1:] *= 0.8
    r = measure_colorchecker(_patches_from_Lab(desat), Lab_reference_D50=ref)
    assert r.chroma_level_pct == pytest.approx(80.0, abs=1e-6)
    # a warm cast: a* / b* errors on every neutral
    cast = _patches_from_Lab(ref) * np.array([1.1, 1.0, 0.85])
    r = measure_colorchecker(cast)
    assert np.all(r.wb_error_delta_ab > 2.0)
    assert r.delta_e_2000_mean > 2.0
    # Lab of the neutral 5 matches colour-science's own conversion of our RGB
    import colour

    XYZ = cast @ M_rgb_to_XYZ_D50("srgb").T * r.exposure_gain
    np.testing.assert_allclose(
        r.Lab_measured_D50, colour.XYZ_to_Lab(XYZ, colour.XYZ_to_xy(XYZ_D50)), atol=1e-6
    )


def test_colorchecker_rejects_bad_input():
    with pytest.raises(InvalidParams):
        measure_colorchecker(np.ones((23, 3)))
    bad = np.ones((24, 3))
    bad[3, 1] = np.nan
    with pytest.raises(InvalidParams):
        measure_colorchecker(bad)
    with pytest.raises(InvalidParams):
        measure_colorchecker(np.ones((24, 3)), exposure_normalization="auto")
    with pytest.raises(InvalidParams):
        measure_colorchecker(np.zeros((24, 3)))


def _tone_on_luminance(rgb_linear, curve):
    """Apply a tone curve to each patch's luminance, keeping its chromaticity (as a norm-based curve does)."""
    Y = rgb_linear @ M_rgb_to_XYZ_D50("srgb")[1]
    return rgb_linear * (curve(Y) / Y)[:, None]


def test_oecf_normalisation_takes_out_a_tone_curve():
    ref = colorchecker_reference_Lab_D50()
    lin = _patches_from_Lab(ref)
    # a power law with a gain is linear in log-log: the inverse through the six neutrals is exact
    # (every colour patch lies between the black and the white patch in luminance)
    powered = _tone_on_luminance(lin, lambda Y: 0.7 * Y ** 0.6)
    r = measure_colorchecker(powered, exposure_normalization="oecf")
    assert r.delta_e_2000_max < 1e-6
    assert measure_colorchecker(powered, exposure_normalization="neutrals").delta_e_2000_mean > 3.0
    # a contrast S-curve with a shoulder: largely, though not exactly, taken out between the neutrals
    s_curve = _tone_on_luminance(lin, lambda Y: Y ** 1.4 / (Y ** 1.4 + 0.12))
    plain = measure_colorchecker(s_curve, exposure_normalization="neutrals").delta_e_2000_mean
    toned = measure_colorchecker(s_curve, exposure_normalization="oecf").delta_e_2000_mean
    assert toned < 0.2 * plain and toned < 1.0
    # what the normalisation keeps: a saturation change is still measured in full
    desat = ref.copy()
    desat[:, 1:] *= 0.8
    r = measure_colorchecker(_tone_on_luminance(_patches_from_Lab(desat), lambda Y: Y ** 0.6),
                             Lab_reference_D50=ref, exposure_normalization="oecf")
    assert r.chroma_level_pct == pytest.approx(80.0, abs=0.5)
    assert r.delta_e_2000_mean > 2.0


def test_oecf_normalisation_skips_a_clipped_white_and_needs_three_neutrals():
    ref = colorchecker_reference_Lab_D50()
    lin = _patches_from_Lab(ref, scale=1.5)
    clipped = np.minimum(lin, lin[19])  # white and neutral 8 read the same: a clipped highlight
    r = measure_colorchecker(clipped, exposure_normalization="oecf")
    assert r.delta_e_2000[19:].max() < 1e-6  # the other neutrals stay exact
    assert r.delta_e_2000[18] > 1.0  # the clipped white is an error, as it is
    flat = lin.copy()
    flat[18:21] = flat[21]  # only three distinct neutral levels left: 21, 22, 23
    assert np.isfinite(measure_colorchecker(flat, exposure_normalization="oecf").delta_e_2000_mean)
    flat[18:22] = flat[22]
    with pytest.raises(InvalidParams, match="at least 3 neutral patches"):
        measure_colorchecker(flat, exposure_normalization="oecf")
