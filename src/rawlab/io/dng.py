"""Read DNG files (Adobe DNG specification 1.6) into a :class:`~rawlab.core.frame.Frame`.

The raw image is the IFD, among IFD0 and its SubIFDs, whose NewSubfileType is 0
and whose PhotometricInterpretation is CFA (32803) or LinearRaw (34892); previews
are ignored.  Pixels are decoded with tifffile and imagecodecs (uncompressed
8-32 bit, packed odd bit depths, lossless JPEG, lossy JPEG; strips or tiles).

What the frame holds
--------------------
* ``data``: the whole stored raw array in digital numbers (DN) as float32,
  ``(H, W)`` for a CFA image (``Encoding.CFA``) or ``(H, W, 3)`` for LinearRaw
  (``Encoding.CAMERA_RGB``).  Nothing is linearised, black-subtracted, scaled
  or cropped here; that is the job of ``sensor.normalize``.
* ``sensor``: as in the DNG, everything that describes the image content is
  relative to the top-left corner of the *active area*: the CFA pattern phase,
  the black level pattern, BlackLevelDeltaH/V (one value per active column /
  row) and the default crop.  ``sensor.active_area`` is ``None`` when the
  active area is the whole stored array.
* ``clip_level``: WhiteLevel per colour, in DN (LinearizationTable output units
  when the file has a table, as the DNG defines WhiteLevel).
* ``color``, ``capture``, ``lens``, ``opcodes`` and an EXIF blob for the encoder.

Safety: sizes, bit depths, strip/tile offsets and byte counts (and the frame
headers of JPEG segments) are checked against the file size and ``max_pixels``
before anything is decoded, so a hostile header cannot make the reader
allocate more than the limit.  Every failure is a
:class:`~rawlab.errors.RawlabError` with a one-line message and the path.
The file is opened read-only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import stat
import struct
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, LensInfo, SensorInfo
from rawlab.core.opcodes import Opcode
from rawlab.errors import CorruptFile, LimitExceeded, RawlabError, UnsupportedFile
from rawlab.io import tiff_tags as T
from rawlab.io.exif import build_exif_blob
from rawlab.io.opcodes import parse_opcode_list

__all__ = ["read_dng", "read_dng_metadata", "DngMetadata", "DEFAULT_MAX_PIXELS"]

#: Largest image (width x height) read by default: 400 megapixels.
DEFAULT_MAX_PIXELS = 400_000_000
#: SubIFDs of IFD0 searched for the raw image.
_MAX_SUBIFDS = 16
#: Largest CFA or black level repeat pattern accepted (X-Trans is 6x6).
_MAX_REPEAT = 16
#: Bytes read from the start of a JPEG segment to find its frame header.
_JPEG_HEADER_PROBE = 65536

_SUPPORTED_COMPRESSION = {
    T.COMPRESSION_NONE: "uncompressed",
    T.COMPRESSION_JPEG: "JPEG",
    T.COMPRESSION_LOSSY_JPEG: "lossy JPEG",
}
_JPEG_COMPRESSION = {T.COMPRESSION_JPEG, T.COMPRESSION_LOSSY_JPEG}


@dataclass(frozen=True, slots=True, eq=False)
class DngMetadata:
    """Everything :func:`read_dng` knows about a DNG before decoding its pixels.

    Attributes
    ----------
    path
        The file.
    dng_version
        DNGVersion, e.g. ``(1, 4, 0, 0)``.
    raw_ifd
        Where the raw image is: ``"IFD0"`` or ``"SubIFD n"``.
    width, height, samples_per_pixel, bits_per_sample
        Geometry of the stored raw array.
    compression, photometric
        TIFF Compression and PhotometricInterpretation codes of the raw IFD.
    tiled, segment_count
        Tiles or strips, and how many.
    encoding
        ``Encoding.CFA`` or ``Encoding.CAMERA_RGB`` (LinearRaw).
    clip_level
        White level per colour in DN (3 values).
    sensor, color, capture, lens, opcodes, exif
        As they will be in the frame.
    """

    path: str
    dng_version: tuple[int, int, int, int]
    raw_ifd: str
    width: int
    height: int
    samples_per_pixel: int
    bits_per_sample: int
    compression: int
    photometric: int
    tiled: bool
    segment_count: int
    encoding: Encoding
    clip_level: NDArray[np.float32]
    sensor: SensorInfo
    color: ColorCalibration
    capture: CaptureInfo
    lens: LensInfo | None
    opcodes: tuple[Opcode, ...]
    exif: bytes | None

    @property
    def compression_name(self) -> str:
        """A word for the compression (``"lossless JPEG"``, ``"uncompressed"``, ...)."""
        return _SUPPORTED_COMPRESSION.get(self.compression, f"compression {self.compression}")


# ---------------------------------------------------------------------------
# public entry points
# ---------------------------------------------------------------------------


def read_dng_metadata(path: str | os.PathLike) -> DngMetadata:
    """Read a DNG's metadata without decoding its pixels.

    Parameters
    ----------
    path
        The DNG file (opened read-only).

    Returns
    -------
    DngMetadata

    Raises
    ------
    UnsupportedFile, CorruptFile, RawlabError
        Not a DNG, a kind of DNG rawlab does not read, or a damaged one.
    """
    name = os.fspath(path)
    with _open_dng(name) as (tiff, ifd0, page, raw_ifd):
        with _guard(name, "cannot read the DNG tags"):
            return _metadata(name, tiff, ifd0, page, raw_ifd)


def read_dng(path: str | os.PathLike, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Frame:
    """Read a DNG file into a raw frame.

    Parameters
    ----------
    path
        The DNG file (opened read-only, never modified).
    max_pixels
        Refuse images with more pixels (width x height) than this.

    Returns
    -------
    Frame
        ``Encoding.CFA`` with ``(H, W)`` float32 DN for a CFA DNG, or
        ``Encoding.CAMERA_RGB`` with ``(H, W, 3)`` float32 DN for a LinearRaw
        DNG; the whole stored array (see the module notes for what is relative
        to the active area).  Values are the stored integers, 0 .. 2**bits - 1.

    Raises
    ------
    UnsupportedFile
        Not a DNG, or a DNG rawlab does not read (non-RGB CFA, 4-sample
        LinearRaw, floating point, unsupported compression).
    CorruptFile
        Damaged or inconsistent file, truncated pixel data, broken opcode list.
    LimitExceeded
        The image is larger than ``max_pixels``.
    """
    name = os.fspath(path)
    with _open_dng(name) as (tiff, ifd0, page, raw_ifd):
        with _guard(name, "cannot read the DNG tags"):
            meta = _metadata(name, tiff, ifd0, page, raw_ifd)
        _check_segments(name, tiff, page, meta, max_pixels=max_pixels)
        with _guard(name, "cannot decode the raw image"):
            stored = page.asarray()
    expected = (meta.height, meta.width) + ((3,) if meta.encoding is Encoding.CAMERA_RGB else ())
    if stored.shape != expected:
        raise CorruptFile(
            f"decoded raw image has shape {stored.shape}, the tags declare {expected}", path=name
        )
    data = np.ascontiguousarray(stored, dtype=np.float32)
    del stored
    return Frame(
        data=data,
        encoding=meta.encoding,
        clip_level=meta.clip_level,
        sensor=meta.sensor,
        color=meta.color,
        capture=meta.capture,
        lens=meta.lens,
        opcodes=meta.opcodes,
        exif=meta.exif,
    )


# ---------------------------------------------------------------------------
# opening and guarding
# ---------------------------------------------------------------------------


class _DropAll(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:  # noqa: A003 - logging API
        return False


@contextlib.contextmanager
def _quiet_tifffile() -> Iterator[None]:
    """Silence tifffile's log messages: problems surface as our own errors."""
    logger = logging.getLogger("tifffile")
    drop = _DropAll()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@contextlib.contextmanager
def _guard(path: str, what: str) -> Iterator[None]:
    """Turn any non-rawlab exception raised inside into a one-line CorruptFile."""
    try:
        yield
    except RawlabError:
        raise
    except MemoryError:
        raise LimitExceeded(f"{what}: out of memory", path=path) from None
    except Exception as exc:  # tifffile, imagecodecs, struct, numpy: all mean a bad file here
        raise CorruptFile(f"{what}: {type(exc).__name__}: {_one_line(exc)}", path=path) from exc


def _sniff(path: str) -> None:
    """Check that ``path`` is a readable, non-empty file with a TIFF header."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise RawlabError(f"cannot open: {exc.strerror or _one_line(exc)}", path=path) from None
    if not stat.S_ISREG(info.st_mode):
        raise RawlabError("cannot open: not a regular file", path=path)
    if info.st_size == 0:
        raise CorruptFile("empty file (0 bytes)", path=path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise RawlabError(f"cannot open: {exc.strerror or _one_line(exc)}", path=path) from None
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        if len(head) < 8:
            raise CorruptFile(f"truncated TIFF header ({len(head)} bytes)", path=path)
        return
    if head.startswith(b"\xff\xd8\xff"):
        kind = "a JPEG image"
    elif head.startswith(b"\x89PNG\r\n\x1a\n"):
        kind = "a PNG image"
    elif head[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypcrx "):
        kind = "an ISO media (HEIF/CR3) file"
    elif head[:2] == b"II" and head[6:14] == b"HEAPCCDR":
        kind = "a Canon CRW file"
    else:
        kind = f"a file without a TIFF header (starts with {head[:8].hex()})"
    raise UnsupportedFile(f"not a DNG: this is {kind}", path=path)


@contextlib.contextmanager
def _open_dng(path: str) -> Iterator[tuple[Any, Any, Any, str]]:
    """Open a DNG read-only; yield (TiffFile, IFD0 page, raw page, raw IFD name)."""
    import tifffile

    _sniff(path)
    with _quiet_tifffile():
        with _guard(path, "not a readable TIFF/DNG"):
            tiff = tifffile.TiffFile(path, mode="rb")
        try:
            with _guard(path, "not a readable TIFF/DNG (IFD0)"):
                try:
                    ifd0 = tiff.pages.first
                except IndexError:
                    raise CorruptFile("not a readable TIFF/DNG: no valid IFD0", path=path) from None
                is_dng = ifd0.tags.get(T.DNG_VERSION) is not None
            if not is_dng:
                raise UnsupportedFile("a TIFF file without DNGVersion, not a DNG", path=path)
            page, raw_ifd = _find_raw_ifd(path, ifd0)
            yield tiff, ifd0, page, raw_ifd
        finally:
            tiff.close()


def _find_raw_ifd(path: str, ifd0: Any) -> tuple[Any, str]:
    """The raw image IFD: NewSubfileType 0 and CFA or LinearRaw photometric."""
    candidates: list[tuple[Any, str]] = [(ifd0, "IFD0")]
    with _guard(path, "cannot read the SubIFDs"):
        subifds = ifd0.pages if ifd0.tags.get(T.SUB_IFDS) is not None else None
        count = 0 if subifds is None else min(len(subifds), _MAX_SUBIFDS)
    other_main: tuple[Any, str, int] | None = None
    for index in range(-1, count):
        if index >= 0:
            with _guard(path, f"cannot read SubIFD {index}"):
                candidates.append((subifds[index], f"SubIFD {index}"))
        page, name = candidates[-1]
        with _guard(path, f"cannot read {name}"):
            subfile_type = int(page.tags.valueof(T.NEW_SUBFILE_TYPE, 0))
            photometric = int(page.tags.valueof(T.PHOTOMETRIC_INTERPRETATION, -1))
        if subfile_type != 0:
            continue
        if photometric in (T.PHOTOMETRIC_CFA, T.PHOTOMETRIC_LINEAR_RAW):
            return page, name
        if other_main is None:
            other_main = (page, name, photometric)
    if other_main is not None:
        raise UnsupportedFile(
            f"the main image ({other_main[1]}) has PhotometricInterpretation {other_main[2]}, "
            "neither CFA (32803) nor LinearRaw (34892)",
            path=path,
        )
    raise CorruptFile("no raw image: no IFD with NewSubfileType 0 in IFD0 or its SubIFDs", path=path)


# ---------------------------------------------------------------------------
# tag values
# ---------------------------------------------------------------------------


class _Tags:
    """Typed access to the tags of the raw IFD (and IFD0 for camera-level tags)."""

    def __init__(self, path: str, raw: Any, ifd0: Any) -> None:
        self.path = path
        self.raw = raw
        self.ifd0 = ifd0

    def _tag(self, code: int, where: str) -> Any:
        pages = {"raw": (self.raw,), "ifd0": (self.ifd0,), "raw+ifd0": (self.raw, self.ifd0)}[where]
        for page in pages:
            tag = page.tags.get(code)
            if tag is not None:
                return tag
        return None

    def _fail(self, code: int, message: str) -> CorruptFile:
        import tifffile

        name = tifffile.TIFF.TAGS.get(code, f"tag {code}")
        return CorruptFile(f"{name}: {message}", path=self.path)

    def floats(self, code: int, where: str = "raw") -> NDArray[np.float64] | None:
        """Values of a numeric tag as float64 (rationals divided; x/0 is NaN)."""
        tag = self._tag(code, where)
        if tag is None:
            return None
        value = tag.value
        if value is None:
            raise self._fail(code, "value lies outside the file")
        if isinstance(value, str):
            raise self._fail(code, f"expected numbers, got text {value[:40]!r}")
        if isinstance(value, (bytes, bytearray)):
            return np.frombuffer(value, dtype=np.uint8).astype(np.float64)
        array = np.asarray(value, dtype=np.float64).reshape(-1)
        if int(tag.dtype) in (5, 10):  # RATIONAL, SRATIONAL: (num, den) pairs
            if array.size % 2:
                raise self._fail(code, "odd number of rational parts")
            num, den = array[0::2], array[1::2]
            with np.errstate(divide="ignore", invalid="ignore"):
                array = np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)
        return array

    def ints(self, code: int, where: str = "raw") -> NDArray[np.int64] | None:
        array = self.floats(code, where)
        if array is None:
            return None
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise self._fail(code, "expected whole numbers")
        return array.astype(np.int64)

    def int1(self, code: int, where: str = "raw", default: int | None = None) -> int | None:
        array = self.ints(code, where)
        if array is None or array.size == 0:
            return default
        return int(array[0])

    def float1(self, code: int, where: str = "raw") -> float | None:
        array = self.floats(code, where)
        if array is None or array.size == 0 or not np.isfinite(array[0]):
            return None
        return float(array[0])

    def raw_bytes(self, code: int, where: str = "raw") -> bytes | None:
        tag = self._tag(code, where)
        if tag is None:
            return None
        value = tag.value
        if value is None:
            raise self._fail(code, "value lies outside the file")
        if isinstance(value, (bytes, bytearray)):
            return bytes(value)
        if isinstance(value, np.ndarray):
            return value.astype(np.uint8).tobytes()
        if isinstance(value, (tuple, list)):
            return bytes(int(v) & 0xFF for v in value)
        if isinstance(value, int):
            return bytes([value & 0xFF])
        raise self._fail(code, f"expected bytes, got {type(value).__name__}")

    def text(self, code: int, where: str = "raw+ifd0") -> str | None:
        tag = self._tag(code, where)
        if tag is None:
            return None
        value = tag.value
        if isinstance(value, (bytes, bytearray)):
            value = bytes(value).split(b"\0", 1)[0].decode("latin-1")
        if not isinstance(value, str):
            return None if value is None else str(value)
        value = value.replace("\0", " ").strip()
        return value or None

    def sized(self, code: int, size: int, what: str, where: str = "raw") -> NDArray[np.float64] | None:
        """A numeric tag that must hold exactly ``size`` values."""
        array = self.floats(code, where)
        if array is None:
            return None
        if array.size != size:
            raise self._fail(code, f"has {array.size} values, {what} needs {size}")
        if not np.all(np.isfinite(array)):
            raise self._fail(code, "holds a non-finite value (division by zero)")
        return array


def _exif_dict(tags: _Tags) -> dict[str, Any]:
    """The EXIF IFD of IFD0 as tifffile parses it (empty if absent or unreadable)."""
    tag = tags.ifd0.tags.get(T.EXIF_IFD)
    if tag is None:
        return {}
    try:
        value = tag.value
    except Exception:  # an unreadable EXIF IFD loses the shot info, not the image
        return {}
    return value if isinstance(value, dict) else {}


def _exif_value(tags: _Tags, exif: dict[str, Any], code: int) -> Any:
    """An EXIF value from the EXIF IFD, else from IFD0 / the raw IFD (TIFF/EP)."""
    import tifffile

    for key in (tifffile.TIFF.EXIF_TAGS.get(code), str(code)):
        if key is not None and key in exif:
            return exif[key]
    tag = tags.ifd0.tags.get(code)
    if tag is None:
        tag = tags.raw.tags.get(code)
    if tag is None:
        return None
    try:
        return tag.value
    except Exception:
        return None


def _positive(value: Any, *, rational: bool = False) -> float | None:
    """A positive finite number from an EXIF value.

    ``rational``: the tag is a RATIONAL, which tifffile gives as ``(num, den)``;
    otherwise the first of several values is taken.
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        value = tuple(value.reshape(-1).tolist())
    if isinstance(value, (tuple, list)):
        if not value:
            return None
        if rational and len(value) >= 2:
            num, den = value[0], value[1]
            if den == 0:
                return None
            value = num / den
        else:
            value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _text_value(value: Any) -> str | None:
    if isinstance(value, bytes):
        value = value.split(b"\0", 1)[0].decode("latin-1")
    if not isinstance(value, str):
        return None
    value = value.replace("\0", " ").strip()
    return value or None


# ---------------------------------------------------------------------------
# metadata
# ---------------------------------------------------------------------------


def _metadata(path: str, tiff: Any, ifd0: Any, page: Any, raw_ifd: str) -> DngMetadata:
    tags = _Tags(path, page, ifd0)
    version_bytes = tags.raw_bytes(T.DNG_VERSION, "ifd0") or b"\x01\x00\x00\x00"
    dng_version = tuple(version_bytes[:4].ljust(4, b"\0"))

    width, height = int(page.imagewidth), int(page.imagelength)
    if width < 1 or height < 1:
        raise CorruptFile(f"raw image is {width}x{height} pixels", path=path)
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    bits = tags.ints(T.BITS_PER_SAMPLE)
    bits_per_sample = int(bits[0]) if bits is not None and bits.size else 1
    if bits is not None and np.any(bits != bits_per_sample):
        raise UnsupportedFile(f"samples of different bit depths {tuple(int(b) for b in bits)}", path=path)
    compression = int(page.compression)
    sample_format = tags.int1(T.SAMPLE_FORMAT, default=T.SAMPLE_FORMAT_UINT)

    if photometric == T.PHOTOMETRIC_CFA:
        encoding = Encoding.CFA
        if spp != 1:
            raise UnsupportedFile(f"CFA raw image with {spp} samples per pixel (expected 1)", path=path)
    else:
        encoding = Encoding.CAMERA_RGB
        if spp != 3:
            raise UnsupportedFile(
                f"LinearRaw image with {spp} samples per pixel; only 3 (RGB) is supported", path=path
            )
    if sample_format != T.SAMPLE_FORMAT_UINT:
        raise UnsupportedFile(
            f"SampleFormat {sample_format} (floating point) raw data is not supported", path=path
        )
    if not 1 <= bits_per_sample <= 32:
        raise CorruptFile(f"BitsPerSample {bits_per_sample} outside 1..32", path=path)
    if compression not in _SUPPORTED_COMPRESSION:
        raise UnsupportedFile(f"compression {compression} is not supported", path=path)
    if compression in _JPEG_COMPRESSION and bits_per_sample > 16:
        raise CorruptFile(f"JPEG-compressed raw data with {bits_per_sample} bits", path=path)
    if spp > 1 and int(page.planarconfig) != 1:
        raise UnsupportedFile("planar (PlanarConfiguration 2) LinearRaw data is not supported", path=path)

    cfa = _cfa_pattern(tags) if encoding is Encoding.CFA else None
    active_area = _active_area(tags, width, height)
    top, left, bottom, right = active_area or (0, 0, height, width)
    active_h, active_w = bottom - top, right - left

    black_level_dn, delta_h, delta_v = _black_levels(tags, cfa, spp, active_h, active_w)
    white = _white_level(tags, spp, bits_per_sample)
    linearization = tags.floats(T.LINEARIZATION_TABLE)
    if linearization is not None and not 1 <= linearization.size <= 65536:
        raise tags._fail(T.LINEARIZATION_TABLE, f"has {linearization.size} entries, expected 1..65536")

    sensor = SensorInfo(
        cfa=cfa,
        bits_per_sample=bits_per_sample,
        black_level_dn=black_level_dn,
        black_level_delta_h_dn=delta_h,
        black_level_delta_v_dn=delta_v,
        white_level_dn=white,
        linearization_table=linearization,
        active_area=active_area,
        crop_px=_default_crop(tags, active_h, active_w),
        noise_profile=_noise_profile(tags),
    )
    clip_level = np.asarray(white if spp == 3 else np.repeat(white[:1], 3), dtype=np.float32)

    opcodes: tuple[Opcode, ...] = ()
    for index, code in T.OPCODE_LIST_TAGS.items():
        data = tags.raw_bytes(code)
        if data is not None:
            opcodes += parse_opcode_list(data, index, path=path)

    capture, lens = _capture_and_lens(tags)
    is_tiled = bool(page.is_tiled)
    return DngMetadata(
        path=path,
        dng_version=dng_version,  # type: ignore[arg-type]
        raw_ifd=raw_ifd,
        width=width,
        height=height,
        samples_per_pixel=spp,
        bits_per_sample=bits_per_sample,
        compression=compression,
        photometric=photometric,
        tiled=is_tiled,
        segment_count=len(page.dataoffsets),
        encoding=encoding,
        clip_level=clip_level,
        sensor=sensor,
        color=_color(tags),
        capture=capture,
        lens=lens,
        opcodes=opcodes,
        exif=build_exif_blob(capture, lens),
    )


def _black_levels(
    tags: _Tags, cfa: CfaPattern | None, spp: int, active_h: int, active_w: int
) -> tuple[NDArray[np.float64], NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """BlackLevel as a (rows, cols, samples) pattern, and BlackLevelDeltaH/V."""
    repeat = tags.ints(T.BLACK_LEVEL_REPEAT_DIM)
    black = tags.floats(T.BLACK_LEVEL)
    if repeat is None:
        rows, cols = 1, 1
        if black is not None and black.size == 4 and cfa is not None and cfa.shape == (2, 2):
            rows, cols = 2, 2  # some writers give a 2x2 Bayer black pattern without BlackLevelRepeatDim
    elif repeat.size != 2 or not (1 <= repeat[0] <= _MAX_REPEAT and 1 <= repeat[1] <= _MAX_REPEAT):
        size = tuple(int(v) for v in repeat)
        raise tags._fail(T.BLACK_LEVEL_REPEAT_DIM, f"{size} is not a pattern size of 1..{_MAX_REPEAT}")
    else:
        rows, cols = int(repeat[0]), int(repeat[1])
    needed = rows * cols * spp
    if black is None:
        black = np.zeros(needed)
    elif black.size == 1:
        black = np.full(needed, black[0])
    elif black.size != needed:
        raise tags._fail(
            T.BLACK_LEVEL, f"has {black.size} values, a {rows}x{cols} pattern of {spp} samples needs {needed}"
        )
    if not np.all(np.isfinite(black)):
        raise tags._fail(T.BLACK_LEVEL, "holds a non-finite value")
    delta_h = tags.sized(T.BLACK_LEVEL_DELTA_H, active_w, "the active area width")
    delta_v = tags.sized(T.BLACK_LEVEL_DELTA_V, active_h, "the active area height")
    return black.reshape(rows, cols, spp), delta_h, delta_v


def _white_level(tags: _Tags, spp: int, bits_per_sample: int) -> NDArray[np.float64]:
    """WhiteLevel per sample (default 2**bits - 1)."""
    white = tags.floats(T.WHITE_LEVEL)
    if white is None:
        return np.full(spp, float(2**bits_per_sample - 1))
    if white.size == 1:
        white = np.full(spp, white[0])
    elif white.size != spp:
        raise tags._fail(T.WHITE_LEVEL, f"has {white.size} values for {spp} samples")
    if not np.all(np.isfinite(white)) or np.any(white <= 0):
        raise tags._fail(T.WHITE_LEVEL, f"invalid value {tuple(float(w) for w in white)}")
    return white


def _noise_profile(tags: _Tags) -> tuple[tuple[float, float], ...] | None:
    """NoiseProfile as (scale, offset) per colour plane; one pair applies to all three."""
    noise = tags.floats(T.NOISE_PROFILE, "raw+ifd0")
    if noise is None:
        return None
    if noise.size == 2:
        noise = np.tile(noise, 3)
    if noise.size != 6:
        raise tags._fail(T.NOISE_PROFILE, f"has {noise.size} values, expected 2 or 6")
    if not np.all(np.isfinite(noise)):
        raise tags._fail(T.NOISE_PROFILE, "holds a non-finite value")
    return tuple((float(noise[2 * i]), float(noise[2 * i + 1])) for i in range(3))


def _cfa_pattern(tags: _Tags) -> CfaPattern:
    dims = tags.ints(T.CFA_REPEAT_PATTERN_DIM)
    pattern = tags.raw_bytes(T.CFA_PATTERN)
    if dims is None or pattern is None:
        raise CorruptFile("CFA raw image without CFARepeatPatternDim or CFAPattern", path=tags.path)
    if dims.size != 2 or not (1 <= dims[0] <= _MAX_REPEAT and 1 <= dims[1] <= _MAX_REPEAT):
        raise tags._fail(T.CFA_REPEAT_PATTERN_DIM, f"{tuple(int(v) for v in dims)} is not a pattern size of 1..{_MAX_REPEAT}")
    rows, cols = int(dims[0]), int(dims[1])
    if len(pattern) != rows * cols:
        raise tags._fail(T.CFA_PATTERN, f"has {len(pattern)} entries, a {rows}x{cols} pattern needs {rows * cols}")
    plane_color = tags.raw_bytes(T.CFA_PLANE_COLOR) or bytes([0, 1, 2])
    layout = tags.int1(T.CFA_LAYOUT, default=T.CFA_LAYOUT_RECTANGULAR)
    if layout != T.CFA_LAYOUT_RECTANGULAR:
        raise UnsupportedFile(f"CFALayout {layout} (non-rectangular sensor) is not supported", path=tags.path)
    if any(v >= len(plane_color) for v in pattern):
        raise tags._fail(T.CFA_PATTERN, f"refers to plane {max(pattern)} of {len(plane_color)} CFA planes")
    colors = [plane_color[v] for v in pattern]
    letters = "RGBCMYW"
    if len(plane_color) != 3 or any(c > 2 for c in colors) or len(set(colors)) != 3:
        names = "".join(letters[c] if c < len(letters) else "?" for c in colors)
        raise UnsupportedFile(
            f"CFA pattern {names} is not a red/green/blue CFA; only RGB mosaics are supported", path=tags.path
        )
    return CfaPattern(tuple(tuple(colors[r * cols : (r + 1) * cols]) for r in range(rows)))


def _active_area(tags: _Tags, width: int, height: int) -> tuple[int, int, int, int] | None:
    area = tags.ints(T.ACTIVE_AREA)
    if area is None:
        return None
    if area.size != 4:
        raise tags._fail(T.ACTIVE_AREA, f"has {area.size} values, expected 4")
    top, left, bottom, right = (int(v) for v in area)
    if not (0 <= top < bottom <= height and 0 <= left < right <= width):
        raise tags._fail(
            T.ACTIVE_AREA, f"({top}, {left}, {bottom}, {right}) does not fit a {width}x{height} image"
        )
    if (top, left, bottom, right) == (0, 0, height, width):
        return None
    return top, left, bottom, right


def _default_crop(tags: _Tags, active_h: int, active_w: int) -> tuple[int, int, int, int] | None:
    size = tags.floats(T.DEFAULT_CROP_SIZE)
    if size is None:
        return None
    origin = tags.floats(T.DEFAULT_CROP_ORIGIN)
    if origin is None:
        origin = np.zeros(2)
    if size.size != 2 or origin.size != 2 or not np.all(np.isfinite(np.r_[size, origin])):
        raise tags._fail(T.DEFAULT_CROP_SIZE, "DefaultCropOrigin/DefaultCropSize need 2 finite values each")
    left, top = (int(math.floor(v + 0.5)) for v in origin)
    width, height = (int(math.floor(v + 0.5)) for v in size)
    if width < 1 or height < 1 or left < 0 or top < 0 or left >= active_w or top >= active_h:
        raise tags._fail(
            T.DEFAULT_CROP_SIZE,
            f"crop of {width}x{height} at ({left}, {top}) does not fit the {active_w}x{active_h} active area",
        )
    # Some writers round the crop up by a pixel; keep it inside the active area.
    return top, left, min(height, active_h - top), min(width, active_w - left)


def _color(tags: _Tags) -> ColorCalibration:
    planes = 3

    def matrix(code: int, rows: int, cols: int) -> NDArray[np.float64] | None:
        values = tags.sized(code, rows * cols, f"a {rows}x{cols} matrix", "raw+ifd0")
        return None if values is None else values.reshape(rows, cols)

    def illuminant(code: int) -> int | None:
        value = tags.int1(code, "raw+ifd0", default=0)
        return value or None

    white_xy = tags.sized(T.AS_SHOT_WHITE_XY, 2, "an xy chromaticity", "raw+ifd0")
    neutral = tags.sized(T.AS_SHOT_NEUTRAL, planes, "one value per colour plane", "raw+ifd0")
    if neutral is not None and np.any(neutral <= 0):
        raise tags._fail(T.AS_SHOT_NEUTRAL, f"has a non-positive value {tuple(float(v) for v in neutral)}")
    return ColorCalibration(
        M_XYZ_to_camera_1=matrix(T.COLOR_MATRIX_1, planes, 3),
        M_XYZ_to_camera_2=matrix(T.COLOR_MATRIX_2, planes, 3),
        M_camera_calibration_1=matrix(T.CAMERA_CALIBRATION_1, planes, planes),
        M_camera_calibration_2=matrix(T.CAMERA_CALIBRATION_2, planes, planes),
        M_forward_1=matrix(T.FORWARD_MATRIX_1, 3, planes),
        M_forward_2=matrix(T.FORWARD_MATRIX_2, 3, planes),
        illuminant_1=illuminant(T.CALIBRATION_ILLUMINANT_1),
        illuminant_2=illuminant(T.CALIBRATION_ILLUMINANT_2),
        analog_balance=tags.sized(T.ANALOG_BALANCE, planes, "one value per colour plane", "raw+ifd0"),
        as_shot_neutral=neutral,
        as_shot_white_xy=None if white_xy is None else (float(white_xy[0]), float(white_xy[1])),
        baseline_exposure_ev=tags.float1(T.BASELINE_EXPOSURE, "raw+ifd0") or 0.0,
    )


def _capture_and_lens(tags: _Tags) -> tuple[CaptureInfo, LensInfo | None]:
    exif = _exif_dict(tags)

    def value(code: int) -> Any:
        return _exif_value(tags, exif, code)

    iso = _positive(value(T.PHOTOGRAPHIC_SENSITIVITY))
    if iso is None or iso >= 65535:
        iso = (
            _positive(value(T.RECOMMENDED_EXPOSURE_INDEX))
            or _positive(value(T.ISO_SPEED))
            or _positive(value(T.EXPOSURE_INDEX), rational=True)
            or _positive(value(T.EXPOSURE_INDEX_EP), rational=True)
            or iso
        )
    orientation = tags.int1(T.ORIENTATION, "ifd0", default=1)
    capture = CaptureInfo(
        make=tags.text(T.MAKE, "ifd0") or tags.text(T.MAKE, "raw"),
        model=tags.text(T.MODEL, "ifd0") or tags.text(T.MODEL, "raw"),
        unique_camera_model=tags.text(T.UNIQUE_CAMERA_MODEL, "ifd0"),
        software=tags.text(T.SOFTWARE, "ifd0"),
        iso=iso,
        exposure_time_s=_positive(value(T.EXPOSURE_TIME), rational=True),
        f_number=_positive(value(T.F_NUMBER), rational=True),
        focal_length_mm=_positive(value(T.FOCAL_LENGTH), rational=True),
        focal_length_35mm_mm=_positive(value(T.FOCAL_LENGTH_IN_35MM_FILM)),
        datetime_original=_text_value(value(T.DATE_TIME_ORIGINAL)),
        orientation=orientation if orientation in range(1, 9) else 1,
        artist=tags.text(T.ARTIST, "ifd0"),
    )

    spec = tags.floats(T.LENS_INFO, "ifd0")
    if spec is None:
        raw_spec = value(T.LENS_SPECIFICATION)
        if isinstance(raw_spec, (tuple, list)) and len(raw_spec) == 8:
            num, den = np.asarray(raw_spec[0::2], float), np.asarray(raw_spec[1::2], float)
            with np.errstate(divide="ignore", invalid="ignore"):
                spec = np.where(den != 0, num / np.where(den != 0, den, 1), np.nan)
    spec_values: list[float | None] = [None] * 4
    if spec is not None and spec.size == 4:
        spec_values = [float(v) if np.isfinite(v) and v > 0 else None for v in spec]
    lens_make = _text_value(value(T.LENS_MAKE))
    lens_model = _text_value(value(T.LENS_MODEL))
    if lens_make is None and lens_model is None and all(v is None for v in spec_values):
        return capture, None
    return capture, LensInfo(
        make=lens_make,
        model=lens_model,
        focal_min_mm=spec_values[0],
        focal_max_mm=spec_values[1],
        f_number_min_at_min_focal=spec_values[2],
        f_number_min_at_max_focal=spec_values[3],
    )


# ---------------------------------------------------------------------------
# checks before decoding
# ---------------------------------------------------------------------------


def _check_segments(path: str, tiff: Any, page: Any, meta: DngMetadata, *, max_pixels: int) -> None:
    """Refuse oversized images and strips/tiles that lie outside the file."""
    width, height, spp, bits = meta.width, meta.height, meta.samples_per_pixel, meta.bits_per_sample
    pixels = width * height
    if pixels > max_pixels:
        raise LimitExceeded(
            f"raw image is {width}x{height} = {pixels / 1e6:.1f} megapixels, "
            f"over the limit of {max_pixels / 1e6:.1f}",
            path=path,
        )
    with _guard(path, "cannot read the strip/tile layout"):
        file_size = int(tiff.filehandle.size)
        offsets = [int(v) for v in page.dataoffsets]
        counts = [int(v) for v in page.databytecounts]
        if meta.tiled:
            seg_h, seg_w = int(page.tilelength), int(page.tilewidth)
        else:
            seg_h, seg_w = int(page.rowsperstrip), width
    kind = "tile" if meta.tiled else "strip"
    if seg_h < 1 or seg_w < 1:
        raise CorruptFile(f"{kind} size {seg_w}x{seg_h}", path=path)
    seg_h = min(seg_h, height) if not meta.tiled else seg_h
    across, down = -(-width // seg_w), -(-height // seg_h)
    if meta.tiled and (across * seg_w) * (down * seg_h) > 4 * pixels + 2**24:
        raise LimitExceeded(
            f"tiles of {seg_w}x{seg_h} are far larger than the {width}x{height} image", path=path
        )
    expected = across * down
    if len(offsets) != expected or len(counts) != expected:
        raise CorruptFile(
            f"{len(offsets)} {kind} offsets and {len(counts)} byte counts for {expected} {kind}s", path=path
        )
    row_bytes = -(-seg_w * spp * bits // 8)
    for i, (offset, count) in enumerate(zip(offsets, counts)):
        where = f"{kind} {i + 1} of {expected}"
        if count <= 0:
            raise CorruptFile(f"pixel data missing: {where} has 0 bytes", path=path)
        if offset < 8 or offset + count > file_size:
            raise CorruptFile(
                f"pixel data truncated: {where} lies at bytes {offset}..{offset + count} "
                f"but the file has {file_size} bytes",
                path=path,
            )
        rows = seg_h if meta.tiled else min(seg_h, height - (i // across) * seg_h)
        if meta.compression == T.COMPRESSION_NONE:
            if count < rows * row_bytes:
                raise CorruptFile(
                    f"pixel data truncated: {where} holds {count} bytes, {rows * row_bytes} needed", path=path
                )
        else:
            _check_jpeg_header(path, tiff, offset, count, rows * seg_w * spp, where)


_SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_frame_header(data: bytes) -> tuple[int, int, int, int] | None | str:
    """(precision, height, width, components) of the first JPEG frame header.

    Returns None when ``data`` ends before a frame header, or a string saying
    what is wrong with the stream.
    """
    if not data.startswith(b"\xff\xd8"):
        return "does not start with a JPEG SOI marker"
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return f"bad JPEG marker at byte {i}"
        marker = data[i + 1]
        if marker == 0xFF:
            i += 1
            continue
        if marker == 0x01 or 0xD0 <= marker <= 0xD8:
            i += 2
            continue
        if marker == 0xDA or marker == 0xD9:
            return "JPEG scan before any frame header"
        (length,) = struct.unpack_from(">H", data, i + 2)
        if length < 2:
            return f"JPEG marker segment of length {length}"
        if marker in _SOF_MARKERS:
            if i + 10 > len(data):
                return None
            precision, height, width, components = struct.unpack_from(">BHHB", data, i + 4)
            return precision, height, width, components
        i += 2 + length
    return None


def _check_jpeg_header(path: str, tiff: Any, offset: int, count: int, samples: int, where: str) -> None:
    """Refuse a JPEG segment whose frame header declares more samples than its tile/strip."""
    fh = tiff.filehandle
    header: Any = None
    for probe in (4096, _JPEG_HEADER_PROBE):
        with _guard(path, f"cannot read {where}"):
            fh.seek(offset)
            data = fh.read(min(count, probe))
        header = _jpeg_frame_header(data)
        if header is not None or len(data) >= count:
            break
    if header is None:
        raise CorruptFile(f"{where}: no JPEG frame header in its first {len(data)} bytes", path=path)
    if isinstance(header, str):
        raise CorruptFile(f"{where}: {header}", path=path)
    precision, height, width, components = header
    if not (1 <= components <= 4 and height >= 1 and width >= 1 and 2 <= precision <= 16):
        raise CorruptFile(
            f"{where}: JPEG frame of {width}x{height}x{components} at {precision} bits", path=path
        )
    if width * height * components > samples:
        raise CorruptFile(
            f"{where}: JPEG frame of {width}x{height}x{components} samples is larger than the "
            f"{samples} samples of its {where.split()[0]}",
            path=path,
        )
