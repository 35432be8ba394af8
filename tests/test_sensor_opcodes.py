"""DNG OpcodeList1/2 application (``dng_opcodes_raw``, ``dng_opcodes_linear``).

References: LibRaw (rawpy ``raw_image``) for the MapPolynomial of real
LinearRaw DNGs; per-pixel loops written from the DNG 1.6 text (chapter 7) and
analytic values for the synthetic cases.
"""

from __future__ import annotations

import numpy as np
import pytest

import rawlab
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern, SensorInfo
from rawlab.core.opcodes import (
    DeltaPerColumn,
    DeltaPerRow,
    FixBadPixelsConstant,
    FixBadPixelsList,
    FixVignetteRadial,
    GainMap,
    MapPolynomial,
    MapTable,
    OpcodeArea,
    ScalePerColumn,
    ScalePerRow,
    TrimBounds,
    UnknownOpcode,
)
from rawlab.errors import StageError
from rawlab.pipeline import Recipe, develop, load_stages
from rawlab.sensor.opcodes import (
    apply_gain_map,
    apply_map_polynomial,
    apply_map_table,
    apply_opcode_list,
    apply_per_row_column,
    dng_opcodes_linear,
    dng_opcodes_raw,
    fix_bad_pixels,
)

LINEAR_RAW_DNGS = [
    "raw/lg_g4_h815/skia_sample_1mp.dng",
    "charts/lg_g4_lab_scene/lg_g4_iso_800.dng",
    "raw/canon_eos_6d/canon_eos_6d_lossy.dng",
]


def _area(top=0, left=0, bottom=10**6, right=10**6, plane=0, planes=1, row_pitch=1, col_pitch=1):
    return OpcodeArea(top=top, left=left, bottom=bottom, right=right, plane=plane, planes=planes,
                      row_pitch=row_pitch, col_pitch=col_pitch)


def _selected(data, area):
    """Per-sample loop of the DNG area rule: (row, col, plane) the opcode touches."""
    h, w = data.shape[:2]
    p = 1 if data.ndim == 2 else data.shape[2]
    for r in range(area.top, min(area.bottom, h), area.row_pitch):
        for c in range(area.left, min(area.right, w), area.col_pitch):
            for q in range(area.plane, min(area.plane + area.planes, p)):
                yield r, c, q


def _at(data, r, c, q):
    return (r, c) if data.ndim == 2 else (r, c, q)


# ------------------------------------------------------------ real LinearRaw
@pytest.mark.parametrize("name", LINEAR_RAW_DNGS)
def test_linear_raw_map_polynomial_matches_libraw(shared_data, name):
    rawpy = pytest.importorskip("rawpy")
    path = shared_data / name
    frame = rawlab.read(path)
    assert [type(op) for op in frame.opcodes] == [MapPolynomial] * 3
    stages = load_stages()
    out = stages["dng_opcodes_linear"](stages["normalize"](stages["dng_opcodes_raw"](frame)))
    with rawpy.imread(str(path)) as raw:
        ref = raw.raw_image[..., :3].astype(np.float64) / 65535.0
    diff = out.data.astype(np.float64) - ref
    # LibRaw stores floor(65535 * poly): ours is 0..1 LSB above it, float32 rounding aside.
    assert np.abs(diff).max() < 1.01 / 65535
    assert 0.3 / 65535 < diff.mean() < 0.7 / 65535
    assert out.opcodes == ()
    # the clip level follows the map: white 1.0 -> poly(1.0) per plane
    expected = [sum(op.coefficients) for op in frame.opcodes]
    np.testing.assert_allclose(out.clip_level, np.minimum(expected, np.inf), rtol=1e-6)
    assert [r.stage for r in out.history] == ["dng_opcodes_raw", "normalize", "dng_opcodes_linear"]


# --------------------------------------------------------------- MapPolynomial
@pytest.mark.parametrize(
    "area",
    [
        _area(),
        _area(top=1, left=2, bottom=6, right=7, plane=1, planes=2, row_pitch=2, col_pitch=3),
        _area(top=3, left=0, bottom=4, right=99, plane=2, planes=5),
        _area(top=50, left=0, bottom=60, right=9),  # outside: nothing
    ],
)
def test_map_polynomial_areas_planes_and_pitches(area):
    rng = np.random.default_rng(1)
    data = rng.uniform(-0.1, 1.2, (7, 9, 3)).astype(np.float32)
    c = (0.01, 0.9, -0.2, 0.3)
    expected = data.astype(np.float64)
    for r, col, q in _selected(data, area):
        x = expected[r, col, q]
        expected[r, col, q] = c[0] + c[1] * x + c[2] * x * x + c[3] * x**3
    out = data.copy()
    apply_map_polynomial(out, MapPolynomial(list_index=2, opcode_id=8, area=area, coefficients=c), full_scale=1.0)
    np.testing.assert_allclose(out, expected, atol=2e-7)


def test_map_polynomial_list1_uses_the_16bit_scale():
    data = np.array([[0.0, 1000.0], [65535.0, 30000.0]], np.float32)
    op = MapPolynomial(list_index=1, opcode_id=8, area=_area(), coefficients=(0.0, 0.5, 0.5))
    out = data.copy()
    apply_map_polynomial(out, op, full_scale=65535.0)
    x = data.astype(np.float64) / 65535
    np.testing.assert_allclose(out, 65535 * (0.5 * x + 0.5 * x * x), rtol=1e-6)


# -------------------------------------------------------------------- MapTable
def test_map_table_list1_dn_and_clamped_index():
    table = np.array([5, 7, 11, 13, 17], np.uint16)
    data = np.array([[0, 1, 2], [3, 4, 9]], np.float32)
    op = MapTable(list_index=1, opcode_id=7, area=_area(col_pitch=2), table=table)
    out = data.copy()
    apply_map_table(out, op, full_scale=65535.0)
    np.testing.assert_array_equal(out, [[5, 1, 11], [13, 4, 17]])  # 9 -> last entry; odd columns untouched


def test_map_table_list2_normalised_scale():
    table = (np.arange(65536) // 2).astype(np.uint16)
    data = np.array([[0.0, 0.5, 1.0], [1000 / 65535, 2.0, -0.1]], np.float32)
    out = data[:, :, None].repeat(3, axis=2)
    apply_map_table(out, MapTable(list_index=2, opcode_id=7, area=_area(plane=1), table=table), full_scale=1.0)
    np.testing.assert_array_equal(out[..., 0], data)
    np.testing.assert_allclose(out[..., 1], [[0.0, 16383.5 / 65535, 32767 / 65535], [500 / 65535, 32767 / 65535, 0.0]], atol=1e-6)


# --------------------------------------------------------------------- GainMap
def _gain_reference(data, op):
    """Per-pixel loop of DNG 1.6 7.3.10: bilinear in the grid, positions relative to the image."""
    out = data.astype(np.float64).copy()
    h, w = data.shape[:2]

    def axis(pos, origin, spacing, points):
        if points == 1:
            return 0, 0, 0.0
        f = (pos - origin) / spacing
        if f <= 0:
            return 0, 0, 0.0
        i = int(f)
        if i >= points - 1:
            return points - 1, points - 1, 0.0
        return i, i + 1, f - i

    for r, c, q in _selected(data, op.area):
        mp = min(q, op.map_planes - 1)
        r0, r1, fr = axis((r + 0.5) / h, op.origin_v, op.spacing_v, op.points_v)
        c0, c1, fc = axis((c + 0.5) / w, op.origin_h, op.spacing_h, op.points_h)
        g = op.gains.astype(np.float64)
        top = g[r0, c0, mp] * (1 - fc) + g[r0, c1, mp] * fc
        bottom = g[r1, c0, mp] * (1 - fc) + g[r1, c1, mp] * fc
        out[_at(data, r, c, q)] *= top * (1 - fr) + bottom * fr
    return out


def _gain_map(area, points_v=4, points_h=5, map_planes=1, origin=(0.0, 0.0), spacing=None, seed=0, list_index=2):
    rng = np.random.default_rng(seed)
    spacing = spacing or (1.0 / (points_v - 1 or 1), 1.0 / (points_h - 1 or 1))
    return GainMap(
        list_index=list_index, opcode_id=9, area=area, points_v=points_v, points_h=points_h,
        spacing_v=spacing[0], spacing_h=spacing[1], origin_v=origin[0], origin_h=origin[1],
        map_planes=map_planes, gains=rng.uniform(0.8, 2.5, (points_v, points_h, map_planes)).astype(np.float32),
    )


@pytest.mark.parametrize("top", [0, 1])
@pytest.mark.parametrize("left", [0, 1])
@pytest.mark.parametrize("shape", [(8, 10), (9, 13)])
def test_gain_map_bayer_pitch_two_selects_one_cfa_site(top, left, shape):
    rng = np.random.default_rng(2)
    data = rng.uniform(0, 1, shape).astype(np.float32)
    op = _gain_map(_area(top=top, left=left, bottom=shape[0], right=shape[1], row_pitch=2, col_pitch=2),
                   origin=(0.05, -0.1), spacing=(0.3, 0.2))
    out = data.copy()
    apply_gain_map(out, op)
    np.testing.assert_allclose(out, _gain_reference(data, op), rtol=2e-6)
    untouched = np.ones(shape, bool)
    untouched[top::2, left::2] = False
    np.testing.assert_array_equal(out[untouched], data[untouched])


@pytest.mark.parametrize(
    "area, map_planes",
    [
        (_area(), 1),
        (_area(planes=3), 1),
        (_area(planes=3), 3),
        (_area(plane=1, planes=2), 2),  # image plane p uses map plane min(p, 1)
        (_area(top=2, left=3, bottom=7, right=8, plane=2, planes=1, row_pitch=3), 3),
    ],
)
def test_gain_map_planes(area, map_planes):
    rng = np.random.default_rng(3)
    data = rng.uniform(0, 1, (9, 11, 3)).astype(np.float32)
    op = _gain_map(area, map_planes=map_planes, points_v=3, points_h=1)
    out = data.copy()
    apply_gain_map(out, op)
    np.testing.assert_allclose(out, _gain_reference(data, op), rtol=2e-6)


def test_gain_map_reproduces_a_bilinear_gain_exactly():
    """A 2x2 grid at the image corners interpolates 1 + v + 2 h at pixel centres."""
    h, w = 6, 8
    gains = np.array([[1.0, 3.0], [2.0, 4.0]], np.float32)[:, :, None]
    op = GainMap(list_index=2, opcode_id=9, area=_area(), points_v=2, points_h=2, spacing_v=1.0, spacing_h=1.0,
                 origin_v=0.0, origin_h=0.0, map_planes=1, gains=gains)
    out = np.ones((h, w), np.float32)
    apply_gain_map(out, op)
    v = (np.arange(h) + 0.5)[:, None] / h
    u = (np.arange(w) + 0.5)[None, :] / w
    np.testing.assert_allclose(out, 1 + v + 2 * u, rtol=1e-6)


def test_gain_map_nan_stays_local():
    data = np.ones((5, 6), np.float32)
    data[2, 3] = np.nan
    apply_gain_map(data, _gain_map(_area()))
    assert np.isnan(data).sum() == 1 and np.isnan(data[2, 3])


# ------------------------------------------------------ per row / column ops
def test_delta_and_scale_per_row_and_column():
    data = np.zeros((5, 6, 3), np.float32)
    area = _area(top=1, left=0, bottom=5, right=6, plane=1, planes=1, row_pitch=2)
    out = data.copy()
    apply_per_row_column(out, DeltaPerRow(list_index=2, opcode_id=10, area=area, values=np.array([0.1, 0.2], np.float32)), full_scale=1.0)
    expected = data.copy()
    expected[1, :, 1] = 0.1
    expected[3, :, 1] = 0.2
    np.testing.assert_allclose(out, expected)
    area_c = _area(top=0, left=1, bottom=5, right=6, col_pitch=2, planes=3)
    apply_per_row_column(out, ScalePerColumn(list_index=2, opcode_id=13, area=area_c, values=np.array([2, 3, 4], np.float32)), full_scale=1.0)
    expected[:, 1] *= 2
    expected[:, 3] *= 3
    expected[:, 5] *= 4
    np.testing.assert_allclose(out, expected)
    raw = np.full((3, 4), 100.0, np.float32)
    apply_per_row_column(raw, DeltaPerColumn(list_index=1, opcode_id=11, area=_area(bottom=3, right=4), values=np.array([0, 1, 2, 3], np.float32) / 65535), full_scale=65535.0)
    np.testing.assert_allclose(raw, 100 + np.arange(4)[None, :].repeat(3, 0), rtol=1e-6)
    apply_per_row_column(raw, ScalePerRow(list_index=1, opcode_id=12, area=_area(bottom=3, right=4), values=np.array([1, 0.5, 2], np.float32)), full_scale=65535.0)
    np.testing.assert_allclose(raw[:, 0], [100, 50, 200])


def test_wrong_value_count_is_not_applied_and_kept():
    op = DeltaPerRow(list_index=2, opcode_id=10, area=_area(bottom=4, right=4), values=np.zeros(3, np.float32))
    frame = Frame(np.zeros((4, 4, 3), np.float32), Encoding.CAMERA_RGB, opcodes=(op,),
                  sensor=SensorInfo(white_level_dn=np.ones(1)))
    result = apply_opcode_list(frame, 2, full_scale=1.0)
    assert result.frame.opcodes == (op,) and result.applied == ()
    assert "3 values for 4 selected rows" in result.not_applied[0][1]


# ------------------------------------------------------------------ bad pixels
@pytest.mark.parametrize("phase", range(4))
def test_fix_bad_pixels_list_uses_same_colour_neighbours(phase):
    cfa = CfaPattern.from_string(("RGGB", "GRBG", "GBRG", "BGGR")[phase])
    h, w = 11, 12
    index = cfa.color_index_map(h, w)
    y, x = np.mgrid[0:h, 0:w]
    truth = (index * 0.3 + 0.01 * y + 0.02 * x).astype(np.float32)  # planar per colour: means are exact
    data = truth.copy()
    points = ((7, 8), (0, 0), (10, 11))
    rect = (2, 2, 4, 5)
    for r, c in points:
        data[r, c] = 99.0
    data[2:4, 2:5] = -5.0
    op = FixBadPixelsList(list_index=1, opcode_id=5, bayer_phase=phase, bad_points=points, bad_rects=(rect,))
    frame = Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=cfa), opcodes=(op,))
    out = dng_opcodes_raw(frame)
    assert out.opcodes == ()
    # interior points and the rectangle: symmetric neighbours give the plane exactly
    np.testing.assert_allclose(out.data[7, 8], truth[7, 8], atol=1e-5)
    np.testing.assert_allclose(out.data[2:4, 2:5], truth[2:4, 2:5], atol=0.05)
    for r, c in ((0, 0), (10, 11)):  # corners: same colour, near the truth
        assert abs(out.data[r, c] - truth[r, c]) < 0.1
    good = np.ones((h, w), bool)
    good[2:4, 2:5] = False
    for r, c in points:
        good[r, c] = False
    np.testing.assert_array_equal(out.data[good], truth[good])


def test_fix_bad_pixels_constant_dn():
    cfa = CfaPattern.from_string("RGGB")
    data = np.tile(np.array([[100, 200], [300, 400]], np.float32), (4, 4))
    data[3, 5] = 0.0  # a G site (row 3 is G B, column 5 odd -> B) -> B
    data[4, 4] = 0.0  # R
    op = FixBadPixelsConstant(list_index=1, opcode_id=4, constant=0, bayer_phase=0)
    out = dng_opcodes_raw(Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=cfa), opcodes=(op,)))
    np.testing.assert_array_equal(out.data, np.tile(np.array([[100, 200], [300, 400]], np.float32), (4, 4)))


def test_fix_bad_pixels_planar():
    data = np.ones((5, 5, 3), np.float32)
    bad = np.zeros((5, 5), bool)
    bad[2, 2] = True
    data[2, 2] = [7, 8, 9]
    fix_bad_pixels(data, bad)
    np.testing.assert_array_equal(data, np.ones((5, 5, 3), np.float32))


# ----------------------------------------------------------------- TrimBounds
def test_trim_bounds_moves_cfa_phase_and_crop():
    cfa = CfaPattern.from_string("RGGB")
    data = np.arange(8 * 10, dtype=np.float32).reshape(8, 10)
    op = TrimBounds(list_index=2, opcode_id=6, top=1, left=3, bottom=7, right=9)
    frame = Frame(data, Encoding.CFA, sensor=SensorInfo(cfa=cfa, crop_px=(0, 0, 8, 10), white_level_dn=np.ones(1)),
                  opcodes=(op,))
    out = dng_opcodes_linear(frame)
    np.testing.assert_array_equal(out.data, data[1:7, 3:9])
    assert out.sensor.cfa.name == "BGGR"  # RGGB shifted by (1, 3)
    assert out.sensor.crop_px == (0, 0, 6, 6)


# --------------------------------------------- clip level, refusal, unknown ops
def test_gain_map_lowers_clip_level_only_where_a_gain_is_below_one():
    cfa = CfaPattern.from_string("RGGB")
    gm = _gain_map(_area(top=1, left=1, bottom=8, right=8, row_pitch=2, col_pitch=2))  # the B site
    frame = Frame(np.ones((8, 8), np.float32), Encoding.CFA, clip_level=np.ones(3, np.float32),
                  sensor=SensorInfo(cfa=cfa, white_level_dn=np.ones(1)), opcodes=(gm,))
    out = dng_opcodes_linear(frame)
    np.testing.assert_allclose(out.clip_level, [1.0, 1.0, min(1.0, gm.gains.min())])


def test_list2_refuses_unnormalised_data():
    op = _gain_map(_area())
    frame = Frame(np.ones((4, 4), np.float32), Encoding.CFA, sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"),
                                                                                white_level_dn=np.full(1, 4095.0)),
                  opcodes=(op,))
    with pytest.raises(StageError, match="normalize"):
        dng_opcodes_linear(frame)


def test_vignette_in_list2_applies_radial_gain():
    op = FixVignetteRadial(list_index=2, opcode_id=3, k=(1.0, 0, 0, 0, 0), center=(0.5, 0.5))
    frame = Frame(np.ones((4, 4), np.float32), Encoding.CFA,
                  sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), white_level_dn=np.ones(1)), opcodes=(op,))
    out = dng_opcodes_linear(frame)
    # pixel (0, 0) centre at (0.5, 0.5), optical centre (2, 2), farthest corner at sqrt(8): r^2 = 4.5 / 8
    assert out.data[0, 0] == pytest.approx(1 + 4.5 / 8)
    assert out.data[1, 1] == pytest.approx(1 + 0.5 / 8)
    assert out.opcodes == ()


def test_unknown_opcodes_keep_the_develop_working_and_stay_listed():
    rng = np.random.default_rng(0)
    cfa = CfaPattern.from_string("GRBG")
    data = rng.uniform(64, 4000, (32, 48)).astype(np.float32)
    unknown = tuple(
        UnknownOpcode(list_index=i, opcode_id=99, optional=(i == 2), payload=b"\x00" * 4) for i in (1, 2, 3)
    )
    gm = _gain_map(_area(), list_index=2)
    bad_pitch = _gain_map(_area(row_pitch=0), list_index=2)
    frame = Frame(data, Encoding.CFA, clip_level=np.full(3, 4095, np.float32),
                  sensor=SensorInfo(cfa=cfa, black_level_dn=np.full((1, 1, 1), 64.0), white_level_dn=np.full(1, 4095.0)),
                  opcodes=unknown[:2] + (gm, bad_pitch) + unknown[2:])
    out = develop(frame, Recipe.builtin("default"))
    assert out.data.shape == (32, 48, 3) and np.isfinite(out.data).all()
    assert out.opcodes == unknown[:2] + (bad_pitch,) + unknown[2:]
    applied = [r.stage for r in out.history if not r.skipped]
    assert {"dng_opcodes_raw", "dng_opcodes_linear", "dng_opcodes_rgb"} <= set(applied)


def test_simulator_gain_map_undoes_its_vignetting():
    """The simulator writes its lens fall-off as an OpcodeList2 GainMap (its own code):
    applying it must cancel the analytic vignetting up to the grid's interpolation error."""
    from rawlab.sim import capture, load_camera, optics, scene

    camera = load_camera("phone-small")
    frame = capture(scene.flat_field((96, 64)), camera, noise=False, gainmap_opcode=True).frame
    stages = load_stages()
    normalized = stages["normalize"](stages["dng_opcodes_raw"](frame))
    corrected = stages["dng_opcodes_linear"](normalized)
    assert corrected.opcodes == ()
    residual = corrected.data * optics.vignetting_gain(camera, *normalized.data.shape) / normalized.data
    # 17-point grid over 64 px; the simulator samples its grid at pixel index round(rel * H),
    # half a pixel from where DNG 1.6 (and the DNG SDK) put grid point rel: ~1 % on this steep fall-off
    assert np.abs(residual - 1).max() < 0.04
    assert np.abs(residual - 1).mean() < 0.015


def test_applied_shading_is_recorded_for_the_look_when_the_frame_can_hold_it():
    if "applied_opcodes" not in Frame.__dataclass_fields__:
        pytest.skip("Frame has no applied_opcodes field yet")
    gm = _gain_map(_area())
    frame = Frame(np.ones((4, 6), np.float32), Encoding.CFA,
                  sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), white_level_dn=np.ones(1)), opcodes=(gm,))
    out = dng_opcodes_linear(frame)
    assert out.opcodes == () and out.applied_opcodes == (gm,)
