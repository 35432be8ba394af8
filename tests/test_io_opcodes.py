"""DNG opcode lists: parse, serialise, round trip, malformed input (DNG 1.6 chapter 7)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import shutil
import struct
import subprocess

import numpy as np
import pytest

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
    WarpFisheye,
    WarpRectilinear,
)
from rawlab.errors import CorruptFile
from rawlab.io.opcodes import parse_opcode_list, serialize_opcode_list

SHARED_DNGS = [
    "raw/canon_eos_6d/canon_eos_6d_lossy.dng",
    "raw/lg_g4_h815/skia_sample_1mp.dng",
    "charts/lg_g4_lab_scene/lg_g4_iso_800.dng",
    "charts/canon_eos_550d_ml_colorchecker/colorchart.dng",
    "raw/huawei_p9/RAW_00242.dng",
    "raw/apple_iphone12pro_proraw_header/IMG_1361.dng",
]


def _exiftool() -> str:
    exe = shutil.which("exiftool")
    if exe is None:
        if os.environ.get("CI"):
            pytest.fail("exiftool is needed for the reference checks")
        pytest.skip("exiftool not installed")
    return exe


def assert_same_opcode(a, b) -> None:
    """Field-by-field equality of two opcode records (arrays compared exactly)."""
    assert type(a) is type(b)
    for field in dataclasses.fields(a):
        x, y = getattr(a, field.name), getattr(b, field.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            x, y = np.asarray(x), np.asarray(y)
            assert x.shape == y.shape and x.dtype == y.dtype, field.name
            assert np.array_equal(x.view(np.uint8), y.view(np.uint8)), field.name
        else:
            assert x == y, field.name


AREA = OpcodeArea(top=2, left=4, bottom=100, right=150, plane=1, planes=2, row_pitch=2, col_pitch=2)


def every_opcode(list_index: int = 2) -> list:
    common = dict(list_index=list_index, dng_version=(1, 3, 0, 0))
    rng = np.random.default_rng(3)
    return [
        WarpRectilinear(
            opcode_id=1,
            coefficients=((1.0, -0.01, 0.002, 0.0, 1e-4, -2e-4), (1.001, -0.011, 0.0021, 0.0, 0.0, 0.0)),
            center=(0.51, 0.49),
            **common,
        ),
        WarpFisheye(opcode_id=2, coefficients=((1.0, 0.1, -0.05, 0.001),), center=(0.5, 0.5), **common),
        FixVignetteRadial(opcode_id=3, k=(0.3, -0.1, 0.05, 0.0, 1e-3), center=(0.48, 0.52), optional=True, **common),
        FixBadPixelsConstant(opcode_id=4, constant=0, bayer_phase=1, **common),
        FixBadPixelsList(opcode_id=5, bayer_phase=3, bad_points=((5, 7), (100, 3)), bad_rects=((1, 2, 3, 4),), **common),
        TrimBounds(opcode_id=6, top=1, left=2, bottom=300, right=400, preview_skip=True, **common),
        MapTable(opcode_id=7, area=AREA, table=np.arange(0, 65536, 16, dtype=np.uint16), **common),
        MapPolynomial(opcode_id=8, area=AREA, coefficients=(0.0, 1.1, -0.1), **common),
        GainMap(
            opcode_id=9,
            area=AREA,
            points_v=5,
            points_h=7,
            spacing_v=0.25,
            spacing_h=1 / 6,
            origin_v=0.0,
            origin_h=0.0,
            map_planes=3,
            gains=rng.uniform(1.0, 2.5, (5, 7, 3)).astype(np.float32),
            optional=True,
            preview_skip=True,
            **common,
        ),
        DeltaPerRow(opcode_id=10, area=AREA, values=rng.normal(0, 1e-3, 49).astype(np.float32), **common),
        DeltaPerColumn(opcode_id=11, area=AREA, values=rng.normal(0, 1e-3, 73).astype(np.float32), **common),
        ScalePerRow(opcode_id=12, area=AREA, values=rng.uniform(0.9, 1.1, 49).astype(np.float32), **common),
        ScalePerColumn(opcode_id=13, area=AREA, values=rng.uniform(0.9, 1.1, 73).astype(np.float32), **common),
        UnknownOpcode(opcode_id=14, payload=bytes(range(40)), **common),
        UnknownOpcode(opcode_id=99, payload=b"", dng_version=(1, 7, 1, 0), list_index=list_index),
    ]


@pytest.mark.parametrize("list_index", [1, 2, 3])
def test_every_type_round_trips(list_index: int) -> None:
    ops = every_opcode(list_index)
    data = serialize_opcode_list(ops)
    back = parse_opcode_list(data, list_index)
    assert len(back) == len(ops)
    for a, b in zip(ops, back):
        assert_same_opcode(a, b)
        assert b.list_index == list_index
    assert serialize_opcode_list(back) == data
    assert [op.name for op in back][-2:] == ["WarpRectilinear2", "Unknown(99)"]


def test_layout_matches_the_specification() -> None:
    """Bytes written by hand from the DNG 1.6 layout (not by the serialiser)."""
    vignette = struct.pack(">I4sII", 3, bytes([1, 3, 0, 0]), 1, 56) + struct.pack(
        ">7d", 0.3, -0.1, 0.05, 0.0, 1e-3, 0.48, 0.52
    )
    gains = (np.arange(6).reshape(2, 3, 1) / 4 + 1).astype(">f4")
    gain_params = (
        struct.pack(">8I", 0, 0, 10, 20, 0, 1, 1, 1)
        + struct.pack(">II4dI", 2, 3, 1.0, 0.5, 0.0, 0.0, 1)
        + gains.tobytes()
    )
    gain_map = struct.pack(">I4sII", 9, bytes([1, 3, 0, 0]), 0, len(gain_params)) + gain_params
    data = struct.pack(">I", 2) + vignette + gain_map
    vig, gm = parse_opcode_list(data, 3)
    assert isinstance(vig, FixVignetteRadial) and vig.optional and not vig.preview_skip
    assert vig.k == (0.3, -0.1, 0.05, 0.0, 1e-3) and vig.center == (0.48, 0.52)
    assert isinstance(gm, GainMap)
    assert (gm.points_v, gm.points_h, gm.map_planes) == (2, 3, 1)
    assert (gm.spacing_v, gm.spacing_h) == (1.0, 0.5)
    assert gm.area == OpcodeArea(top=0, left=0, bottom=10, right=20)
    np.testing.assert_array_equal(gm.gains[:, :, 0], [[1.0, 1.25, 1.5], [1.75, 2.0, 2.25]])
    assert gm.gains.dtype == np.float32
    assert serialize_opcode_list((vig, gm)) == data


def test_nan_and_odd_floats_are_kept_bit_exact() -> None:
    values = np.array([np.nan, -0.0, np.inf, 1e-45], dtype=np.float32)
    op = DeltaPerRow(list_index=2, opcode_id=10, area=AREA, values=values)
    data = serialize_opcode_list([op])
    (back,) = parse_opcode_list(data, 2)
    assert back.values.view(np.uint32).tolist() == values.view(np.uint32).tolist()
    assert serialize_opcode_list([back]) == data


def test_empty_list() -> None:
    assert parse_opcode_list(b"", 1) == ()
    assert parse_opcode_list(struct.pack(">I", 0), 1) == ()
    assert serialize_opcode_list([]) == struct.pack(">I", 0)


@pytest.mark.parametrize("name", SHARED_DNGS)
def test_shared_dng_opcode_lists_round_trip(shared_data, name) -> None:
    """Every opcode list in the shared DNGs, extracted by exiftool, round-trips bit for bit."""
    exe = _exiftool()
    path = shared_data / name
    tags = ["-OpcodeList1", "-OpcodeList2", "-OpcodeList3"]
    binary = json.loads(subprocess.run([exe, "-j", "-b", "-n", "-G1", "-a", *tags, str(path)], capture_output=True, check=True).stdout)[0]
    names = json.loads(subprocess.run([exe, "-j", "-G1", "-a", *tags, str(path)], capture_output=True, check=True).stdout)[0]
    found = 0
    for key, value in binary.items():
        if ":OpcodeList" not in key:
            continue
        found += 1
        raw = base64.b64decode(value.removeprefix("base64:"))
        index = int(key[-1])
        ops = parse_opcode_list(raw, index, path=str(path))
        assert len(ops) == struct.unpack(">I", raw[:4])[0]
        assert serialize_opcode_list(ops) == raw
        assert [op.name for op in ops] == [n.strip() for n in names[key].split(",")]
    expected = 1 if "lossy" in name or "lg_g4" in name else 0
    assert found == expected


# --- malformed lists -----------------------------------------------------------


def _list(*opcodes: tuple[int, int, bytes], count: int | None = None) -> bytes:
    body = b"".join(
        struct.pack(">I4sII", oid, bytes([1, 3, 0, 0]), 0, n) + params for oid, n, params in opcodes
    )
    return struct.pack(">I", len(opcodes) if count is None else count) + body


def _gain_map_params(points_v: int, points_h: int, planes: int, n_gains: int) -> bytes:
    return (
        struct.pack(">8I", 0, 0, 10, 10, 0, 1, 1, 1)
        + struct.pack(">II4dI", points_v, points_h, 1.0, 1.0, 0.0, 0.0, planes)
        + np.ones(n_gains, dtype=">f4").tobytes()
    )


MALFORMED = {
    "count larger than the data": _list((3, 56, bytes(56)), count=5),
    "absurd count": _list(count=2_000_000),
    "byte count beyond the end": _list((3, 1000, bytes(56))),
    "negative byte count": _list((3, 0xFFFFFFF0, bytes(56))),
    "too short for a count": b"\x00\x00",
    "gain map points do not match": _list((9, 76 + 4 * 11, _gain_map_params(3, 4, 1, 11))),
    "gain map zero planes": _list((9, 76, _gain_map_params(3, 4, 0, 0))),
    "vignette with wrong size": _list((3, 48, bytes(48))),
    "map table size zero": _list((7, 36, struct.pack(">8I", 0, 0, 1, 1, 0, 1, 1, 1) + struct.pack(">I", 0))),
    "polynomial degree 9": _list(
        (8, 36 + 80, struct.pack(">8I", 0, 0, 1, 1, 0, 1, 1, 1) + struct.pack(">I", 9) + bytes(80))
    ),
    "per-row count mismatch": _list(
        (10, 36 + 8, struct.pack(">8I", 0, 0, 1, 1, 0, 1, 1, 1) + struct.pack(">I", 5) + bytes(8))
    ),
    "bad pixel list huge point count": _list((5, 12, struct.pack(">III", 0, 0x7FFFFFFF, 0))),
    "warp with zero planes": _list((1, 20, struct.pack(">I", 0) + bytes(16))),
    "trailing garbage": _list((4, 8, struct.pack(">II", 0, 0))) + b"\x12\x34",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_lists_raise_corrupt_file(case: str) -> None:
    with pytest.raises(CorruptFile) as info:
        parse_opcode_list(MALFORMED[case], 2, path="/photos/x.dng")
    message = str(info.value)
    assert message.startswith("/photos/x.dng: OpcodeList2: ")
    assert "\n" not in message
    if "gain map" in case:
        assert "GainMap" in message


def test_trailing_zero_padding_is_accepted() -> None:
    data = _list((4, 8, struct.pack(">II", 7, 0))) + b"\x00\x00"
    (op,) = parse_opcode_list(data, 1)
    assert isinstance(op, FixBadPixelsConstant) and op.constant == 7


def test_serialise_refuses_inconsistent_records() -> None:
    bad = GainMap(
        list_index=2,
        opcode_id=9,
        area=AREA,
        points_v=2,
        points_h=2,
        spacing_v=1.0,
        spacing_h=1.0,
        origin_v=0.0,
        origin_h=0.0,
        map_planes=1,
        gains=np.ones((3, 3, 1), np.float32),
    )
    with pytest.raises(ValueError):
        serialize_opcode_list([bad])
    with pytest.raises(ValueError):
        serialize_opcode_list([TrimBounds(list_index=1, opcode_id=5)])
