"""Caption border: size, untouched photo, text from the EXIF, EXIF and ICC kept."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from rawlab.caption import add_caption_border, render_caption_border
from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.core.metadata import CaptureInfo, LensInfo
from rawlab.errors import InvalidParams, StageError
from rawlab.io.exif import build_exif_blob

CAPTURE = CaptureInfo(make="Leica", model="Leica Q3", iso=200.0, exposure_time_s=1 / 250, f_number=2.8,
                      focal_length_mm=28.0, focal_length_35mm_mm=28.0, datetime_original="2025:05:04 17:30:12")


def photo_frame(h=300, w=451):
    rng = np.random.default_rng(0)
    data = rng.uniform(0, 1, (h, w, 3)).astype(np.float32)
    return Frame(data, Encoding.RGB, primaries=Primaries.SRGB, transfer=Transfer.SRGB, capture=CAPTURE,
                 lens=LensInfo(make="Leica", model="Summilux 28 f/1.7"), exif=build_exif_blob(CAPTURE, None))


@pytest.mark.parametrize("placement", ["below", "around"])
@pytest.mark.parametrize("style", ["white", "black"])
def test_size_and_untouched_photo(style, placement):
    frame = photo_frame()
    out, layout = render_caption_border(frame, style=style, placement=placement)
    L = 451
    band = round(0.08 * L)
    margin = round(0.02 * L) if placement == "around" else 0
    assert out.data.shape == (300 + margin + band, 451 + 2 * margin, 3)
    top, left, h, w = layout.photo_box
    np.testing.assert_array_equal(out.data[top : top + h, left : left + w], frame.data)
    bg = 1.0 if style == "white" else 0.0
    assert out.data[0, -1, 0] == (bg if placement == "around" else frame.data[0, -1, 0])
    bt, _, bh, _ = layout.band_box
    band_px = out.data[bt : bt + bh]
    assert np.mean(band_px == bg) > 0.8  # mostly background
    assert np.abs(band_px - bg).max() > 0.5  # and text was drawn
    assert out.exif == frame.exif and out.capture == frame.capture and out.lens == frame.lens


def test_text_matches_the_exif():
    frame = photo_frame()
    _, layout = render_caption_border(frame)
    exif = Image.Exif()
    exif.load(frame.exif[6:] if frame.exif.startswith(b"Exif") else frame.exif)
    ifd0, sub = exif, exif.get_ifd(0x8769)
    assert layout.title == ifd0[0x0110]  # Model already starts with the Make
    f_number = float(sub[0x829D])
    t = float(sub[0x829A])
    settings = f"{int(sub[0xA405])}mm  f/{f_number:g}  1/{round(1 / t)}s  ISO {int(sub[0x8827])}"
    assert layout.settings == settings == "28mm  f/2.8  1/250s  ISO 200"
    d = sub[0x9003]
    assert layout.date == f"{d[:4]}-{d[5:7]}-{d[8:10]} {d[11:16]}" == "2025-05-04 17:30"
    _, custom = render_caption_border(frame, text="  my   holiday ")
    assert custom.title == "my holiday"


def test_encoded_output_keeps_exif_and_icc(tmp_path):
    from rawlab.io.encode import write_image

    out = add_caption_border(photo_frame(), style="white", placement="around")
    path = write_image(out, tmp_path / "framed.jpg", quality=90)
    with Image.open(path) as im:
        assert im.size == (out.width, out.height)
        assert im.info.get("icc_profile")
        exif = im.getexif()
        assert exif[0x010F] == "Leica" and exif.get_ifd(0x8769)[0x8827] == 200


def test_bad_input():
    frame = photo_frame(40, 60)
    with pytest.raises(InvalidParams, match="style"):
        add_caption_border(frame, style="pink")
    with pytest.raises(InvalidParams, match="placement"):
        add_caption_border(frame, placement="left")
    with pytest.raises(StageError):
        add_caption_border(Frame(np.zeros((8, 8), np.float32), Encoding.CFA))
    bare = frame.replace(capture=CaptureInfo(), exif=None)
    _, layout = render_caption_border(bare)
    assert layout.title == "" and layout.settings == "" and layout.date == ""
