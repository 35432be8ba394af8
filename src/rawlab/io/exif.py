"""Build and read the EXIF blob that rides along with a frame to the encoder.

The blob is ``b"Exif\\0\\0"`` followed by a small TIFF structure (as Pillow's
``Image.Exif().tobytes()`` writes it): IFD0 with Make, Model, Software,
Orientation, DateTime and Artist, and an EXIF IFD with ExposureTime, FNumber,
PhotographicSensitivity (ISO), FocalLength, FocalLengthIn35mmFilm,
DateTimeOriginal, LensMake, LensModel and LensSpecification.  Tag numbers and
types follow EXIF 2.32 (CIPA DC-008-2019); rationals are written as Pillow
``IFDRational`` values, unknown LensSpecification entries as 0/0.

It also computes a 35 mm-equivalent focal length where a file records the
focal length but not FocalLengthIn35mmFilm (:func:`crop_factor_from_focal_plane`,
:func:`crop_factor_from_sensor_mm`, :func:`raw_file_crop_factor`).
"""

from __future__ import annotations

import math
import os
import struct
from fractions import Fraction
from typing import Any

from PIL import Image
from PIL.TiffImagePlugin import IFDRational

from rawlab.core.metadata import CaptureInfo, LensInfo
from rawlab.io import tiff_tags as T

__all__ = [
    "build_exif_blob",
    "capture_from_exif_blob",
    "EXIF_HEADER",
    "FULL_FRAME_DIAGONAL_MM",
    "crop_factor_from_focal_plane",
    "crop_factor_from_sensor_mm",
    "raw_file_crop_factor",
]

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


# ------------------------------------------------------- 35 mm-equivalent focal length
#: Diagonal of the 36 x 24 mm frame that 35 mm-equivalent focal lengths refer to
#: (CIPA DC-008 FocalLengthIn35mmFilm: the same angle of view on 35 mm film).
FULL_FRAME_DIAGONAL_MM = math.hypot(36.0, 24.0)
#: FocalPlaneResolutionUnit -> millimetres (EXIF 2.32: 2 inch, 3 centimetre; TIFF/EP: 4 mm, 5 micrometre).
_FOCAL_PLANE_UNIT_MM = {2: 25.4, 3: 10.0, 4: 1.0, 5: 0.001}


def crop_factor_from_sensor_mm(width_mm: float | None, height_mm: float | None) -> float | None:
    """``43.27 mm / diagonal`` of an image area of ``width_mm`` x ``height_mm`` (None when not positive)."""
    if not (width_mm and height_mm and width_mm > 0 and height_mm > 0):
        return None
    if not (math.isfinite(width_mm) and math.isfinite(height_mm)):
        return None
    return FULL_FRAME_DIAGONAL_MM / math.hypot(width_mm, height_mm)


def crop_factor_from_focal_plane(
    *, x_resolution: float | None, y_resolution: float | None, unit: int | None, width_px: float | None,
    height_px: float | None,
) -> float | None:
    """Crop factor from EXIF FocalPlaneXResolution / FocalPlaneYResolution / FocalPlaneResolutionUnit.

    The resolutions are pixels per unit on the focal plane (EXIF 2.32,
    tags 0xA20E-0xA210; unit 2 inch by default) for an image of
    ``width_px`` x ``height_px`` pixels (EXIF PixelX/YDimension, or for a DNG
    its OriginalDefaultFinalSize): the image area is ``width_px / x_resolution``
    units wide.  Returns ``43.27 mm / diagonal`` or None when a value is
    missing, not positive, or the unit is not absolute (1).
    """
    unit = 2 if unit is None else int(unit)
    mm = _FOCAL_PLANE_UNIT_MM.get(unit)
    values = (x_resolution, y_resolution, width_px, height_px)
    if mm is None or not all(v is not None and math.isfinite(v) and v > 0 for v in values):  # type: ignore[operator]
        return None
    return crop_factor_from_sensor_mm(width_px / x_resolution * mm, height_px / y_resolution * mm)  # type: ignore[operator]


def raw_file_crop_factor(path: str | os.PathLike[str], container: str) -> tuple[float | None, float | None]:
    """``(FocalLengthIn35mmFilm, crop factor)`` a camera RAW file records, each None when absent.

    * TIFF-based raws (NEF, CR2, ARW, ...): the EXIF IFD's FocalLengthIn35mmFilm,
      and the crop factor from its focal-plane resolution
      (:func:`crop_factor_from_focal_plane`, with PixelX/YDimension, else the
      first IFD's image size);
    * Canon CIFF (CRW): the sensor size of the FocalLength record (0x5029:
      focal type, focal length, focal-plane X and Y size in 1/1000 inch).

    Reading stays bounded and never fails: a file without the data, or damaged
    there, gives ``(None, None)``.
    """
    try:
        if container.startswith("Canon CIFF"):
            size = _ciff_focal_plane_mm(path)
            return None, (crop_factor_from_sensor_mm(*size) if size else None)
        if container.startswith("TIFF"):
            return _tiff_raw_focal(path)
    except (OSError, ValueError, struct.error, KeyError, IndexError, TypeError, ZeroDivisionError):
        return None, None
    except Exception:  # noqa: BLE001 - a parser's failure on odd metadata must not fail the read
        return None, None
    return None, None


def _tiff_raw_focal(path) -> tuple[float | None, float | None]:
    import tifffile

    def num(v: Any) -> float | None:
        if isinstance(v, tuple) and len(v) == 2:
            return float(v[0]) / float(v[1]) if v[1] else None
        if isinstance(v, tuple):
            v = v[0] if v else None
        return None if v is None else float(v)

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        exif_tag = page.tags.get(T.EXIF_IFD)
        exif = exif_tag.value if exif_tag is not None and isinstance(exif_tag.value, dict) else {}
        f35 = num(exif.get("FocalLengthIn35mmFilm"))
        width = num(exif.get("ExifImageWidth")) or num(exif.get("PixelXDimension")) or float(page.imagewidth)
        height = num(exif.get("ExifImageHeight")) or num(exif.get("PixelYDimension")) or float(page.imagelength)
        crop = crop_factor_from_focal_plane(
            x_resolution=num(exif.get("FocalPlaneXResolution")), y_resolution=num(exif.get("FocalPlaneYResolution")),
            unit=int(num(exif.get("FocalPlaneResolutionUnit")) or 2), width_px=width, height_px=height)
    return (f35 if f35 and f35 > 0 else None), crop


_CIFF_MAX_ENTRIES = 2048
_CIFF_MAX_DEPTH = 6


def _ciff_focal_plane_mm(path) -> tuple[float, float] | None:
    """Focal-plane width and height (mm) from a Canon CIFF file's FocalLength record, or None."""
    with open(path, "rb") as f:
        head = f.read(26)
        if len(head) < 14 or head[6:14] != b"HEAPCCDR":
            return None
        endian = "<" if head[:2] == b"II" else ">"
        (hlen,) = struct.unpack(endian + "I", head[2:6])
        f.seek(0, os.SEEK_END)
        size = f.tell()
        budget = [_CIFF_MAX_ENTRIES]

        def read_at(offset: int, count: int) -> bytes:
            f.seek(offset)
            return f.read(count)

        def heap(start: int, length: int, depth: int) -> tuple[float, float] | None:
            if depth > _CIFF_MAX_DEPTH or length < 6 or start + length > size:
                return None
            (table,) = struct.unpack(endian + "I", read_at(start + length - 4, 4))
            if table + 2 > length:
                return None
            (count,) = struct.unpack(endian + "H", read_at(start + table, 2))
            count = min(count, budget[0], (length - table - 2) // 10)
            budget[0] -= count
            entries = read_at(start + table + 2, 10 * count)
            for i in range(len(entries) // 10):
                entry = entries[10 * i : 10 * i + 10]
                (tag,) = struct.unpack(endian + "H", entry[:2])
                in_record = tag & 0xC000 == 0x4000
                if tag & 0x3FFF == 0x1029 and in_record:  # FocalLength: 4 x uint16 in the record
                    _, _, x_mils, y_mils = struct.unpack(endian + "4H", entry[2:10])
                    if x_mils and y_mils:
                        return x_mils * 0.0254, y_mils * 0.0254
                    return None
                _, rec_size, rec_offset = struct.unpack(endian + "HII", entry)
                if ((tag >> 8) & 0x38) in (0x28, 0x30) and not in_record and rec_offset + rec_size <= length:
                    found = heap(start + rec_offset, rec_size, depth + 1)
                    if found is not None:
                        return found
            return None

        return heap(hlen, size - hlen, 0)
