"""DNG writer: files read back bit-exact by LibRaw (rawpy), by rawlab's reader and
by tifffile (tags), pass ``exiftool -validate`` and convert with darktable-cli."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
from conftest import require_tool
import pytest
import rawpy
import tifffile

from rawlab.core.frame import Encoding, Frame, Primaries
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, LensInfo, SensorInfo
from rawlab.core.opcodes import (
    FixBadPixelsList,
    GainMap,
    MapPolynomial,
    OpcodeArea,
    UnknownOpcode,
    WarpRectilinear,
)
from rawlab.errors import InvalidParams, RawlabError, StageError
from rawlab.io.dng import read_dng
from rawlab.io.dng_write import write_dng
from rawlab.io.opcodes import serialize_opcode_list

PHASES = ["RGGB", "GRBG", "GBRG", "BGGR"]

CAPTURE = CaptureInfo(
    make="Acme",
    model="Lab One",
    unique_camera_model="Acme Lab One",
    iso=800,
    exposure_time_s=1 / 250,
    f_number=4.0,
    focal_length_mm=50.0,
    focal_length_35mm_mm=75.0,
    datetime_original="2024:05:06 07:08:09",
    orientation=1,
    artist="rawlab tests",
)
LENS = LensInfo(
    make="Acme",
    model="Zoom 24-70",
    focal_min_mm=24.0,
    focal_max_mm=70.0,
    f_number_min_at_min_focal=2.8,
    f_number_min_at_max_focal=4.0,
)
COLOR = ColorCalibration(
    M_XYZ_to_camera_1=[[0.9, -0.3, -0.05], [-0.45, 1.25, 0.21], [-0.07, 0.18, 0.63]],
    M_XYZ_to_camera_2=[[0.7125, -0.1534, -0.0753], [-0.3875, 1.1851, 0.2282], [-0.0685, 0.1583, 0.6123]],
    M_camera_calibration_1=np.diag([1.01, 1.0, 0.99]),
    M_camera_calibration_2=np.diag([1.02, 1.0, 0.98]),
    M_forward_1=[[0.6, 0.3, 0.0643], [0.25, 0.72, 0.03], [0.02, 0.05, 0.7549]],
    M_forward_2=[[0.64, 0.27, 0.0543], [0.28, 0.7, 0.02], [0.01, 0.07, 0.7449]],
    illuminant_1=17,
    illuminant_2=21,
    analog_balance=[1.0, 1.0, 1.0],
    as_shot_neutral=[0.4512, 1.0, 0.6623],
    baseline_exposure_ev=-0.35,
)


def _bayer_frame(phase: str, bits: int, shape: tuple[int, int] = (66, 98), seed: int = 0, **sensor) -> Frame:
    rng = np.random.default_rng(seed)
    white = 2**bits - 1
    data = rng.integers(0, white + 1, shape).astype(np.float32)
    sensor.setdefault("black_level_dn", [[[64.0], [65.0]], [[66.0], [67.0]]])
    info = SensorInfo(
        cfa=CfaPattern.from_string(phase), bits_per_sample=bits, white_level_dn=[white], **sensor
    )
    return Frame(data=data, encoding=Encoding.CFA, sensor=info, color=COLOR, capture=CAPTURE, lens=LENS)


def _libraw_index_map(raw: rawpy.RawPy) -> np.ndarray:
    """LibRaw's colour of every visible pixel, with its second green (3) mapped to 1."""
    colors = raw.raw_colors_visible.copy()
    colors[colors == 3] = 1
    return colors


def _exiftool_validate(path: Path) -> list[str]:
    out = subprocess.run(
        [require_tool("exiftool", "libimage-exiftool-perl"), "-validate", "-warning", "-error", "-a", "-j", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(out.stdout)[0]
    problems = []
    for key, value in info.items():
        if key.startswith(("Warning", "Error")):
            problems.append(f"{key}: {value}")
    assert info.get("Validate") == "OK" or problems, info.get("Validate")
    if info.get("Validate") != "OK":
        problems.append(f"Validate: {info.get('Validate')}")
    return problems


# --- bit-exact round trips ------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "ljpeg"])
@pytest.mark.parametrize("bits", [10, 12, 14, 16])
@pytest.mark.parametrize("phase", PHASES)
def test_bayer_round_trip_libraw_and_rawlab(tmp_path, phase, bits, compression):
    frame = _bayer_frame(phase, bits, seed=bits)
    path = write_dng(frame, tmp_path / "x.dng", compression=compression)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, frame.data.astype(np.uint16))
        assert raw.white_level == 2**bits - 1
        np.testing.assert_array_equal(
            _libraw_index_map(raw), frame.sensor.cfa.color_index_map(*frame.data.shape)
        )
        black = frame.sensor.black_level_dn[:, :, 0]
        per_channel = raw.black_level_per_channel
        for i in range(2):
            for j in range(2):
                assert per_channel[raw.raw_pattern[i, j]] == black[i, j]
        np.testing.assert_allclose(
            raw.camera_whitebalance[:3], 1.0 / np.asarray(COLOR.as_shot_neutral), rtol=1e-6
        )
    back = read_dng(path)
    assert back.encoding is Encoding.CFA
    np.testing.assert_array_equal(back.data, frame.data)
    assert back.sensor.cfa == frame.sensor.cfa
    np.testing.assert_array_equal(back.sensor.black_level_dn, frame.sensor.black_level_dn)
    np.testing.assert_array_equal(back.sensor.white_level_dn, [2**bits - 1])


@pytest.mark.parametrize("shape", [(1, 1), (2, 2), (3, 5), (257, 255), (255, 513)])
@pytest.mark.parametrize("compression", ["none", "ljpeg"])
def test_odd_and_tiny_sizes(tmp_path, shape, compression):
    frame = _bayer_frame("GBRG", 12, shape=shape, seed=shape[0])
    path = write_dng(frame, tmp_path / "odd.dng", compression=compression)
    np.testing.assert_array_equal(read_dng(path).data, frame.data)
    if min(shape) >= 22:  # LibRaw refuses images narrower than 22 pixels
        with rawpy.imread(str(path)) as raw:
            np.testing.assert_array_equal(raw.raw_image_visible, frame.data.astype(np.uint16))


def test_active_area_crop_deltas_and_table(tmp_path):
    rng = np.random.default_rng(3)
    height, width, (top, left, bottom, right) = 70, 100, (2, 4, 68, 96)
    table = np.round(np.linspace(0, 1, 1024) ** 1.5 * 16383)
    frame = Frame(
        data=rng.integers(0, 1024, (height, width)).astype(np.float32),
        encoding=Encoding.CFA,
        sensor=SensorInfo(
            cfa=CfaPattern.from_string("GRBG"),
            bits_per_sample=10,
            black_level_dn=[[[100.5], [101.0]], [[102.0], [103.25]]],
            black_level_delta_h_dn=rng.normal(0, 2, right - left),
            black_level_delta_v_dn=rng.normal(0, 2, bottom - top),
            white_level_dn=[16383],
            linearization_table=table,
            active_area=(top, left, bottom, right),
            crop_px=(3, 5, 60, 80),
            noise_profile=((2.5e-5, 1.1e-7), (2.0e-5, 1.0e-7), (3.0e-5, 1.2e-7)),
        ),
        color=COLOR,
        capture=CAPTURE,
    )
    path = write_dng(frame, tmp_path / "aa.dng")
    back = read_dng(path)
    np.testing.assert_array_equal(back.data, frame.data)
    s, b = frame.sensor, back.sensor
    assert b.active_area == s.active_area and b.crop_px == s.crop_px and b.cfa == s.cfa
    np.testing.assert_array_equal(b.black_level_dn, s.black_level_dn)
    np.testing.assert_array_equal(b.linearization_table, table)
    np.testing.assert_allclose(b.black_level_delta_h_dn, s.black_level_delta_h_dn, atol=1e-5)
    np.testing.assert_allclose(b.black_level_delta_v_dn, s.black_level_delta_v_dn, atol=1e-5)
    assert b.noise_profile == s.noise_profile
    with rawpy.imread(str(path)) as raw:
        assert (raw.sizes.top_margin, raw.sizes.left_margin) == (top, left)
        assert raw.raw_image_visible.shape == (bottom - top, right - left)
        # LibRaw applies the LinearizationTable while loading
        np.testing.assert_array_equal(raw.raw_image, table[frame.data.astype(np.intp)])
        np.testing.assert_array_equal(
            _libraw_index_map(raw), s.cfa.color_index_map(bottom - top, right - left)
        )
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert tags["DefaultCropOrigin"].value == (5, 3) and tags["DefaultCropSize"].value == (80, 60)
        assert tags["ActiveArea"].value == (top, left, bottom, right)


def test_color_metadata_round_trip(tmp_path):
    frame = _bayer_frame("RGGB", 14)
    path = write_dng(frame, tmp_path / "color.dng")
    c = read_dng(path).color
    for name in (
        "M_XYZ_to_camera_1",
        "M_XYZ_to_camera_2",
        "M_camera_calibration_1",
        "M_camera_calibration_2",
        "M_forward_1",
        "M_forward_2",
        "analog_balance",
        "as_shot_neutral",
    ):
        np.testing.assert_allclose(getattr(c, name), getattr(COLOR, name), atol=1e-9, err_msg=name)
    assert (c.illuminant_1, c.illuminant_2) == (17, 21)
    assert c.baseline_exposure_ev == pytest.approx(-0.35, abs=1e-9)
    # independently of rawlab's reader: the SRATIONAL values tifffile decodes
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert tags["ColorMatrix1"].dtype == 10 and tags["ForwardMatrix1"].dtype == 10  # SRATIONAL
        values = np.asarray(tags["ColorMatrix2"].value, dtype=np.float64).reshape(-1, 2)
        np.testing.assert_allclose(values[:, 0] / values[:, 1], np.ravel(COLOR.M_XYZ_to_camera_2), atol=1e-12)
        noise = tags.get(51041)
        assert noise is None  # no NoiseProfile unless the sensor has one
    with rawpy.imread(str(path)) as raw:
        # LibRaw derives camera -> sRGB from the D65 ColorMatrix (ColorMatrix2 here):
        # inverse of (ColorMatrix @ M_sRGB_to_XYZ) with rows normalised to 1 (dcraw's cam_xyz_coeff)
        M_sRGB_to_XYZ = np.array(
            [
                [0.4124564, 0.3575761, 0.1804375],
                [0.2126729, 0.7151522, 0.0721750],
                [0.0193339, 0.1191920, 0.9503041],
            ]
        )
        cam_rgb = np.asarray(COLOR.M_XYZ_to_camera_2) @ M_sRGB_to_XYZ
        cam_rgb /= cam_rgb.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(raw.color_matrix[:, :3], np.linalg.inv(cam_rgb), atol=1e-5)


def test_as_shot_white_xy_when_no_neutral(tmp_path):
    color = ColorCalibration(M_XYZ_to_camera_1=np.eye(3), illuminant_1=21, as_shot_white_xy=(0.3457, 0.3585))
    frame = _bayer_frame("RGGB", 12).replace(color=color)
    c = read_dng(write_dng(frame, tmp_path / "xy.dng")).color
    assert c.as_shot_neutral is None
    assert c.as_shot_white_xy == pytest.approx((0.3457, 0.3585), abs=1e-9)


def _opcodes(height: int, width: int) -> tuple:
    area = OpcodeArea(top=0, left=0, bottom=height, right=width, planes=1, row_pitch=2, col_pitch=2)
    return (
        UnknownOpcode(list_index=1, opcode_id=99, optional=True, payload=b"\x01\x02\x03\x04"),
        MapPolynomial(list_index=2, opcode_id=8, area=area, coefficients=(0.0, 1.02, -0.01)),
        GainMap(
            list_index=2,
            opcode_id=9,
            area=area,
            points_v=3,
            points_h=4,
            spacing_v=0.5,
            spacing_h=1 / 3,
            origin_v=0.0,
            origin_h=0.0,
            map_planes=1,
            gains=np.linspace(1.0, 1.5, 12, dtype=np.float32).reshape(3, 4, 1),
        ),
        FixBadPixelsList(
            list_index=2, opcode_id=5, bayer_phase=1, bad_points=((3, 4), (10, 11)), bad_rects=()
        ),
        WarpRectilinear(
            list_index=3,
            opcode_id=1,
            coefficients=((1.0, -0.02, 0.001, 0.0, 0.0001, -0.0002),),
            center=(0.5, 0.5),
        ),
    )


def test_opcode_lists_round_trip(tmp_path):
    frame = _bayer_frame("BGGR", 12)
    opcodes = _opcodes(*frame.data.shape)
    path = write_dng(frame.replace(opcodes=opcodes), tmp_path / "ops.dng", compression="ljpeg")
    back = read_dng(path)
    for index in (1, 2, 3):
        expected = [op for op in opcodes if op.list_index == index]
        got = [op for op in back.opcodes if op.list_index == index]
        assert [type(op) for op in got] == [type(op) for op in expected]
        assert serialize_opcode_list(got) == serialize_opcode_list(expected)
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert bytes(tags[51009].value) == serialize_opcode_list([op for op in opcodes if op.list_index == 2])
        assert bytes(tags["DNGBackwardVersion"].value) == bytes((1, 3, 0, 0))  # opcodes need a DNG 1.3 reader
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, frame.data.astype(np.uint16))


@pytest.mark.parametrize("compression", ["none", "ljpeg"])
def test_linear_raw_round_trip(tmp_path, compression):
    rng = np.random.default_rng(5)
    data = rng.integers(0, 16384, (90, 300, 3)).astype(np.float32)
    frame = Frame(
        data=data,
        encoding=Encoding.CAMERA_RGB,
        sensor=SensorInfo(black_level_dn=[[[10.0, 11.0, 12.0]]], white_level_dn=[16383, 16000, 15000]),
        color=COLOR,
        capture=CAPTURE,
    )
    path = write_dng(frame, tmp_path / "linear.dng", compression=compression)
    back = read_dng(path)
    assert back.encoding is Encoding.CAMERA_RGB
    np.testing.assert_array_equal(back.data, data)
    np.testing.assert_array_equal(back.sensor.black_level_dn.ravel(), [10, 11, 12])
    np.testing.assert_array_equal(back.sensor.white_level_dn, [16383, 16000, 15000])
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image[..., :3], data.astype(np.uint16))
    with tifffile.TiffFile(path) as tif:
        assert tif.pages[0].tags["PhotometricInterpretation"].value == 34892


@pytest.mark.parametrize("bits", [12, 16])
def test_normalised_frame_is_scaled_to_bits(tmp_path, bits):
    rng = np.random.default_rng(7)
    values = rng.uniform(0.0, 1.0, (40, 60)).astype(np.float32)  # outside 0..1: the pedestal test below
    values[0, :4] = [np.nan, 0.5, 1.0, 0.0]
    frame = Frame(
        data=values,
        encoding=Encoding.CFA,
        sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), black_level_dn=0.0, white_level_dn=[1.0]),
    )
    path = write_dng(frame, tmp_path / "norm.dng", bits=bits)
    back = read_dng(path)
    full = 2**bits - 1
    assert back.sensor.white_level_dn[0] == full and np.all(back.sensor.black_level_dn == 0)
    scaled = np.clip(np.nan_to_num(values.astype(np.float64), nan=0.0), 0, 1) * full
    expected = np.floor(scaled + 0.5)
    near_tie = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-2  # float32 (eps 0.004 at 4e4) may round these either way
    np.testing.assert_array_equal(back.data[~near_tie], expected[~near_tie])
    assert np.abs(back.data - expected).max() <= 1
    assert back.data[0, 1] == np.floor(0.5 * full + 0.5) and back.data[0, 2] == full and back.data[0, 0] == 0


def test_dn_values_are_rounded_and_limited(tmp_path):
    frame = _bayer_frame("RGGB", 16, shape=(4, 4))
    data = frame.data.copy()
    data[0, :4] = [-5.0, 70000.0, 12.4, np.nan]
    path = write_dng(frame.replace(data=data), tmp_path / "limits.dng")
    np.testing.assert_array_equal(read_dng(path).data[0, :4], [0.0, 65535.0, 12.0, 0.0])


def test_xtrans_pattern(tmp_path):
    xtrans = CfaPattern(
        (
            (1, 1, 0, 1, 1, 2),
            (1, 1, 2, 1, 1, 0),
            (2, 0, 1, 0, 2, 1),
            (1, 1, 2, 1, 1, 0),
            (1, 1, 0, 1, 1, 2),
            (0, 2, 1, 2, 0, 1),
        )
    )
    rng = np.random.default_rng(11)
    frame = Frame(
        data=rng.integers(0, 16384, (60, 90)).astype(np.float32),
        encoding=Encoding.CFA,
        sensor=SensorInfo(cfa=xtrans, white_level_dn=[16383]),
        color=COLOR,
    )
    path = write_dng(frame, tmp_path / "xtrans.dng")
    back = read_dng(path)
    assert back.sensor.cfa == xtrans
    np.testing.assert_array_equal(back.data, frame.data)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, frame.data.astype(np.uint16))


def test_real_dng_rewritten_bit_exact(tmp_path, shared_data):
    source = shared_data / "charts/canon_eos_550d_ml_colorchecker/colorchart.dng"
    frame = read_dng(source)
    path = write_dng(frame, tmp_path / "rewritten.dng", compression="ljpeg")
    with rawpy.imread(str(source)) as a, rawpy.imread(str(path)) as b:
        np.testing.assert_array_equal(a.raw_image_visible, b.raw_image_visible)
        np.testing.assert_array_equal(a.raw_pattern, b.raw_pattern)
        assert a.black_level_per_channel == b.black_level_per_channel
        assert a.white_level == b.white_level
    assert os.path.getsize(path) < os.path.getsize(source)  # lossless JPEG is smaller than the original


# --- layout, EXIF, validators --------------------------------------------------------


def test_preview_layout(tmp_path):
    frame = _bayer_frame("GRBG", 14, shape=(600, 840))
    path = write_dng(frame, tmp_path / "preview.dng", preview=True, compression="ljpeg")
    with tifffile.TiffFile(path) as tif:
        ifd0 = tif.pages[0]
        assert ifd0.tags["NewSubfileType"].value == 1
        assert ifd0.photometric == 2 and ifd0.dtype == np.uint8 and ifd0.shape == (183, 256, 3)
        assert ifd0.tags["SubIFDs"].dtype == 4  # LONG
        assert "DNGVersion" in ifd0.tags and "ColorMatrix1" in ifd0.tags and "CFAPattern" not in ifd0.tags
        raw_ifd = ifd0.pages[0]
        assert raw_ifd.tags["NewSubfileType"].value == 0
        assert raw_ifd.tags["PhotometricInterpretation"].value == 32803
        assert "CFAPattern" in raw_ifd.tags and "DNGVersion" not in raw_ifd.tags
        thumbnail = ifd0.asarray()
    assert 10 < thumbnail.mean() < 245
    np.testing.assert_array_equal(read_dng(path).data, frame.data)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, frame.data.astype(np.uint16))


def test_given_preview_is_stored(tmp_path):
    frame = _bayer_frame("RGGB", 12)
    picture = np.random.default_rng(2).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    path = write_dng(frame, tmp_path / "given.dng", preview=picture)
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.pages[0].asarray(), picture)
    with pytest.raises(InvalidParams):
        write_dng(frame, tmp_path / "bad.dng", preview=np.zeros((4, 4), np.uint8))


def test_exif_ifd(tmp_path):
    frame = _bayer_frame("RGGB", 12).replace(capture=dataclasses.replace(CAPTURE, orientation=6))
    path = write_dng(frame, tmp_path / "exif.dng")
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        assert tags["Make"].value == "Acme" and tags["Model"].value == "Lab One"
        assert tags["Orientation"].value == 6 and tags["Artist"].value == "rawlab tests"
        assert tags["UniqueCameraModel"].value == "Acme Lab One"
        exif = tags["ExifTag"].value
    assert exif["ExposureTime"] == (1, 250)
    assert exif["FNumber"] == (4, 1)
    assert exif["ISOSpeedRatings"] == 800
    assert exif["FocalLength"] == (50, 1)
    assert exif["FocalLengthIn35mmFilm"] == 75
    assert exif["DateTimeOriginal"] == "2024:05:06 07:08:09"
    assert exif["LensMake"] == "Acme" and exif["LensModel"] == "Zoom 24-70"
    assert exif["LensSpecification"] == (24, 1, 70, 1, 14, 5, 4, 1)
    back = read_dng(path)
    assert back.capture.orientation == 6 and back.capture.iso == 800 and back.lens.model == "Zoom 24-70"


def test_source_exif_tags_are_kept(tmp_path):
    from PIL import Image

    source = Image.Exif()
    source[271] = "Other"
    source.get_ifd(0x8769)[37380] = 0.5  # ExposureBiasValue, not in CaptureInfo
    source.get_ifd(0x8769)[37500] = b"MAKERNOTE" * 10  # dropped: its offsets cannot move
    frame = _bayer_frame("RGGB", 12).replace(exif=source.tobytes())
    with tifffile.TiffFile(write_dng(frame, tmp_path / "kept.dng")) as tif:
        tags = tif.pages[0].tags
        exif = tags["ExifTag"].value
        assert tags["Make"].value == "Acme"  # capture wins over the blob
    assert exif["ExposureBiasValue"] in ((1, 2), 0.5) and exif["ISOSpeedRatings"] == 800
    assert "MakerNote" not in exif


@pytest.mark.parametrize(
    ("kind", "compression", "preview"),
    [
        ("bayer", "none", False),
        ("bayer", "ljpeg", True),
        ("bayer+opcodes", "ljpeg", False),
        ("linear", "none", True),
    ],
)
def test_exiftool_validate(tmp_path, kind, compression, preview):
    if kind == "linear":
        frame = Frame(
            data=np.random.default_rng(1).integers(0, 4096, (50, 80, 3)).astype(np.float32),
            encoding=Encoding.CAMERA_RGB,
            sensor=SensorInfo(white_level_dn=[4095]),
            color=COLOR,
            capture=CAPTURE,
            lens=LENS,
        )
    else:
        frame = _bayer_frame(
            "RGGB", 14, active_area=(2, 2, 64, 96), crop_px=(1, 1, 60, 90), noise_profile=((1e-5, 1e-7),) * 3
        )
        if kind == "bayer+opcodes":
            frame = frame.replace(opcodes=_opcodes(62, 94))
    path = write_dng(frame, tmp_path / "v.dng", compression=compression, preview=preview)
    assert _exiftool_validate(path) == []


@pytest.mark.slow
def test_darktable_converts(tmp_path):
    frame = _bayer_frame("GRBG", 12, shape=(300, 400), crop_px=(4, 4, 290, 390), black_level_dn=64.0)
    source = write_dng(frame, tmp_path / "dt.dng", compression="ljpeg", preview=True)
    out = tmp_path / "dt.jpg"
    config = tmp_path / "dtconf"
    config.mkdir()
    result = subprocess.run(
        [require_tool("darktable-cli", "darktable"), str(source), str(out), "--core", "--configdir", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0 and out.is_file(), result.stdout[-2000:] + result.stderr[-2000:]
    from PIL import Image

    with Image.open(out) as image:
        assert image.format == "JPEG" and abs(image.size[0] - 390) <= 4 and abs(image.size[1] - 290) <= 4


# --- errors and atomicity ---------------------------------------------------------------


def test_refuses_rgb_frame(tmp_path):
    frame = Frame(data=np.zeros((4, 4, 3), np.float32), encoding=Encoding.RGB, primaries=Primaries.SRGB)
    with pytest.raises(StageError) as info:
        write_dng(frame, tmp_path / "rgb.dng")
    assert str(info.value).startswith(str(tmp_path / "rgb.dng"))
    cfa_without_pattern = Frame(data=np.zeros((4, 4), np.float32), encoding=Encoding.CFA)
    with pytest.raises(StageError):
        write_dng(cfa_without_pattern, tmp_path / "nocfa.dng")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("kwargs", "match"), [({"compression": "zip"}, "compression"), ({"bits": 7}, "bits")]
)
def test_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(InvalidParams, match=match):
        write_dng(_bayer_frame("RGGB", 12), tmp_path / "a.dng", **kwargs)


def test_unstorable_metadata(tmp_path):
    color = ColorCalibration(M_XYZ_to_camera_1=[[np.nan, 0, 0], [0, 1, 0], [0, 0, 1]])
    with pytest.raises(InvalidParams, match="DNG"):
        write_dng(_bayer_frame("RGGB", 12).replace(color=color), tmp_path / "nan.dng")
    sensor = SensorInfo(
        cfa=CfaPattern.from_string("RGGB"), white_level_dn=[4095], black_level_delta_h_dn=[1.0, 2.0]
    )
    with pytest.raises(InvalidParams, match="BlackLevelDeltaH"):
        write_dng(_bayer_frame("RGGB", 12).replace(sensor=sensor), tmp_path / "delta.dng")
    assert not list(tmp_path.iterdir())


def test_missing_folder(tmp_path):
    with pytest.raises(RawlabError) as info:
        write_dng(_bayer_frame("RGGB", 12), tmp_path / "nope" / "a.dng")
    assert "nope" in str(info.value) and "\n" not in str(info.value)


def test_failure_mid_write_leaves_old_file(tmp_path, monkeypatch):
    import rawlab.io.dng_write as module

    target = tmp_path / "keep.dng"
    target.write_bytes(b"old contents")

    def broken(tiff, stored, *args, **kwargs):
        tiff.write(np.zeros((16, 16), np.uint16), metadata=None)  # some bytes reach the temporary file
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(module, "_write_raw", broken)
    with pytest.raises(RawlabError, match="No space left"):
        write_dng(_bayer_frame("RGGB", 12), target)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.dng"]


def test_no_warnings_from_tifffile(tmp_path, caplog):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_dng(_bayer_frame("RGGB", 12), tmp_path / "quiet.dng", preview=True)
    assert not [r for r in caplog.records if r.name == "tifffile"]


@pytest.mark.slow
def test_builtin_sample_validates_and_darktable_develops_it(tmp_path):
    """The DNG that ``rawlab sample`` (and ``make demo``) writes: exiftool finds no
    problem, LibRaw reads it bit-exact, and darktable-cli develops it."""
    from rawlab.cli import main

    path = tmp_path / "sample.dng"
    assert main(["sample", "-o", str(path)]) == 0
    assert _exiftool_validate(path) == []
    ours = read_dng(path)
    with rawpy.imread(str(path)) as raw:
        np.testing.assert_array_equal(raw.raw_image_visible, ours.data.astype(np.uint16))
    out = tmp_path / "sample.jpg"
    config = tmp_path / "dtconf"
    config.mkdir()
    result = subprocess.run(
        [require_tool("darktable-cli", "darktable"), str(path), str(out), "--core", "--configdir", str(config)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0 and out.is_file(), result.stdout[-2000:] + result.stderr[-2000:]


def test_normalised_values_below_black_and_above_white_survive(tmp_path):
    """A normalised frame with noise below black (a burst merge) and values above
    white is stored with a pedestal, not clipped: it reads back within one
    quantisation step, in rawlab and with the same levels in LibRaw."""
    from rawlab.sensor.normalize import NormalizeParams, normalize

    rng = np.random.default_rng(2)
    data = (rng.normal(0.0, 0.02, (64, 96)) + np.linspace(-0.05, 1.3, 96)[None, :]).astype(np.float32)
    frame = Frame(
        data=data,
        encoding=Encoding.CFA,
        sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), white_level_dn=[1.0], black_level_dn=0.0),
        color=COLOR,
        capture=CAPTURE,
    )
    path = write_dng(frame, tmp_path / "neg.dng")
    read_back = read_dng(path)
    back = normalize(read_back, NormalizeParams()).data
    step = 1.0 / (float(read_back.sensor.white_level_dn[0]) - float(read_back.sensor.black_level_dn.ravel()[0]))
    assert (data < 0).mean() > 0.01 and data.max() > 1.0
    assert np.abs(back - data).max() <= 0.51 * step
    with rawpy.imread(str(path)) as raw:
        assert raw.black_level_per_channel[0] == int(read_back.sensor.black_level_dn.ravel()[0])
        assert raw.white_level == int(read_back.sensor.white_level_dn[0])
