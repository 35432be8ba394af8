"""read_dng on bad input: one-line RawlabErrors naming the file, no huge
allocations, and the input file left untouched."""

from __future__ import annotations

import os
import resource
import struct
import time
import tracemalloc
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

from dngmake import bayer_ramp, make_dng, patch_tag, tag_entry_offset
from rawlab.errors import CorruptFile, LimitExceeded, RawlabError, UnsupportedFile
from rawlab.io.dng import read_dng, read_dng_metadata

MiB = 1 << 20


def _small_dng(path: Path, **kwargs) -> Path:
    return make_dng(path, bayer_ramp(32, 48, 12), bits=12, **kwargs)


def _empty(tmp: Path) -> Path:
    path = tmp / "empty.dng"
    path.write_bytes(b"")
    return path


def _random(tmp: Path) -> Path:
    path = tmp / "random.dng"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    return path


def _random_with_tiff_magic(tmp: Path) -> Path:
    path = tmp / "random_tiff.dng"
    body = np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    path.write_bytes(b"II*\x00" + body)
    return path


def _jpeg(tmp: Path) -> Path:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16), (200, 10, 10)).save(out, "JPEG")
    path = tmp / "photo.dng"
    path.write_bytes(out.getvalue())
    return path


def _png(tmp: Path) -> Path:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (16, 16)).save(out, "PNG")
    path = tmp / "picture.dng"
    path.write_bytes(out.getvalue())
    return path


def _truncated(tmp: Path) -> Path:
    path = _small_dng(tmp / "truncated.dng")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 1000])
    return path


def _truncated_header(tmp: Path) -> Path:
    path = _small_dng(tmp / "stub.dng")
    path.write_bytes(path.read_bytes()[:60])
    return path


def _huge_header(tmp: Path) -> Path:
    path = _small_dng(tmp / "huge.dng")
    patch_tag(path, 256, 1_000_000)
    patch_tag(path, 257, 1_000_000)
    return path


def _huge_tiles(tmp: Path) -> Path:
    path = _small_dng(tmp / "tiles.dng", tile=(16, 16))
    patch_tag(path, 322, 1 << 20)  # TileWidth
    patch_tag(path, 323, 1 << 20)  # TileLength
    return path


def _offsets_past_end(tmp: Path) -> Path:
    path = _small_dng(tmp / "offsets.dng")
    patch_tag(path, 273, 10_000_000)  # StripOffsets
    return path


def _broken_opcode_list(tmp: Path) -> Path:
    bad = struct.pack(">I", 5) + struct.pack(">I4sII", 9, bytes([1, 3, 0, 0]), 0, 76) + bytes(20)
    return _small_dng(tmp / "opcodes.dng", opcode_lists={2: bad})


def _not_a_dng(tmp: Path) -> Path:
    return _small_dng(tmp / "plain.dng", dng_version=None)


def _no_cfa_pattern(tmp: Path) -> Path:
    path = _small_dng(tmp / "nocfa.dng")
    offset, byteorder = tag_entry_offset(path, 33422)
    with open(path, "r+b") as fh:  # rename the tag to a private one
        fh.seek(offset)
        fh.write(struct.pack(byteorder + "H", 65000))
    return path


def _absurd_black_repeat(tmp: Path) -> Path:
    return _small_dng(tmp / "black.dng", black_repeat=(4000, 4000), black_level=[0])


def _bad_active_area(tmp: Path) -> Path:
    return _small_dng(tmp / "area.dng", active_area=(0, 0, 64, 48))


def _hostile_jpeg_frame(tmp: Path) -> Path:
    """A lossless JPEG tile whose frame header claims 65535 x 65535 x 4 samples."""
    path = make_dng(tmp / "ljpeg.dng", bayer_ramp(32, 64, 12), bits=12, tile=(16, 32), ljpeg=True)
    data = bytearray(path.read_bytes())
    index = data.find(b"\xff\xc3")
    assert index > 0
    data[index + 5 : index + 10] = struct.pack(">HHB", 65535, 65535, 4)
    path.write_bytes(bytes(data))
    return path


def _corrupt_jpeg_data(tmp: Path) -> Path:
    path = make_dng(tmp / "ljpeg2.dng", bayer_ramp(32, 64, 12), bits=12, tile=(16, 32), ljpeg=True)
    data = bytearray(path.read_bytes())
    index = data.find(b"\xff\xda")
    data[index + 14 : index + 300] = b"\xff" * 286
    path.write_bytes(bytes(data))
    return path


CASES: dict[str, tuple[Callable[[Path], Path], type[RawlabError], str]] = {
    "empty file": (_empty, CorruptFile, "empty file"),
    "random bytes": (_random, UnsupportedFile, "not a DNG"),
    "random bytes with a TIFF header": (_random_with_tiff_magic, CorruptFile, "TIFF"),
    "JPEG named .dng": (_jpeg, UnsupportedFile, "JPEG"),
    "PNG named .dng": (_png, UnsupportedFile, "PNG"),
    "truncated pixel data": (_truncated, CorruptFile, "pixel data truncated"),
    "truncated header": (_truncated_header, CorruptFile, ""),
    "1,000,000 x 1,000,000 header": (_huge_header, LimitExceeded, "1000000x1000000"),
    "huge tiles": (_huge_tiles, LimitExceeded, "tiles"),
    "strip offset past the end": (_offsets_past_end, CorruptFile, "pixel data truncated"),
    "broken OpcodeList2": (_broken_opcode_list, CorruptFile, "OpcodeList2"),
    "TIFF without DNGVersion": (_not_a_dng, UnsupportedFile, "DNGVersion"),
    "CFA without CFAPattern": (_no_cfa_pattern, CorruptFile, "CFAPattern"),
    "absurd BlackLevelRepeatDim": (_absurd_black_repeat, CorruptFile, "BlackLevelRepeatDim"),
    "ActiveArea outside the image": (_bad_active_area, CorruptFile, "ActiveArea"),
    "hostile JPEG frame header": (_hostile_jpeg_frame, CorruptFile, "JPEG frame"),
    "corrupt JPEG data": (_corrupt_jpeg_data, CorruptFile, ""),
}


def _assert_one_line_error(err: RawlabError, path: Path, pattern: str) -> None:
    text = str(err)
    assert "\n" not in text and len(text) < 400, text
    assert text.startswith(f"{path}: "), text
    assert err.path == str(path)
    assert pattern in text, text


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_raises_one_line_error(tmp_path, case) -> None:
    build, error, pattern = CASES[case]
    path = build(tmp_path)
    before = path.read_bytes()
    os.utime(path, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    mtime = path.stat().st_mtime_ns
    with pytest.raises(error) as info:
        read_dng(path)
    _assert_one_line_error(info.value, path, pattern)
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


def test_huge_header_fails_fast_without_allocating(tmp_path) -> None:
    path = _huge_header(tmp_path)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    try:
        start = time.perf_counter()
        with pytest.raises(LimitExceeded):
            read_dng(path)
        # even with the pixel limit lifted, the strip sizes give it away before decoding
        with pytest.raises(CorruptFile, match="strip"):
            read_dng(path, max_pixels=10**13)
        elapsed = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    rss_growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    assert elapsed < 2.0
    assert peak < 20 * MiB, f"peak traced allocation {peak / MiB:.1f} MiB"
    assert rss_growth_kib < 200 * 1024


def test_hostile_jpeg_frame_is_refused_before_decoding(tmp_path) -> None:
    path = _hostile_jpeg_frame(tmp_path)
    tracemalloc.start()
    try:
        with pytest.raises(CorruptFile, match="larger than"):
            read_dng(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * MiB


def test_metadata_reader_refuses_the_same_files(tmp_path) -> None:
    for case in ("empty file", "JPEG named .dng", "TIFF without DNGVersion", "broken OpcodeList2"):
        build, error, pattern = CASES[case]
        path = build(tmp_path)
        with pytest.raises(error) as info:
            read_dng_metadata(path)
        _assert_one_line_error(info.value, path, pattern)


def test_missing_file_and_directory(tmp_path) -> None:
    with pytest.raises(RawlabError, match="cannot open") as info:
        read_dng(tmp_path / "nope.dng")
    assert str(info.value).startswith(str(tmp_path / "nope.dng"))
    with pytest.raises(RawlabError, match="not a regular file"):
        read_dng(tmp_path)


def test_truncated_real_dng(shared_data, tmp_path) -> None:
    source = shared_data / "charts/canon_eos_550d_ml_colorchecker/colorchart.dng"
    path = tmp_path / "half.dng"
    data = source.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptFile, match="pixel data truncated"):
        read_dng(path)


def test_every_non_dng_in_the_shared_data_is_refused_cleanly(shared_data) -> None:
    others = [p for p in sorted((shared_data / "raw").rglob("*")) + sorted((shared_data / "charts").rglob("*"))
              if p.is_file() and p.suffix.lower() != ".dng"]
    assert others
    for path in others:
        with pytest.raises((UnsupportedFile, CorruptFile)) as info:
            read_dng(path)
        assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)
