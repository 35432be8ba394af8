"""35 mm-equivalent focal lengths: crop factors from EXIF focal-plane data, CIFF sensor sizes and lensfun."""

from __future__ import annotations

import math
import os

import pytest

from rawlab.core.metadata import CaptureInfo
from rawlab.io.exif import crop_factor_from_focal_plane, crop_factor_from_sensor_mm, raw_file_crop_factor
from rawlab.look.focal import equivalent_focal_length, lensfun_crop_factor, lensfun_database_found


def test_crop_factor_from_sensor_size():
    assert crop_factor_from_sensor_mm(36.0, 24.0) == pytest.approx(1.0)
    # APS-C 23.5 x 15.6 mm: 43.27 / 28.21
    assert crop_factor_from_sensor_mm(23.5, 15.6) == pytest.approx(math.hypot(36, 24) / math.hypot(23.5, 15.6))
    # a 1-inch-type phone sensor (13.2 x 8.8 mm) is a 2.73x crop
    assert crop_factor_from_sensor_mm(13.2, 8.8) == pytest.approx(2.727, abs=1e-3)
    for bad in ((0.0, 24.0), (None, 24.0), (float("nan"), 24.0), (-1.0, 2.0)):
        assert crop_factor_from_sensor_mm(*bad) is None


@pytest.mark.parametrize("unit, per_mm", [(2, 25.4), (3, 10.0), (4, 1.0), (5, 0.001)])
def test_crop_factor_from_focal_plane_resolution_in_every_unit(unit, per_mm):
    # 6000 x 4000 px on 23.5 x 15.667 mm: resolution in pixels per unit
    width_mm, height_mm = 23.5, 23.5 * 4000 / 6000
    res_x = 6000 / width_mm * per_mm
    res_y = 4000 / height_mm * per_mm
    crop = crop_factor_from_focal_plane(x_resolution=res_x, y_resolution=res_y, unit=unit, width_px=6000,
                                        height_px=4000)
    assert crop == pytest.approx(crop_factor_from_sensor_mm(width_mm, height_mm), rel=1e-9)


def test_crop_factor_from_focal_plane_refuses_what_it_cannot_know():
    kw = dict(x_resolution=2000.0, y_resolution=2000.0, width_px=6000, height_px=4000)
    assert crop_factor_from_focal_plane(unit=1, **kw) is None  # no absolute unit
    assert crop_factor_from_focal_plane(unit=None, **kw) == pytest.approx(
        crop_factor_from_sensor_mm(6000 / 2000 * 25.4, 4000 / 2000 * 25.4))  # EXIF default: inches
    assert crop_factor_from_focal_plane(unit=2, **{**kw, "x_resolution": 0.0}) is None
    assert crop_factor_from_focal_plane(unit=2, **{**kw, "height_px": None}) is None


def test_canon_crw_sensor_size_gives_the_equivalent(shared_data):
    # the CIFF FocalLength record holds the sensor size: 23.22 x 15.49 mm (exiftool's FocalPlaneX/YSize)
    from rawlab.io.read import read

    path = shared_data / "raw" / "canon_eos_d30" / "RAW_CANON_D30_SRGB.CRW"
    f35, crop = raw_file_crop_factor(path, "Canon CIFF")
    assert f35 is None
    assert crop == pytest.approx(crop_factor_from_sensor_mm(23.22, 15.49), rel=2e-3)
    capture = read(path).capture
    assert capture.focal_length_mm == pytest.approx(100.0)
    assert capture.focal_length_35mm_mm == pytest.approx(100.0 * crop)
    assert equivalent_focal_length(capture).source == "file"


def test_damaged_raw_metadata_gives_nothing_not_an_error(tmp_path, shared_data):
    src = (shared_data / "raw" / "canon_eos_d30" / "RAW_CANON_D30_SRGB.CRW").read_bytes()
    good = crop_factor_from_sensor_mm(23.22, 15.49)
    for name, data in (("head.crw", src[:26]), ("cut.crw", src[: len(src) // 3]), ("junk.crw", b"II" + os.urandom(400))):
        (tmp_path / name).write_bytes(data)
        f35, crop = raw_file_crop_factor(tmp_path / name, "Canon CIFF")
        assert f35 is None and (crop is None or crop == pytest.approx(good, rel=2e-3)), name
    (tmp_path / "bad.tif").write_bytes(b"II*\x00" + os.urandom(64))
    assert raw_file_crop_factor(tmp_path / "bad.tif", "TIFF") == (None, None)


def test_equivalent_prefers_the_file_then_says_why_it_is_unknown(monkeypatch, tmp_path):
    monkeypatch.setenv("RAWLAB_LENSFUN_DIR", str(tmp_path))  # an empty extra folder changes nothing below
    eq = equivalent_focal_length(CaptureInfo(make="X", model="Y", focal_length_mm=6.0, focal_length_35mm_mm=26.0))
    assert (eq.mm, eq.source) == (26.0, "file")
    none = equivalent_focal_length(CaptureInfo(make="X", model="Y"))
    assert none.mm is None and "no focal length" in none.why
    unknown = equivalent_focal_length(CaptureInfo(make="Nobody", model="Imaginary 9000", focal_length_mm=6.0))
    assert unknown.mm is None and "6 mm" in unknown.why and "Nobody Imaginary 9000" in unknown.why


def _require_lensfun() -> None:
    if not lensfun_database_found():
        if os.environ.get("CI"):
            pytest.fail("the lensfun database is not installed (Debian liblensfun-data-v1, which darktable "
                        "pulls in; make test installs darktable)")
        pytest.skip("lensfun database not installed (Debian liblensfun-data-v1)")


def test_lensfun_gives_the_phone_equivalent(shared_data):
    # the LG G4's DNG records 4.42 mm and no 35 mm equivalent; LG specifies its camera as 28 mm
    from rawlab.io.read import read

    _require_lensfun()
    capture = read(shared_data / "raw" / "lg_g4_h815" / "skia_sample_1mp.dng").capture
    assert capture.focal_length_35mm_mm is None
    eq = equivalent_focal_length(capture)
    assert eq.source == "lensfun" and eq.mm == pytest.approx(28.0, abs=0.5)


def test_lensfun_lookup_matches_model_and_maker(tmp_path, monkeypatch):
    (tmp_path / "mine.xml").write_text(
        "<lensdatabase>"
        "<camera><maker>Acme</maker><model>Pocket One</model><cropfactor>5.6</cropfactor></camera>"
        "<camera><maker>Other</maker><model>Pocket One</model><cropfactor>2.0</cropfactor></camera>"
        "</lensdatabase>")
    monkeypatch.setenv("RAWLAB_LENSFUN_DIR", str(tmp_path))
    assert lensfun_crop_factor("ACME", "pocket  one") == pytest.approx(5.6)
    assert lensfun_crop_factor("Other", "Pocket One") == pytest.approx(2.0)
    assert lensfun_crop_factor("Third", "Pocket One") is None  # two makers disagree: unknown
    eq = equivalent_focal_length(CaptureInfo(make="Acme", model="Pocket One", focal_length_mm=5.0))
    assert eq.mm == pytest.approx(28.0) and eq.source == "lensfun"
