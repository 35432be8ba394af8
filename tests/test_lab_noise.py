"""SNR, luminance/chroma noise, ISO 15739 visual noise (rawlab.lab.noise)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import XYZ_D50, XYZ_to_Luv
from rawlab.lab.noise import (
    csf_visual_noise,
    luminance_chroma_noise,
    patch_snr,
    visual_noise_iso15739,
)


@pytest.mark.parametrize("n_frames", [2, 4, 8, 16])
def test_averaging_n_frames_divides_the_noise_variance_by_n(n_frames):
    rng = np.random.default_rng(n_frames)
    h, w = 512, 512
    shading = 0.3 + 0.05 * np.linspace(-1, 1, w)[None, :] + 0.03 * np.linspace(-1, 1, h)[:, None]
    # shot-like noise: Poisson electrons on a shaded flat field
    gain_e = 2000.0
    frames = rng.poisson(shading * gain_e, (n_frames, h, w)) / gain_e
    single = patch_snr(frames[0]).variance[0]
    averaged = patch_snr(frames.mean(axis=0)).variance[0]
    assert single / averaged == pytest.approx(n_frames, rel=0.03)
    # the plane removal leaves the noise, not the shading: variance = mean signal / gain
    assert single == pytest.approx(0.3 / gain_e, rel=0.03)


def test_patch_snr_values_and_channels():
    rng = np.random.default_rng(0)
    p = np.stack([0.2 + rng.normal(0, 0.01, (200, 200)), 0.4 + rng.normal(0, 0.02, (200, 200))], axis=-1)
    r = patch_snr(p, detrend="none")
    np.testing.assert_allclose(r.mean, [0.2, 0.4], rtol=0.01)
    np.testing.assert_allclose(r.snr, [20.0, 20.0], rtol=0.02)
    np.testing.assert_allclose(r.snr_db, 20 * np.log10(r.snr))
    assert patch_snr(np.full((8, 8), 0.5), detrend="none").snr[0] == np.inf


def test_neutral_luminance_noise_has_no_chroma_noise():
    rng = np.random.default_rng(1)
    n = rng.normal(0.0, 0.002, (256, 256, 1))
    patch = 0.18 + np.repeat(n, 3, axis=2)  # same noise in R, G, B: pure luminance noise
    r = luminance_chroma_noise(patch, transfer="linear")
    # dL*/dY at Y = 0.18: (116/3) Y^(-2/3)
    assert r.std_L == pytest.approx(116.0 / 3.0 * 0.18 ** (-2 / 3) * 0.002, rel=0.03)
    assert r.chroma_noise < 0.02 * r.std_L
    assert r.mean_Lab[0] == pytest.approx(116 * 0.18 ** (1 / 3) - 16, abs=0.05)


def test_visual_noise_without_filtering_equals_the_luv_formula():
    rng = np.random.default_rng(2)
    patch = np.clip(0.45 + rng.normal(0, 0.01, (128, 128, 3)), 0, 1)
    # at 0.01 px/degree every image frequency is below 0.005 cycles/degree: the CSFs are 1
    vn = visual_noise_iso15739(patch, pixels_per_deg=0.01, detrend="none")
    from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, srgb_decode

    Luv = XYZ_to_Luv(srgb_decode(patch) @ M_rgb_to_XYZ_D50("srgb").T, XYZ_D50).reshape(-1, 3)
    s = Luv.std(axis=0, ddof=1)
    assert vn.visual_noise == pytest.approx(s[0] + 0.852 * s[1] + 0.323 * s[2], rel=1e-3)
    # viewed normally, the eye filters fine-grained noise: less visual noise, and less again further away
    near = visual_noise_iso15739(patch)
    far = visual_noise_iso15739(patch, pixels_per_deg=4 * near.pixels_per_deg)
    assert far.visual_noise < near.visual_noise < vn.visual_noise
    assert visual_noise_iso15739(np.full((64, 64, 3), 0.5)).visual_noise < 1e-9


def test_csf_unit_gain_at_zero_and_band_limits():
    c = csf_visual_noise([0.0, 4.0, 60.0])
    np.testing.assert_allclose(c[:, 0], 1.0)
    assert c[0, 1] == pytest.approx(1.0)  # luminance held at 1 up to its peak (4 cycles/degree)
    assert np.all(c[:, 2] < 0.2)


def test_bad_input():
    with pytest.raises(InvalidParams):
        patch_snr(np.ones((2, 2)))
    with pytest.raises(InvalidParams):
        luminance_chroma_noise(np.ones((16, 16)))
    with pytest.raises(InvalidParams):
        visual_noise_iso15739(np.ones((16, 16, 3)))
    bad = np.ones((40, 40, 3))
    bad[0, 0, 0] = np.nan
    with pytest.raises(InvalidParams):
        visual_noise_iso15739(bad)
