"""The fused point-wise pass (rawlab.look.fused) against the stage-by-stage develop."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.errors import InvalidParams
from rawlab.look import apply_look, builtin_looks
from rawlab.look import fused as F
from rawlab.pipeline import Recipe, RecipeStep, develop

LOOKS = ("none",) + tuple(builtin_looks())


def _recipe(look: str) -> Recipe:
    base = Recipe.builtin("default")
    return base if look == "none" else apply_look(base, look)


def _delta_e_2000(encoded_a, encoded_b):
    """CIEDE2000 (colour-science) of two sRGB-encoded images, as the encoder shows them (clipped to 0..1)."""
    import colour

    def lab(v):
        v = np.clip(np.asarray(v, np.float64), 0.0, 1.0)
        return colour.XYZ_to_Lab(colour.sRGB_to_XYZ(v))

    return colour.delta_E(lab(encoded_a), lab(encoded_b), method="CIE 2000")


@pytest.fixture(scope="module")
def sample_frame(tmp_path_factory):
    from rawlab.io.read import read
    from rawlab.sample import make_sample

    return read(make_sample(tmp_path_factory.mktemp("fused") / "s.dng", size=(240, 160)))


@pytest.fixture(scope="module")
def hdr_frame():
    from rawlab.sim import capture, scene

    return capture(scene.hdr_window((160, 120), ratio=2.0**12), "phone-small", iso=100, seed=3,
                   gainmap_opcode=True).frame


@pytest.fixture(scope="module")
def chart_frame():
    from rawlab.sim import capture, scene

    return capture(scene.colorchecker((180, 120)), "phone-small", iso=50, seed=2, gainmap_opcode=True).frame


def test_fuse_recipe_replaces_the_pointwise_run():
    fused = F.fuse_recipe(_recipe("none"))
    names = fused.stage_names()
    assert names == ("dng_opcodes_raw", "normalize", "dng_opcodes_linear", "white_balance", "highlights", "demosaic",
                     "dng_opcodes_rgb", F.FUSED_STAGE, "orientation")
    inner = [s.stage for s in fused.steps[7].params.steps]
    assert inner == ["camera_to_xyz", "xyz_to_rgb", "exposure", "filmic", "output_transfer", "crop"]
    film = F.fuse_recipe(_recipe("film"))
    inner = [s.stage for s in film.steps[film.stage_names().index(F.FUSED_STAGE)].params.steps]
    assert inner[4] == "look_vignette" and inner[-2:] == ["look_grain", "crop"] and "look_hsl" in inner
    with_mode = F.fuse_recipe(_recipe("none").without("crop", "orientation"))
    assert with_mode.stage_names()[-1] == F.FUSED_STAGE


@pytest.mark.parametrize("look", LOOKS)
def test_fused_matches_stage_by_stage(look, sample_frame, hdr_frame, chart_frame):
    recipe = _recipe(look)
    for frame in (sample_frame, hdr_frame, chart_frame):
        exact = develop(frame, recipe, fuse=False)
        fast = develop(frame, recipe)
        assert fast.data.shape == exact.data.shape and fast.data.dtype == np.float32
        d = _delta_e_2000(exact.data, fast.data)
        print(f"{look}: mean dE2000 {d.mean():.3f} p99 {np.percentile(d, 99):.3f} max {d.max():.3f}")
        assert d.mean() <= (0.05 if look == "none" else 0.1)
        assert np.percentile(d, 99.9) <= (0.05 if look == "none" else 0.75)
        # metadata as on the exact path; the history also notes the fused pass
        assert fast.transfer is exact.transfer and fast.primaries is exact.primaries
        np.testing.assert_allclose(fast.clip_level, exact.clip_level, rtol=1e-6)
        assert [r.stage for r in fast.history if r.stage != F.FUSED_STAGE] == [r.stage for r in exact.history]
        assert F.FUSED_STAGE in [r.stage for r in fast.history]


def _rgb_frame(data):
    return Frame(data=np.ascontiguousarray(data, np.float32), encoding=Encoding.RGB, primaries=Primaries.SRGB,
                 transfer=Transfer.LINEAR)


def _steps(*names_params):
    from rawlab.pipeline import load_stages

    stages = load_stages()
    return tuple(RecipeStep(n, stages[n].params_cls.from_dict(p)) for n, p in names_params)


def test_no_look_chain_is_per_channel_and_near_exact():
    # filmic + sRGB act per channel: the fine 1D table, exact to ~2e-4 over the shaper's range
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(-1.0, 40, (2000, 3)), 2.0 ** rng.uniform(-12, 5, (2000, 3))])
    steps = _steps(("exposure", {"exposure_ev": 0.5}), ("filmic", {}), ("output_transfer", {}))
    frame = _rgb_frame(x.reshape(40, 100, 3))
    exact = F.fused_pointwise_reference(frame, F.FusedParams(steps=steps)).data
    fast = F.fused_pointwise(frame, F.FusedParams(steps=steps)).data
    pos = exact >= 0
    np.testing.assert_allclose(fast[pos], exact[pos], atol=2e-4)
    np.testing.assert_allclose(fast[~pos], exact[~pos], atol=2e-3)  # negatives: display black either way
    # beyond the tables' range nothing is clamped: those pixels run through the exact stages
    far = _rgb_frame(np.array([[[200.0, 0.5, -5.0], [1e4, 1e4, 1e4], [-30.0, 0.1, 0.1]]]))
    out = F.fused_pointwise(far, F.FusedParams(steps=steps)).data
    ref = F.fused_pointwise_reference(far, F.FusedParams(steps=steps)).data
    np.testing.assert_allclose(out, ref, rtol=1e-6, atol=1e-7)


def test_colour_chain_on_random_colours_and_nan():
    rng = np.random.default_rng(1)
    x = 2.0 ** rng.uniform(-8, 3, (64, 50, 3)) * rng.uniform(0.0, 1.0, (64, 50, 1))
    x[0, 0] = np.nan
    x[0, 1] = (0.2, -0.05, 0.1)  # out of gamut
    steps = _steps(("look_saturation", {"saturation": 1.3, "vibrance": 0.3}),
                   ("look_tone_curve", {"contrast": 1.2}), ("output_transfer", {}))
    frame = _rgb_frame(x)
    exact = F.fused_pointwise_reference(frame, F.FusedParams(steps=steps)).data
    fast = F.fused_pointwise(frame, F.FusedParams(steps=steps)).data
    assert np.all(np.isnan(fast[0, 0])) and np.all(np.isnan(exact[0, 0]))
    d = _delta_e_2000(exact[1:], fast[1:])
    assert d.mean() < 0.3, d.mean()
    # greys come from the grey response: exact up to the fine table
    g = np.repeat(np.geomspace(1e-3, 8, 300)[:, None], 3, axis=1).reshape(1, 300, 3)
    np.testing.assert_allclose(F.fused_pointwise(_rgb_frame(g), F.FusedParams(steps=steps)).data,
                               F.fused_pointwise_reference(_rgb_frame(g), F.FusedParams(steps=steps)).data, atol=3e-4)


def test_shaper_twin_and_inverse():
    x = np.concatenate([-np.geomspace(1e4, 1e-8, 500), [0.0], np.geomspace(1e-8, 1e4, 500)])
    s = F.shaper_reference(x)
    assert np.all(np.diff(s) > 0) and s[500] == 0.0
    np.testing.assert_allclose(F.shaper_inverse(s), x, rtol=1e-12, atol=1e-18)
    # the kernel's log2: the float exponent plus the mantissa polynomial, within 2e-6 stop
    t = np.linspace(0.0, 1.0, 10001)
    q = t + t * (1 - t) * np.polynomial.polynomial.polyval(t, F._POLY.astype(np.float64))
    assert np.max(np.abs(q - np.log2(1 + t))) < 2e-6
    # the chroma axes: fine near grey, coarser beyond; the lattice points are the inverse at integers
    axis = F._chroma_axis()
    np.testing.assert_allclose(F.chroma_index_reference(axis), np.arange(axis.size), atol=1e-9)
    assert axis[0] == -F.LUT3D_CHROMA_OUTER_STOPS and axis[-1] == F.LUT3D_CHROMA_OUTER_STOPS
    assert np.diff(axis).min() == pytest.approx(1 / F.LUT3D_CHROMA_PER_STOP)
    # a per-channel chain on the fine table is exact on its points and smooth between them
    steps = _steps(("filmic", {}), ("output_transfer", {}))
    greys = np.repeat(F.shaper_inverse(np.linspace(-1.0, 15.0, 997))[:, None], 3, axis=1).reshape(1, -1, 3)
    np.testing.assert_allclose(F.fused_pointwise(_rgb_frame(greys), F.FusedParams(steps=steps)).data,
                               F.fused_pointwise_reference(_rgb_frame(greys), F.FusedParams(steps=steps)).data,
                               atol=2e-4)


@pytest.mark.parametrize("shape", [(1, 1), (2, 3), (7, 5), (33, 17)])
def test_vignette_and_grain_on_odd_sizes(shape):
    rng = np.random.default_rng(2)
    x = rng.uniform(0.02, 1.5, shape + (3,))
    steps = _steps(("look_vignette", {"amount_ev": -1.0, "midpoint": 0.2}), ("exposure", {"exposure_ev": 0.3}),
                   ("filmic", {}), ("output_transfer", {}), ("look_grain", {"amount": 0.05, "size_per_mille": 10.0}))
    frame = _rgb_frame(x)
    exact = F.fused_pointwise_reference(frame, F.FusedParams(steps=steps)).data
    fast = F.fused_pointwise(frame, F.FusedParams(steps=steps)).data
    np.testing.assert_allclose(fast, exact, rtol=1e-5, atol=2e-4)  # 1x1: the grain stage scales its field by 1e6


def test_matrix_prefix_follows_the_frame_metadata(sample_frame):
    # the fused pass measures camera_to_xyz etc. on this frame's calibration: a changed
    # BaselineExposure changes the result exactly as on the stage-by-stage path
    import dataclasses

    frame = sample_frame.replace(color=dataclasses.replace(sample_frame.color, baseline_exposure_ev=1.0))
    recipe = _recipe("authentic")
    d = _delta_e_2000(develop(frame, recipe, fuse=False).data, develop(frame, recipe).data)
    assert d.mean() < 0.5
    assert not np.allclose(develop(frame, recipe).data, develop(sample_frame, recipe).data)


def test_fused_stage_cannot_be_written_in_a_recipe():
    with pytest.raises(InvalidParams, match="fuse_recipe"):
        Recipe.from_dict({"stages": [{"stage": F.FUSED_STAGE, "steps": [{"stage": "filmic"}]}]})


def test_misplaced_stage_fails_as_unfused(sample_frame):
    from rawlab.errors import StageError

    base = Recipe.builtin("default")
    steps = list(base.steps)
    at = base.stage_names().index("output_transfer")
    steps.insert(at + 1, _steps(("filmic", {}))[0])  # filmic on sRGB-encoded data
    bad = Recipe(name="bad", steps=tuple(steps))
    with pytest.raises(StageError) as exact:
        develop(sample_frame, bad, fuse=False)
    with pytest.raises(StageError) as fast:
        develop(sample_frame, bad)
    assert str(fast.value) == str(exact.value)


def test_tables_are_cached_by_content_not_by_params_hash():
    # two look_lut steps whose params hash alike (the table is left out of it) must not share a baked table
    from rawlab.look.lut import Lut3D, LutParams

    grid = np.linspace(0, 1, 5)
    ident = np.stack(np.meshgrid(grid, grid, grid, indexing="ij"), axis=-1)
    frame = _rgb_frame(np.full((2, 2, 3), 0.18))
    outs = []
    for table in (ident, 1.0 - ident):
        steps = _steps(("filmic", {}), ("output_transfer", {})) + (
            RecipeStep("look_lut", LutParams(lut=Lut3D(table=table))),)
        outs.append(F.fused_pointwise(frame, F.FusedParams(steps=steps)).data)
        np.testing.assert_allclose(outs[-1], F.fused_pointwise_reference(frame, F.FusedParams(steps=steps)).data,
                                   atol=1e-3)
    assert not np.allclose(outs[0], outs[1])


def test_tables_follow_metadata_a_chain_stage_reads(sample_frame):
    # exposure after a colour stage sits inside the baked chain and reads the DNG BaselineExposure:
    # frames that differ only there must not share a cached table
    import dataclasses

    steps = _steps(("look_saturation", {"saturation": 1.2}), ("exposure", {}), ("filmic", {}),
                   ("output_transfer", {}))
    base = _rgb_frame(np.random.default_rng(3).uniform(0.01, 1.0, (8, 8, 3)))
    for ev in (0.0, 1.0, 0.0, -1.5):
        frame = base.replace(color=dataclasses.replace(sample_frame.color, baseline_exposure_ev=ev))
        fast = F.fused_pointwise(frame, F.FusedParams(steps=steps)).data
        exact = F.fused_pointwise_reference(frame, F.FusedParams(steps=steps)).data
        d = _delta_e_2000(exact, fast)
        assert d.mean() < 0.1 and d.max() < 1.0, (ev, d.mean(), d.max())  # a stale table is off by ~1 EV


@pytest.fixture(scope="module")
def d30_frame(shared_data):
    from rawlab.io.read import read

    return read(shared_data / "raw" / "canon_eos_d30" / "RAW_CANON_D30_SRGB.CRW")


@pytest.mark.parametrize("look", LOOKS)
def test_fused_error_bounded_on_a_real_raw_per_look(look, d30_frame):
    # the speed path against the reference on every pixel of a real 3 MP RAW: mean and tail
    recipe = _recipe(look)
    exact = develop(d30_frame, recipe, fuse=False).data
    fast = develop(d30_frame, recipe).data
    d = _delta_e_2000(exact, fast)
    p999 = float(np.percentile(d, 99.9))
    print(f"D30 {look}: mean dE2000 {d.mean():.4f} p99.9 {p999:.3f} max {d.max():.3f}")
    assert d.mean() <= (0.01 if look == "none" else 0.1)
    assert p999 <= (0.05 if look == "none" else 0.75)
    assert d.max() <= (0.05 if look == "none" else 3.0)
    assert np.mean(d > 1.0) <= 1e-4  # the largest errors are a few saturated pixels


@pytest.mark.parametrize("look", ["none", "film", "authentic"])
def test_crop_inside_the_pass_keeps_gain_and_grain_on_the_uncropped_grid(look, hdr_frame):
    # the pass computes only the default crop's pixels: vignette gain fields and the grain field
    # must stay where they are on the uncropped frame (an off-centre crop shows any shift)
    import dataclasses

    frame = hdr_frame.replace(sensor=dataclasses.replace(hdr_frame.sensor, crop_px=(5, 11, 97, 131)))
    recipe = _recipe(look)
    exact = develop(frame, recipe, fuse=False)
    fast = develop(frame, recipe)
    assert fast.data.shape == exact.data.shape == (97, 131, 3)
    assert fast.sensor.crop_px is None and exact.sensor.crop_px is None
    d = _delta_e_2000(exact.data, fast.data)
    assert d.mean() < 0.05 and d.max() < 1.0, (d.mean(), d.max())
    # pixels that leave the tables (here: all, beyond the shaper's range) come back to the right place
    steps = F.fuse_recipe(recipe).steps
    at = [s.stage for s in steps].index(F.FUSED_STAGE)
    head = develop(frame, Recipe(name="head", steps=steps[:at]), fuse=False)
    head = head.replace(data=np.float32(1e3) + np.abs(head.data) * np.float32(1e3))  # every channel > 64
    fused = F.fused_pointwise(head, steps[at].params).data
    ref = F.fused_pointwise_reference(head, steps[at].params).data
    np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-5)
