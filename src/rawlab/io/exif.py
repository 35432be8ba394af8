"""Build and read the EXIF blob that rides along with a frame to the encoder.

The blob is ``b"Exif\\0\\0"`` followed by a small TIFF structure (as Pillow's
``Image.Exif().tobytes()`` writes it): IFD0 with Make, Model, Software,
Orientation, DateTime and Artist, and an EXIF IFD with ExposureTime, FNumber,
PhotographicSensitivity (ISO), FocalLength, FocalLengthIn35mmFilm,
DateTimeOriginal, LensMake, LensModel and LensSpecification.  Tag numbers and
types follow EXIF 2.32 (CIPA DC-008-2019); rationals are written as Pillow
``IFDRational`` values, unknown LensSpecification entries as 0/0.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from rawlab.core.metadata import CaptureInfo, LensInfo
from rawlab.io import tiff_tags as T

__all__ = ["build_exif_blob", "capture_from_exif_blob", "EXIF_HEADER"]

#: Prefix of an EXIF APP1 payload.
EXIF_HEADER = b"Exif\x00\x00"

_MAKE, _MODEL, _SOFTWARE, _ORIENTATION, _DATETIME, _ARTIST = (
    T.MAKE,
    T.MODEL,
    T.SOFTWARE,
    T.ORIENTATION,
    T.DATE_TIME,
    T.ARTIST,
)
_MAX_DENOMINATOR = 1_000_000


def _rational(value: float | None) -> IFDRational:
    """A float as an EXIF rational (0/0 for an unknown value)."""
    if value is None or not math.isfinite(value):
        return IFDRational(0, 0)
    fraction = Fraction(float(value)).limit_denominator(_MAX_DENOMINATOR)
    return IFDRational(fraction.numerator, fraction.denominator)


def _ascii(value: str | None) -> str | None:
    """Text that EXIF ASCII fields can hold (None for empty)."""
    if not value:
        return None
    text = value.encode("ascii", "replace").decode("ascii").replace("\0", "")
    return text.strip() or None


def build_exif_blob(capture: CaptureInfo, lens: LensInfo | None) -> bytes:
    """An EXIF blob describing the shot, for JPEG/HEIF/TIFF/PNG encoders.

    Parameters
    ----------
    capture
        Camera, exposure and time of the shot; fields that are ``None`` are
        left out.
    lens
        The lens, or ``None``.

    Returns
    -------
    bytes
        ``b"Exif\\0\\0"`` + TIFF, accepted by ``PIL.Image.Exif.load`` and by the
        ``exif=`` argument of Pillow's ``Image.save``.
    """
    exif = Image.Exif()
    for tag, text in (
        (_MAKE, capture.make),
        (_MODEL, capture.model),
        (_SOFTWARE, capture.software),
        (_DATETIME, capture.datetime_original),
        (_ARTIST, capture.artist),
    ):
        text = _ascii(text)
        if text is not None:
            exif[tag] = text
    exif[_ORIENTATION] = int(capture.orientation)

    sub: dict[int, Any] = {}
    if capture.exposure_time_s is not None and capture.exposure_time_s > 0:
        sub[T.EXPOSURE_TIME] = _rational(capture.exposure_time_s)
    if capture.f_number is not None and capture.f_number > 0:
        sub[T.F_NUMBER] = _rational(capture.f_number)
    if capture.iso is not None and capture.iso > 0:
        iso = int(round(capture.iso))
        sub[T.PHOTOGRAPHIC_SENSITIVITY] = min(iso, 65535)
        if iso > 65535:
            sub[T.SENSITIVITY_TYPE] = 2  # recommended exposure index
            sub[T.RECOMMENDED_EXPOSURE_INDEX] = iso
    if capture.focal_length_mm is not None and capture.focal_length_mm > 0:
        sub[T.FOCAL_LENGTH] = _rational(capture.focal_length_mm)
    if capture.focal_length_35mm_mm is not None and capture.focal_length_35mm_mm > 0:
        sub[T.FOCAL_LENGTH_IN_35MM_FILM] = min(int(round(capture.focal_length_35mm_mm)), 65535)
    date = _ascii(capture.datetime_original)
    if date is not None:
        sub[T.DATE_TIME_ORIGINAL] = date
    if lens is not None:
        if _ascii(lens.make) is not None:
            sub[T.LENS_MAKE] = _ascii(lens.make)
        if _ascii(lens.model) is not None:
            sub[T.LENS_MODEL] = _ascii(lens.model)
        spec = (
            lens.focal_min_mm,
            lens.focal_max_mm,
            lens.f_number_min_at_min_focal,
            lens.f_number_min_at_max_focal,
        )
        if any(v is not None for v in spec):
            sub[T.LENS_SPECIFICATION] = tuple(_rational(v) for v in spec)
    if sub:
        exif.get_ifd(T.EXIF_IFD).update(sub)
    return exif.tobytes()


def _number(value: Any) -> float | None:
    """A positive finite number from an EXIF value, else None."""
    if isinstance(value, tuple):
        value = value[0] if value else None
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _text(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    if not isinstance(value, str):
        return None
    value = value.replace("\0", "").strip()
    return value or None


def capture_from_exif_blob(blob: bytes) -> tuple[CaptureInfo, LensInfo | None]:
    """Read back what :func:`build_exif_blob` writes (the inverse).

    Parameters
    ----------
    blob
        An EXIF blob, with or without the ``b"Exif\\0\\0"`` prefix.

    Returns
    -------
    (CaptureInfo, LensInfo or None)
        ``LensInfo`` is ``None`` when the blob has no lens tags.
    """
    data = bytes(blob)
    if not data.startswith(EXIF_HEADER):
        data = EXIF_HEADER + data
    exif = Image.Exif()
    exif.load(data)
    sub = exif.get_ifd(T.EXIF_IFD)

    iso = _number(sub.get(T.PHOTOGRAPHIC_SENSITIVITY))
    if iso is not None and iso >= 65535:
        iso = _number(sub.get(T.RECOMMENDED_EXPOSURE_INDEX)) or iso
    orientation = exif.get(_ORIENTATION, 1)
    capture = CaptureInfo(
        make=_text(exif.get(_MAKE)),
        model=_text(exif.get(_MODEL)),
        software=_text(exif.get(_SOFTWARE)),
        iso=iso,
        exposure_time_s=_number(sub.get(T.EXPOSURE_TIME)),
        f_number=_number(sub.get(T.F_NUMBER)),
        focal_length_mm=_number(sub.get(T.FOCAL_LENGTH)),
        focal_length_35mm_mm=_number(sub.get(T.FOCAL_LENGTH_IN_35MM_FILM)),
        datetime_original=_text(sub.get(T.DATE_TIME_ORIGINAL)) or _text(exif.get(_DATETIME)),
        orientation=int(orientation) if isinstance(orientation, int) else 1,
        artist=_text(exif.get(_ARTIST)),
    )
    spec = sub.get(T.LENS_SPECIFICATION)
    spec_values: list[float | None] = [None] * 4
    if isinstance(spec, tuple) and len(spec) == 4:
        spec_values = [_number(v) for v in spec]
    lens_make, lens_model = _text(sub.get(T.LENS_MAKE)), _text(sub.get(T.LENS_MODEL))
    if lens_make is None and lens_model is None and all(v is None for v in spec_values):
        return capture, None
    lens = LensInfo(
        make=lens_make,
        model=lens_model,
        focal_min_mm=spec_values[0],
        focal_max_mm=spec_values[1],
        f_number_min_at_min_focal=spec_values[2],
        f_number_min_at_max_focal=spec_values[3],
    )
    return capture, lens
