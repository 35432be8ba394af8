"""Encode a developed frame to JPEG, TIFF, PNG or HEIF, with EXIF and ICC.

This is the only place in rawlab where values are clipped and quantised: a
float32 ``Encoding.RGB`` frame in 0..1 (any primaries; ``Transfer.SRGB`` or
``Transfer.LINEAR``) becomes 8- or 16-bit integers by
``floor(clip(v, 0, 1) * (2**bits - 1) + 0.5)`` (round half up; NaN -> 0).
Linear data are best written as 16-bit TIFF or PNG; 8-bit linear files are
allowed (and correctly tagged) but posterise the shadows.

Every file carries

* the ICC profile of the frame's primaries *and* transfer
  (:func:`rawlab.color.icc.icc_profile`), so a linear 16-bit TIFF or PNG is
  described correctly (its profile has a linear curve);
* EXIF: the tags of the frame's EXIF blob (``frame.exif``), or of one built
  from ``frame.capture`` / ``frame.lens`` when there is none, with Orientation
  set to ``frame.capture.orientation`` (1 after the orientation stage rotated
  the pixels) and the image size and colour space of the output (see
  :func:`output_exif`).  The blob is rebuilt, so a MakerNote (whose internal
  offsets would break) and the source's thumbnail are left out.

Formats
-------
========  ===========  =============================================================
format    bit depth    encoder, metadata
========  ===========  =============================================================
jpeg      8            imagecodecs (libjpeg-turbo); 4:4:4 above quality 90, else
                       4:2:0; EXIF in APP1, ICC in APP2 ``ICC_PROFILE``
png       8, 16        imagecodecs (zlib level 3); ICC in ``iCCP``, EXIF in ``eXIf``
tiff      8, 16 (def.) tifffile, uncompressed RGB; ICC in tag 34675; Make, Model,
                       Software, DateTime, Artist, Copyright, Orientation in IFD0;
                       EXIF and GPS IFDs appended (tifffile does not write them)
heif      8            pillow-heif (x265), ICC and EXIF
========  ===========  =============================================================

Files are written atomically (:func:`rawlab.io.atomic.atomic_write`).
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.errors import InvalidParams, StageError, UnsupportedFile
from rawlab.io import _tiff_ifd as ifd
from rawlab.io.atomic import atomic_write

__all__ = ["write_image", "quantize_unorm", "quantize_unorm_reference", "output_exif", "FORMATS"]

Format = Literal["jpeg", "tiff", "png", "heif"]
#: Accepted file suffixes of each format.
FORMATS: dict[str, tuple[str, ...]] = {
    "jpeg": (".jpg", ".jpeg", ".jpe"),
    "tiff": (".tif", ".tiff"),
    "png": (".png",),
    "heif": (".heic", ".heif", ".hif"),
}
_BIT_DEPTHS = {"jpeg": (8,), "png": (8, 16), "tiff": (8, 16), "heif": (8,)}
_DEFAULT_BITS = {"jpeg": 8, "png": 8, "tiff": 16, "heif": 8}
_PNG_LEVEL = 3
_ORIENTATION = 274
_EXIF_VERSION = 36864
_TIFF_IFD0_TEXT_TAGS = (270, 271, 272, 305, 306, 315, 316, 33432)
_APP1_MAX = 65533
_ICC_CHUNK = 65519


# --- quantisation -------------------------------------------------------------------


@njit(parallel=True, cache=True)
def _quantize_kernel(flat: Any, scale: Any, out: Any) -> None:  # pragma: no cover - compiled
    for i in prange(flat.size):
        v = flat[i] * scale + np.float32(0.5)
        if not v > np.float32(0.0):  # also NaN
            v = np.float32(0.0)
        elif v > scale:
            v = scale
        out[i] = v


def quantize_unorm(
    values: NDArray[np.float32], *, bits: int, scale: float | None = None
) -> NDArray[np.unsignedinteger]:
    """Clip and quantise 0..1 values to unsigned integers (round half up).

    Parameters
    ----------
    values
        float32 array of any shape; values outside 0..1 are clipped, NaN becomes 0.
    bits
        8 (uint8 out) or 16 (uint16 out).
    scale
        Integer value that 1.0 maps to; default ``2**bits - 1``.

    Returns
    -------
    ndarray
        ``floor(clip(values * scale + 0.5, 0, scale))`` as uint8 or uint16, same
        shape.  One parallel pass, no float64 copy.
    """
    if bits not in (8, 16):
        raise ValueError(f"bits must be 8 or 16, got {bits!r}")
    dtype = np.uint8 if bits == 8 else np.uint16
    full = float((1 << bits) - 1) if scale is None else float(scale)
    if not 0 < full <= (1 << bits) - 1:
        raise ValueError(f"scale must be in 1..{(1 << bits) - 1}, got {scale!r}")
    source = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(source.shape, dtype=dtype)
    _quantize_kernel(source.reshape(-1), np.float32(full), out.reshape(-1))
    return out


def quantize_unorm_reference(
    values: NDArray[np.float32], *, bits: int, scale: float | None = None
) -> NDArray[np.unsignedinteger]:
    """NumPy twin of :func:`quantize_unorm` (tests compare the two)."""
    full = np.float32((1 << bits) - 1 if scale is None else scale)
    scaled = np.asarray(values, dtype=np.float32) * full + np.float32(0.5)
    scaled = np.where(np.isnan(scaled), np.float32(0.0), scaled)
    return np.clip(scaled, 0, full).astype(np.uint8 if bits == 8 else np.uint16)


# --- EXIF -------------------------------------------------------------------------------

_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT, _YCBCR_POSITIONING = 282, 283, 296, 531
_COMPONENTS_CONFIGURATION, _FLASHPIX_VERSION, _COLOR_SPACE = 37121, 40960, 40961
_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION = 40962, 40963
_FOCAL_LENGTH_35MM = 0xA405  # FocalLengthIn35mmFilm, SHORT (EXIF 2.32)


def output_exif(frame: Frame, *, width: int, height: int, format: str) -> ifd.ExifContent:  # noqa: A002
    """The EXIF written with ``frame``: IFD0, EXIF and GPS entries.

    Starts from ``frame.exif`` (or, when it is missing or unreadable, a blob
    built from ``frame.capture`` and ``frame.lens``) and keeps its tags except
    the MakerNote, the Interop IFD and the IFD1 thumbnail (which shows the
    undeveloped image).  Sets Orientation to
    ``frame.capture.orientation``, PixelX/YDimension to the image size (not in
    TIFF, where EXIF does not allow them) and
    ColorSpace to 1 (sRGB) for sRGB-encoded sRGB primaries, else 0xFFFF
    (uncalibrated: the ICC profile says what the values are),
    FocalLengthIn35mmFilm to ``frame.capture.focal_length_35mm_mm`` when known
    (a focal-length mode's crop has a longer equivalent than the capture; a
    reader may have computed one the file did not record), and adds the
    tags EXIF 2.32 requires when missing (X/YResolution 72 dpi, ExifVersion
    0232, FlashpixVersion 0100; for JPEG also YCbCrPositioning and
    ComponentsConfiguration).
    """
    content = ifd.parse_exif_blob(frame.exif)
    if not content.ifd0 and not content.exif:  # no blob, or nothing readable in it
        from rawlab.io.exif import build_exif_blob

        content = ifd.parse_exif_blob(build_exif_blob(frame.capture, frame.lens))
    order = content.byteorder
    srgb = frame.primaries is Primaries.SRGB and frame.transfer is Transfer.SRGB
    ifd0_set = [ifd.ints_entry(_ORIENTATION, ifd.SHORT, [int(frame.capture.orientation)], order)]
    ifd0_defaults = [
        ifd.rational_entry(_X_RESOLUTION, [(72, 1)], order),
        ifd.rational_entry(_Y_RESOLUTION, [(72, 1)], order),
        ifd.ints_entry(_RESOLUTION_UNIT, ifd.SHORT, [2], order),
    ]
    exif_set = [ifd.ints_entry(_COLOR_SPACE, ifd.SHORT, [1 if srgb else 0xFFFF], order)]
    f35 = frame.capture.focal_length_35mm_mm
    if f35 is not None and f35 > 0:
        exif_set.append(ifd.ints_entry(_FOCAL_LENGTH_35MM, ifd.SHORT, [min(int(round(f35)), 65535)], order))
    if format == "tiff":  # EXIF 2.32 4.6.5: the pixel dimensions are for compressed files only
        content.exif = [e for e in content.exif if e.tag not in (_PIXEL_X_DIMENSION, _PIXEL_Y_DIMENSION)]
    else:
        exif_set.append(ifd.ints_entry(_PIXEL_X_DIMENSION, ifd.LONG, [width], order))
        exif_set.append(ifd.ints_entry(_PIXEL_Y_DIMENSION, ifd.LONG, [height], order))
    exif_defaults = [
        ifd.undefined_entry(_EXIF_VERSION, b"0232"),
        ifd.undefined_entry(_FLASHPIX_VERSION, b"0100"),
    ]
    if format == "jpeg":
        ifd0_defaults.append(ifd.ints_entry(_YCBCR_POSITIONING, ifd.SHORT, [1], order))
        exif_defaults.append(ifd.undefined_entry(_COMPONENTS_CONFIGURATION, bytes((1, 2, 3, 0))))
    content.ifd0 = ifd.merge_entries(ifd.merge_entries(ifd0_defaults, content.ifd0), ifd0_set)
    content.exif = ifd.merge_entries(ifd.merge_entries(exif_defaults, content.exif), exif_set)
    return content


# --- public entry point ------------------------------------------------------------------


def write_image(
    frame: Frame,
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,  # noqa: A002 - the natural name at the call site
    quality: int = 92,
    bit_depth: int | None = None,
) -> Path:
    """Encode an RGB frame to an image file with its ICC profile and EXIF, atomically.

    Parameters
    ----------
    frame
        ``Encoding.RGB`` frame, float32 ``(H, W, 3)``, values 0..1 in
        ``frame.primaries`` with ``frame.transfer`` (sRGB curve or linear).
    path
        Output file.
    format
        ``"jpeg"``, ``"tiff"``, ``"png"`` or ``"heif"``; ``None`` takes it from
        the suffix (.jpg/.jpeg, .tif/.tiff, .png, .heic/.heif).
    quality
        JPEG/HEIF quality 1..100 (ignored for PNG/TIFF).
    bit_depth
        8 or 16 (PNG, TIFF); ``None`` uses 8 for JPEG/PNG/HEIF and 16 for TIFF.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    StageError
        The frame is not an RGB frame.
    UnsupportedFile
        Unknown format or suffix.
    InvalidParams
        Quality or bit depth out of range for the format.
    RawlabError
        The file cannot be written (missing or read-only folder, disk full).
    """
    target = Path(path)
    where = str(target)
    fmt = _resolve_format(format, target)
    if frame.encoding is not Encoding.RGB or frame.primaries is None:
        raise StageError(
            f"write_image expects an RGB frame with primaries, got {frame.encoding.value}", path=where
        )
    if isinstance(quality, bool) or not isinstance(quality, (int, np.integer)) or not 1 <= quality <= 100:
        raise InvalidParams(f"quality must be an integer in 1..100, got {quality!r}", path=where)
    bits = _DEFAULT_BITS[fmt] if bit_depth is None else bit_depth
    if bits not in _BIT_DEPTHS[fmt]:
        allowed = " or ".join(map(str, _BIT_DEPTHS[fmt]))
        raise InvalidParams(f"{fmt} supports a bit depth of {allowed}, got {bit_depth!r}", path=where)

    from rawlab.color.icc import icc_profile

    icc = icc_profile(frame.primaries, transfer=frame.transfer)
    exif = output_exif(frame, width=frame.width, height=frame.height, format=fmt)
    pixels = quantize_unorm(frame.data, bits=bits)
    with atomic_write(target) as fh:
        _WRITERS[fmt](fh, pixels, icc=icc, exif=exif, quality=int(quality))
    return target


def _resolve_format(format: str | None, target: Path) -> str:  # noqa: A002
    if format is not None:
        name = str(format).lower()
        name = {"jpg": "jpeg", "tif": "tiff", "heic": "heif"}.get(name, name)
        if name not in FORMATS:
            raise UnsupportedFile(
                f"unknown output format {format!r}; expected one of {', '.join(FORMATS)}", path=str(target)
            )
        return name
    suffix = target.suffix.lower()
    for name, suffixes in FORMATS.items():
        if suffix in suffixes:
            return name
    raise UnsupportedFile(
        f"cannot tell the output format from the suffix {suffix or '(none)'!r}; "
        "use .jpg, .tif, .png or .heic",
        path=str(target),
    )


# --- writers ------------------------------------------------------------------------------


def _write_jpeg(
    fh: BinaryIO, pixels: NDArray[np.uint8], *, icc: bytes, exif: ifd.ExifContent, quality: int
) -> None:
    import imagecodecs

    encoded = imagecodecs.jpeg8_encode(pixels, level=quality, subsampling="444" if quality > 90 else "420")
    segments = []
    blob = ifd.encode_exif_blob(exif)
    if len(blob) > _APP1_MAX:  # one APP1 segment only: keep what describes the shot
        exif.ifd0 = [e for e in exif.ifd0 if len(e.data) <= 4096]
        exif.exif = [e for e in exif.exif if len(e.data) <= 4096]
        blob = ifd.encode_exif_blob(exif)
    if len(blob) <= _APP1_MAX:
        segments.append(b"\xff\xe1" + struct.pack(">H", len(blob) + 2) + blob)
    chunks = [icc[i : i + _ICC_CHUNK] for i in range(0, len(icc), _ICC_CHUNK)]
    for number, chunk in enumerate(chunks, 1):
        payload = b"ICC_PROFILE\0" + bytes((number, len(chunks))) + chunk
        segments.append(b"\xff\xe2" + struct.pack(">H", len(payload) + 2) + payload)
    position = 2
    if encoded[2:4] == b"\xff\xe0":  # keep JFIF APP0 first
        position = 4 + struct.unpack(">H", encoded[4:6])[0]
    fh.write(encoded[:position])
    fh.write(b"".join(segments))
    fh.write(memoryview(encoded)[position:])


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def _write_png(
    fh: BinaryIO, pixels: NDArray[np.unsignedinteger], *, icc: bytes, exif: ifd.ExifContent, quality: int
) -> None:
    import imagecodecs

    encoded = imagecodecs.png_encode(pixels, level=_PNG_LEVEL)
    if encoded[12:16] != b"IHDR":  # pragma: no cover - imagecodecs always starts with IHDR
        raise RuntimeError("unexpected PNG stream from the encoder")
    ihdr_end = 8 + 12 + struct.unpack(">I", encoded[8:12])[0]
    extra = _png_chunk(b"iCCP", b"ICC profile\0\0" + zlib.compress(icc))
    extra += _png_chunk(b"eXIf", ifd.encode_exif_blob(exif)[6:])
    fh.write(encoded[:ihdr_end])
    fh.write(extra)
    fh.write(memoryview(encoded)[ihdr_end:])


def _write_tiff(
    fh: BinaryIO, pixels: NDArray[np.unsignedinteger], *, icc: bytes, exif: ifd.ExifContent, quality: int
) -> None:
    import tifffile

    order = "<"
    extratags: list[tuple[int, Any, int, Any, bool]] = []
    for entry in exif.ifd0:
        if entry.tag in _TIFF_IFD0_TEXT_TAGS and entry.type == ifd.ASCII:
            text = entry.data.split(b"\0", 1)[0].decode("ascii", "replace")
            if text:
                extratags.append((entry.tag, "s", 0, text, True))
        elif entry.tag == _ORIENTATION and entry.type == ifd.SHORT and entry.count == 1:
            orientation = struct.unpack(exif.byteorder + "H", entry.data[:2])[0]
            extratags.append((_ORIENTATION, "H", 1, orientation, True))
    subs = {
        ifd.EXIF_IFD_POINTER: ifd.swap_entries(exif.exif, exif.byteorder, order),
        ifd.GPS_IFD_POINTER: ifd.swap_entries(exif.gps, exif.byteorder, order),
    }
    subs = {tag: entries for tag, entries in subs.items() if entries}
    for tag in subs:
        extratags.append((ifd.placeholder_tag(tag), "I", 1, 0, True))  # made a pointer below
    with tifffile.TiffWriter(fh, byteorder=order) as tiff:
        tiff.write(
            pixels,
            photometric="rgb",
            iccprofile=icc,
            extratags=extratags,
            metadata=None,
            software=False,
            resolution=(72.0, 72.0),
            resolutionunit="inch",
        )
    ifd.attach_sub_ifds(fh, subs, order)


def _write_heif(
    fh: BinaryIO, pixels: NDArray[np.uint8], *, icc: bytes, exif: ifd.ExifContent, quality: int
) -> None:
    import pillow_heif

    height, width = pixels.shape[:2]
    heif = pillow_heif.from_bytes(mode="RGB", size=(width, height), data=pixels.tobytes())
    heif.save(fh, quality=quality, icc_profile=icc, exif=ifd.encode_exif_blob(exif))


_WRITERS = {"jpeg": _write_jpeg, "png": _write_png, "tiff": _write_tiff, "heif": _write_heif}
