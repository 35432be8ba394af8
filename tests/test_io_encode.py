"""Encoder: JPEG/PNG/TIFF/HEIF decode to the quantised input, carry the ICC profile
and EXIF, keep 16 bits, validate with exiftool, and are written atomically."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shutil
import struct
import subprocess

import imagecodecs
import numpy as np
from conftest import require_tool
import pytest
import tifffile
from PIL import Image

from rawlab.color.icc import icc_profile
from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.core.metadata import CaptureInfo, LensInfo
from rawlab.errors import InvalidParams, RawlabError, StageError, UnsupportedFile
from rawlab.io.atomic import atomic_write
from rawlab.io.encode import quantize_unorm, quantize_unorm_reference, write_image

CAPTURE = CaptureInfo(
    make="Acme",
    model="Lab One",
    iso=1600,
    exposure_time_s=1 / 60,
    f_number=5.6,
    focal_length_mm=35.0,
    datetime_original="2024:05:06 07:08:09",
    orientation=1,
    artist="rawlab tests",
)
LENS = LensInfo(make="Acme", model="Prime 35")


def _smooth_rgb(height: int = 96, width: int = 130, seed: int = 0) -> np.ndarray:
    """A smooth float32 image in about -0.05..1.05 (so clipping is exercised)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phases = rng.uniform(0, 2 * np.pi, 3).astype(np.float32)
    channels = [0.5 + 0.55 * np.sin(x / (9 + 4 * c) + y / (13 + 3 * c) + phases[c]) for c in range(3)]
    return np.ascontiguousarray(np.stack(channels, -1), dtype=np.float32)


def _frame(data=None, *, primaries=Primaries.SRGB, transfer=Transfer.SRGB, exif=None, orientation=1) -> Frame:
    return Frame(
        data=_smooth_rgb() if data is None else data,
        encoding=Encoding.RGB,
        primaries=primaries,
        transfer=transfer,
        capture=dataclasses.replace(CAPTURE, orientation=orientation),
        lens=LENS,
        exif=exif,
    )


def _psnr(a: np.ndarray, b: np.ndarray, peak: float) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float(10 * np.log10(peak**2 / mse)) if mse else np.inf


def _check_exif(exif: Image.Exif, *, orientation: int = 1) -> None:
    assert exif[271] == "Acme" and exif[272] == "Lab One" and exif[274] == orientation
    sub = exif.get_ifd(0x8769)
    assert sub[34855] == 1600  # ISO
    assert float(sub[33434]) == pytest.approx(1 / 60) and float(sub[33437]) == pytest.approx(5.6)
    assert sub[36867] == "2024:05:06 07:08:09" and sub[42036] == "Prime 35"


# --- quantisation ---------------------------------------------------------------------------


@pytest.mark.parametrize("bits", [8, 16])
@pytest.mark.parametrize("shape", [(1,), (7, 3), (33, 17, 3)])
def test_quantize_matches_reference(bits, shape):
    rng = np.random.default_rng(bits)
    values = rng.uniform(-0.2, 1.2, shape).astype(np.float32)
    values.reshape(-1)[0] = np.nan
    if values.size > 4:
        values.reshape(-1)[1:5] = [np.inf, -np.inf, 1.0, 0.0]
    fast = quantize_unorm(values, bits=bits)
    assert fast.dtype == (np.uint8 if bits == 8 else np.uint16) and fast.shape == values.shape
    np.testing.assert_array_equal(fast, quantize_unorm_reference(values, bits=bits))


def test_quantize_rounds_half_up_and_clips():
    values = np.array(
        [np.nan, -1.0, 0.0, 0.5 / 255, 1.49 / 255, 1.5 / 255, 254.5 / 255, 1.0, 7.0], np.float32
    )
    np.testing.assert_array_equal(quantize_unorm(values, bits=8), [0, 0, 0, 1, 1, 2, 255, 255, 255])
    np.testing.assert_array_equal(quantize_unorm(np.array([0.5], np.float32), bits=16), [32768])


# --- formats ------------------------------------------------------------------------------------


def test_jpeg(tmp_path):
    frame = _frame()
    path = write_image(frame, tmp_path / "out.jpg", quality=95)
    expected = quantize_unorm(frame.data, bits=8)
    with Image.open(path) as image:
        assert image.format == "JPEG" and image.mode == "RGB" and image.size == (130, 96)
        assert image.info["icc_profile"] == icc_profile(Primaries.SRGB)
        _check_exif(image.getexif())
        decoded = np.asarray(image)
        assert image.layer[0][1:3] == (1, 1)  # 4:4:4 above quality 90 (no chroma subsampling)
    assert _psnr(decoded, expected, 255) > 40
    with Image.open(write_image(frame, tmp_path / "low.jpeg", quality=80)) as image:
        assert image.layer[0][1:3] == (2, 2)  # 4:2:0 otherwise
        assert _psnr(np.asarray(image), expected, 255) > 32


@pytest.mark.parametrize("bits", [8, 16])
def test_png_exact(tmp_path, bits):
    frame = _frame()
    path = write_image(frame, tmp_path / "out.png", bit_depth=bits)
    decoded = imagecodecs.png_decode(path.read_bytes())
    assert decoded.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(decoded, quantize_unorm(frame.data, bits=bits))
    if bits == 16:  # real 16-bit data, not 8-bit values scaled by 257
        assert np.any(decoded % 257 != 0)
    with Image.open(path) as image:
        assert image.info["icc_profile"] == icc_profile(Primaries.SRGB)
        _check_exif(image.getexif())
    chunks = _png_chunks(path.read_bytes())
    assert chunks.index(b"iCCP") < chunks.index(b"IDAT") and chunks.index(b"eXIf") < chunks.index(b"IDAT")
    assert b"sRGB" not in chunks and b"gAMA" not in chunks


def _png_chunks(data: bytes) -> list[bytes]:
    kinds, position = [], 8
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kinds.append(data[position + 4 : position + 8])
        position += 12 + length
    return kinds


@pytest.mark.parametrize("bits", [8, 16])
def test_tiff_exact(tmp_path, bits):
    frame = _frame(primaries=Primaries.DISPLAY_P3)
    path = write_image(frame, tmp_path / "out.tif", bit_depth=bits)
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        np.testing.assert_array_equal(page.asarray(), quantize_unorm(frame.data, bits=bits))
        assert page.dtype == (np.uint8 if bits == 8 else np.uint16) and page.photometric == 2
        assert page.tags[34675].value == icc_profile(Primaries.DISPLAY_P3)
        assert page.tags["Make"].value == "Acme" and page.tags["Orientation"].value == 1
        exif = page.tags["ExifTag"].value
    assert exif["ISOSpeedRatings"] == 1600 and exif["LensModel"] == "Prime 35"
    assert exif["ColorSpace"] == 0xFFFF  # uncalibrated: the ICC profile (P3) says what the values are
    with Image.open(path) as image:  # Pillow reads the same EXIF from the TIFF
        assert image.getexif().get_ifd(0x8769)[34855] == 1600


def test_tiff_default_is_16_bit_and_linear_profile(tmp_path):
    frame = _frame(
        data=np.clip(_smooth_rgb(), 0, 1) ** 2.2, primaries=Primaries.REC2020, transfer=Transfer.LINEAR
    )
    path = write_image(frame, tmp_path / "linear.tiff")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        assert page.dtype == np.uint16
        profile = page.tags[34675].value
    assert profile == icc_profile(Primaries.REC2020, transfer=Transfer.LINEAR)
    assert b"para\0\0\0\0\0\0" in profile  # parametric curve type 0 (a pure gamma, here 1.0)


def test_heif(tmp_path):
    pillow_heif = pytest.importorskip("pillow_heif")
    frame = _frame()
    path = write_image(frame, tmp_path / "out.heic", quality=90)
    heif = pillow_heif.open_heif(path)
    assert heif.info["icc_profile"] == icc_profile(Primaries.SRGB)
    exif = Image.Exif()
    exif.load(heif.info["exif"])
    _check_exif(exif)
    decoded = np.asarray(heif[0])
    assert decoded.shape == (96, 130, 3)
    assert _psnr(decoded, quantize_unorm(frame.data, bits=8), 255) > 30


@pytest.mark.parametrize(
    ("name", "bits"), [("a.jpg", None), ("a.png", 16), ("a.tif", 16), ("a.tif", 8), ("a.heic", None)]
)
def test_exiftool_validates(tmp_path, name, bits):
    path = write_image(_frame(), tmp_path / name, bit_depth=bits)
    out = subprocess.run(
        [require_tool("exiftool", "libimage-exiftool-perl"), "-validate", "-warning", "-error", "-a", "-j", str(path)],
        capture_output=True, text=True,
    )
    info = json.loads(out.stdout)[0]
    assert info["Validate"] == "OK", {
        k: v for k, v in info.items() if k.startswith(("Warning", "Error", "Validate"))
    }


# --- EXIF handling ---------------------------------------------------------------------------------


def _source_blob(orientation: int, *, swap_byte_order: bool = False) -> bytes:
    exif = Image.Exif()
    exif[271] = "Source Make"
    exif[274] = orientation
    exif[33432] = "(c) someone"
    sub = exif.get_ifd(0x8769)
    sub[37380] = 0.7  # ExposureBiasValue
    sub[37500] = b"MAKERNOTE" * 4
    sub[40962] = 6000  # PixelXDimension of the camera JPEG
    blob = exif.tobytes()
    if swap_byte_order:  # the same content in the other byte order (Pillow writes big-endian)
        from rawlab.io import _tiff_ifd as ifd

        content = ifd.parse_exif_blob(blob)
        other = "<" if content.byteorder == ">" else ">"
        content.ifd0 = ifd.swap_entries(content.ifd0, content.byteorder, other)
        content.exif = ifd.swap_entries(content.exif, content.byteorder, other)
        content.byteorder = other
        blob = ifd.encode_exif_blob(content)
        assert blob[6:8] == (b"II" if other == "<" else b"MM")
    return blob


@pytest.mark.parametrize("swap_byte_order", [False, True])
@pytest.mark.parametrize("name", ["o.jpg", "o.png", "o.tif"])
def test_source_exif_kept_and_orientation_reset(tmp_path, name, swap_byte_order):
    frame = _frame(exif=_source_blob(6, swap_byte_order=swap_byte_order), orientation=1)
    path = write_image(frame, tmp_path / name)
    with Image.open(path) as image:
        exif = image.getexif()
        sub = exif.get_ifd(0x8769)
    assert exif[274] == 1  # the orientation stage rotated the pixels
    assert exif[271] == "Source Make" and exif[33432] == "(c) someone"
    assert float(sub[37380]) == pytest.approx(0.7)
    assert 37500 not in sub  # MakerNote left out
    if not name.endswith(".tif"):
        assert sub[40962] == 130 and sub[40963] == 96  # the output's size, not the camera's
    assert sub[40961] == 1  # ColorSpace sRGB


def test_orientation_kept_when_not_reset(tmp_path):
    path = write_image(_frame(orientation=8), tmp_path / "o8.jpg")
    with Image.open(path) as image:
        assert image.getexif()[274] == 8


def test_oversized_exif_still_writes_jpeg(tmp_path):
    exif = Image.Exif()
    exif[271] = "Acme"
    exif.get_ifd(0x8769)[37510] = b"ASCII\0\0\0" + b"x" * 70000  # UserComment too large for APP1
    path = write_image(_frame(exif=exif.tobytes()), tmp_path / "big.jpg")
    with Image.open(path) as image:
        assert image.getexif()[271] == "Acme"
        assert 37510 not in image.getexif().get_ifd(0x8769)


@pytest.mark.parametrize("name", ["g.jpg", "g.tif"])
def test_hostile_exif_blob(tmp_path, name):
    """Garbage, truncated or lying EXIF never crashes the encoder; the capture info is used instead."""
    rng = np.random.default_rng(9)
    good = _source_blob(1)
    lying = bytearray(good)
    lying[6 + 8 : 6 + 10] = b"\xff\xff"  # IFD0 claims 65535 entries
    blobs = [rng.bytes(200), good[:20], bytes(lying), b"Exif\0\0MM\0*\xff\xff\xff\xff"]
    for blob in blobs:
        path = write_image(_frame(exif=blob), tmp_path / name)
        with Image.open(path) as image:
            exif = image.getexif()
            assert exif[274] == 1 and exif[271] in ("Acme", "Source Make")


# --- errors and atomic writes -------------------------------------------------------------------------


def test_wrong_encoding(tmp_path):
    frame = Frame(data=np.zeros((4, 4), np.float32), encoding=Encoding.CFA)
    with pytest.raises(StageError) as info:
        write_image(frame, tmp_path / "x.jpg")
    assert str(info.value).startswith(str(tmp_path / "x.jpg") + ": ")


@pytest.mark.parametrize(
    ("name", "kwargs", "error"),
    [
        ("x.bmp", {}, UnsupportedFile),
        ("noext", {}, UnsupportedFile),
        ("x.jpg", {"format": "gif"}, UnsupportedFile),
        ("x.jpg", {"quality": 0}, InvalidParams),
        ("x.jpg", {"quality": 101}, InvalidParams),
        ("x.jpg", {"bit_depth": 16}, InvalidParams),
        ("x.png", {"bit_depth": 12}, InvalidParams),
        ("x.heic", {"bit_depth": 16}, InvalidParams),
    ],
)
def test_bad_requests(tmp_path, name, kwargs, error):
    with pytest.raises(error) as info:
        write_image(_frame(), tmp_path / name, **kwargs)
    assert info.value.path == str(tmp_path / name) and "\n" not in str(info.value)
    assert not list(tmp_path.iterdir())


def test_format_overrides_suffix(tmp_path):
    path = write_image(_frame(), tmp_path / "picture.dat", format="png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_and_unwritable_folder(tmp_path):
    with pytest.raises(RawlabError) as info:
        write_image(_frame(), tmp_path / "missing" / "x.jpg")
    assert "missing" in str(info.value)
    # a folder that cannot hold files, whoever runs the test (root ignores mode bits)
    not_a_folder = tmp_path / "plain_file"
    not_a_folder.write_bytes(b"")
    with pytest.raises(RawlabError) as info:
        write_image(_frame(), not_a_folder / "x.jpg")
    assert "plain_file" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["f.jpg", "f.png", "f.tif"])
def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch, name):
    import rawlab.io.encode as module

    target = tmp_path / name
    real = dict(module._WRITERS)

    def broken(fh, *args, **kwargs):
        fh.write(b"partial data")
        raise RuntimeError("encoder crashed")

    monkeypatch.setattr(module, "_WRITERS", {k: broken for k in real})
    with pytest.raises(RuntimeError, match="encoder crashed"):
        write_image(_frame(), target)
    assert list(tmp_path.iterdir()) == []
    target.write_bytes(b"previous photo")
    with pytest.raises(RuntimeError):
        write_image(_frame(), target)
    assert target.read_bytes() == b"previous photo"
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_overwrite_is_a_rename(tmp_path):
    target = tmp_path / "photo.jpg"
    write_image(_frame(), target)
    with open(target, "rb") as reader:  # a reader of the old file keeps seeing the old file
        old = reader.read()
        old_inode = os.fstat(reader.fileno()).st_ino
        write_image(_frame(data=_smooth_rgb(seed=3)), target)
        reader.seek(0)
        assert reader.read() == old
    assert os.stat(target).st_ino != old_inode
    assert target.read_bytes() != old
    with Image.open(target) as image:
        image.load()


def test_atomic_write_permissions_and_cleanup(tmp_path):
    target = tmp_path / "plain.bin"
    with atomic_write(target) as fh:
        fh.write(b"abc")
        assert not target.exists()
    assert target.read_bytes() == b"abc"
    mode = os.stat(target).st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(tmp_path / "other.bin") as fh:
            fh.write(b"x")
            raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.bin"]


def test_icc_profile_matches_frame_primaries(tmp_path):
    for primaries in Primaries:
        path = write_image(_frame(primaries=primaries), tmp_path / f"{primaries.value}.png")
        with Image.open(path) as image:
            assert image.info["icc_profile"] == icc_profile(primaries)
    assert len({icc_profile(p) for p in Primaries}) == len(Primaries)


def test_jpeg_bytes_are_readable_by_pillow_from_memory(tmp_path):
    """The APP1/APP2 segments inserted by hand leave a well-formed JPEG stream."""
    data = write_image(_frame(), tmp_path / "m.jpg").read_bytes()
    assert data[:2] == b"\xff\xd8" and data[2:4] == b"\xff\xe0" and data[-2:] == b"\xff\xd9"
    markers = []
    position = 2
    while data[position] == 0xFF and data[position + 1] != 0xDA:
        markers.append(data[position + 1])
        position += 2 + struct.unpack(">H", data[position + 2 : position + 4])[0]
    assert markers[:3] == [0xE0, 0xE1, 0xE2]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
