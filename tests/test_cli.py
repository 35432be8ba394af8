"""The command line: success paths, and bad input that must give one line and exit 2.

Each bad file must produce exactly one error line naming the file, exit status 2,
no traceback, no output file, and leave the input untouched; a batch goes on
past a bad file.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from rawlab.cli import main


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "rawlab", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory) -> Path:
    from rawlab.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("sample") / "sample.dng", seed=3)


def _patch_tag(path: Path, tag_name: str, value: int) -> None:
    """Overwrite an inline LONG tag of the raw IFD (a test's way of forging a header)."""
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        tag = page.tags[tag_name]
        offset, byteorder = tag.valueoffset, tif.byteorder
        assert tag.dtype == 4 and tag.count == 1
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(struct.pack(byteorder + "I", value))


def _dng_with_gain_map(tmp: Path) -> Path:
    from rawlab.core.opcodes import GainMap, OpcodeArea
    from rawlab.io.dng_write import write_dng
    from rawlab.io.read import read

    frame = read(tmp / "sample.dng")
    gain = GainMap(
        list_index=2,
        opcode_id=9,
        area=OpcodeArea(top=0, left=0, bottom=frame.height, right=frame.width, planes=1),
        points_v=2,
        points_h=2,
        spacing_v=1.0,
        spacing_h=1.0,
        origin_v=0.0,
        origin_h=0.0,
        map_planes=1,
        gains=np.ones((2, 2, 1), np.float32),
    )
    return write_dng(frame.replace(opcodes=(gain,)), tmp / "opcodes.dng")


def _bad_files(tmp: Path, sample: Path) -> dict[str, Path]:
    from PIL import Image

    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "sample.dng").write_bytes(sample.read_bytes())
    files = {}
    files["empty"] = tmp / "empty.dng"
    files["empty"].write_bytes(b"")
    files["random"] = tmp / "random.dng"
    files["random"].write_bytes(np.random.default_rng(0).integers(0, 256, 100_000, dtype=np.uint8).tobytes())
    files["jpeg"] = tmp / "photo.dng"
    Image.new("RGB", (64, 48), (200, 100, 50)).save(files["jpeg"], format="JPEG")
    data = sample.read_bytes()
    files["truncated"] = tmp / "truncated.dng"
    files["truncated"].write_bytes(data[: len(data) * 6 // 10])
    files["huge"] = tmp / "huge.dng"
    files["huge"].write_bytes(data)
    _patch_tag(files["huge"], "ImageWidth", 1_000_000)
    _patch_tag(files["huge"], "ImageLength", 1_000_000)
    good = _dng_with_gain_map(tmp)
    with tifffile.TiffFile(good) as tif:
        tag = tif.pages[0].tags[51009]  # OpcodeList2
        offset = tag.valueoffset
    broken = tmp / "broken_opcodes.dng"
    raw = bytearray(good.read_bytes())
    raw[offset + 4 + 12 : offset + 4 + 16] = struct.pack(">I", 0x7FFFFFF0)  # first opcode's byte count
    broken.write_bytes(bytes(raw))
    files["broken_opcodes"] = broken
    return files


BAD = ["empty", "random", "jpeg", "truncated", "huge", "broken_opcodes"]


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, sample_dng) -> dict[str, Path]:
    return _bad_files(tmp_path_factory.mktemp("bad"), sample_dng)


@pytest.mark.parametrize("kind", BAD)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, bad_files, kind):
    path = bad_files[kind]
    before = (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns)
    out_dir = tmp_path / "out"
    result = _run("develop", str(path), "-o", str(out_dir))
    lines = result.stderr.strip().splitlines()
    print(kind, result.stderr.strip())
    assert result.returncode == 2
    assert len(lines) == 1 and str(path) in lines[0]
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    assert not out_dir.exists()  # nothing written, not even the folder
    assert (hashlib.sha256(path.read_bytes()).hexdigest(), path.stat().st_mtime_ns) == before


def test_info_on_bad_input_exits_2(bad_files, capsys):
    assert main(["info", str(bad_files["truncated"])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "truncated.dng" in err[0]


def test_batch_goes_on_past_a_bad_file(tmp_path, sample_dng, bad_files):
    out_dir = tmp_path / "batch"
    result = _run("develop", str(bad_files["random"]), str(sample_dng), "-o", str(out_dir))
    assert result.returncode == 2
    assert (out_dir / "sample.jpg").is_file()
    assert "1 of 2 files failed" in result.stderr and "random.dng" in result.stderr
    assert "Traceback" not in result.stderr


def test_develop_info_and_formats(tmp_path, sample_dng, capsys):
    assert main(["develop", str(sample_dng), "-o", str(tmp_path), "--format", "png", "--bits", "16", "--space", "p3"]) == 0
    from PIL import Image

    with Image.open(tmp_path / "sample.png") as im:
        assert im.info.get("icc_profile")
    capsys.readouterr()
    assert main(["info", str(sample_dng), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["cfa"] == "RGGB" and info["capture"]["make"] == "rawlab"


def test_usage_errors_exit_2(tmp_path, sample_dng):
    result = _run("develop", str(sample_dng), "--format", "gif")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = _run("develop", str(sample_dng), "--recipe", str(tmp_path / "missing.toml"), "-o", str(tmp_path))
    assert result.returncode == 2 and "missing.toml" in result.stderr
    result = _run("develop", str(tmp_path / "nope.dng"), "-o", str(tmp_path))
    assert result.returncode == 2 and "nope.dng" in result.stderr


def test_info_into_a_closed_pipe_is_quiet(sample_dng):
    """``rawlab info FILE | head -c 10``: the reader leaves early; no traceback, no internal error."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = f"{sys.executable} -m rawlab info {sample_dng} | head -c 10"
    result = subprocess.run(["bash", "-o", "pipefail", "-c", command], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr


def test_a_required_opcode_that_cannot_be_applied_is_reported(tmp_path, sample_dng, capsys):
    """An unknown opcode is kept, shown by ``info``, and a required one (not
    flagged optional) gives a one-line warning on develop; the photo is written."""
    from rawlab.core.opcodes import UnknownOpcode
    from rawlab.io.dng_write import write_dng
    from rawlab.io.read import read

    frame = read(sample_dng)
    ops = (
        UnknownOpcode(opcode_id=99, payload=b"abcd", list_index=2, optional=False),
        UnknownOpcode(opcode_id=98, payload=b"", list_index=3, optional=True),
    )
    path = write_dng(frame.replace(opcodes=ops), tmp_path / "unknown.dng")
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.count("(unknown: kept, not applied)") == 2
    assert main(["develop", str(path), "-o", str(tmp_path / "out")]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "unknown.dng" in err[0] and "OpcodeList2" in err[0] and "required" in err[0]
    assert (tmp_path / "out" / "unknown.jpg").is_file()
