"""3D LUTs: tetrahedral interpolation, .cube import/export, interchange with colour-science, look round trip."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rawlab.errors import InvalidParams, LimitExceeded, RawlabError
from rawlab.look import apply_look, load_look, look_to_lut
from rawlab.look.apply import SPATIAL_STAGES, Look
from rawlab.look.lut import Lut3D, apply_lut_tetrahedral, apply_lut_tetrahedral_reference, read_cube, write_cube

RNG = np.random.default_rng(11)


def _nonlinear_table(n):
    g = np.linspace(0, 1, n)
    r, gg, b = np.meshgrid(g, g, g, indexing="ij")
    return np.stack([r**1.7 + 0.1 * gg * b, np.sqrt(gg) * (0.8 + 0.2 * r), b**0.6 * (1 - 0.3 * r)], axis=-1)


def test_identity_lut_is_exact_and_kernel_matches_reference():
    g = np.linspace(0, 1, 9)
    ident = Lut3D(np.stack(np.meshgrid(g, g, g, indexing="ij"), axis=-1))
    x = RNG.uniform(0, 1, (31, 7, 3)).astype(np.float32)
    np.testing.assert_allclose(apply_lut_tetrahedral(x, ident), x, atol=1e-6)
    lut = Lut3D(_nonlinear_table(17))
    x[0, 0] = (0.5, 0.5, 0.5)
    x[0, 1] = (-0.2, 1.3, np.nan)  # clamped to the domain, NaN -> domain start
    np.testing.assert_allclose(apply_lut_tetrahedral(x, lut), apply_lut_tetrahedral_reference(x, lut), atol=2e-6)


def test_tetrahedral_matches_colour_science():
    import colour
    from colour.algebra import table_interpolation_tetrahedral

    table = _nonlinear_table(17)
    x = RNG.uniform(0, 1, (500, 3))
    ours = apply_lut_tetrahedral(x.astype(np.float32), Lut3D(table))
    ref = colour.LUT3D(table).apply(x, interpolator=table_interpolation_tetrahedral)
    np.testing.assert_allclose(ours, ref, atol=2e-6)


def test_grey_stays_grey_through_a_neutral_preserving_lut():
    g = np.linspace(0, 1, 5)
    r, gg, b = np.meshgrid(g, g, g, indexing="ij")
    m = (r + gg + b) / 3
    table = np.clip(np.stack([m + 1.3 * (r - m), m + 1.3 * (gg - m), m + 1.3 * (b - m)], -1), 0, None) ** 1.2
    grey = np.repeat(RNG.uniform(0, 1, (100, 1)), 3, axis=1).astype(np.float32)
    out = apply_lut_tetrahedral(grey, Lut3D(table))
    np.testing.assert_allclose(out[:, 0], out[:, 1], atol=1e-6)


@pytest.mark.parametrize("n", [2, 17, 33, 65])
def test_cube_round_trip_and_colour_science_reads_ours(tmp_path, n):
    import colour
    from colour.algebra import table_interpolation_tetrahedral

    lut = Lut3D(_nonlinear_table(n), title="test")
    path = write_cube(lut, tmp_path / f"t{n}.cube")
    back = read_cube(path)
    assert back.size == n and back.title == "test"
    np.testing.assert_allclose(back.table, lut.table, atol=1e-6)
    theirs = colour.io.read_LUT(str(path))
    np.testing.assert_allclose(theirs.table, lut.table, atol=1e-6)
    x = RNG.uniform(0, 1, (200, 3))
    np.testing.assert_allclose(theirs.apply(x, interpolator=table_interpolation_tetrahedral),
                               apply_lut_tetrahedral(x.astype(np.float32), back), atol=2e-6)


def test_reads_a_cube_written_by_colour_science(tmp_path):
    import colour
    from colour.algebra import table_interpolation_tetrahedral

    lut = colour.LUT3D(_nonlinear_table(33), name="from colour", domain=np.array([[0, 0, 0], [1, 1, 1]]))
    path = tmp_path / "colour.cube"
    colour.io.write_LUT(lut, str(path))
    ours = read_cube(path)
    x = RNG.uniform(0, 1, (300, 3))
    np.testing.assert_allclose(apply_lut_tetrahedral(x.astype(np.float32), ours),
                               lut.apply(x, interpolator=table_interpolation_tetrahedral), atol=2e-6)
    # a 1D LUT with a non-unit domain (DOMAIN_MIN/MAX)
    lut1 = colour.LUT1D(colour.LUT1D.linear_table(64) ** 2.2, domain=np.array([0.0, 2.0]))
    colour.io.write_LUT(lut1, str(tmp_path / "one.cube"))
    one = read_cube(tmp_path / "one.cube")
    assert not one.is_3d and one.domain_max == (2.0, 2.0, 2.0)
    y = RNG.uniform(0, 2, (50, 3))
    np.testing.assert_allclose(apply_lut_tetrahedral(y.astype(np.float32), one), lut1.apply(y), atol=1e-5)


BAD_CUBES = {
    "no_size": ("0 0 0\n1 1 1\n", "LUT_3D_SIZE"),
    "short": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7, "needs 8 table rows"),
    "text_row": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 6 + "0 x 0\n0 0 0\n", "table row 7"),
    "two_values": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "0 0\n", "table row 8"),
    "unknown_key": ("LUT_3D_SIZE 2\nGAMMA 2.2\n" + "0 0 0\n" * 8, "GAMMA"),
    "bad_size": ("LUT_3D_SIZE two\n", "LUT_3D_SIZE"),
    "bad_domain": ("LUT_3D_SIZE 2\nDOMAIN_MIN 1 1 1\nDOMAIN_MAX 0 0 0\n" + "0 0 0\n" * 8, "DOMAIN_M"),
    "nan": ("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7 + "nan 0 0\n", "table row 8"),
}


@pytest.mark.parametrize("case", sorted(BAD_CUBES))
def test_malformed_cube_gives_one_line_error_with_file_and_key(tmp_path, case):
    text, key = BAD_CUBES[case]
    path = tmp_path / f"{case}.cube"
    path.write_text(text)
    with pytest.raises(InvalidParams) as err:
        read_cube(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message and key in message


def test_huge_cube_is_refused_before_allocation(tmp_path):
    path = tmp_path / "huge.cube"
    path.write_text("LUT_3D_SIZE 100000\n0 0 0\n")
    with pytest.raises(LimitExceeded, match="LUT_3D_SIZE"):
        read_cube(path)
    with pytest.raises(RawlabError, match="cannot read"):
        read_cube(tmp_path / "missing.cube")


def _Lab(encoded):
    from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_to_Lab, to_linear

    lin = to_linear(np.clip(encoded, 0, 1).reshape(-1, 3), "srgb")
    return XYZ_to_Lab(lin @ M_rgb_to_XYZ_D50("srgb").T)


@pytest.fixture(scope="module")
def chart_frame():
    from rawlab.sim import capture, load_camera, scene

    cam = load_camera("phone-small")
    cam = dataclasses.replace(cam, optics=dataclasses.replace(cam.optics, vignetting_cos4=False, vignetting_poly=()))
    return capture(scene.colorchecker((240, 160)), cam, iso=50, seed=2).frame


@pytest.mark.parametrize("name", ["authentic", "vivid", "mono-hc", "film"])
def test_look_exported_as_33_point_cube_matches_the_look(tmp_path, chart_frame, name):
    import colour
    from colour.algebra import table_interpolation_tetrahedral

    from rawlab.lab import delta_e_ciede2000
    from rawlab.look import export_look_cube
    from rawlab.look.lut import LutParams
    from rawlab.pipeline import Recipe, RecipeStep, develop

    look = load_look(name)
    look = Look(look.name, look.description, tuple(s for s in look.steps if s.stage not in SPATIAL_STAGES))
    base = Recipe.builtin("default")
    direct = develop(chart_frame, apply_look(base, look)).data
    neutral = develop(chart_frame, base).data
    cube = export_look_cube(look, tmp_path / f"{name}.cube", size=33)
    lut_look = Look("lut", "", (RecipeStep("look_lut", LutParams(lut=read_cube(cube))),))
    via_lut = develop(chart_frame, apply_look(base, lut_look)).data
    dE = delta_e_ciede2000(_Lab(direct), _Lab(via_lut))
    assert float(dE.mean()) <= 0.5, dE.mean()
    theirs = colour.io.read_LUT(str(cube)).apply(np.clip(neutral, 0, 1).reshape(-1, 3).astype(np.float64),
                                                  interpolator=table_interpolation_tetrahedral)
    dE_colour = delta_e_ciede2000(_Lab(direct), _Lab(theirs))
    assert float(dE_colour.mean()) <= 0.5, dE_colour.mean()


def test_look_to_lut_of_mono_is_neutral():
    lut = look_to_lut("mono", size=9)
    np.testing.assert_allclose(lut.table[..., 0], lut.table[..., 2], atol=1e-6)
