"""Built-in looks through the whole develop on simulated captures, look files, modes."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rawlab.errors import InvalidParams, RawlabError, StageError
from rawlab.look import apply_look, apply_look_options, builtin_looks, load_look
from rawlab.pipeline import Recipe, develop

LOOKS = ("authentic", "film", "mono", "mono-hc", "natural", "sepia", "vibrant", "vivid")


def _decode(encoded):
    v = np.clip(np.asarray(encoded, np.float64), 0, 1)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


@pytest.fixture(scope="module")
def chart():
    from rawlab.sim import capture, load_camera, scene

    cam = load_camera("phone-small")
    flat_lens = dataclasses.replace(cam, optics=dataclasses.replace(cam.optics, vignetting_cos4=False, vignetting_poly=()))
    sc = scene.colorchecker((300, 200))
    return capture(sc, flat_lens, iso=50, seed=1).frame, [p["box"] for p in sc.geometry["patches"]]


@pytest.fixture(scope="module")
def flat():
    from rawlab.sim import capture, scene

    return capture(scene.flat_field((240, 180), reflectance=0.5), "phone-small", iso=50, seed=1, gainmap_opcode=True)


def _chart_result(chart, look):
    from rawlab.lab import measure_colorchecker

    frame, boxes = chart
    out = _decode(develop(frame, apply_look(Recipe.builtin("default"), look)).data)
    patches = np.array([out[t:b, l:r].reshape(-1, 3).mean(0) for t, l, b, r in boxes])
    return measure_colorchecker(patches)


def _corner_ev(flat, look):
    from rawlab.lab import vignetting_ev

    out = _decode(develop(flat.frame, apply_look(Recipe.builtin("default"), look)).data)
    return vignetting_ev(out, corner_fraction=0.08).mean_ev


def _lens_corner_ev(flat):
    from rawlab.lab import vignetting_ev
    from rawlab.sim import load_camera, optics

    h, w = flat.frame.data.shape
    return vignetting_ev(optics.vignetting_gain(load_camera("phone-small"), h, w), corner_fraction=0.08).mean_ev


def test_builtin_looks_load_with_descriptions():
    assert tuple(builtin_looks()) == LOOKS
    for name in LOOKS:
        look = load_look(name)
        assert look.name == name and look.description and "\n" not in look.description


def test_authentic_colour_accuracy_and_kept_vignetting(chart, flat):
    result = _chart_result(chart, "authentic")
    assert result.delta_e_2000_mean <= 2.5, result.delta_e_2000_mean
    lens = _lens_corner_ev(flat)
    kept = _corner_ev(flat, "authentic")
    assert lens < -0.5  # the simulated lens vignettes clearly
    assert kept / lens >= 0.5, (kept, lens)


def test_vibrant_more_chroma_and_vignetting_corrected(chart, flat):
    authentic = _chart_result(chart, "authentic").chroma_level_pct
    vibrant = _chart_result(chart, "vibrant").chroma_level_pct
    assert vibrant >= 1.15 * authentic, (vibrant, authentic)
    lens = _lens_corner_ev(flat)
    assert abs(_corner_ev(flat, "vibrant")) <= 0.1 * abs(lens)


def _Lab_of(encoded):
    from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_to_Lab

    return XYZ_to_Lab(_decode(encoded).reshape(-1, 3) @ M_rgb_to_XYZ_D50("srgb").T)


@pytest.mark.parametrize("name", ["mono", "mono-hc"])
def test_mono_looks_leave_no_chroma(chart, name):
    out = develop(chart[0], apply_look(Recipe.builtin("default"), name)).data
    Lab = _Lab_of(out)
    assert np.abs(Lab[:, 1]).max() < 0.5 and np.abs(Lab[:, 2]).max() < 0.5


def _midtone_slope(name):
    """d L* / d log2(scene) at middle grey, through the look's colour chain."""
    from rawlab.core.frame import Encoding, Frame, Primaries

    recipe = apply_look(Recipe.builtin("default"), name)
    names = recipe.stage_names()
    tail = recipe.steps[names.index("exposure") + 1 : names.index("output_transfer") + 1]
    x = np.array([0.18 / 1.25, 0.18 * 1.25], np.float32)
    frame = Frame(np.repeat(x[None, :, None], 3, axis=2), Encoding.RGB, primaries=Primaries.SRGB)
    for step in tail:
        frame = step.spec(frame, step.params)
    L = _Lab_of(frame.data)[:, 0]
    return float((L[1] - L[0]) / np.log2(1.25 * 1.25))


def test_mono_hc_is_steeper_in_the_midtones():
    mono, hc = _midtone_slope("mono"), _midtone_slope("mono-hc")
    assert hc > 1.15 * mono, (mono, hc)


BAD_LOOKS = {
    "unknown_op": ('name = "x"\n[[stages]]\nstage = "sharpen_more"\n', "stages[0].stage"),
    "not_a_look_op": ('name = "x"\n[[stages]]\nstage = "demosaic"\n', "stages[0].stage"),
    "out_of_range": ('name = "x"\n[[stages]]\nstage = "look_saturation"\nsaturation = 7.0\n', "saturation"),
    "unknown_key": ('name = "x"\n[[stages]]\nstage = "look_tone_curve"\ncontrst = 1.2\n', "contrst"),
    "wrong_type": ('name = "x"\n[[stages]]\nstage = "look_mono"\nfilter = 3\n', "filter"),
    "bad_toml": ('name = "x\n', "not valid TOML"),
    "no_stages": ('name = "x"\n', "stages"),
    "hsl_len": ('[[stages]]\nstage = "look_hsl"\nhue_deg = [1.0]\n', "hue_deg"),
    "missing_cube": ('[[stages]]\nstage = "look_lut"\ncube = "nope.cube"\n', "nope.cube"),
}


@pytest.mark.parametrize("case", sorted(BAD_LOOKS))
def test_bad_look_file_gives_one_line_error_with_file_and_key(tmp_path, case):
    text, key = BAD_LOOKS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    with pytest.raises(RawlabError) as err:
        load_look(path)
    message = str(err.value)
    assert "\n" not in message.strip() and key in message
    assert str(path) in message or "nope.cube" in message


def test_unknown_look_name_and_user_look_with_lut(tmp_path):
    with pytest.raises(InvalidParams, match="built-in looks"):
        load_look("nonexistent")
    from rawlab.look import export_look_cube

    export_look_cube("vivid", tmp_path / "v.cube", size=9)
    (tmp_path / "mine.toml").write_text(
        'name = "mine"\ndescription = "vivid as a LUT, half strength"\n'
        '[[stages]]\nstage = "look_lut"\ncube = "v.cube"\nstrength = 0.5\n'
    )
    look = load_look(tmp_path / "mine.toml")
    assert look.steps[0].params.lut.size == 9
    recipe = apply_look(Recipe.builtin("default"), look)
    names = recipe.stage_names()
    assert names.index("look_lut") == names.index("output_transfer") + 1


def test_look_placement_in_the_recipe():
    names = apply_look(Recipe.builtin("default"), "film").stage_names()
    assert "filmic" not in names
    assert names.index("exposure") < names.index("look_vignette") < names.index("look_tone_curve")
    assert names.index("look_tone_curve") < names.index("look_split_tone") < names.index("output_transfer")
    assert names.index("output_transfer") < names.index("look_grain") < names.index("crop")
    linear = apply_look(Recipe.builtin("linear"), "authentic").stage_names()
    assert linear.index("look_tone_curve") < linear.index("output_transfer")


@pytest.mark.parametrize("mode,expect_hw", [("35mm", (223, 297)), ("50mm", (156, 208)), ("90mm", (87, 116)),
                                            ("65x24", (148, 400))])
def test_focal_length_modes(mode, expect_hw):
    from rawlab.core.frame import Encoding, Frame, Primaries
    from rawlab.core.metadata import CaptureInfo
    from rawlab.look.modes import ModeCropParams, mode_crop

    frame = Frame(np.zeros((300, 400, 3), np.float32), Encoding.RGB, primaries=Primaries.SRGB,
                  capture=CaptureInfo(focal_length_35mm_mm=26.0))
    out = mode_crop(frame, ModeCropParams(mode=mode))
    assert out.data.shape[:2] == expect_hw
    if mode != "65x24":
        # diagonal field of view: tan(half angle) scales as 1 / f_eq
        assert np.hypot(*out.data.shape[:2]) / np.hypot(300, 400) == pytest.approx(26.0 / float(mode[:-2]), abs=0.01)
        assert out.capture.focal_length_35mm_mm == float(mode[:-2])
    with pytest.raises(StageError, match="cannot widen"):
        mode_crop(frame.replace(capture=CaptureInfo(focal_length_35mm_mm=100.0)), ModeCropParams(mode="90mm"))
    with pytest.raises(StageError, match="unknown"):
        mode_crop(frame.replace(capture=CaptureInfo()), ModeCropParams(mode="50mm"))


def test_mode_with_look_through_develop(chart):
    recipe = apply_look_options(Recipe.builtin("default"), look="vivid", mode="50mm")
    out = develop(chart[0], recipe)
    assert out.data.shape[:2] == (104, 156) and recipe.stage_names()[-1] == "mode_crop"
    with pytest.raises(InvalidParams, match="unknown mode"):
        apply_look_options(Recipe.builtin("default"), mode="24mm")
