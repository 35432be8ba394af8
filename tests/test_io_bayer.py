"""Headerless dumps (``rawlab.io.bayer.read_bayer``).

The real files are checked against what their sources say about them
(manifest notes: value ranges, the Infinite-ISP white-balance gains, the 8-bit
frame being the 10-bit one shifted by 2, ...), not only that they decode.
Packings are checked against packers written here from the MIPI CSI-2 byte
layout and the manifest's formulas.
"""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.core.frame import Encoding
from rawlab.core.metadata import CfaPattern
from rawlab.errors import CorruptFile, InvalidParams, LimitExceeded, UnsupportedFile
from rawlab.io.bayer import read_bayer

P9 = dict(width=1920, height=1080, cfa="RGGB")
ISP = dict(width=2592, height=1536, cfa="GRBG", bits=8)

#: Manifest section 2, verbatim: path -> read_bayer arguments.
SECTION2 = {
    "raw/nikon_dslr_crop/DSC_1339_768x512_rggb.raw": dict(
        width=768, height=512, cfa="RGGB", bits=14, black=600, white=15520
    ),
    "charts/fast_openisp_dr_chart/test.RAW": dict(width=1920, height=1080, cfa="RGGB", bits=10),
    "raw/infinite_isp_sensor/Indoor1_2592x1536_8bit_GRBG.raw": ISP,
    "raw/infinite_isp_sensor/Outdoor1_2592x1536_8bit_GRBG.raw": ISP,
    "raw/infinite_isp_sensor/Outdoor2_2592x1536_8bit_GRBG.raw": ISP,
    "raw/infinite_isp_sensor/Outdoor3_2592x1536_8bit_GRBG.raw": ISP,
    "raw/infinite_isp_sensor/Outdoor4_2592x1536_8bit_GRBG.raw": ISP,
    "raw/infinite_isp_sensor/BlackImage_1920x1080_12bits_BGGR.raw": dict(
        width=1920, height=1080, cfa="BGGR", bits=12
    ),
    "raw/halide_camera_pipe/bayer_small.png": dict(
        width=256, height=344, cfa="GRBG", bits=10, packing="png16"
    ),
    "raw/huawei_p9/RAW_00153.raw10": dict(P9, bits=10, packing="p9_raw10"),
    "burst/huawei_p9_pair_box/RAW_00016.raw10": dict(P9, bits=10, packing="p9_raw10"),
    "burst/huawei_p9_pair_box/RAW_00017.raw8": dict(P9, bits=8),
    "burst/huawei_p9_pair_keyboard/RAW_00018.raw12": dict(P9, bits=10, packing="p9_raw12"),
    "burst/huawei_p9_pair_keyboard/RAW_00019.raw16": dict(P9, bits=10),
    "charts/infinite_isp_colorchecker/ColorCheckerRAW_1920x1080_12bit_BGGR.raw": dict(
        width=1920, height=1080, cfa="BGGR", bits=12
    ),
}


def _read(shared_data, relpath):
    return read_bayer(shared_data / relpath, **SECTION2[relpath])


def _channel_means(frame) -> np.ndarray:
    masks = frame.sensor.cfa.masks(frame.height, frame.width)
    return np.array([frame.data[m].mean() for m in masks])


def _cell_means(frame) -> np.ndarray:
    d = frame.data
    return np.array([[d[y::2, x::2].mean() for x in range(2)] for y in range(2)])


def _same_colour_neighbour_correlation(data: np.ndarray) -> float:
    return float(np.corrcoef(data[:, 0:-2:2].ravel(), data[:, 2::2].ravel())[0, 1])


# ------------------------------------------------------------------ real files
@pytest.mark.parametrize("relpath", sorted(SECTION2))
def test_every_headerless_file_decodes(shared_data, relpath):
    args = SECTION2[relpath]
    path = shared_data / relpath
    before = path.read_bytes()
    frame = read_bayer(path, **args)
    assert path.read_bytes() == before
    assert frame.encoding is Encoding.CFA
    assert frame.data.shape == (args["height"], args["width"])
    assert frame.data.dtype == np.float32 and frame.data.flags.c_contiguous
    assert frame.sensor.cfa.name == args["cfa"]
    assert frame.sensor.bits_per_sample == args["bits"]
    white = args.get("white", 2 ** args["bits"] - 1)
    assert frame.sensor.white_level_dn.tolist() == [white]
    np.testing.assert_array_equal(frame.clip_level, [white] * 3)
    assert frame.data.min() >= 0
    assert not frame.color.has_matrices and frame.color.as_shot_neutral is None
    assert frame.capture.make is None


def test_nikon_crop_levels(shared_data):
    """Black 600 / white 15520 (the source pipeline's values): nothing below black."""
    frame = _read(shared_data, "raw/nikon_dslr_crop/DSC_1339_768x512_rggb.raw")
    assert 600 <= frame.data.min() < 700
    assert frame.data.max() <= 16383
    np.testing.assert_array_equal(frame.sensor.black_level_dn.ravel(), [600.0])


@pytest.mark.parametrize("name", ["Indoor1", "Outdoor1", "Outdoor2", "Outdoor3", "Outdoor4"])
def test_infinite_isp_channel_order(shared_data, name):
    """AWB gains R 1.449 / B 3.242 mean raw green > red > blue."""
    frame = _read(shared_data, f"raw/infinite_isp_sensor/{name}_2592x1536_8bit_GRBG.raw")
    r, g, b = _channel_means(frame)
    assert g > r > b
    assert 10 <= frame.data.min() <= 15  # black 50 on the 10-bit scale = 12.5 here


def test_infinite_isp_indoor_matches_the_repo_white_balance(shared_data):
    """After the black level (50 / 4), green/red and green/blue are the
    repository's AWB gains 1.449 and 3.242 (within 3 %) -- only true with the
    right CFA phase (GRBG)."""
    frame = _read(shared_data, "raw/infinite_isp_sensor/Indoor1_2592x1536_8bit_GRBG.raw")
    r, g, b = _channel_means(frame) - 12.5
    assert g / r == pytest.approx(1.449, rel=0.03)
    assert g / b == pytest.approx(3.242, rel=0.03)


def test_black_frame(shared_data):
    frame = _read(shared_data, "raw/infinite_isp_sensor/BlackImage_1920x1080_12bits_BGGR.raw")
    p1, median, p99 = np.percentile(frame.data, [1, 50, 99])
    assert median <= 16  # near its (small) black level on a 4095 scale
    assert p99 - p1 <= 16  # tiny spread, apart from a few hot pixels
    assert np.mean(frame.data > 100) < 1e-3


def test_halide_png_phase(shared_data):
    """Greens at (0,0) and (1,1): the two green sites agree, red and blue do not."""
    frame = _read(shared_data, "raw/halide_camera_pipe/bayer_small.png")
    cells = _cell_means(frame)
    assert cells[0, 0] == pytest.approx(cells[1, 1], rel=0.02)
    assert abs(cells[0, 1] - cells[1, 0]) > 0.1 * cells[0, 0]
    assert cells[0, 0] > cells[0, 1] and cells[0, 0] > cells[1, 0]


def test_p9_raw10_value_range_and_packing(shared_data):
    """P9 RAW_00153 only reaches about 300 of 1023, and only the P9 packing
    gives a smooth image (MIPI RAW10 on the same bytes is noise)."""
    frame = _read(shared_data, "raw/huawei_p9/RAW_00153.raw10")
    assert 250 <= frame.data.max() <= 400
    assert _same_colour_neighbour_correlation(frame.data) > 0.95
    wrong = read_bayer(
        shared_data / "raw/huawei_p9/RAW_00153.raw10", **dict(P9, bits=10, packing="mipi_raw10")
    )
    assert _same_colour_neighbour_correlation(wrong.data) < 0.5


def test_p9_raw8_is_the_raw10_shifted_by_two(shared_data):
    """Frame 17 (8-bit = 10-bit >> 2) of the same scene as frame 16: times 4,
    plus the 1.5 DN lost on average by truncation, its CFA-cell means are within
    6 % of frame 16's (the frames differ by hand motion, not by scale)."""
    f16 = _read(shared_data, "burst/huawei_p9_pair_box/RAW_00016.raw10")
    f17 = _read(shared_data, "burst/huawei_p9_pair_box/RAW_00017.raw8")
    ratio = (4 * _cell_means(f17) + 1.5) / _cell_means(f16)
    np.testing.assert_allclose(ratio, 1.0, atol=0.06)
    assert 250 <= f16.data.max() <= 400 and 250 <= 4 * f17.data.max() <= 400


def test_p9_raw12_and_raw16_agree_in_scale(shared_data):
    """Frames 18 (p9_raw12) and 19 (raw16) of one scene both hold ~10-bit data."""
    f18 = _read(shared_data, "burst/huawei_p9_pair_keyboard/RAW_00018.raw12")
    f19 = _read(shared_data, "burst/huawei_p9_pair_keyboard/RAW_00019.raw16")
    assert 250 <= f18.data.max() <= 400 and 250 <= f19.data.max() <= 400
    assert f18.data.max() == pytest.approx(f19.data.max(), rel=0.1)
    ratio = _channel_means(f18) / _channel_means(f19)
    assert np.all((ratio > 0.67) & (ratio < 1.5))
    wrong = read_bayer(
        shared_data / "burst/huawei_p9_pair_keyboard/RAW_00018.raw12",
        **dict(P9, bits=12, packing="mipi_raw12"),
    )
    assert wrong.data.max() > 1023  # a MIPI reading leaves the 10-bit range


def test_ten_and_twelve_bit_charts_use_their_range(shared_data):
    chart10 = _read(shared_data, "charts/fast_openisp_dr_chart/test.RAW")
    assert 900 < chart10.data.max() <= 1023
    chart12 = _read(shared_data, "charts/infinite_isp_colorchecker/ColorCheckerRAW_1920x1080_12bit_BGGR.raw")
    assert 2048 < chart12.data.max() <= 4095


# -------------------------------------------------------- packings (synthetic)
def _pack_mipi_raw10(values: np.ndarray) -> bytes:
    v = values.reshape(-1, 4).astype(np.uint16)
    out = np.zeros((v.shape[0], 5), dtype=np.uint8)
    out[:, :4] = v >> 2
    out[:, 4] = (v[:, 0] & 3) | ((v[:, 1] & 3) << 2) | ((v[:, 2] & 3) << 4) | ((v[:, 3] & 3) << 6)
    return out.tobytes()


def _pack_mipi_raw12(values: np.ndarray) -> bytes:
    v = values.reshape(-1, 2).astype(np.uint16)
    out = np.zeros((v.shape[0], 3), dtype=np.uint8)
    out[:, :2] = v >> 4
    out[:, 2] = (v[:, 0] & 0xF) | ((v[:, 1] & 0xF) << 4)
    return out.tobytes()


def _pack_p9_raw10(values: np.ndarray) -> bytes:
    """Inverse of the manifest's formulas, field by field."""
    p = values.reshape(-1, 4).astype(np.uint16)
    out = np.zeros((p.shape[0], 5), dtype=np.uint16)
    out[:, 0] = p[:, 0] & 0xFF
    out[:, 1] = (((p[:, 0] >> 8) & 0x3) << 6) | (p[:, 1] & 0x3F)
    out[:, 2] = (((p[:, 1] >> 6) & 0xF) << 4) | (p[:, 2] & 0xF)
    out[:, 3] = (((p[:, 2] >> 4) & 0x3F) << 2) | (p[:, 3] & 0x3)
    out[:, 4] = p[:, 3] >> 2
    return out.astype(np.uint8).tobytes()


def _pack_p9_raw12(values: np.ndarray) -> bytes:
    """Manifest layout: b0 = p0 low byte, b1 = p0 high nibble << 4 | p1 low nibble, b2 = p1 >> 4."""
    v = values.reshape(-1, 2).astype(np.uint16)
    out = np.zeros((v.shape[0], 3), dtype=np.uint8)
    out[:, 0] = v[:, 0] & 0xFF
    out[:, 1] = ((v[:, 0] >> 8) << 4) | (v[:, 1] & 0xF)
    out[:, 2] = v[:, 1] >> 4
    return out.tobytes()


PACKERS = {
    "mipi_raw10": (_pack_mipi_raw10, 10),
    "mipi_raw12": (_pack_mipi_raw12, 12),
    "p9_raw10": (_pack_p9_raw10, 10),
    "p9_raw12": (_pack_p9_raw12, 12),
}


@pytest.mark.parametrize("packing", sorted(PACKERS))
@pytest.mark.parametrize("shape", [(6, 8), (3, 12), (1, 4)])
def test_packings_round_trip(tmp_path, packing, shape):
    pack, bits = PACKERS[packing]
    rng = np.random.default_rng(7)
    values = rng.integers(0, 2**bits, size=shape, dtype=np.uint16)
    values.flat[:2] = [0, 2**bits - 1]  # both extremes
    path = tmp_path / f"x.{packing}"
    path.write_bytes(pack(values))
    frame = read_bayer(path, width=shape[1], height=shape[0], cfa="BGGR", bits=bits, packing=packing)
    np.testing.assert_array_equal(frame.data, values.astype(np.float32))


def test_mipi_raw10_known_bytes(tmp_path):
    """Spec example: bytes 0x12 0x34 0x56 0x78 and low bits 0b11_10_01_00."""
    path = tmp_path / "k.raw10"
    path.write_bytes(bytes([0x12, 0x34, 0x56, 0x78, 0b11100100]))
    frame = read_bayer(path, width=4, height=1, cfa="RGGB", bits=10, packing="mipi_raw10")
    assert frame.data.ravel().tolist() == [0x12 << 2 | 0, 0x34 << 2 | 1, 0x56 << 2 | 2, 0x78 << 2 | 3]


@pytest.mark.parametrize(
    ("container", "dtype"), [("u1", np.uint8), ("u2le", "<u2"), ("u2be", ">u2")]
)
def test_plain_containers_and_offset(tmp_path, container, dtype):
    values = np.arange(5 * 7, dtype=np.uint16).reshape(5, 7) * 7
    path = tmp_path / "plain.raw"
    path.write_bytes(b"HEADER" + values.astype(dtype).tobytes())
    frame = read_bayer(path, width=7, height=5, cfa="GBRG", bits=8, container=container, offset=6)
    np.testing.assert_array_equal(frame.data, values.astype(np.float32))


@pytest.mark.parametrize("cfa", ["RGGB", "GRBG", "GBRG", "BGGR"])
def test_every_phase_and_per_cell_black(tmp_path, cfa):
    path = tmp_path / "p.raw"
    path.write_bytes(np.zeros((4, 6), dtype="<u2").tobytes())
    frame = read_bayer(path, width=6, height=4, cfa=cfa, bits=12, black=[64, 65, 66, 67])
    assert frame.sensor.cfa == CfaPattern.from_string(cfa)
    np.testing.assert_array_equal(frame.sensor.black_level_dn[:, :, 0], [[64, 65], [66, 67]])
    assert frame.sensor.white_level_dn.tolist() == [4095.0]


# --------------------------------------------------------------------- errors
def test_wrong_size_names_expected_and_actual_bytes(tmp_path):
    path = tmp_path / "short.raw"
    path.write_bytes(bytes(100))
    with pytest.raises(CorruptFile, match=r"file is 100 bytes, expected 128 bytes") as info:
        read_bayer(path, width=8, height=8, cfa="RGGB", bits=12)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
    with pytest.raises(CorruptFile, match=r"expected 90 bytes .* \+ 10 bytes of offset"):
        read_bayer(path, width=8, height=10, cfa="RGGB", bits=8, offset=10)
    with pytest.raises(CorruptFile, match=r"expected 80 bytes"):
        read_bayer(path, width=8, height=8, cfa="RGGB", bits=10, packing="mipi_raw10")


def test_absurd_dimensions_are_refused_before_reading(tmp_path):
    path = tmp_path / "tiny.raw"
    path.write_bytes(bytes(16))
    with pytest.raises(LimitExceeded):
        read_bayer(path, width=1_000_000, height=1_000_000, cfa="RGGB", bits=8)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(cfa="RGBX"),
        dict(bits=0),
        dict(bits=17),
        dict(packing="raw10"),
        dict(width=6, packing="mipi_raw10", bits=10),
        dict(bits=12, container="u1"),
        dict(container="u4"),
        dict(black=300.0, white=255.0),
        dict(black=[1, 2, 3]),
        dict(width=0),
        dict(width=8.0),
        dict(offset=-1),
        dict(packing="mipi_raw10", bits=12),
        dict(packing="mipi_raw10", bits=10, container="u2le"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs):
    path = tmp_path / "x.raw"
    path.write_bytes(bytes(8 * 8 * 2))
    args = dict(width=8, height=8, cfa="RGGB", bits=12) | kwargs
    with pytest.raises(InvalidParams) as info:
        read_bayer(path, **args)
    assert str(info.value).startswith(str(path))


def test_missing_file(tmp_path):
    with pytest.raises(UnsupportedFile, match="no such file"):
        read_bayer(tmp_path / "nope.raw", width=4, height=4, cfa="RGGB", bits=8)


def test_png_checks(tmp_path):
    import cv2

    mosaic = (np.arange(12 * 10, dtype=np.uint16).reshape(10, 12) * 9).astype(np.uint16)
    png = tmp_path / "m.png"
    cv2.imwrite(str(png), mosaic)
    frame = read_bayer(png, width=12, height=10, cfa="GRBG", bits=10, packing="png16")
    np.testing.assert_array_equal(frame.data, mosaic.astype(np.float32))
    with pytest.raises(CorruptFile, match="PNG is 12x10, expected 10x12"):
        read_bayer(png, width=10, height=12, cfa="GRBG", bits=10, packing="png16")
    rgb = tmp_path / "rgb.png"
    cv2.imwrite(str(rgb), np.zeros((10, 12, 3), dtype=np.uint8))
    with pytest.raises(UnsupportedFile, match="single-channel"):
        read_bayer(rgb, width=12, height=10, cfa="GRBG", bits=8, packing="png16")
    raw = tmp_path / "not.png"
    raw.write_bytes(bytes(240))
    with pytest.raises(CorruptFile, match="not a PNG"):
        read_bayer(raw, width=12, height=10, cfa="GRBG", bits=8, packing="png16")
