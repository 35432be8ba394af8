"""LibRaw reader and format dispatch (``rawlab.io.libraw``, ``rawlab.io.read``).

References: rawpy/LibRaw itself (the data must be LibRaw's, bit for bit, and
the levels/pattern/matrix must be LibRaw's, re-expressed), ExifTool's reading
of the same files for the capture metadata, and the shared data manifest for
which files are headerless.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import rawpy

from rawlab.core.frame import Encoding
from rawlab.errors import CorruptFile, LimitExceeded, RawlabError, UnsupportedFile
from rawlab.io import libraw as libraw_module
from rawlab.io.libraw import read_libraw
from rawlab.io.read import read

D30 = "raw/canon_eos_d30/RAW_CANON_D30_SRGB.CRW"
DC50 = "raw/kodak_dc50/RAW_KODAK_DC50.KDC"
C330 = "raw/kodak_c330/RAW_KODAK_C330_FORMAT_NONE_YRGB.raw"

#: Section 2 of the manifest: every headerless dump.
HEADERLESS = [
    "raw/nikon_dslr_crop/DSC_1339_768x512_rggb.raw",
    "charts/fast_openisp_dr_chart/test.RAW",
    "raw/infinite_isp_sensor/Indoor1_2592x1536_8bit_GRBG.raw",
    "raw/infinite_isp_sensor/Outdoor1_2592x1536_8bit_GRBG.raw",
    "raw/infinite_isp_sensor/Outdoor2_2592x1536_8bit_GRBG.raw",
    "raw/infinite_isp_sensor/Outdoor3_2592x1536_8bit_GRBG.raw",
    "raw/infinite_isp_sensor/Outdoor4_2592x1536_8bit_GRBG.raw",
    "raw/infinite_isp_sensor/BlackImage_1920x1080_12bits_BGGR.raw",
    "raw/huawei_p9/RAW_00153.raw10",
    "burst/huawei_p9_pair_box/RAW_00016.raw10",
    "burst/huawei_p9_pair_box/RAW_00017.raw8",
    "burst/huawei_p9_pair_keyboard/RAW_00018.raw12",
    "burst/huawei_p9_pair_keyboard/RAW_00019.raw16",
    "charts/infinite_isp_colorchecker/ColorCheckerRAW_1920x1080_12bit_BGGR.raw",
]

#: Files LibRaw "opens" only by guessing a camera from the file size (manifest: WRONG).
SIZE_GUESSED = [
    "raw/nikon_dslr_crop/DSC_1339_768x512_rggb.raw",
    "charts/fast_openisp_dr_chart/test.RAW",
    "raw/infinite_isp_sensor/BlackImage_1920x1080_12bits_BGGR.raw",
    "burst/huawei_p9_pair_keyboard/RAW_00019.raw16",
    "charts/infinite_isp_colorchecker/ColorCheckerRAW_1920x1080_12bit_BGGR.raw",
]

DNGS = [
    "raw/huawei_p9/RAW_00242.dng",
    "raw/lg_g4_h815/skia_sample_1mp.dng",
    "raw/canon_eos_6d/canon_eos_6d_lossy.dng",
    "raw/apple_iphone12pro_proraw_header/IMG_1361.dng",
    "charts/lg_g4_lab_scene/lg_g4_iso_800.dng",
    "charts/canon_eos_550d_ml_colorchecker/colorchart.dng",
]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rgb_index(desc: bytes) -> np.ndarray:
    """LibRaw colour index -> 0 R, 1 G, 2 B, from color_desc (index 3 = second green)."""
    return np.array(["RGB".index(chr(c)) for c in desc[:4]])


# --------------------------------------------------------------------- CFA raws
@pytest.mark.parametrize("relpath", [D30, DC50])
def test_cfa_raw_matches_libraw_bit_for_bit(shared_data, relpath):
    path = shared_data / relpath
    before = _sha256(path)
    frame = read_libraw(path)
    assert _sha256(path) == before  # the input is never modified
    with rawpy.imread(str(path)) as raw:
        visible = raw.raw_image_visible.copy()
        colors = raw.raw_colors_visible.copy()
        desc = raw.color_desc
        black = np.asarray(raw.black_level_per_channel, dtype=np.float64)
        white = float(raw.white_level)
        matrix = raw.rgb_xyz_matrix[:3].astype(np.float64)
        multipliers = np.asarray(raw.camera_whitebalance, dtype=np.float64)

    assert frame.encoding is Encoding.CFA
    assert frame.data.dtype == np.float32 and frame.data.flags.c_contiguous
    assert frame.data.shape == visible.shape
    np.testing.assert_array_equal(frame.data, visible.astype(np.float32))
    assert np.array_equal(frame.data.astype(np.uint16), visible)  # exact: integers < 2**24

    # The pattern names, at every pixel, the colour LibRaw says (index 3 -> green).
    h, w = visible.shape
    expected_colors = _rgb_index(desc)[colors]
    np.testing.assert_array_equal(frame.sensor.cfa.color_index_map(h, w), expected_colors)
    # Black: one value per pattern cell, LibRaw's per-colour black at that cell.
    ry, rx = frame.sensor.cfa.shape
    np.testing.assert_array_equal(frame.sensor.black_level_dn[:, :, 0], black[colors[:ry, :rx]])
    np.testing.assert_array_equal(frame.sensor.white_level_dn, [white])
    np.testing.assert_array_equal(frame.clip_level, [white] * 3)

    if np.any(matrix):
        np.testing.assert_allclose(frame.color.M_XYZ_to_camera_1, matrix)
        assert frame.color.illuminant_1 == 21
    else:
        assert frame.color.M_XYZ_to_camera_1 is None
    if np.all(multipliers[:3] > 0):
        expected = (1.0 / multipliers[:3]) * multipliers[1]
        np.testing.assert_allclose(frame.color.as_shot_neutral, expected)
    else:
        assert frame.color.as_shot_neutral is None


def test_canon_d30_metadata(shared_data):
    """Values as ExifTool 12.57 reads them from the same file."""
    frame = read_libraw(shared_data / D30)
    assert frame.sensor.cfa.name == "RGGB"
    assert frame.sensor.bits_per_sample == 12
    np.testing.assert_array_equal(frame.sensor.black_level_dn.ravel(), [126.0] * 4)
    assert frame.sensor.white_level_dn.tolist() == [4095.0]
    # LibRaw's inset crop (12, 56, 1440, 2160) minus the visible margins (6, 48).
    assert frame.sensor.crop_px == (6, 8, 1440, 2160)
    # The D30 was in auto white balance: LibRaw marks the multipliers with -1.
    assert frame.color.as_shot_neutral is None
    np.testing.assert_allclose(frame.color.M_XYZ_to_camera_1[0], [0.9900, -0.2771, -0.1324], atol=1e-4)
    cap = frame.capture
    assert (cap.make, cap.model) == ("Canon", "Canon EOS D30")
    assert cap.iso == 100.0
    assert cap.exposure_time_s == pytest.approx(1 / 203, rel=0.01)
    assert cap.f_number == pytest.approx(11.0, rel=0.01)
    assert cap.focal_length_mm == 100.0
    assert cap.datetime_original == "2002:11:24 15:11:22"
    assert cap.orientation == 1


def test_kodak_dc50_metadata(shared_data):
    frame = read_libraw(shared_data / DC50)
    assert frame.sensor.cfa.name == "GRBG"
    assert frame.data.shape == (512, 768)
    assert frame.sensor.white_level_dn.tolist() == [16383.0]
    assert frame.capture.make == "Eastman Kodak Company"
    assert frame.capture.model == "Kodak Digital Science DC50 Zoom Camera"
    assert frame.capture.exposure_time_s == pytest.approx(1 / 230, rel=0.01)
    assert frame.capture.f_number == pytest.approx(6.2, rel=0.01)


def test_capture_time_does_not_depend_on_the_time_zone(shared_data):
    """CIFF stores wall-clock seconds; TIFF-based raws an EXIF string. Both must
    come back unchanged whatever the machine's time zone."""
    if not hasattr(time, "tzset"):
        pytest.skip("time.tzset is not available on this platform")
    saved = os.environ.get("TZ")
    try:
        for zone in ("America/New_York", "Asia/Tokyo"):
            os.environ["TZ"] = zone
            time.tzset()
            assert read_libraw(shared_data / D30).capture.datetime_original == "2002:11:24 15:11:22"
            assert read_libraw(shared_data / DC50).capture.datetime_original == "1997:04:23 08:00:47"
    finally:
        if saved is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = saved
        time.tzset()


# ------------------------------------------------------------ interpolated data
def test_kodak_c330_is_refused_unless_size_guess_is_allowed(shared_data):
    """The C330 raw has no header at all: LibRaw knows it only by its size, the
    same rule that mistakes sensor dumps for a Photron. Refused by default; on
    request it maps honestly to CAMERA_RGB (LibRaw returns it interpolated: the
    camera stored YCbCr, LibRaw converts it to RGB through a log curve)."""
    path = shared_data / C330
    with pytest.raises(UnsupportedFile, match="allow_size_guess"):
        read_libraw(path)
    frame = read_libraw(path, allow_size_guess=True)
    with rawpy.imread(str(path)) as raw:
        stack = raw.raw_image_visible.copy()
        order = [bytes(raw.color_desc).index(ch) for ch in b"RGB"]
    assert frame.encoding is Encoding.CAMERA_RGB
    assert frame.sensor.cfa is None
    np.testing.assert_array_equal(frame.data, stack[:, :, order].astype(np.float32))
    assert frame.color.M_XYZ_to_camera_1 is None  # LibRaw has no matrix for it
    assert frame.color.as_shot_neutral is None  # nor white balance multipliers


def test_linear_raw_dng_through_libraw_is_camera_rgb(shared_data):
    path = shared_data / "raw/lg_g4_h815/skia_sample_1mp.dng"
    frame = read_libraw(path)
    with rawpy.imread(str(path)) as raw:
        stack = raw.raw_image_visible.copy()
    assert frame.encoding is Encoding.CAMERA_RGB
    assert frame.data.shape == (338, 600, 3)
    np.testing.assert_array_equal(frame.data, stack[:, :, :3].astype(np.float32))
    assert frame.capture.model == "LG-H815"


# ------------------------------------------------------------ refusals, errors
@pytest.mark.parametrize("relpath", HEADERLESS)
def test_headerless_dumps_are_refused_with_a_hint(shared_data, relpath):
    with pytest.raises(UnsupportedFile, match="read_bayer") as info:
        read_libraw(shared_data / relpath)
    assert "\n" not in str(info.value) and str(info.value).startswith(str(shared_data / relpath))


def test_libraw_really_would_guess_these(shared_data):
    """The guard matters: LibRaw itself opens these dumps as exotic cameras."""
    for relpath in SIZE_GUESSED:
        with rawpy.imread(str(shared_data / relpath)) as raw:
            assert raw.raw_image_visible.size > 0


def test_plain_tiff_is_not_taken_for_a_raw(tmp_path):
    """LibRaw opens a 16-bit greyscale TIFF as if it were a sensor dump."""
    import tifffile

    path = tmp_path / "plain.tif"
    tifffile.imwrite(path, np.arange(64 * 48, dtype=np.uint16).reshape(48, 64))
    with rawpy.imread(str(path)) as raw:  # LibRaw alone accepts it ...
        assert raw.raw_image_visible.shape == (48, 64)
    with pytest.raises(UnsupportedFile, match="not a RAW file .*TIFF image"):
        read_libraw(path)  # ... rawlab does not
    with pytest.raises(UnsupportedFile, match="not a RAW file .*TIFF image"):
        read(path)


def test_images_empty_and_missing_files(tmp_path):
    from PIL import Image

    jpeg = tmp_path / "photo.cr2"  # the suffix lies; the content decides
    Image.new("RGB", (16, 16), (200, 100, 50)).save(jpeg, format="JPEG")
    png = tmp_path / "photo.nef"
    Image.new("RGB", (16, 16)).save(png, format="PNG")
    empty = tmp_path / "empty.dng"
    empty.write_bytes(b"")
    for reader in (read, read_libraw):
        with pytest.raises(UnsupportedFile, match=r"not a RAW file \(looks like a JPEG image\)"):
            reader(jpeg)
        with pytest.raises(UnsupportedFile, match=r"looks like a PNG image"):
            reader(png)
        with pytest.raises(CorruptFile, match="empty file"):
            reader(empty)
        with pytest.raises(UnsupportedFile, match="no such file"):
            reader(tmp_path / "missing.crw")
        with pytest.raises(UnsupportedFile, match="folder"):
            reader(tmp_path)


@pytest.mark.parametrize("keep_bytes", [3000, 1_500_000])
def test_truncated_crw_is_a_one_line_error(shared_data, tmp_path, keep_bytes, capfd):
    path = tmp_path / "cut.crw"
    path.write_bytes((shared_data / D30).read_bytes()[:keep_bytes])
    with pytest.raises(RawlabError) as info:
        read(path)
    assert isinstance(info.value, (CorruptFile, UnsupportedFile))
    assert "\n" not in str(info.value) and str(info.value).startswith(str(path))


def test_truncated_kdc_folds_libraw_message_into_one_line(shared_data, tmp_path, capfd):
    path = tmp_path / "cut.kdc"
    path.write_bytes((shared_data / DC50).read_bytes()[:50_000])
    with pytest.raises(CorruptFile, match="end of file") as info:
        read_libraw(path)
    assert "\n" not in str(info.value)
    assert "Unexpected end of file" not in capfd.readouterr().err  # nothing leaked to stderr


def test_size_limit(shared_data, monkeypatch):
    monkeypatch.setattr(libraw_module, "MAX_PIXELS", 1000)
    with pytest.raises(LimitExceeded, match="exceeds the limit"):
        read_libraw(shared_data / DC50)


@pytest.mark.parametrize(
    ("desc", "colors"),
    [(b"GMCY", 4), (b"RGBE", 4), (b"RGBG", 1)],
)
def test_non_rgb_filters_are_unsupported(desc, colors):
    fake = SimpleNamespace(color_desc=desc, num_colors=colors)
    with pytest.raises(UnsupportedFile, match="RGB"):
        libraw_module._color_indices(fake, "x.raw")


def test_color_indices_map_second_green():
    fake = SimpleNamespace(color_desc=b"RGBG", num_colors=3)
    assert libraw_module._color_indices(fake, "x.raw") == [0, 1, 2, 1]


# ----------------------------------------------------------------- dispatching
def _recording(monkeypatch):
    calls: list[str] = []
    import rawlab.io.dng as dng_module

    def fake_dng(path, **_):
        calls.append("dng")
        return "dng-frame"

    def fake_libraw(path, **_):
        calls.append("libraw")
        return "libraw-frame"

    monkeypatch.setattr(dng_module, "read_dng", fake_dng)
    monkeypatch.setattr(libraw_module, "read_libraw", fake_libraw)
    return calls


@pytest.mark.parametrize("relpath", DNGS)
def test_read_sends_dngs_to_the_dng_reader(shared_data, relpath, monkeypatch):
    calls = _recording(monkeypatch)
    assert read(shared_data / relpath) == "dng-frame" and calls == ["dng"]


@pytest.mark.parametrize("relpath", [D30, DC50])
def test_read_sends_camera_raws_to_libraw(shared_data, relpath, monkeypatch):
    calls = _recording(monkeypatch)
    assert read(shared_data / relpath) == "libraw-frame" and calls == ["libraw"]


@pytest.mark.parametrize("relpath", HEADERLESS + [C330])
def test_read_refuses_headerless_dumps(shared_data, relpath):
    with pytest.raises(UnsupportedFile, match="no RAW container header.*read_bayer"):
        read(shared_data / relpath)


def test_read_points_png_mosaics_to_read_bayer(shared_data):
    with pytest.raises(UnsupportedFile, match="PNG image.*png16"):
        read(shared_data / "raw/halide_camera_pipe/bayer_small.png")


def test_every_shared_file_is_dispatched(shared_data):
    """Nothing in raw/, charts/ or burst/ escapes the classification above."""
    listed = set(HEADERLESS) | set(DNGS) | {D30, DC50, C330, "raw/halide_camera_pipe/bayer_small.png"}
    found = {
        str(p.relative_to(shared_data))
        for folder in ("raw", "charts", "burst")
        for p in (shared_data / folder).rglob("*")
        if p.is_file()
    }
    assert found <= listed, sorted(found - listed)


def test_read_real_files_end_to_end(shared_data):
    """Without fakes: a CRW through read() equals read_libraw(); a CFA DNG gives a CFA frame."""
    a = read(shared_data / D30)
    b = read_libraw(shared_data / D30)
    np.testing.assert_array_equal(a.data, b.data)
    dng = read(shared_data / "raw/huawei_p9/RAW_00242.dng")
    assert dng.encoding is Encoding.CFA and dng.sensor.cfa.name == "RGGB"
