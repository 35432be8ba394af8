"""Tell what a file is from its first bytes (never from its suffix).

Shared by :func:`rawlab.io.read.read` (dispatch) and
:func:`rawlab.io.libraw.read_libraw` (which must refuse files that LibRaw would
only *guess* from their size).  Nothing here decodes pixels; a few small,
bounded reads of the header are all it does, so a hostile file cannot make it
allocate much or loop for long.

Kinds:

* ``"dng"`` -- a TIFF whose first IFD carries DNGVersion (tag 50706).
* ``"raw"`` -- a camera RAW container LibRaw recognises by its header: a
  TIFF-based raw (TIFF with a Make tag: NEF, CR2, ARW, PEF, KDC, ...), Olympus
  ORF, Panasonic RW2, Canon CIFF (CRW), Canon CR3, Fujifilm RAF, Minolta MRW,
  Sigma X3F, Phase One, Nokia, Sinar, Rollei, Apple QuickTake, Cine, ...
* ``"image"`` -- an ordinary image (JPEG, PNG, plain TIFF, HEIF, WebP, ...).
* ``"headerless"`` -- nothing recognisable: a bare sensor dump (or junk).
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from rawlab.errors import CorruptFile, UnsupportedFile

#: TIFF tags read from the first IFD.
_TAG_MAKE, _TAG_MODEL, _TAG_DNG_VERSION = 271, 272, 50706
#: Bounds on header parsing (a hostile header cannot make us read more).
_MAX_IFD_ENTRIES = 4096
_MAX_STRING_BYTES = 256
_MAX_CIFF_ENTRIES = 2048
_MAX_CIFF_DEPTH = 6


@dataclass(frozen=True, slots=True)
class Sniffed:
    """What the header says the file is."""

    kind: str  #: "dng" | "raw" | "image" | "headerless"
    container: str  #: human name of the container ("TIFF-based raw", "JPEG image", ...)
    size_bytes: int
    make: str | None = None
    model: str | None = None


# Signatures of RAW containers that LibRaw identifies from their header, as
# (offset, bytes, container name).  Checked after the TIFF/CIFF family.
_RAW_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"FUJIFILM", "Fujifilm RAF"),
    (0, b"\x00MRM", "Minolta MRW"),
    (0, b"FOVb", "Sigma X3F"),
    (4, b"ftypcrx ", "Canon CR3"),
    (0, b"NOKIARAW", "Nokia raw"),
    (0, b"\x00\x01\x00\x01\x00@", "Nokia raw"),
    (0, b"ARRI", "ARRI raw"),
    (0, b"XPDS", "Canon RMF"),
    (4, b"RED1", "RED R3D"),
    (0, b"DSC-Image", "Rollei raw"),
    (0, b"PWAD", "Sinar IA"),
    (0, b"qktk\x00", "Apple QuickTake 100"),
    (0, b"qktn\x00", "Apple QuickTake 150"),
    (0, b"PXN\x00", "Logitech Fotoman"),
    (25, b"ARECOYK", "Contax N Digital"),
    (0, b"BRCM", "Raspberry Pi raw"),
    (0, b"CI\x2c\x00", "Phantom Cine"),
)

_IMAGE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\xff\xd8\xff", "a JPEG image"),
    (0, b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (0, b"GIF87a", "a GIF image"),
    (0, b"GIF89a", "a GIF image"),
    (0, b"8BPS", "a Photoshop document"),
    (0, b"%PDF", "a PDF document"),
    (0, b"\x00\x00\x00\x0cJXL ", "a JPEG XL image"),
    (0, b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
    (0, b"\xff\x4f\xff\x51", "a JPEG 2000 codestream"),
    (0, b"qoif", "a QOI image"),
    (0, b"\x76\x2f\x31\x01", "an OpenEXR image"),
    (0, b"#?RADIANCE", "a Radiance HDR image"),
)

_HEIF_BRANDS = (b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis")


def _at(head: bytes, offset: int, magic: bytes) -> bool:
    return head[offset : offset + len(magic)] == magic


def sniff(path: str | os.PathLike[str]) -> Sniffed:
    """Identify ``path`` from its header.

    Raises
    ------
    UnsupportedFile
        The path does not exist, is a folder or cannot be read.
    CorruptFile
        The file is empty.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise UnsupportedFile("no such file", path=str(path)) from None
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    if path.is_dir():
        raise UnsupportedFile("is a folder, not a file", path=str(path))
    if size == 0:
        raise CorruptFile("empty file (0 bytes)", path=str(path))
    try:
        with open(path, "rb") as f:
            head = f.read(64)
            return _classify(f, head, size)
    except OSError as exc:
        raise UnsupportedFile(f"cannot read: {exc.strerror or exc}", path=str(path)) from None
    except _Damaged as exc:
        raise CorruptFile(str(exc), path=str(path)) from None


class _Damaged(Exception):
    """A recognised container whose header points outside the file."""


def _classify(f, head: bytes, size: int) -> Sniffed:
    order = head[:2]
    if order in (b"II", b"MM"):
        if _at(head, 6, b"HEAPCCDR"):
            make, model = _ciff_make_model(f, head, size)
            return Sniffed("raw", "Canon CIFF (CRW)", size, make, model)
        endian = "<" if order == b"II" else ">"
        if len(head) >= 4:
            (magic,) = struct.unpack(endian + "H", head[2:4])
            if magic == 42:
                return _classify_tiff(f, head, size, endian)
            if magic == 43:
                return Sniffed("image", "a BigTIFF image", size)
            if magic in (0x4F52, 0x5352) or (order == b"II" and magic == 0x55):
                name = "Panasonic RW2" if magic == 0x55 else "Olympus ORF"
                make, model, _ = _tiff_ifd0(f, head, size, endian)
                return Sniffed("raw", name, size, make, model)
    if (_at(head, 0, b"IIII") and _at(head, 9, b"waR")) or (_at(head, 0, b"MMMM") and _at(head, 8, b"Raw")):
        return Sniffed("raw", "Phase One IIQ", size)
    for offset, magic, name in _RAW_SIGNATURES:
        if _at(head, offset, magic):
            return Sniffed("raw", name, size)
    if _at(head, 0, b"RIFF"):
        if _at(head, 8, b"WEBP"):
            return Sniffed("image", "a WebP image", size)
        return Sniffed("raw", "RIFF raw", size)
    if _at(head, 4, b"ftyp") and head[8:12] in _HEIF_BRANDS:
        return Sniffed("image", "a HEIF/AVIF image", size)
    for offset, magic, name in _IMAGE_SIGNATURES:
        if _at(head, offset, magic):
            return Sniffed("image", name, size)
    if _at(head, 0, b"BM") and len(head) >= 6 and struct.unpack("<I", head[2:6])[0] == size:
        return Sniffed("image", "a BMP image", size)
    if _is_smal(head, size):
        return Sniffed("raw", "SMaL raw", size)
    return Sniffed("headerless", "no known header", size)


def _is_smal(head: bytes, size: int) -> bool:
    """SMaL cameras store the file size in their header (at byte 3, or 8 for v6)."""
    if len(head) < 12:
        return False
    at = 8 if head[2] == 6 else 3
    return struct.unpack("<I", head[at : at + 4])[0] == size and size > 64


def _classify_tiff(f, head: bytes, size: int, endian: str) -> Sniffed:
    make, model, is_dng = _tiff_ifd0(f, head, size, endian)
    if is_dng:
        return Sniffed("dng", "DNG", size, make, model)
    if make:
        return Sniffed("raw", "TIFF-based raw", size, make, model)
    return Sniffed("image", "a TIFF image without camera RAW tags", size)


def _read_at(f, offset: int, count: int) -> bytes:
    f.seek(offset)
    return f.read(count)


def _tiff_ifd0(f, head: bytes, size: int, endian: str) -> tuple[str | None, str | None, bool]:
    """Make, Model and whether DNGVersion is present, from the first IFD."""
    (ifd,) = struct.unpack(endian + "I", head[4:8])
    if ifd < 8 or ifd + 2 > size:
        raise _Damaged(
            f"TIFF header points to its first directory at byte {ifd}, outside the file (truncated?)"
        )
    (count,) = struct.unpack(endian + "H", _read_at(f, ifd, 2).ljust(2, b"\0"))
    count = min(count, _MAX_IFD_ENTRIES, (size - ifd - 2) // 12)
    table = _read_at(f, ifd + 2, 12 * count)
    make = model = None
    is_dng = False
    for i in range(len(table) // 12):
        tag, typ, n = struct.unpack(endian + "HHI", table[12 * i : 12 * i + 8])
        value = table[12 * i + 8 : 12 * i + 12]
        if tag == _TAG_DNG_VERSION:
            is_dng = True
        elif tag in (_TAG_MAKE, _TAG_MODEL) and typ == 2 and n > 0:
            n = min(n, _MAX_STRING_BYTES)
            if n <= 4:
                raw = value[:n]
            else:
                (offset,) = struct.unpack(endian + "I", value)
                raw = _read_at(f, offset, n) if offset + n <= size else b""
            text = _ascii(raw)
            if tag == _TAG_MAKE:
                make = text
            else:
                model = text
    return make, model, is_dng


def _ascii(raw: bytes) -> str | None:
    text = raw.split(b"\0", 1)[0].decode("latin-1").strip()
    return text or None


def _ciff_make_model(f, head: bytes, size: int) -> tuple[str | None, str | None]:
    """Make and model from a Canon CIFF heap (record 0x080A: two NUL-separated strings)."""
    endian = "<" if head[:2] == b"II" else ">"
    (hlen,) = struct.unpack(endian + "I", head[2:6])
    if not 14 <= hlen < size - 6:
        raise _Damaged(f"Canon CRW header length {hlen} does not fit the file (truncated?)")
    (root_table,) = struct.unpack(endian + "I", _read_at(f, size - 4, 4))
    if root_table + 2 > size - hlen:
        raise _Damaged("Canon CRW directory is missing from the end of the file (truncated?)")
    budget = [_MAX_CIFF_ENTRIES]

    def heap(start: int, length: int, depth: int) -> tuple[str | None, str | None] | None:
        if depth > _MAX_CIFF_DEPTH or length < 6 or start + length > size:
            return None
        (table_offset,) = struct.unpack(endian + "I", _read_at(f, start + length - 4, 4))
        if table_offset + 2 > length:
            return None
        (count,) = struct.unpack(endian + "H", _read_at(f, start + table_offset, 2))
        count = min(count, budget[0], (length - table_offset - 2) // 10)
        budget[0] -= count
        entries = _read_at(f, start + table_offset + 2, 10 * count)
        for i in range(len(entries) // 10):
            tag, rec_size, rec_offset = struct.unpack(endian + "HII", entries[10 * i : 10 * i + 10])
            in_record = tag & 0xC000 == 0x4000
            if (tag & 0x3FFF) == 0x080A and not in_record and rec_offset + rec_size <= length:
                raw = _read_at(f, start + rec_offset, min(rec_size, _MAX_STRING_BYTES))
                parts = [p.decode("latin-1").strip() for p in raw.split(b"\0")]
                return (parts[0] or None, parts[1] or None) if len(parts) > 1 else (parts[0] or None, None)
            if ((tag >> 8) & 0x38) in (0x28, 0x30) and not in_record and rec_offset + rec_size <= length:
                found = heap(start + rec_offset, rec_size, depth + 1)
                if found is not None:
                    return found
        return None

    return heap(hlen, size - hlen, 0) or (None, None)
