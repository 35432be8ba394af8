"""Read headerless sensor dumps ("raw Bayer" files) whose geometry the caller knows.

A headerless dump has no header: its width, height, colour filter layout, bit
depth and bit packing come from whoever made it (a file name, a config file, a
sensor datasheet).  :func:`read_bayer` decodes the packings met in practice:

``"none"``
    One sample per byte (bits <= 8) or per 16-bit word (little-endian unless
    ``container="u2be"``).
``"mipi_raw10"``, ``"mipi_raw12"``
    MIPI CSI-2 RAW10 (4 pixels in 5 bytes: four bytes of the 8 high bits, then
    one byte of the four 2-bit remainders, pixel 0 in bits 0-1) and RAW12
    (2 pixels in 3 bytes: two high bytes, then one byte of the 4-bit
    remainders, pixel 0 in bits 0-3).  MIPI Alliance, *CSI-2 specification*,
    section "RAW10"/"RAW12" data types (0x2B/0x2C).
``"p9_raw10"``, ``"p9_raw12"``
    The (non-MIPI) bit layouts of the Huawei P9 dumps in the shared test
    data: ``p0=b0|(b1&0xC0)<<2, p1=(b1&0x3F)|(b2&0xF0)<<2,
    p2=(b2&0x0F)|(b3&0xFC)<<2, p3=(b3&0x03)|b4<<2`` and
    ``p0=b0|(b1&0xF0)<<4, p1=(b1&0x0F)|b2<<4``.
``"png16"``
    A single-channel (8- or 16-bit) PNG holding the mosaic.

The file size must match the stated geometry exactly; a mismatch is reported
with both numbers instead of decoding garbage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, SensorInfo
from rawlab.errors import CorruptFile, InvalidParams, LimitExceeded, UnsupportedFile

#: Largest mosaic (width x height) read_bayer accepts.
MAX_PIXELS = 1 << 29

PACKINGS = ("none", "mipi_raw10", "mipi_raw12", "p9_raw10", "p9_raw12", "png16")
CONTAINERS = ("u1", "u2le", "u2be")

#: (pixels per group, bytes per group, most bits a sample can hold) per packing.
_GROUPS = {
    "mipi_raw10": (4, 5, 10),
    "p9_raw10": (4, 5, 10),
    "mipi_raw12": (2, 3, 12),
    "p9_raw12": (2, 3, 12),
}


def read_bayer(
    path: str | os.PathLike[str],
    *,
    width: int,
    height: int,
    cfa: str | CfaPattern,
    bits: int,
    packing: str = "none",
    black: float | NDArray | list[float] = 0.0,
    white: float | None = None,
    container: str | None = None,
    offset: int = 0,
) -> Frame:
    """Decode a headerless mosaic dump into a CFA frame.

    Parameters
    ----------
    path
        The dump; only read, never modified.
    width, height
        Size of the mosaic in pixels.
    cfa
        Colour filter layout at the top-left pixel: ``"RGGB"``, ``"GRBG"``,
        ``"GBRG"``, ``"BGGR"`` or a :class:`~rawlab.core.metadata.CfaPattern`.
    bits
        Significant bits per sample (1..16); sets the default white level.
    packing
        One of :data:`PACKINGS` (see the module docstring).
    black
        Black level in DN: one value, or one per cell of the CFA pattern
        (row by row, e.g. 4 values for a 2x2 Bayer pattern).
    white
        Saturation level in DN; default ``2**bits - 1``.
    container
        For ``packing="none"``: ``"u1"``, ``"u2le"`` or ``"u2be"``; default
        ``"u1"`` for ``bits <= 8``, else ``"u2le"``.
    offset
        Bytes to skip at the start of the file (a fixed-size preamble).

    Returns
    -------
    Frame
        ``Encoding.CFA``, ``data`` (height, width) float32 DN as stored (values
        are not clipped to ``white``), ``sensor`` with the pattern, bits, black
        and white; colour calibration and capture information are empty (white
        balance falls back to the pipeline's automatic estimate).

    Raises
    ------
    InvalidParams
        Inconsistent arguments (unknown packing, width not a multiple of the
        packing group, black >= white, ...).
    CorruptFile
        The file size (or the PNG's size) does not match the geometry.
    LimitExceeded
        ``width * height`` exceeds :data:`MAX_PIXELS`.
    UnsupportedFile
        Missing file, or a PNG that is not a single-channel image.
    """
    path = Path(path)
    where = str(path)
    width, height, bits, offset = _check_ints(where, width=width, height=height, bits=bits, offset=offset)
    if width * height > MAX_PIXELS:
        raise LimitExceeded(f"{width}x{height} exceeds the limit of {MAX_PIXELS} pixels", path=where)
    if packing not in PACKINGS:
        raise InvalidParams(f"unknown packing {packing!r}; expected one of {', '.join(PACKINGS)}", path=where)
    pattern = _pattern(cfa, where)
    white_dn = float(2**bits - 1) if white is None else float(white)
    black_dn = _black(black, pattern, where)
    if not np.isfinite(white_dn) or white_dn <= 0 or np.any(black_dn >= white_dn) or np.any(black_dn < 0):
        raise InvalidParams(
            f"need 0 <= black < white, got black {black_dn.ravel().tolist()} and white {white_dn}", path=where
        )

    size = _file_size(path)
    if packing == "png16":
        if offset:
            raise InvalidParams("offset is not used with packing 'png16'", path=where)
        mosaic = _read_png(path, width, height)
    elif packing == "none":
        mosaic = _read_plain(path, width, height, bits, container, offset, size)
    else:
        if container is not None:
            raise InvalidParams(f"container is only used with packing 'none', not {packing!r}", path=where)
        mosaic = _read_packed(path, width, height, bits, packing, offset, size)

    sensor = SensorInfo(cfa=pattern, bits_per_sample=bits, black_level_dn=black_dn, white_level_dn=[white_dn])
    return Frame(
        data=mosaic,
        encoding=Encoding.CFA,
        clip_level=np.full(3, white_dn, dtype=np.float32),
        sensor=sensor,
        color=ColorCalibration(),
        capture=CaptureInfo(),
    )


def _check_ints(where: str, **values: int) -> list[int]:
    out = []
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidParams(f"{name} must be an integer, got {value!r}", path=where)
        out.append(int(value))
    width, height, bits, offset = out
    if width <= 0 or height <= 0:
        raise InvalidParams(f"width and height must be positive, got {width}x{height}", path=where)
    if not 1 <= bits <= 16:
        raise InvalidParams(f"bits must be in 1..16, got {bits}", path=where)
    if offset < 0:
        raise InvalidParams(f"offset must be >= 0, got {offset}", path=where)
    return out


def _pattern(cfa: str | CfaPattern, where: str) -> CfaPattern:
    if isinstance(cfa, CfaPattern):
        return cfa
    try:
        return CfaPattern.from_string(str(cfa))
    except ValueError as exc:
        raise InvalidParams(str(exc), path=where) from None


def _black(black, pattern: CfaPattern, where: str) -> NDArray[np.float64]:
    values = np.asarray(black, dtype=np.float64)
    ry, rx = pattern.shape
    if values.size == 1:
        return values.reshape(1, 1, 1)
    if values.size == ry * rx:
        return values.reshape(ry, rx, 1)
    raise InvalidParams(
        f"black needs 1 value or {ry * rx} (one per CFA cell), got {values.size}", path=where
    )


def _file_size(path: Path) -> int:
    try:
        if path.is_dir():
            raise UnsupportedFile("is a folder, not a file", path=str(path))
        return path.stat().st_size
    except FileNotFoundError:
        raise UnsupportedFile("no such file", path=str(path)) from None
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def _check_size(where: str, size: int, expected: int, offset: int, what: str) -> None:
    if size != expected + offset:
        extra = f" + {offset} bytes of offset" if offset else ""
        raise CorruptFile(
            f"file is {size} bytes, expected {expected + offset} bytes for {what}{extra}", path=where
        )


def _read_bytes(path: Path, dtype: str, count: int, offset: int) -> NDArray:
    try:
        return np.fromfile(path, dtype=dtype, count=count, offset=offset)
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def _read_plain(
    path: Path, width: int, height: int, bits: int, container: str | None, offset: int, size: int
) -> NDArray[np.float32]:
    where = str(path)
    if container is None:
        container = "u1" if bits <= 8 else "u2le"
    if container not in CONTAINERS:
        raise InvalidParams(
            f"unknown container {container!r}; expected one of {', '.join(CONTAINERS)}", path=where
        )
    if container == "u1" and bits > 8:
        raise InvalidParams(f"a u1 container holds at most 8 bits, not {bits}", path=where)
    dtype = {"u1": "u1", "u2le": "<u2", "u2be": ">u2"}[container]
    nbytes = width * height * np.dtype(dtype).itemsize
    _check_size(where, size, nbytes, offset, f"{width}x{height} {container} samples")
    samples = _read_bytes(path, dtype, width * height, offset)
    return samples.reshape(height, width).astype(np.float32)


def _read_packed(path: Path, width: int, height: int, bits: int, packing: str, offset: int, size: int):
    where = str(path)
    group_px, group_bytes, max_bits = _GROUPS[packing]
    if bits > max_bits:
        raise InvalidParams(f"packing {packing!r} holds at most {max_bits} bits, not {bits}", path=where)
    if width % group_px:
        raise InvalidParams(
            f"packing {packing!r} needs a width that is a multiple of {group_px}, got {width}", path=where
        )
    nbytes = width * height // group_px * group_bytes
    _check_size(where, size, nbytes, offset, f"{width}x{height} pixels packed as {packing}")
    packed = _read_bytes(path, "u1", nbytes, offset).reshape(-1, group_bytes)
    unpack = {
        "mipi_raw10": unpack_mipi_raw10,
        "mipi_raw12": unpack_mipi_raw12,
        "p9_raw10": unpack_p9_raw10,
        "p9_raw12": unpack_p9_raw12,
    }[packing]
    return unpack(packed).reshape(height, width).astype(np.float32)


def unpack_mipi_raw10(packed: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """MIPI CSI-2 RAW10: ``(N, 5)`` bytes -> ``(N, 4)`` samples in 0..1023."""
    b = packed.astype(np.uint16)
    low = b[:, 4:5]
    shifts = np.array([0, 2, 4, 6], dtype=np.uint16)
    return (b[:, :4] << 2) | ((low >> shifts) & 0x3)


def unpack_mipi_raw12(packed: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """MIPI CSI-2 RAW12: ``(N, 3)`` bytes -> ``(N, 2)`` samples in 0..4095."""
    b = packed.astype(np.uint16)
    low = b[:, 2:3]
    shifts = np.array([0, 4], dtype=np.uint16)
    return (b[:, :2] << 4) | ((low >> shifts) & 0xF)


def unpack_p9_raw10(packed: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Huawei P9 10-bit stream: ``(N, 5)`` bytes -> ``(N, 4)`` samples in 0..1023."""
    b = packed.astype(np.uint16)
    out = np.empty((b.shape[0], 4), dtype=np.uint16)
    out[:, 0] = b[:, 0] | ((b[:, 1] & 0xC0) << 2)
    out[:, 1] = (b[:, 1] & 0x3F) | ((b[:, 2] & 0xF0) << 2)
    out[:, 2] = (b[:, 2] & 0x0F) | ((b[:, 3] & 0xFC) << 2)
    out[:, 3] = (b[:, 3] & 0x03) | (b[:, 4] << 2)
    return out


def unpack_p9_raw12(packed: NDArray[np.uint8]) -> NDArray[np.uint16]:
    """Huawei P9 12-bit stream: ``(N, 3)`` bytes -> ``(N, 2)`` samples in 0..4095."""
    b = packed.astype(np.uint16)
    out = np.empty((b.shape[0], 2), dtype=np.uint16)
    out[:, 0] = b[:, 0] | ((b[:, 1] & 0xF0) << 4)
    out[:, 1] = (b[:, 1] & 0x0F) | (b[:, 2] << 4)
    return out


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _read_png(path: Path, width: int, height: int) -> NDArray[np.float32]:
    """A single-channel PNG; its header is checked before anything is decoded."""
    import cv2

    where = str(path)
    try:
        with open(path, "rb") as f:
            head = f.read(33)
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}", path=where) from None
    if len(head) < 33 or head[:8] != _PNG_SIGNATURE or head[12:16] != b"IHDR":
        raise CorruptFile("not a PNG file (packing 'png16' needs one)", path=where)
    png_w, png_h = int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
    depth, color_type = head[24], head[25]
    if (png_w, png_h) != (width, height):
        raise CorruptFile(f"PNG is {png_w}x{png_h}, expected {width}x{height}", path=where)
    if color_type != 0 or depth not in (8, 16):
        raise UnsupportedFile(
            f"PNG is not a single-channel 8/16-bit image (colour type {color_type}, depth {depth})",
            path=where,
        )
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None or image.shape != (height, width):
        raise CorruptFile("PNG data could not be decoded", path=where)
    return image.astype(np.float32)
