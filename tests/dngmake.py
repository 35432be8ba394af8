"""Craft small DNG files with tifffile, for tests.

``make_dng`` writes a CFA (2-D array) or LinearRaw ((H, W, 3) array) DNG with
the tags a test asks for: any CFA pattern, odd bit depths (packed by
tifffile), strips or tiles, lossless JPEG tiles (imagecodecs ``ljpeg_encode``),
the raw image in IFD0 or in a SubIFD behind an 8-bit preview, black/white
levels, active area, default crop, colour tags, opcode lists and TIFF/EP
exposure tags.  ``patch_tag`` overwrites a tag's value in place (to make hostile
headers from a valid file).
"""

from __future__ import annotations

import struct
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable, Sequence

import imagecodecs
import numpy as np
import tifffile

# TIFF data types
BYTE, ASCII, SHORT, LONG, RATIONAL, UNDEFINED, SRATIONAL, DOUBLE = 1, 2, 3, 4, 5, 7, 10, 12

_LETTERS = {"R": 0, "G": 1, "B": 2, "C": 3, "M": 4, "Y": 5, "W": 6}


def _rationals(values: Iterable[float], *, signed: bool = False, denominator: int = 10000) -> list[int]:
    out: list[int] = []
    for v in values:
        f = Fraction(float(v)).limit_denominator(denominator)
        if not signed and f < 0:
            raise ValueError("negative value for an unsigned rational")
        out += [f.numerator, f.denominator]
    return out


def rational_tag(code: int, values: Sequence[float] | float, *, signed: bool = False) -> tuple:
    """An extratag tuple of (S)RATIONAL values."""
    values = [values] if np.isscalar(values) else list(np.ravel(values))
    return (code, SRATIONAL if signed else RATIONAL, len(values), _rationals(values, signed=signed), False)


def _pattern_bytes(pattern: str | Sequence[Sequence[int]]) -> tuple[tuple[int, int], bytes]:
    if isinstance(pattern, str):
        letters = pattern.upper()
        side = int(round(len(letters) ** 0.5))
        return (side, side), bytes(_LETTERS[c] for c in letters)
    rows = [list(r) for r in pattern]
    return (len(rows), len(rows[0])), bytes(v for r in rows for v in r)


def ljpeg_encode(block: np.ndarray, bits: int) -> bytes:
    """Lossless JPEG (ITU T.81 process 14, predictor 1) of an (H, W) or (H, W, C) array.

    imagecodecs only encodes one component; DNG writers code a W-wide mosaic
    tile as W/2 pixels of 2 components, and LinearRaw as 3, so this small
    encoder writes any number of interleaved components.
    """
    a = np.asarray(block, dtype=np.int64)
    if a.ndim == 2:
        a = a[:, :, None]
    h, w, nc = a.shape
    # prediction: 2**(P-1) for the first sample, left neighbour on the first row,
    # upper neighbour in the first column, left neighbour (predictor 1) elsewhere
    pred = np.empty_like(a)
    pred[:, 1:] = a[:, :-1]
    pred[1:, 0] = a[:-1, 0]
    pred[0, 0] = 1 << (bits - 1)
    diff = (a - pred) & 0xFFFF
    diff = np.where(diff >= 0x8000, diff - 0x10000, diff)  # -32768..32767
    # canonical Huffman table: categories 0..16 all coded with 5 bits
    n_symbols = 17
    codes = {s: (s, 5) for s in range(n_symbols)}
    bitbuf: list[str] = []
    for d in diff.reshape(-1):
        d = int(d)
        if d == -32768:
            ssss = 16
        else:
            ssss = abs(d).bit_length()
        code, length = codes[ssss]
        bitbuf.append(format(code, f"0{length}b"))
        if 0 < ssss < 16:
            extra = d if d > 0 else d + (1 << ssss) - 1
            bitbuf.append(format(extra, f"0{ssss}b"))
    bitstring = "".join(bitbuf)
    bitstring += "1" * (-len(bitstring) % 8)
    payload = bytearray()
    for i in range(0, len(bitstring), 8):
        byte = int(bitstring[i : i + 8], 2)
        payload.append(byte)
        if byte == 0xFF:
            payload.append(0)
    counts = [0] * 16
    counts[4] = n_symbols
    dht = bytes([0x00]) + bytes(counts) + bytes(range(n_symbols))
    out = bytearray(b"\xff\xd8")
    out += b"\xff\xc4" + struct.pack(">H", 2 + len(dht)) + dht
    sof = struct.pack(">BHHB", bits, h, w, nc) + b"".join(bytes([c + 1, 0x11, 0]) for c in range(nc))
    out += b"\xff\xc3" + struct.pack(">H", 2 + len(sof)) + sof
    sos = bytes([nc]) + b"".join(bytes([c + 1, 0x00]) for c in range(nc)) + bytes([1, 0, 0])
    out += b"\xff\xda" + struct.pack(">H", 2 + len(sos)) + sos
    out += payload + b"\xff\xd9"
    return bytes(out)


def _ljpeg_tiles(data: np.ndarray, tile: tuple[int, int], bits: int, layout: str) -> list[bytes]:
    """Lossless JPEG tiles.  ``layout`` of a mosaic tile of th x tw samples:
    ``"one"``: th x tw, 1 component (imagecodecs encoder);
    ``"half_height"``: th/2 rows of tw pixels of 2 components;
    ``"half_width"``: th rows of tw/2 pixels of 2 components.
    Both two-component layouts hold the samples in the same memory order."""
    th, tw = tile
    h, w = data.shape[:2]
    out = []
    for y in range(0, h, th):
        for x in range(0, w, tw):
            block = np.zeros((th, tw) + data.shape[2:], dtype=np.uint16)
            part = data[y : y + th, x : x + tw]
            block[: part.shape[0], : part.shape[1]] = part
            if block.ndim == 3:
                out.append(ljpeg_encode(block, bits))
            elif layout == "one":
                out.append(bytes(imagecodecs.ljpeg_encode(block, bitspersample=bits)))
            elif layout == "half_height":
                out.append(ljpeg_encode(block.reshape(th // 2, tw, 2), bits))
            elif layout == "half_width":
                out.append(ljpeg_encode(block.reshape(th, tw // 2, 2), bits))
            else:
                raise ValueError(f"unknown lossless JPEG layout {layout!r}")
    return out


def make_dng(
    path: str | Path,
    raw: np.ndarray,
    *,
    pattern: str | Sequence[Sequence[int]] = "RGGB",
    bits: int = 16,
    tile: tuple[int, int] | None = None,
    rowsperstrip: int | None = None,
    ljpeg: bool = False,
    ljpeg_layout: str = "half_height",
    subifd: bool = False,
    byteorder: str = "<",
    black_level: float | Sequence[float] | None = None,
    black_repeat: tuple[int, int] | None = None,
    black_delta_h: Sequence[float] | None = None,
    black_delta_v: Sequence[float] | None = None,
    white_level: int | Sequence[int] | None = None,
    linearization: Sequence[int] | None = None,
    active_area: tuple[int, int, int, int] | None = None,
    crop_origin: tuple[float, float] | None = None,
    crop_size: tuple[float, float] | None = None,
    plane_color: bytes | None = None,
    color_matrix_1: Sequence[float] | None = None,
    color_matrix_2: Sequence[float] | None = None,
    forward_matrix_1: Sequence[float] | None = None,
    camera_calibration_1: Sequence[float] | None = None,
    illuminants: tuple[int, int] | None = None,
    as_shot_neutral: Sequence[float] | None = None,
    analog_balance: Sequence[float] | None = None,
    baseline_exposure: float | None = None,
    noise_profile: Sequence[float] | None = None,
    opcode_lists: dict[int, bytes] | None = None,
    make: str | None = "rawlab",
    model: str | None = "synthetic",
    orientation: int | None = None,
    exposure_time: float | None = None,
    f_number: float | None = None,
    iso: int | None = None,
    focal_length: float | None = None,
    datetime_original: str | None = None,
    lens_info: Sequence[float] | None = None,
    dng_version: bytes | None = b"\x01\x04\x00\x00",
    extra_raw_tags: Sequence[tuple] = (),
    photometric: int | None = None,
) -> Path:
    """Write a DNG and return its path (see the module docstring)."""
    path = Path(path)
    raw = np.ascontiguousarray(raw)
    is_cfa = raw.ndim == 2
    spp = 1 if is_cfa else raw.shape[2]

    ifd0: list[tuple] = []
    if dng_version is not None:
        ifd0 += [(50706, BYTE, 4, dng_version, False), (50707, BYTE, 4, b"\x01\x01\x00\x00", False)]
    if make:
        ifd0.append((271, ASCII, 0, make, False))
    if model:
        ifd0.append((272, ASCII, 0, model, False))
        ifd0.append((50708, ASCII, 0, model, False))
    if orientation is not None:
        ifd0.append((274, SHORT, 1, orientation, False))
    if color_matrix_1 is not None:
        ifd0.append(rational_tag(50721, color_matrix_1, signed=True))
    if color_matrix_2 is not None:
        ifd0.append(rational_tag(50722, color_matrix_2, signed=True))
    if camera_calibration_1 is not None:
        ifd0.append(rational_tag(50723, camera_calibration_1, signed=True))
    if forward_matrix_1 is not None:
        ifd0.append(rational_tag(50964, forward_matrix_1, signed=True))
    if illuminants is not None:
        ifd0 += [(50778, SHORT, 1, illuminants[0], False), (50779, SHORT, 1, illuminants[1], False)]
    if as_shot_neutral is not None:
        ifd0.append(rational_tag(50728, as_shot_neutral))
    if analog_balance is not None:
        ifd0.append(rational_tag(50727, analog_balance))
    if baseline_exposure is not None:
        ifd0.append(rational_tag(50730, baseline_exposure, signed=True))
    if lens_info is not None:
        ifd0.append(rational_tag(50736, lens_info))
    # TIFF/EP exposure tags in IFD0 (tifffile cannot write an EXIF IFD)
    if exposure_time is not None:
        ifd0.append((33434, RATIONAL, 1, _rationals([exposure_time], denominator=100000), False))
    if f_number is not None:
        ifd0.append((33437, RATIONAL, 1, _rationals([f_number]), False))
    if iso is not None:
        ifd0.append((34855, SHORT, 1, iso, False))
    if focal_length is not None:
        ifd0.append((37386, RATIONAL, 1, _rationals([focal_length]), False))
    if datetime_original is not None:
        ifd0.append((36867, ASCII, 0, datetime_original, False))

    rawtags: list[tuple] = []
    if is_cfa:
        (rows, cols), pat = _pattern_bytes(pattern)
        rawtags += [(33421, SHORT, 2, (rows, cols), False), (33422, BYTE, len(pat), pat, False)]
        if plane_color is not None:
            rawtags.append((50710, BYTE, len(plane_color), plane_color, False))
    if black_repeat is not None:
        rawtags.append((50713, SHORT, 2, black_repeat, False))
    if black_level is not None:
        values = np.ravel(black_level).astype(float)
        if np.all(values == np.round(values)):
            rawtags.append((50714, LONG, values.size, [int(v) for v in values], False))
        else:
            rawtags.append(rational_tag(50714, values))
    if black_delta_h is not None:
        rawtags.append(rational_tag(50715, black_delta_h, signed=True))
    if black_delta_v is not None:
        rawtags.append(rational_tag(50716, black_delta_v, signed=True))
    if white_level is not None:
        values = [int(v) for v in np.ravel(white_level)]
        rawtags.append((50717, LONG, len(values), values, False))
    if linearization is not None:
        rawtags.append((50712, SHORT, len(linearization), [int(v) for v in linearization], False))
    if active_area is not None:
        rawtags.append((50829, LONG, 4, active_area, False))
    if crop_origin is not None:
        rawtags.append(rational_tag(50719, crop_origin))
    if crop_size is not None:
        rawtags.append(rational_tag(50720, crop_size))
    if noise_profile is not None:
        rawtags.append((51041, DOUBLE, len(noise_profile), [float(v) for v in noise_profile], False))
    for index, data in (opcode_lists or {}).items():
        code = {1: 51008, 2: 51009, 3: 51022}[index]
        rawtags.append((code, UNDEFINED, len(data), data, False))
    rawtags += list(extra_raw_tags)

    if photometric is None:
        photometric = 32803 if is_cfa else 34892
    if raw.dtype.kind != "f":
        raw = raw.astype(np.uint8 if bits <= 8 else np.uint16)
    write_args: dict[str, Any] = dict(
        photometric=photometric,
        subfiletype=0,
        metadata=None,
        software=False,
        planarconfig="contig" if not is_cfa else None,
    )
    if ljpeg:
        if tile is None:
            raise ValueError("lossless JPEG needs tiles in this helper")
        segments = _ljpeg_tiles(raw, tile, bits, ljpeg_layout)
        write_args.update(
            data=iter(segments), shape=raw.shape, dtype=np.uint16, compression=7, tile=tile
        )
        write_args["extratags"] = rawtags
        write_args["bitspersample"] = bits
    else:
        write_args.update(data=raw, tile=tile, rowsperstrip=rowsperstrip)
        if bits not in (8, 16) and raw.dtype.kind != "f":
            write_args["bitspersample"] = bits
        write_args["extratags"] = rawtags

    with tifffile.TiffWriter(path, byteorder=byteorder) as tw:
        if subifd:
            preview = np.zeros((16, 16, 3), dtype=np.uint8)
            preview[..., 0] = 200
            tw.write(
                preview,
                photometric="rgb",
                subfiletype=1,
                subifds=1,
                metadata=None,
                software=False,
                extratags=ifd0,
            )
            tw.write(**write_args)
        else:
            write_args["extratags"] = ifd0 + write_args["extratags"]
            tw.write(**write_args)
    return path


def tag_entry_offset(path: str | Path, code: int, *, subifd: int | None = None) -> tuple[int, str]:
    """File offset of a tag's 12-byte IFD entry, and the byte order."""
    with tifffile.TiffFile(path) as tf:
        page = tf.pages.first
        if subifd is not None:
            page = page.pages[subifd]
        return page.tags[code].offset, tf.byteorder


def patch_tag(path: str | Path, code: int, value: int, *, subifd: int | None = None, dtype: int = LONG) -> None:
    """Overwrite a one-value SHORT/LONG tag's type and value in place."""
    offset, byteorder = tag_entry_offset(path, code, subifd=subifd)
    with open(path, "r+b") as fh:
        fh.seek(offset + 2)
        fh.write(struct.pack(byteorder + "HI", dtype, 1))
        fh.write(struct.pack(byteorder + ("I" if dtype == LONG else "HH"), *((value,) if dtype == LONG else (value, 0))))


def bayer_ramp(height: int, width: int, bits: int, seed: int = 0) -> np.ndarray:
    """Deterministic random mosaic values using the full range of ``bits``."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**bits, size=(height, width), dtype=np.int64)
    values[0, 0] = 2**bits - 1
    values[0, 1] = 0
    return values.astype(np.uint16 if bits > 8 else np.uint8)
