"""Read camera RAW files through LibRaw (rawpy): CRW, KDC, NEF, CR2, ARW, RAF, ...

The reader returns the sensor data exactly as LibRaw unpacked it (no scaling,
no demosaicing, no white balance): a :class:`~rawlab.core.frame.Frame` of
``Encoding.CFA`` holding ``raw_image_visible`` as float32 digital numbers, with
the CFA layout, black and white levels, the camera's as-shot neutral and
LibRaw's XYZ -> camera matrix as metadata.  Files that LibRaw returns already
interpolated (Kodak YRGB raws, LinearRaw DNGs, Foveon) become
``Encoding.CAMERA_RGB``.

LibRaw also "opens" files that have no header at all, by looking their size up
in a table of headerless camera formats; a sensor dump of 1920x1080 16-bit
pixels is then taken for a Photron BC2-HD.  Such guesses are refused unless the
caller asks for them (``allow_size_guess=True``); headerless dumps are read
with :func:`rawlab.io.bayer.read_bayer`, where the caller states the geometry.

References
----------
LibRaw 0.22 data structures (``libraw_rawdata_t``, ``libraw_colordata_t``),
https://www.libraw.org/docs/API-datastruct-eng.html
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import (
    BLUE,
    GREEN,
    RED,
    CaptureInfo,
    CfaPattern,
    ColorCalibration,
    LensInfo,
    SensorInfo,
)
from rawlab.errors import CorruptFile, LimitExceeded, RawlabError, UnsupportedFile
from rawlab.io._sniff import Sniffed, sniff

#: Largest sensor (in pixels, raw_width x raw_height) that will be unpacked.
MAX_PIXELS = 1 << 29

#: EXIF LightSource code of D65: LibRaw's built-in matrices are Adobe's D65 ColorMatrix2.
_ILLUMINANT_D65 = 21

#: LibRaw/dcraw ``flip`` -> EXIF Orientation.
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 2: 4, 3: 3, 4: 5, 5: 8, 6: 6, 7: 7}

_LETTER_TO_COLOR = {"R": RED, "G": GREEN, "B": BLUE}

BAYER_HINT = (
    "a headerless sensor dump? decode it with rawlab.read_bayer(path, width=, height=, cfa=, bits=) "
    "(or read_libraw(path, allow_size_guess=True) for a headerless camera format such as Kodak FORMAT_NONE)"
)


def read_libraw(path: str | os.PathLike[str], *, allow_size_guess: bool = False) -> Frame:
    """Read a camera RAW file with LibRaw.

    Parameters
    ----------
    path
        The RAW file.  It is only read, never modified.
    allow_size_guess
        Also accept files without any RAW container header that LibRaw
        identifies from their size alone (for example Kodak EasyShare
        "FORMAT_NONE" raws).  Off by default because the same rule mistakes
        generic sensor dumps for exotic cameras.

    Returns
    -------
    Frame
        ``Encoding.CFA``: ``data`` is ``raw_image_visible`` (H, W) as float32 DN
        in ``[0, white]`` (below black where the sensor noise goes there),
        ``sensor.cfa`` the repeating pattern of the visible area (2x2 Bayer or
        6x6 X-Trans), ``sensor.black_level_dn`` one value per pattern cell,
        ``sensor.white_level_dn`` the saturation level.
        ``Encoding.CAMERA_RGB``: (H, W, 3) float32 DN for data LibRaw delivers
        already interpolated, channels in R, G, B order.
        ``color.M_XYZ_to_camera_1`` is LibRaw's XYZ -> camera matrix (D65) when
        it has one, ``color.as_shot_neutral`` the reciprocal of the camera's
        white-balance multipliers (green 1), or ``None`` when the camera
        recorded none (auto white balance is then left to the pipeline).

    Raises
    ------
    UnsupportedFile
        Not a RAW file, a size-only guess, or a sensor layout rawlab does not
        represent (CMYG or other 4-colour filters, monochrome sensors).
    CorruptFile
        LibRaw failed to decode the data (truncated or damaged file).
    LimitExceeded
        The header claims a sensor larger than :data:`MAX_PIXELS`.
    """
    import rawpy

    path = Path(path)
    where = str(path)
    kind = sniff(path)
    _check_kind(kind, where, allow_size_guess)

    raw = rawpy.RawPy()
    try:
        with _libraw_messages() as messages:
            try:
                raw.open_file(where)
                sizes = raw.sizes
                if sizes.raw_width * sizes.raw_height > MAX_PIXELS:
                    raise LimitExceeded(
                        f"sensor of {sizes.raw_width}x{sizes.raw_height} pixels exceeds the limit of "
                        f"{MAX_PIXELS} pixels",
                        path=where,
                    )
                raw.unpack()
                failure = None
            except rawpy.LibRawError as exc:
                failure = exc
        if failure is not None:
            raise _translate(failure, where, kind, messages) from None
        return _frame_from_libraw(raw, kind, where)
    finally:
        raw.close()


_STDERR_LOCK = threading.Lock()


def _flush_python_stderr() -> None:
    try:
        sys.stderr.flush()
    except (AttributeError, OSError, ValueError):
        pass


@contextlib.contextmanager
def _libraw_messages() -> Iterator[list[str]]:
    """Collect what LibRaw prints on the process's stderr (its data-error
    callback writes "<file>: Unexpected end of file" there) so the caller can
    fold it into one error line instead of letting it reach the terminal."""
    messages: list[str] = []
    stderr_fd = 2  # LibRaw writes with fprintf(stderr, ...): the C stream on fd 2
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(stderr_fd)
        except OSError:  # no stderr at all (a detached process): nothing to catch
            yield messages
            return
        _flush_python_stderr()
        os.dup2(sink.fileno(), stderr_fd)
        try:
            yield messages
        finally:
            _flush_python_stderr()
            os.dup2(saved, stderr_fd)
            os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace")
            messages.extend(line.strip() for line in text.splitlines() if line.strip())


def _check_kind(kind: Sniffed, where: str, allow_size_guess: bool) -> None:
    if kind.kind == "image":
        raise UnsupportedFile(f"not a RAW file (looks like {kind.container})", path=where)
    if kind.kind == "headerless" and not allow_size_guess:
        raise UnsupportedFile(
            "no RAW container header (LibRaw could only guess the camera from the file size): " + BAYER_HINT,
            path=where,
        )


def _translate(exc: Exception, where: str, kind: Sniffed, messages: list[str]) -> RawlabError:
    import rawpy

    detail = exc.args[0] if exc.args else ""
    if isinstance(detail, bytes):
        detail = detail.decode("utf-8", "replace")
    detail = str(detail).strip().rstrip(".") or type(exc).__name__
    for message in messages[:1]:  # LibRaw prefixes its messages with the file name
        message = message.removeprefix(where).lstrip(": ").rstrip(".")
        if message and message.lower() not in detail.lower():
            detail = f"{detail}: {message}"
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        if kind.kind in ("raw", "dng"):
            return UnsupportedFile(
                f"LibRaw cannot decode this {kind.container} file: damaged, or a camera it does not "
                f"support ({detail})",
                path=where,
            )
        return UnsupportedFile(f"LibRaw cannot decode this file ({detail})", path=where)
    too_big = (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError, rawpy.LibRawMemPoolOverflowError)
    if isinstance(exc, too_big):
        return LimitExceeded(f"LibRaw refused the image size ({detail})", path=where)
    if isinstance(exc, rawpy.LibRawIOError):
        return CorruptFile(f"truncated or unreadable RAW data ({detail})", path=where)
    return CorruptFile(f"LibRaw failed to decode the file ({detail})", path=where)


def _color_indices(raw, where: str) -> list[int]:
    """rawlab colour (0 R, 1 G, 2 B) of each of LibRaw's colour indices 0..3."""
    desc = bytes(raw.color_desc).decode("ascii", "replace")
    if raw.num_colors != 3 or any(ch not in _LETTER_TO_COLOR for ch in desc[: raw.num_colors]):
        raise UnsupportedFile(
            f"colour filters {desc!r} ({raw.num_colors} colours) are not an RGB layout; "
            "rawlab reads RGB sensors only",
            path=where,
        )
    mapping = [_LETTER_TO_COLOR.get(ch, -1) for ch in desc[:4].ljust(4, "G")]
    if sorted(set(mapping[:3])) != [RED, GREEN, BLUE]:
        raise UnsupportedFile(f"colour filters {desc!r} do not name red, green and blue", path=where)
    return mapping


def _index_of(mapping: list[int], color: int) -> int:
    """First LibRaw colour index holding ``color``."""
    return mapping.index(color)


def _frame_from_libraw(raw, kind: Sniffed, where: str) -> Frame:
    import rawpy

    mapping = _color_indices(raw, where)
    index_rgb = [_index_of(mapping, c) for c in (RED, GREEN, BLUE)]
    black_per_index = np.asarray(raw.black_level_per_channel, dtype=np.float64)
    white_per_index = _white_per_index(raw)

    if raw.raw_type == rawpy.RawType.Stack:
        visible = raw.raw_image_visible
        if visible.ndim != 3 or visible.shape[2] < 3:
            raise UnsupportedFile(f"unexpected interpolated data of shape {visible.shape}", path=where)
        data = np.ascontiguousarray(visible[:, :, index_rgb], dtype=np.float32)
        black = black_per_index[index_rgb].reshape(1, 1, 3)
        white = white_per_index[index_rgb]
        sensor = SensorInfo(
            cfa=None,
            bits_per_sample=_bits_for(white.max()),
            black_level_dn=black,
            white_level_dn=white,
            crop_px=_crop(raw, data.shape[0], data.shape[1]),
        )
        encoding = Encoding.CAMERA_RGB
        clip = white
    else:
        if raw.raw_pattern is None:
            raise UnsupportedFile(
                "monochrome or non-mosaic sensor data; rawlab reads colour sensors only", path=where
            )
        visible = raw.raw_image_visible
        if visible.ndim != 2:
            raise UnsupportedFile(f"unexpected sensor data of shape {visible.shape}", path=where)
        colors_visible = raw.raw_colors_visible
        ry, rx = np.asarray(raw.raw_pattern).shape
        block = np.asarray(colors_visible[:ry, :rx], dtype=np.intp)
        h, w = visible.shape
        tiled = np.tile(block, (-(-h // ry), -(-w // rx)))[:h, :w]
        if h < ry or w < rx or not np.array_equal(tiled, colors_visible):
            raise UnsupportedFile("the colour filter layout does not repeat regularly", path=where)
        lut = np.asarray(mapping, dtype=np.intp)
        cfa = CfaPattern(tuple(tuple(int(v) for v in row) for row in lut[block]))
        data = np.array(visible, dtype=np.float32, order="C")
        black = black_per_index[block].reshape(ry, rx, 1)
        white_rgb = white_per_index[index_rgb]
        sensor = SensorInfo(
            cfa=cfa,
            bits_per_sample=_bits_for(white_rgb.max()),
            black_level_dn=black,
            white_level_dn=[float(white_rgb.min())],
            crop_px=_crop(raw, h, w),
        )
        encoding = Encoding.CFA
        clip = white_rgb

    return Frame(
        data=data,
        encoding=encoding,
        clip_level=np.asarray(clip, dtype=np.float32),
        sensor=sensor,
        color=_color(raw, mapping, index_rgb),
        capture=_capture(raw, kind, where),
        lens=_lens(raw),
    )


def _white_per_index(raw) -> np.ndarray:
    white = np.full(4, float(raw.white_level), dtype=np.float64)
    per_channel = raw.camera_white_level_per_channel
    if per_channel is not None:
        values = np.asarray(per_channel, dtype=np.float64)[:4]
        white[: values.size] = np.where(values > 0, values, white[: values.size])
    return white


def _bits_for(white_dn: float) -> int:
    return max(1, min(32, int(np.ceil(np.log2(max(float(white_dn), 1.0) + 1.0)))))


def _crop(raw, height: int, width: int) -> tuple[int, int, int, int] | None:
    """LibRaw's default crop, relative to the visible area, when it is a real crop."""
    s = raw.sizes
    if s.crop_width <= 0 or s.crop_height <= 0:
        return None
    top, left = s.crop_top_margin - s.top_margin, s.crop_left_margin - s.left_margin
    if top < 0 or left < 0 or top + s.crop_height > height or left + s.crop_width > width:
        return None
    if (top, left, s.crop_height, s.crop_width) == (0, 0, height, width):
        return None
    return (int(top), int(left), int(s.crop_height), int(s.crop_width))


def _color(raw, mapping: list[int], index_rgb: list[int]) -> ColorCalibration:
    M = np.asarray(raw.rgb_xyz_matrix, dtype=np.float64)[:3]
    M_XYZ_to_camera = None
    if np.any(M != 0) and np.all(np.isfinite(M)):
        M_XYZ_to_camera = M[index_rgb]  # rows in R, G, B order
    multipliers = np.asarray(raw.camera_whitebalance, dtype=np.float64)[:4]
    gains = multipliers[index_rgb]
    neutral = None
    if np.all(np.isfinite(gains)) and np.all(gains > 0):
        neutral = (1.0 / gains) / (1.0 / gains[GREEN])
    return ColorCalibration(
        M_XYZ_to_camera_1=M_XYZ_to_camera,
        illuminant_1=_ILLUMINANT_D65 if M_XYZ_to_camera is not None else None,
        as_shot_neutral=neutral,
    )


def _positive(value: float) -> float | None:
    value = float(value)
    return value if np.isfinite(value) and value > 0 else None


def _capture(raw, kind: Sniffed, where: str) -> CaptureInfo:
    other = raw.other
    focal = _positive(other.focal_length)
    # LibRaw gives no FocalLengthIn35mmFilm: read it, or the sensor size, from the file's own tags
    from rawlab.io.exif import raw_file_crop_factor

    focal_35mm, crop = raw_file_crop_factor(where, kind.container)
    if focal_35mm is None and crop is not None and focal is not None:
        focal_35mm = focal * crop
    return CaptureInfo(
        make=kind.make,
        model=kind.model,
        iso=_positive(other.iso_speed),
        exposure_time_s=_positive(other.shutter_speed),
        f_number=_positive(other.aperture),
        focal_length_mm=focal,
        focal_length_35mm_mm=focal_35mm,
        datetime_original=_datetime_original(other.timestamp, kind),
        orientation=_FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1),
        artist=(other.artist or "").strip() or None,
    )


def _datetime_original(stamp, kind: Sniffed) -> str | None:
    """The capture time as an EXIF string, independent of this machine's time zone.

    LibRaw keeps a Unix time: for TIFF-based files it made it from the EXIF
    string with the local time zone (``mktime``), and rawpy turns it back into
    a local ``datetime``, which restores the string.  Canon CIFF stores the
    camera's wall-clock time as seconds since 1970 directly, so there the
    number must be read as UTC.
    """
    if stamp is None:
        return None
    if kind.container.startswith("Canon CIFF"):
        import datetime as dt

        stamp = dt.datetime.fromtimestamp(stamp.timestamp(), dt.timezone.utc)
    if stamp.year <= 1970:
        return None
    return stamp.strftime("%Y:%m:%d %H:%M:%S")


def _lens(raw) -> LensInfo | None:
    lens = raw.lens
    make, model = (lens.make or "").strip() or None, (lens.model or "").strip() or None
    focal_min, focal_max = _positive(lens.min_focal), _positive(lens.max_focal)
    if make is None and model is None and focal_min is None and focal_max is None:
        return None
    return LensInfo(make=make, model=model, focal_min_mm=focal_min, focal_max_mm=focal_max)
