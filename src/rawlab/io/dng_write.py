"""Write a frame as a DNG 1.4 file (Adobe DNG specification 1.4/1.6, TIFF 6.0).

What is written
---------------
* A CFA frame (``Encoding.CFA``) as a 16-bit CFA raw image (PhotometricInterpretation
  32803, CFARepeatPatternDim / CFAPattern / CFAPlaneColor / CFALayout); a
  LinearRaw frame (``Encoding.CAMERA_RGB``) as 3 samples per pixel
  (PhotometricInterpretation 34892).
* Levels and geometry: BlackLevel (+ BlackLevelRepeatDim), BlackLevelDeltaH/V,
  WhiteLevel, LinearizationTable, ActiveArea, DefaultCropOrigin/Size.  As in the
  DNG (and :mod:`rawlab.io.dng`), the CFA phase, the black pattern, the deltas
  and the crop are relative to the top-left corner of the active area.
* Colour: ColorMatrix1/2, CameraCalibration1/2, ForwardMatrix1/2 (SRATIONAL),
  CalibrationIlluminant1/2, AnalogBalance, AsShotNeutral or AsShotWhiteXY,
  BaselineExposure, NoiseProfile; OpcodeList1/2/3 (via
  :func:`rawlab.io.opcodes.serialize_opcode_list`).
* Description: UniqueCameraModel, Make, Model, Software, Orientation, DateTime,
  Artist, LensInfo, and an EXIF IFD (ExposureTime, FNumber, ISO, FocalLength,
  FocalLengthIn35mmFilm, DateTimeOriginal, LensMake, LensModel,
  LensSpecification; other EXIF tags of ``frame.exif`` are kept).

Sample values
-------------
A frame in DN (white level above 1, as the readers return it) is stored as is,
rounded to integers and limited to 0..65535, with its own black and white
levels.  A *normalised* frame (white level 1, black 0: the output of
``sensor.normalize``, a burst merge or a simulation in relative units) is
scaled to ``bits`` (default 16): sample = round(value * (2**bits - 1)), black 0,
white ``2**bits - 1`` when all values lie in 0..1; when some lie below 0 (noise
around black after a merge) or above 1, an integer pedestal (BlackLevel) and a
smaller scale keep them (see :func:`_normalised_scale`).

Layout
------
With ``preview=False`` IFD0 holds the raw image.  With a preview, IFD0 holds an
8-bit sRGB thumbnail (NewSubfileType 1, long side at most 256 px) and the raw
image is in its SubIFD (NewSubfileType 0), the standard DNG layout.  tifffile
writes the image IFDs; it does not write EXIF IFDs, so the EXIF IFD is
appended afterwards and its pointer patched (see :mod:`rawlab.io._tiff_ifd`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterator, Literal, Sequence

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.errors import InvalidParams, StageError
from rawlab.io import _tiff_ifd as ifd
from rawlab.io import tiff_tags as T
from rawlab.io.atomic import atomic_write

__all__ = ["write_dng", "DNG_VERSION"]

#: DNGVersion written.
DNG_VERSION = (1, 4, 0, 0)
#: Tile size for lossless-JPEG compressed raw data.
LJPEG_TILE_PX = 256
#: Long side of the IFD0 thumbnail.
PREVIEW_LONG_SIDE_PX = 256

_PREVIEW_COLOR_SPACE = 50970
_PREVIEW_COLOR_SPACE_SRGB = 2
_RATIONAL_LIMIT = {False: 2**32 - 1, True: 2**31 - 1}
TagTuple = tuple[int, int | str, int, Any, bool]


def write_dng(
    frame: Frame,
    path: str | os.PathLike[str],
    *,
    compression: Literal["none", "ljpeg"] = "none",
    preview: bool | NDArray[np.uint8] = False,
    bits: int = 16,
) -> Path:
    """Write ``frame`` as a DNG file, atomically.

    Parameters
    ----------
    frame
        ``Encoding.CFA`` (needs ``sensor.cfa``) or ``Encoding.CAMERA_RGB``
        (LinearRaw), in DN or normalised (see the module docstring).
    path
        Output file; written to a temporary file and renamed on success.
    compression
        ``"none"`` (strips) or ``"ljpeg"``: lossless JPEG (ITU-T T.81 process
        14, predictor 1, DNG Compression 7) in 256 x 256 tiles (one strip for
        images narrower than a tile), encoded with imagecodecs (libjpeg-turbo).
    preview
        ``False`` (raw image in IFD0), ``True`` (a rough sRGB thumbnail made
        from the raw data: white balanced by AsShotNeutral, no colour matrix)
        or an ``(h, w, 3)`` uint8 sRGB image to store as the preview.
    bits
        Bit depth (8..16) that a normalised frame is scaled to; ignored for
        frames in DN.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    StageError
        The frame is not a CFA or LinearRaw frame.
    InvalidParams
        A bad argument or metadata that DNG cannot hold (NaN in a matrix,
        delta arrays of the wrong length).
    RawlabError
        The file cannot be written (message names ``path``).
    """
    target = Path(path)
    where = str(target)
    if frame.encoding not in (Encoding.CFA, Encoding.CAMERA_RGB):
        raise StageError(
            f"write_dng expects a CFA or camera_rgb (LinearRaw) frame, got {frame.encoding.value}", path=where
        )
    if frame.encoding is Encoding.CFA and frame.sensor.cfa is None:
        raise StageError("CFA frame without a CFA pattern (sensor.cfa)", path=where)
    if compression not in ("none", "ljpeg"):
        raise InvalidParams(f"compression must be 'none' or 'ljpeg', got {compression!r}", path=where)
    if isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 16:
        raise InvalidParams(f"bits must be an integer in 8..16, got {bits!r}", path=where)

    samples = 1 if frame.encoding is Encoding.CFA else 3
    stored, levels = _stored_samples(frame, bits)
    try:
        raw_tags = _raw_ifd_tags(frame, levels, samples)
        main_tags = _main_ifd_tags(frame, opcodes_present=bool(frame.opcodes))
        exif_entries = _exif_entries(frame)
    except (ValueError, OverflowError) as exc:
        raise InvalidParams(f"cannot store the frame's metadata in a DNG: {exc}", path=where) from None
    preview_rgb8 = _preview_image(frame, preview, stored, levels, where)
    software = frame.capture.software or _default_software()

    with atomic_write(target) as fh:
        import tifffile

        with tifffile.TiffWriter(fh, byteorder="<") as tiff:
            common: dict[str, Any] = {"metadata": None, "software": False, "resolution": None}
            ifd0_text = _text_tags(frame, software)
            photometric = T.PHOTOMETRIC_CFA if samples == 1 else T.PHOTOMETRIC_LINEAR_RAW
            if preview_rgb8 is not None:
                tiff.write(
                    preview_rgb8,
                    photometric="rgb",
                    subfiletype=1,
                    subifds=1,
                    extratags=ifd0_text
                    + main_tags
                    + [(_PREVIEW_COLOR_SPACE, "I", 1, _PREVIEW_COLOR_SPACE_SRGB, True)],
                    **common,
                )
                _write_raw(tiff, stored, photometric, compression, raw_tags, common)
            else:
                _write_raw(tiff, stored, photometric, compression, ifd0_text + main_tags + raw_tags, common)
        ifd.attach_sub_ifds(fh, {T.EXIF_IFD: exif_entries}, "<")
        if preview_rgb8 is not None:  # tifffile types SubIFDs as IFD (13); LONG is what readers expect
            ifd.retype_ifd0_tag(fh, T.SUB_IFDS, ifd.LONG, "<")
    return target


# --- sample values -------------------------------------------------------------


@dataclass(frozen=True)
class _Levels:
    """The levels that go with the stored samples (DNG units)."""

    black: NDArray[np.float64]  #: (rows, cols, samples) pattern
    delta_h: NDArray[np.float64] | None
    delta_v: NDArray[np.float64] | None
    white: NDArray[np.float64]  #: one per sample
    table: NDArray[np.float64] | None


def _stored_samples(frame: Frame, bits: int) -> tuple[NDArray[np.uint16], _Levels]:
    sensor = frame.sensor
    samples = 1 if frame.encoding is Encoding.CFA else 3
    white = np.asarray(sensor.white_level_dn, dtype=np.float64).reshape(-1)
    if white.size == 1:
        white = np.repeat(white, samples)
    black = np.asarray(sensor.black_level_dn, dtype=np.float64)
    if black.shape[2] == 1 and samples > 1:
        black = np.repeat(black, samples, axis=2)
    if np.all(white <= 1.0):
        from rawlab.io.encode import quantize_unorm

        full = (1 << bits) - 1
        scale, pedestal = _normalised_scale(frame.data, full)
        if pedestal == 0 and scale == full:
            stored = quantize_unorm(frame.data, bits=16, scale=float(full))
        else:
            shifted = frame.data * np.float32(scale / full) + np.float32(pedestal / full)
            stored = quantize_unorm(shifted, bits=16, scale=float(full))
        return stored, _Levels(
            np.full((1, 1, samples), float(pedestal)), None, None, np.full(samples, float(pedestal + scale)), None
        )
    values = frame.data
    stored = np.empty(values.shape, dtype=np.uint16)
    clean = np.nan_to_num(values, nan=0.0, posinf=65535.0, neginf=0.0)
    np.rint(np.clip(clean, 0.0, 65535.0, out=clean), out=clean)
    stored[...] = clean
    return stored, _Levels(
        black, sensor.black_level_delta_h_dn, sensor.black_level_delta_v_dn, white, sensor.linearization_table
    )


#: Range of normalised values a DNG keeps (beyond it, values are limited).
NORMALISED_RANGE = (-1.0, 64.0)


def _normalised_scale(data: NDArray[np.float32], full: int) -> tuple[int, int]:
    """``(scale, pedestal)``: stored sample = ``round(value * scale + pedestal)``.

    ``(full, 0)`` when every finite value lies in 0..1.  Otherwise the range
    ``[min(0, lo), max(1, hi)]`` of the data (limited to
    :data:`NORMALISED_RANGE`) is mapped onto ``0..full`` with an integer scale
    and an integer pedestal (the DNG BlackLevel; WhiteLevel is ``pedestal +
    scale``), so that noise below black (a burst merge, a simulation) and
    values above white survive the file instead of being clipped.
    """
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return full, 0
    lo = max(min(0.0, float(finite.min())), NORMALISED_RANGE[0])
    hi = min(max(1.0, float(finite.max())), NORMALISED_RANGE[1])
    if lo == 0.0 and hi == 1.0:
        return full, 0
    scale = int(np.floor(full / (hi - lo)))
    pedestal = int(np.ceil(-lo * scale))
    while pedestal + hi * scale > full:  # rounding of the pedestal
        scale -= 1
        pedestal = int(np.ceil(-lo * scale))
    return scale, pedestal


def _default_software() -> str:
    from rawlab import __version__

    return f"rawlab {__version__}"


# --- tags ------------------------------------------------------------------------


def _rational(value: float, *, signed: bool) -> tuple[int, int]:
    """Nearest fraction whose numerator and denominator fit the TIFF type."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"non-finite value {value}")
    if not signed and value < 0:
        raise ValueError(f"negative value {value} for an unsigned rational")
    limit = _RATIONAL_LIMIT[signed]
    if abs(value) > limit:
        raise ValueError(f"value {value} out of range")
    if value == int(value):
        return int(value), 1
    fraction = Fraction(value).limit_denominator(max(1, min(limit, int(limit / max(abs(value), 1.0)))))
    return fraction.numerator, fraction.denominator


def _rationals(values: Any, *, signed: bool) -> tuple[int, ...]:
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if flat.size > 64:  # long arrays (black deltas): a fixed denominator, vectorised
        if not np.all(np.isfinite(flat)):
            raise ValueError("non-finite value")
        denominator = 1 if np.all(flat == np.round(flat)) else 1 << 16
        numerators = np.round(flat * denominator)
        if np.any(np.abs(numerators) > _RATIONAL_LIMIT[signed]) or (not signed and np.any(numerators < 0)):
            raise ValueError("value out of range for a rational")
        pairs = np.stack([numerators, np.full_like(numerators, denominator)], -1).astype(np.int64)
        return tuple(pairs.reshape(-1).tolist())
    out: list[int] = []
    for v in flat:
        out.extend(_rational(v, signed=signed))
    return tuple(out)


def _tag_rational(code: int, values: Any, *, signed: bool) -> TagTuple:
    pairs = _rationals(values, signed=signed)
    return (code, "2i" if signed else "2I", len(pairs) // 2, pairs, True)


def _tag_ints(code: int, values: Sequence[int], kind: str = "I") -> TagTuple:
    values = tuple(int(v) for v in values)
    return (code, kind, len(values), values if len(values) > 1 else values[0], True)


def _tag_levels(code: int, values: NDArray[np.float64]) -> TagTuple:
    """SHORT/LONG for integral levels, RATIONAL otherwise (DNG allows all three)."""
    flat = np.asarray(values, dtype=np.float64).reshape(-1)
    if np.all(flat == np.round(flat)) and np.all(flat >= 0) and np.all(flat <= 2**32 - 1):
        return _tag_ints(code, flat.astype(np.int64).tolist(), "H" if np.all(flat <= 65535) else "I")
    return _tag_rational(code, flat, signed=False)


def _text_tags(frame: Frame, software: str) -> list[TagTuple]:
    capture = frame.capture
    tags: list[TagTuple] = []
    for code, text in (
        (T.MAKE, capture.make),
        (T.MODEL, capture.model),
        (T.SOFTWARE, software),
        (T.DATE_TIME, capture.datetime_original),
        (T.ARTIST, capture.artist),
    ):
        clean = _ascii(text)
        if clean:
            tags.append((code, "s", 0, clean, True))
    tags.append((T.ORIENTATION, "H", 1, int(capture.orientation), True))
    return tags


def _ascii(text: str | None) -> str | None:
    if not text:
        return None
    clean = text.encode("ascii", "replace").decode("ascii").replace("\0", "").strip()
    return clean or None


def _unique_camera_model(frame: Frame) -> str:
    capture = frame.capture
    name = capture.unique_camera_model or " ".join(p for p in (capture.make, capture.model) if p)
    return _ascii(name) or "rawlab camera"


def _main_ifd_tags(frame: Frame, *, opcodes_present: bool) -> list[TagTuple]:
    """Tags that belong in IFD0: version, camera identity and colour."""
    color = frame.color
    backward = (1, 3, 0, 0) if opcodes_present else (1, 1, 0, 0)
    tags: list[TagTuple] = [
        (T.DNG_VERSION, "B", 4, DNG_VERSION, True),
        (T.DNG_BACKWARD_VERSION, "B", 4, backward, True),
        (T.UNIQUE_CAMERA_MODEL, "s", 0, _unique_camera_model(frame), True),
    ]
    for code, matrix in (
        (T.COLOR_MATRIX_1, color.M_XYZ_to_camera_1),
        (T.COLOR_MATRIX_2, color.M_XYZ_to_camera_2),
        (T.CAMERA_CALIBRATION_1, color.M_camera_calibration_1),
        (T.CAMERA_CALIBRATION_2, color.M_camera_calibration_2),
        (T.FORWARD_MATRIX_1, color.M_forward_1),
        (T.FORWARD_MATRIX_2, color.M_forward_2),
    ):
        if matrix is not None:
            tags.append(_tag_rational(code, matrix, signed=True))
    for code, illuminant in (
        (T.CALIBRATION_ILLUMINANT_1, color.illuminant_1),
        (T.CALIBRATION_ILLUMINANT_2, color.illuminant_2),
    ):
        if illuminant is not None:
            tags.append((code, "H", 1, int(illuminant), True))
    if color.analog_balance is not None:
        tags.append(_tag_rational(T.ANALOG_BALANCE, color.analog_balance, signed=False))
    if color.as_shot_neutral is not None:
        tags.append(_tag_rational(T.AS_SHOT_NEUTRAL, color.as_shot_neutral, signed=False))
    elif color.as_shot_white_xy is not None:
        tags.append(_tag_rational(T.AS_SHOT_WHITE_XY, color.as_shot_white_xy, signed=False))
    if color.baseline_exposure_ev != 0.0:
        tags.append(_tag_rational(T.BASELINE_EXPOSURE, [color.baseline_exposure_ev], signed=True))
    lens = frame.lens
    if lens is not None and lens.focal_min_mm and lens.focal_max_mm:
        spec = [
            lens.focal_min_mm,
            lens.focal_max_mm,
            lens.f_number_min_at_min_focal,
            lens.f_number_min_at_max_focal,
        ]
        pairs: list[int] = []
        for value in spec:
            pairs.extend((0, 0) if value is None else _rational(value, signed=False))
        tags.append((T.LENS_INFO, "2I", 4, tuple(pairs), True))
    tags.append((ifd.placeholder_tag(T.EXIF_IFD), "I", 1, 0, True))  # made a pointer after writing
    return tags


def _raw_ifd_tags(frame: Frame, levels: _Levels, samples: int) -> list[TagTuple]:
    """Tags that belong in the raw IFD: CFA layout, levels, geometry, opcodes, noise."""
    sensor = frame.sensor
    tags: list[TagTuple] = []
    if samples == 1:
        cfa = sensor.cfa
        assert cfa is not None
        rows, cols = cfa.shape
        tags += [
            (T.CFA_REPEAT_PATTERN_DIM, "H", 2, (rows, cols), True),
            (T.CFA_PATTERN, "B", rows * cols, tuple(c for row in cfa.pattern for c in row), True),
            (T.CFA_PLANE_COLOR, "B", 3, (0, 1, 2), True),
            (T.CFA_LAYOUT, "H", 1, T.CFA_LAYOUT_RECTANGULAR, True),
        ]
    if levels.table is not None:
        table = np.asarray(levels.table, dtype=np.float64)
        if np.any(table < 0) or np.any(table > 65535) or np.any(table != np.round(table)):
            raise ValueError("LinearizationTable values must be integers in 0..65535")
        tags.append((T.LINEARIZATION_TABLE, "H", table.size, tuple(table.astype(np.int64).tolist()), True))
    black = levels.black
    if black.shape[:2] != (1, 1):
        tags.append((T.BLACK_LEVEL_REPEAT_DIM, "H", 2, (black.shape[0], black.shape[1]), True))
    tags.append(_tag_levels(T.BLACK_LEVEL, black))
    height, width = frame.data.shape[:2]
    top, left, bottom, right = sensor.active_area or (0, 0, height, width)
    for code, delta, size, name in (
        (T.BLACK_LEVEL_DELTA_H, levels.delta_h, right - left, "BlackLevelDeltaH"),
        (T.BLACK_LEVEL_DELTA_V, levels.delta_v, bottom - top, "BlackLevelDeltaV"),
    ):
        if delta is not None:
            if np.asarray(delta).size != size:
                raise ValueError(f"{name} has {np.asarray(delta).size} values, the active area needs {size}")
            tags.append(_tag_rational(code, delta, signed=True))
    tags.append(_tag_levels(T.WHITE_LEVEL, levels.white))
    if sensor.active_area is not None:
        if not (0 <= top < bottom <= height and 0 <= left < right <= width):
            raise ValueError(f"active area {sensor.active_area} outside the {width}x{height} image")
        tags.append(_tag_ints(T.ACTIVE_AREA, (top, left, bottom, right), "I"))
    if sensor.crop_px is not None:
        crop_top, crop_left, crop_h, crop_w = sensor.crop_px
        tags.append(_tag_ints(T.DEFAULT_CROP_ORIGIN, (crop_left, crop_top), "I"))
        tags.append(_tag_ints(T.DEFAULT_CROP_SIZE, (crop_w, crop_h), "I"))
    if frame.opcodes:
        from rawlab.io.opcodes import serialize_opcode_list

        for index, code in T.OPCODE_LIST_TAGS.items():
            ops = [op for op in frame.opcodes if op.list_index == index]
            if ops:
                data = serialize_opcode_list(ops)
                tags.append((code, 7, len(data), data, True))
    if sensor.noise_profile is not None:
        values = [v for pair in sensor.noise_profile for v in pair]
        if not all(math.isfinite(v) for v in values):
            raise ValueError("NoiseProfile holds a non-finite value")
        tags.append((T.NOISE_PROFILE, "d", len(values), tuple(values), True))
    return tags


def _exif_entries(frame: Frame) -> list[ifd.Entry]:
    """EXIF IFD: the source blob's EXIF tags, overridden by those built from capture/lens."""
    from rawlab.io.exif import build_exif_blob

    built = ifd.parse_exif_blob(build_exif_blob(frame.capture, frame.lens))
    entries = ifd.swap_entries(built.exif, built.byteorder, "<")
    if frame.exif:
        source = ifd.parse_exif_blob(frame.exif)
        entries = ifd.merge_entries(ifd.swap_entries(source.exif, source.byteorder, "<"), entries)
    if not any(e.tag == 36864 for e in entries):  # ExifVersion, mandatory in an EXIF IFD
        entries.append(ifd.undefined_entry(36864, b"0232"))
    return sorted(entries, key=lambda e: e.tag)


# --- writing -----------------------------------------------------------------------


def _write_raw(
    tiff: Any,
    stored: NDArray[np.uint16],
    photometric: int,
    compression: str,
    tags: list[TagTuple],
    common: dict[str, Any],
) -> None:
    if compression == "none":
        tiff.write(stored, photometric=photometric, subfiletype=0, extratags=tags, **common)
        return
    height, width = stored.shape[:2]
    layout: dict[str, Any]
    if width >= LJPEG_TILE_PX:
        layout = {"tile": (LJPEG_TILE_PX, LJPEG_TILE_PX)}
        segments = _ljpeg_tiles(stored, LJPEG_TILE_PX)
    else:  # LibRaw misreads tiles wider than the image: one strip instead
        layout = {"rowsperstrip": height}
        segments = iter([_ljpeg(stored)])
    tiff.write(
        segments,
        shape=stored.shape,
        dtype=np.uint16,
        compression=T.COMPRESSION_JPEG,
        bitspersample=16,
        photometric=photometric,
        planarconfig="contig" if stored.ndim == 3 else None,
        subfiletype=0,
        extratags=tags,
        **layout,
        **common,
    )


def _ljpeg(block: NDArray[np.uint16]) -> bytes:
    """Lossless JPEG (SOF3, predictor 1, 16-bit precision), as Adobe's DNG converter
    writes it; predictor 1 is the one every DNG reader supports (rawspeed only that)."""
    import imagecodecs

    encoded = bytes(
        imagecodecs.jpeg8_encode(np.ascontiguousarray(block), lossless=True, predictor=1, bitspersample=16)
    )
    if encoded[2:4] == b"\xff\xe0":  # drop the JFIF APP0 segment, meaningless for raw data
        encoded = encoded[:2] + encoded[4 + int.from_bytes(encoded[4:6], "big") :]
    return encoded


def _ljpeg_tiles(stored: NDArray[np.uint16], tile: int) -> Iterator[bytes]:
    """Lossless JPEG tiles in row-major order, encoded on all cores (the encoder
    releases the GIL); edge tiles are padded by repeating the last row/column."""
    from concurrent.futures import ThreadPoolExecutor

    height, width = stored.shape[:2]

    def block(origin: tuple[int, int]) -> bytes:
        y, x = origin
        part = stored[y : y + tile, x : x + tile]
        if part.shape[:2] != (tile, tile):
            pad = ((0, tile - part.shape[0]), (0, tile - part.shape[1])) + ((0, 0),) * (part.ndim - 2)
            part = np.pad(part, pad, mode="edge")
        return _ljpeg(part)

    origins = [(y, x) for y in range(0, height, tile) for x in range(0, width, tile)]
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield from pool.map(block, origins)


# --- preview ------------------------------------------------------------------------


def _preview_image(
    frame: Frame, preview: bool | NDArray[np.uint8], stored: NDArray[np.uint16], levels: _Levels, where: str
) -> NDArray[np.uint8] | None:
    if preview is False or preview is None:
        return None
    if preview is True:
        return _thumbnail_srgb8(frame, stored, levels)
    image = np.asarray(preview)
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or min(image.shape[:2]) < 1:
        raise InvalidParams(
            f"preview must be True, False or an (h, w, 3) uint8 image, got {image.dtype} {image.shape}",
            path=where,
        )
    return np.ascontiguousarray(image)


def _thumbnail_srgb8(frame: Frame, stored: NDArray[np.uint16], levels: _Levels) -> NDArray[np.uint8]:
    """A rough preview: per-colour means over CFA cells, black/white, AsShotNeutral, sRGB curve."""
    import cv2

    sensor = frame.sensor
    height, width = stored.shape[:2]
    top, left, bottom, right = sensor.active_area or (0, 0, height, width)
    active = stored[top:bottom, left:right].astype(np.float32)
    black = levels.black.mean(axis=(0, 1)).astype(np.float32)
    span = np.maximum(levels.white.astype(np.float32) - black, 1.0)
    if active.ndim == 2:
        cfa = sensor.cfa
        assert cfa is not None
        ry, rx = cfa.shape
        h, w = (active.shape[0] // ry) * ry, (active.shape[1] // rx) * rx
        if h == 0 or w == 0:  # smaller than one CFA cell: grey
            rgb = np.repeat(((active - black[0]) / span[0])[:, :, None], 3, axis=2)
        else:
            cells = active[:h, :w].reshape(h // ry, ry, w // rx, rx)
            rgb = np.empty((h // ry, w // rx, 3), np.float32)
            for c in range(3):
                mask = (cfa.as_array() == c).astype(np.float32)
                rgb[..., c] = np.einsum("iyjx,yx->ij", cells, mask) / max(float(mask.sum()), 1.0)
            rgb = (rgb - black[0]) / span[0]
    else:
        rgb = (active - black) / span
    neutral = frame.color.as_shot_neutral
    if neutral is not None and np.all(np.asarray(neutral) > 0):
        rgb = rgb / np.asarray(neutral, dtype=np.float32).reshape(1, 1, 3)
    scale = PREVIEW_LONG_SIDE_PX / max(rgb.shape[:2])
    if scale < 1:
        size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    rgb = np.clip(rgb, 0.0, 1.0)
    encoded = np.where(rgb <= 0.0031308, 12.92 * rgb, 1.055 * np.power(rgb, 1 / 2.4) - 0.055)
    return np.ascontiguousarray(np.floor(encoded * 255.0 + 0.5).astype(np.uint8))
