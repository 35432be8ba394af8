"""Look operations: Numba kernels against their NumPy twins, analytic values, edge cases."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame, Primaries, StageRecord, Transfer
from rawlab.core.opcodes import FixVignetteRadial, GainMap, OpcodeArea
from rawlab.errors import InvalidParams, StageError
from rawlab.look import grain, hsl, mono, saturation, splittone, tonecurve, vignette, wbbias
from rawlab.look._common import luminance_weights
from rawlab.tone.filmic import tone_filmic

RNG = np.random.default_rng(7)
W709 = luminance_weights(Primaries.SRGB)


def rgb_frame(data, transfer=Transfer.LINEAR, **kw):
    return Frame(data=np.asarray(data, np.float32), encoding=Encoding.RGB, primaries=Primaries.SRGB,
                 transfer=transfer, **kw)


def random_rgb(h=13, w=17, hi=4.0):
    return RNG.uniform(-0.05, hi, (h, w, 3)).astype(np.float32)


# ------------------------------------------------------------------ tone curve
TONE = dict(exposure_ev=0.2, contrast=1.3, pivot=0.18, toe=0.02, black_point=0.003, shoulder_start=0.55, white_point=5.0)


def test_tone_curve_matches_reference_and_fixed_points():
    x = random_rgb()
    np.testing.assert_allclose(tonecurve.tone_curve_look(x, **TONE), tonecurve.tone_curve_look_reference(x, **TONE),
                               rtol=2e-5, atol=2e-6)
    kw = dict(TONE, exposure_ev=0.0, black_point=0.0)
    y = tonecurve.tone_curve_look_reference(np.array([0.18, 5.0]), **kw)
    assert y[0] == pytest.approx(0.18, rel=1e-6)  # the pivot is fixed
    # the white point maps to 1 when the contrast step leaves it below/above consistently
    neutral = dict(kw, contrast=1.0)
    assert tonecurve.tone_curve_look_reference(np.array([5.0]), **neutral)[0] == pytest.approx(1.0, abs=1e-6)


def test_tone_curve_neutral_equals_default_filmic_and_is_monotone():
    x = np.linspace(-0.1, 10, 5001, dtype=np.float32)
    neutral = tonecurve.tone_curve_look(x, contrast=1.0, pivot=0.18, toe=0.01, black_point=0.0,
                                        shoulder_start=0.6, white_point=4.0)
    np.testing.assert_allclose(neutral, tone_filmic(x, shoulder_start=0.6, white_point=4.0), rtol=1e-6, atol=1e-7)
    for c in (0.5, 1.0, 1.4, 2.5):
        y = tonecurve.tone_curve_look(x, contrast=c, pivot=0.18, toe=0.01, black_point=0.0,
                                      shoulder_start=0.6, white_point=4.0)
        assert np.all(np.diff(y.astype(np.float64)) >= -1e-7)


def test_tone_curve_log_slope_is_contrast_above_the_toe():
    x = np.array([0.1, 0.2], np.float64)
    y = tonecurve.tone_curve_look_reference(x, contrast=1.5, pivot=0.18, toe=0.0001, black_point=0.0,
                                            shoulder_start=0.99, white_point=1000.0)
    slope = np.log(y[1] / y[0]) / np.log(x[1] / x[0])
    assert slope == pytest.approx(1.5, rel=1e-3)


def test_tone_curve_nan_and_stage():
    x = np.array([[[np.nan, 0.5, 1.0]]], np.float32)
    out = tonecurve.look_tone_curve(rgb_frame(x), tonecurve.ToneCurveParams(contrast=1.2))
    assert np.isnan(out.data[0, 0, 0]) and np.all(np.isfinite(out.data[0, 0, 1:]))
    assert out.history[-1].stage == "look_tone_curve"
    with pytest.raises(StageError):
        tonecurve.look_tone_curve(rgb_frame(x, transfer=Transfer.SRGB), tonecurve.ToneCurveParams())
    with pytest.raises(InvalidParams):
        tonecurve.ToneCurveParams(contrast=9.0)


# ------------------------------------------------------------------ saturation
@pytest.mark.parametrize("sat,vib", [(1.3, 0.0), (0.0, 0.0), (1.1, 0.5), (0.8, -0.7)])
def test_saturation_matches_reference_and_keeps_luminance(sat, vib):
    x = random_rgb(7, 9, 1.5)
    kw = dict(saturation=sat, vibrance=vib, luminance_weights_rgb=W709)
    out = saturation.saturation_vibrance(x, **kw)
    np.testing.assert_allclose(out, saturation.saturation_vibrance_reference(x, **kw), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out @ W709, x @ W709, rtol=1e-5, atol=1e-6)
    if sat == 0.0:
        np.testing.assert_allclose(out[..., 0], out[..., 2], atol=1e-6)  # saturation 0: grey


def test_vibrance_favours_muted_colours():
    muted = np.array([[[0.5, 0.45, 0.4]]], np.float32)
    vivid = np.array([[[0.5, 0.1, 0.05]]], np.float32)

    def gain(x):
        out = saturation.saturation_vibrance(x, saturation=1.0, vibrance=0.5, luminance_weights_rgb=W709)
        y = x @ W709
        return float(np.ptp(out - y[..., None]) / np.ptp(x - y[..., None]))

    assert gain(muted) > gain(vivid) > 1.0


# ------------------------------------------------------------------------- HSL
def test_hsl_matches_reference_and_rotates_red_to_yellow():
    x = random_rgb(5, 11, 1.0)
    params = dict(hue_deg=(10, -5, 0, 20, 0, -30, 5, 0), saturation=(0.2, 0, -0.5, 0.1, 0, 0.3, 0, -1),
                  luminance_ev=(0, 0.3, 0, -0.2, 0, 0.5, 0, 0))
    np.testing.assert_allclose(hsl.hsl_8band(x, **params), hsl.hsl_8band_reference(x, **params), rtol=1e-5, atol=2e-6)
    red = np.array([[[1.0, 0.0, 0.0]]], np.float32)
    out = hsl.hsl_8band(red, hue_deg=(60,) + (0,) * 7, saturation=(0,) * 8, luminance_ev=(0,) * 8)
    # Rodrigues rotation of the chroma (2/3, -1/3, -1/3) by 60 deg about grey: (1/3, 1/3, -2/3)
    np.testing.assert_allclose(out[0, 0], [2 / 3, 2 / 3, -1 / 3], atol=1e-6)
    grey = np.full((2, 3, 3), 0.4, np.float32)
    np.testing.assert_array_equal(hsl.hsl_8band(grey, hue_deg=(30,) * 8, saturation=(1,) * 8, luminance_ev=(1,) * 8), grey)
    with pytest.raises(InvalidParams, match="expected 8 values"):
        hsl.HslParams(hue_deg=(0.0, 1.0))


# ------------------------------------------------------------------- split tone
def test_split_tone_matches_reference_and_identity():
    x = random_rgb(6, 5, 1.0)
    w = W709
    ts = splittone.unit_luminance_tint(220, 0.4, w)
    th = splittone.unit_luminance_tint(40, 0.3, w)
    kw = dict(tint_shadows=ts, tint_highlights=th, balance=0.5, luminance_weights_rgb=w)
    np.testing.assert_allclose(splittone.split_tone(x, **kw), splittone.split_tone_reference(x, **kw), rtol=1e-5, atol=1e-6)
    assert float(ts @ w) == pytest.approx(1.0)
    grey = np.full((1, 4, 3), [[0.05], [0.2], [0.5], [0.9]], np.float32).reshape(1, 4, 3)
    out = splittone.split_tone(grey, **kw)
    np.testing.assert_allclose(out @ w, grey @ w, rtol=1e-5)  # greys keep their luminance
    f = splittone.look_split_tone(rgb_frame(x), splittone.SplitToneParams())
    np.testing.assert_array_equal(f.data, x)


# ----------------------------------------------------------------------- mono
@pytest.mark.parametrize("filt", sorted(mono.MONO_FILTERS))
def test_mono_has_no_chroma_and_matches_reference(filt):
    x = random_rgb(9, 8, 2.0)
    p = mono.MonoParams(filter=filt, contrast=1.3)
    w = mono.mono_weights(p, W709)
    assert w.sum() == pytest.approx(1.0)
    out = mono.look_mono(rgb_frame(x), p).data
    assert np.array_equal(out[..., 0], out[..., 1]) and np.array_equal(out[..., 1], out[..., 2])
    np.testing.assert_allclose(out, mono.mono_mix_reference(x, weights=w, contrast=1.3, pivot=0.18, toe=0.01),
                               rtol=2e-5, atol=1e-6)
    white = mono.look_mono(rgb_frame(np.ones((1, 1, 3))), mono.MonoParams(filter=filt)).data
    assert white[0, 0, 0] == pytest.approx(1.0, abs=1e-6)


def test_mono_red_filter_darkens_blue():
    blue = rgb_frame(np.array([[[0.05, 0.1, 0.6]]]))
    plain = mono.look_mono(blue, mono.MonoParams()).data[0, 0, 0]
    red = mono.look_mono(blue, mono.MonoParams(filter="red")).data[0, 0, 0]
    assert red < 0.7 * plain
    with pytest.raises(InvalidParams):
        mono.look_mono(blue, mono.MonoParams(mixer=(1.0, -1.0, 0.0)))


# --------------------------------------------------------------- white balance bias
def test_daylight_locus_matches_colour_science():
    import colour

    for T in (4500.0, 6504.0, 9000.0):
        np.testing.assert_allclose(wbbias.daylight_xy_cie15(T), colour.temperature.CCT_to_xy_CIE_D(T), atol=2e-4)


def test_white_balance_bias_warms_and_keeps_white_luminance():
    g = wbbias.white_balance_bias_gains(20.0, 0.0, Primaries.SRGB)
    assert g[0] > 1.0 > g[2]
    assert float(g @ W709) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(wbbias.white_balance_bias_gains(0.0, 0.0, Primaries.SRGB), 1.0, atol=1e-6)
    assert wbbias.white_balance_bias_gains(0.0, 0.2, Primaries.SRGB)[1] < 1.0  # magenta: less green


# ------------------------------------------------------------------- vignette
def _falloff(h, w):
    y = (np.arange(h) + 0.5 - h / 2)[:, None]
    x = (np.arange(w) + 0.5 - w / 2)[None, :]
    r2 = (x * x + y * y) / (0.25 * (h * h + w * w))
    return (1.0 - 0.5 * r2).astype(np.float32)  # relative illumination, 0.5 at the corners


def _gainmap_for(fall, points=33):
    """The GainMap correcting ``_falloff``: the analytic fall-off sampled at the grid
    points' continuous positions (pixel centre (r + 0.5) / h is relative position r)."""
    h, w = fall.shape
    rel = np.linspace(0, 1, points)
    y = (rel * h - h / 2)[:, None]
    x = (rel * w - w / 2)[None, :]
    exact = 1.0 - 0.5 * (x * x + y * y) / (0.25 * (h * h + w * w))
    return GainMap(list_index=2, opcode_id=9, area=OpcodeArea(top=0, left=0, bottom=h, right=w),
                   points_v=points, points_h=points, spacing_v=1 / (points - 1), spacing_h=1 / (points - 1),
                   origin_v=0.0, origin_h=0.0, map_planes=1, gains=(1 / exact).astype(np.float32)[..., None])


@pytest.mark.parametrize("keep", [0.0, 0.5, 1.0])
def test_vignette_keeps_the_asked_share_of_the_lens_falloff(keep):
    h, w = 96, 129  # odd width
    fall = _falloff(h, w)
    frame = rgb_frame(np.repeat(fall[..., None], 3, axis=2) * 0.5, opcodes=(_gainmap_for(fall),))
    out = vignette.look_vignette(frame, vignette.VignetteParams(keep_lens_falloff=keep)).data[..., 1]
    corner_ev = np.log2(out[:3, :3].mean() / out[h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1].mean())
    lens_ev = np.log2(fall[:3, :3].mean() / fall[h // 2 - 1 : h // 2 + 1, w // 2 - 1 : w // 2 + 1].mean())
    assert corner_ev == pytest.approx(keep * lens_ev, abs=0.02)


def test_vignette_after_lens_shading_puts_back_the_falloff():
    h, w = 40, 60
    fall = _falloff(h, w)
    frame = rgb_frame(np.full((h, w, 3), 0.5)).replace(applied_opcodes=(_gainmap_for(fall),))
    out = vignette.look_vignette(frame, vignette.VignetteParams(keep_lens_falloff=1.0)).data[..., 0] / 0.5
    np.testing.assert_allclose(out, fall, rtol=0.04)


def test_vignette_without_lens_model_and_radial_opcode():
    frame = rgb_frame(np.full((20, 30, 3), 0.5))
    assert vignette.look_vignette(frame, vignette.VignetteParams(keep_lens_falloff=0.0)).data is frame.data
    added = vignette.look_vignette(frame, vignette.VignetteParams(amount_ev=-1.0, midpoint=0.0)).data
    assert 0.24 < added[0, 0, 0] < 0.27  # about -1 EV at the corner pixel
    assert added[10, 15, 0] == pytest.approx(0.5, rel=0.01)
    radial = FixVignetteRadial(list_index=3, opcode_id=3, k=(1.0, 0.0, 0.0, 0.0, 0.0))
    G = vignette.radial_vignette_field(radial, 20, 30)
    assert G.max() == pytest.approx(2.0, abs=0.1) and G[10, 15] == pytest.approx(1.0, abs=0.01)
    with pytest.raises(StageError, match="before crop"):
        done = frame.replace(opcodes=(_gainmap_for(_falloff(20, 30)),), history=(StageRecord("crop", 1, "x"),))
        vignette.look_vignette(done, vignette.VignetteParams(keep_lens_falloff=0.5))


# ---------------------------------------------------------------------- grain
def test_grain_kernel_field_and_luminance_dependence():
    h, w = 300, 401
    field = grain.grain_field(h, w, size_px=2.0, seed=3)
    assert field.shape == (h, w) and abs(float(field.std()) - 1.0) < 0.05
    np.testing.assert_array_equal(field, grain.grain_field(h, w, size_px=2.0, seed=3))  # deterministic
    x = RNG.uniform(0, 1, (h, w, 3)).astype(np.float32)
    kw = dict(amount=0.05, luminance_weights_rgb=W709)
    np.testing.assert_allclose(grain.add_grain(x, field, **kw), grain.add_grain_reference(x, field, **kw), atol=1e-6)
    flat = np.zeros((h, w, 3), np.float32)
    for level, expect in ((0.0, 0.0), (1.0, 0.0), (0.5, 0.05)):
        out = grain.add_grain(flat + level, field, **kw)
        assert float(out[..., 0].std()) == pytest.approx(expect, abs=0.004)
        assert np.array_equal(out[..., 0], out[..., 2])  # luminance grain, no colour
    # larger grain: neighbouring pixels correlate more
    big = grain.grain_field(h, w, size_px=8.0, seed=3)
    corr = lambda f: float(np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1])  # noqa: E731
    assert corr(big) > corr(field) > 0.2
    with pytest.raises(StageError):
        grain.look_grain(rgb_frame(x), grain.GrainParams())
