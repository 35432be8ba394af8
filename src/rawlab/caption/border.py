"""Caption border: the photo on a white (or black) frame with its settings written below.

Applied to the developed, output-referred frame before encoding; the photo's
pixels are copied into the canvas unchanged, and the frame's capture metadata
and EXIF blob are kept so the encoder writes EXIF and the ICC profile.

Layout, in proportion to the long side ``L`` of the photo (so the caption
looks the same at any resolution):

* ``placement="below"``: the canvas is the photo's width, with a band of
  ``round(0.08 L)`` px below it;
* ``placement="around"``: a margin of ``round(0.02 L)`` px on the left, top and
  right, and the same band below;
* in the band, vertically centred: on the left the camera (make and model, or
  the user's text) in a font of ``round(0.26 band)`` px; on the right the
  settings (35 mm-equivalent focal length, or the real one when no equivalent
  is known; f-number, shutter time, ISO) and
  under them the date, in ``round(0.2 band)`` px; text insets ``round(0.03 L)``.

Text is drawn with DejaVu Sans, the font that matplotlib ships (no download);
without matplotlib, Pillow's built-in scalable font.  The text is rendered as
coverage (antialiased) and blended in the frame's own encoding.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from rawlab.core.frame import Encoding, Frame, StageRecord, Transfer
from rawlab.core.metadata import CaptureInfo
from rawlab.errors import InvalidParams, StageError

__all__ = ["CaptionLayout", "add_caption_border", "caption_layout", "caption_strings", "render_caption_border"]

BAND_FRACTION = 0.08
MARGIN_FRACTION = 0.02
INSET_FRACTION = 0.03
STYLES = {  # background, primary text, secondary text (encoded sRGB values)
    "white": (1.0, 0.12, 0.42),
    "black": (0.0, 0.92, 0.62),
}
VERSION = 1


@dataclass(frozen=True)
class CaptionLayout:
    """Where everything goes (pixels, ``(top, left, height, width)`` boxes)."""

    canvas_hw: tuple[int, int]
    photo_box: tuple[int, int, int, int]
    band_box: tuple[int, int, int, int]
    title: str
    settings: str
    date: str
    title_px: int
    detail_px: int
    inset_px: int


def _fmt_number(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def caption_strings(capture: CaptureInfo, *, text: str | None = None) -> tuple[str, str, str]:
    """``(title, settings, date)`` as printed: e.g. ``("rawlab Simulated phone", "26mm  f/1.8  1/120s  ISO 50",
    "2026-01-01 12:00")``; unknown values are left out.

    The focal length is the 35 mm equivalent, rounded to a millimetre
    (:func:`rawlab.look.focal.equivalent_focal_length`); when that cannot be
    known, the real focal length the file records."""
    if text is not None:
        title = " ".join(str(text).split())
    else:
        make, model = (capture.make or "").strip(), (capture.model or "").strip()
        title = model if make and model.lower().startswith(make.lower()) else " ".join(p for p in (make, model) if p)
    parts = []
    from rawlab.look.focal import equivalent_focal_length

    equivalent = equivalent_focal_length(capture).mm
    if equivalent:
        parts.append(f"{_fmt_number(round(equivalent))}mm")
    elif capture.focal_length_mm:
        parts.append(f"{_fmt_number(capture.focal_length_mm)}mm")  # the real one when no equivalent is known
    if capture.f_number:
        parts.append(f"f/{_fmt_number(capture.f_number)}")
    t = capture.exposure_time_s
    if t and t > 0:
        parts.append(f"{_fmt_number(t)}s" if t >= 0.3 else f"1/{int(round(1.0 / t))}s")
    if capture.iso:
        parts.append(f"ISO {int(round(capture.iso))}")
    date = ""
    if capture.datetime_original and len(capture.datetime_original) >= 16:
        d = capture.datetime_original
        date = f"{d[0:4]}-{d[5:7]}-{d[8:10]} {d[11:16]}"
    return title, "  ".join(parts), date


def caption_layout(
    height: int, width: int, capture: CaptureInfo, *, placement: str = "below", text: str | None = None
) -> CaptionLayout:
    """The layout of a caption border for a ``height`` x ``width`` photo."""
    if placement not in ("below", "around"):
        raise InvalidParams(f"caption placement must be below or around, got {placement!r}")
    long_side = max(height, width)
    band = max(16, int(round(BAND_FRACTION * long_side)))
    margin = int(round(MARGIN_FRACTION * long_side)) if placement == "around" else 0
    canvas = (height + margin + band, width + 2 * margin)
    title, settings, date = caption_strings(capture, text=text)
    return CaptionLayout(
        canvas_hw=canvas,
        photo_box=(margin, margin, height, width),
        band_box=(margin + height, 0, band, canvas[1]),
        title=title,
        settings=settings,
        date=date,
        title_px=max(6, int(round(0.26 * band))),
        detail_px=max(5, int(round(0.2 * band))),
        inset_px=margin + max(4, int(round(INSET_FRACTION * long_side))),
    )


@lru_cache(maxsize=16)
def _font(size_px: int, bold: bool):
    from PIL import ImageFont

    spec = importlib.util.find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        path = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" / name
        if path.is_file():
            return ImageFont.truetype(str(path), size_px)
    return ImageFont.load_default(size=size_px)


def _band_masks(layout: CaptionLayout) -> tuple[np.ndarray, np.ndarray]:
    """Coverage (0..1) of the primary and secondary text in the band."""
    from PIL import Image, ImageDraw

    _, _, bh, bw = layout.band_box
    primary = Image.new("L", (bw, bh), 0)
    secondary = Image.new("L", (bw, bh), 0)
    inset = layout.inset_px
    if layout.title:
        draw = ImageDraw.Draw(primary)
        draw.text((inset, bh / 2), layout.title, fill=255, font=_font(layout.title_px, True), anchor="lm")
    right = bw - inset
    if layout.settings and layout.date:
        ImageDraw.Draw(primary).text((right, bh / 2 - 0.08 * bh), layout.settings, fill=255,
                                     font=_font(layout.detail_px, False), anchor="rs")
        ImageDraw.Draw(secondary).text((right, bh / 2 + 0.06 * bh), layout.date, fill=255,
                                       font=_font(layout.detail_px, False), anchor="rt")
    elif layout.settings or layout.date:
        ImageDraw.Draw(primary).text((right, bh / 2), layout.settings or layout.date, fill=255,
                                     font=_font(layout.detail_px, False), anchor="rm")
    return (np.asarray(primary, np.float32) / 255.0, np.asarray(secondary, np.float32) / 255.0)


def _to_buffer(value: float, transfer: Transfer) -> np.float32:
    if transfer is Transfer.LINEAR:
        value = value / 12.92 if value <= 0.04045 else ((value + 0.055) / 1.055) ** 2.4
    return np.float32(value)


def render_caption_border(
    frame: Frame, *, style: str = "white", text: str | None = None, placement: str = "below"
) -> tuple[Frame, CaptionLayout]:
    """:func:`add_caption_border` that also returns the :class:`CaptionLayout` it drew."""
    if style not in STYLES:
        raise InvalidParams(f"caption frame style must be white or black, got {style!r}")
    if frame.encoding is not Encoding.RGB:
        raise StageError(f"caption border: expects a developed RGB frame, got {frame.encoding.value}")
    h, w = frame.height, frame.width
    layout = caption_layout(h, w, frame.capture, placement=placement, text=text)
    bg, fg1, fg2 = (_to_buffer(v, frame.transfer) for v in STYLES[style])
    canvas = np.empty(layout.canvas_hw + (3,), np.float32)
    canvas[...] = bg
    top, left, _, _ = layout.photo_box
    canvas[top : top + h, left : left + w] = frame.data
    bt, bl, bh, bw = layout.band_box
    a1, a2 = _band_masks(layout)
    band = bg + (fg1 - bg) * a1 + (fg2 - bg) * a2 * (1.0 - a1)
    canvas[bt : bt + bh, bl : bl + bw] = band[..., None]
    key = hashlib.sha256(repr((style, text, placement)).encode()).hexdigest()[:12]
    out = frame.replace(data=canvas, sensor=frame.sensor).with_record(StageRecord("caption_border", VERSION, key))
    return out, layout


def add_caption_border(
    frame: Frame, *, style: str = "white", text: str | None = None, placement: str = "below"
) -> Frame:
    """Put the developed photo on a caption border (see the module docstring).

    Parameters
    ----------
    frame
        A developed ``RGB`` frame (any primaries; sRGB-encoded or linear, 0..1).
    style
        ``"white"`` (dark text on white) or ``"black"`` (light text on black).
    text
        Replaces the make and model on the left.
    placement
        ``"below"`` (a band under the photo) or ``"around"`` (a margin on every side).

    Returns
    -------
    Frame
        A new frame of the canvas size; the photo's pixels unchanged inside it;
        ``capture``, ``lens`` and ``exif`` kept for the encoder.
    """
    return render_caption_border(frame, style=style, text=text, placement=placement)[0]
