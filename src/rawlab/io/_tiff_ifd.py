"""Small TIFF IFD tools shared by the DNG writer and the TIFF encoder.

tifffile writes the image IFDs but not the EXIF or GPS sub-IFDs
(``TiffWriter`` does not support them), so the writers put a placeholder
tag (:func:`placeholder_tag`) in IFD0, let tifffile write the file, then
append the sub-IFD at the end of the file and turn the placeholder into its
pointer (:func:`attach_sub_ifds`).

Entries are kept as raw ``(tag, type, count, value bytes)`` in a known byte
order, so tags copied from a source EXIF blob keep their exact TIFF types.
Parsing is bounded (entry counts, offsets inside the blob, no loops), so a
hostile blob yields fewer entries, never a huge allocation.  TIFF 6.0 section 2
(structure) and EXIF 2.32 section 4.6 (IFD pointers).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import BinaryIO, NamedTuple

#: Bytes per value of each TIFF field type (TIFF 6.0 + IFD types 13/16-18).
TYPE_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}
#: Element size for byte swapping (rationals swap as two 4-byte halves).
_SWAP_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 4,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 4,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
    17: 8,
    18: 8,
}

EXIF_IFD_POINTER = 34665
GPS_IFD_POINTER = 34853
INTEROP_IFD_POINTER = 40965
MAKER_NOTE = 37500
_POINTERS = {EXIF_IFD_POINTER, GPS_IFD_POINTER, INTEROP_IFD_POINTER, 330}  # 330 SubIFDs
_MAX_ENTRIES = 1000

SHORT, LONG, RATIONAL, SRATIONAL, ASCII, BYTE, UNDEFINED, DOUBLE = 3, 4, 5, 10, 2, 1, 7, 12


class Entry(NamedTuple):
    """One IFD entry: tag, TIFF type, value count and the value bytes."""

    tag: int
    type: int
    count: int
    data: bytes


@dataclass
class ExifContent:
    """The IFD0, EXIF and GPS entries of an EXIF blob, in ``byteorder``."""

    byteorder: str = "<"
    ifd0: list[Entry] = field(default_factory=list)
    exif: list[Entry] = field(default_factory=list)
    gps: list[Entry] = field(default_factory=list)


def _tiff_start(blob: bytes) -> bytes:
    return blob[6:] if blob[:6] == b"Exif\0\0" else blob


def _read_ifd(tiff: bytes, offset: int, order: str) -> tuple[list[Entry], list[int]]:
    """Entries of the IFD at ``offset`` and the file positions of their values."""
    if offset < 8 or offset + 2 > len(tiff):
        return [], []
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    count = min(count, _MAX_ENTRIES, (len(tiff) - offset - 2) // 12)
    entries, positions = [], []
    for i in range(count):
        pos = offset + 2 + 12 * i
        tag, typ, n = struct.unpack_from(order + "HHI", tiff, pos)
        size = TYPE_SIZES.get(typ)
        if size is None:
            continue
        nbytes = size * n
        if nbytes <= 4:
            start = pos + 8
        else:
            (start,) = struct.unpack_from(order + "I", tiff, pos + 8)
            if start + nbytes > len(tiff):
                continue
        entries.append(Entry(tag, typ, n, bytes(tiff[start : start + nbytes])))
        positions.append(start)
    return entries, positions


def parse_exif_blob(blob: bytes | None) -> ExifContent:
    """Split an EXIF blob (``b"Exif\\0\\0"`` + TIFF, or bare TIFF) into entries.

    Sub-IFD pointers (EXIF, GPS, Interop, SubIFDs) are resolved and removed
    from the lists; MakerNote is dropped (its internal offsets cannot survive a
    move).  Anything unreadable is skipped.
    """
    content = ExifContent()
    if not blob:
        return content
    tiff = _tiff_start(bytes(blob))
    if len(tiff) < 8 or tiff[:4] not in (b"II*\0", b"MM\0*"):
        return content
    order = "<" if tiff[:2] == b"II" else ">"
    content.byteorder = order
    (ifd0_offset,) = struct.unpack_from(order + "I", tiff, 4)
    ifd0, _ = _read_ifd(tiff, ifd0_offset, order)
    for entry in ifd0:
        if entry.tag in (EXIF_IFD_POINTER, GPS_IFD_POINTER) and entry.type in (LONG, 13) and entry.count == 1:
            (sub_offset,) = struct.unpack(order + "I", entry.data)
            if sub_offset != ifd0_offset:
                sub, _ = _read_ifd(tiff, sub_offset, order)
                sub = [e for e in sub if e.tag not in _POINTERS and e.tag != MAKER_NOTE]
                if entry.tag == EXIF_IFD_POINTER:
                    content.exif = sub
                else:
                    content.gps = sub
    content.ifd0 = [e for e in ifd0 if e.tag not in _POINTERS]
    return content


def encode_exif_blob(content: ExifContent) -> bytes:
    """``b"Exif\\0\\0"`` + a TIFF holding IFD0, the EXIF IFD and the GPS IFD of ``content``."""
    order = content.byteorder
    subs = [
        (tag, entries)
        for tag, entries in ((EXIF_IFD_POINTER, content.exif), (GPS_IFD_POINTER, content.gps))
        if entries
    ]

    def ifd0(offsets: list[int]) -> list[Entry]:
        pointers = [
            Entry(tag, LONG, 1, struct.pack(order + "I", o))
            for (tag, _), o in zip(subs, offsets, strict=True)
        ]
        return [e for e in content.ifd0 if e.tag not in _POINTERS] + pointers

    position = 8 + len(encode_ifd(ifd0([0] * len(subs)), 8, order))
    offsets, blocks = [], []
    for _, entries in subs:
        position += -position % 4
        block = encode_ifd(entries, position, order)
        offsets.append(position)
        blocks.append((position, block))
        position += len(block)
    out = bytearray(b"II*\0\x08\0\0\0" if order == "<" else b"MM\0*\0\0\0\x08")
    out += encode_ifd(ifd0(offsets), 8, order)
    for start, block in blocks:
        out += b"\0" * (start - len(out))
        out += block
    return b"Exif\0\0" + bytes(out)


def swap_entries(entries: list[Entry], source: str, target: str) -> list[Entry]:
    """The entries with their values converted from byte order ``source`` to ``target``."""
    if source == target:
        return list(entries)
    out = []
    for e in entries:
        size = _SWAP_SIZES.get(e.type, 1)
        if size == 1:
            out.append(e)
            continue
        n = len(e.data) // size
        values = struct.unpack(f"{source}{n}{'HIQ'[size.bit_length() - 2]}", e.data)
        out.append(
            Entry(e.tag, e.type, e.count, struct.pack(f"{target}{n}{'HIQ'[size.bit_length() - 2]}", *values))
        )
    return out


def merge_entries(base: list[Entry], override: list[Entry]) -> list[Entry]:
    """``base`` with every tag of ``override`` replaced or added, sorted by tag."""
    merged = {e.tag: e for e in base}
    merged.update({e.tag: e for e in override})
    return [merged[t] for t in sorted(merged)]


def encode_ifd(entries: list[Entry], offset: int, order: str) -> bytes:
    """An IFD placed at file ``offset``: entries sorted by tag, larger values
    after it (word aligned), next-IFD offset 0."""
    entries = sorted(entries, key=lambda e: e.tag)
    table = bytearray(struct.pack(order + "H", len(entries)))
    data_start = offset + 2 + 12 * len(entries) + 4
    data = bytearray()
    for e in entries:
        table += struct.pack(order + "HHI", e.tag, e.type, e.count)
        if len(e.data) <= 4:
            table += e.data.ljust(4, b"\0")
        else:
            if (data_start + len(data)) % 2:
                data += b"\0"
            table += struct.pack(order + "I", data_start + len(data))
            data += e.data
    table += b"\0\0\0\0"
    return bytes(table + data)


def append_sub_ifd(fh: BinaryIO, entries: list[Entry], pointer_position: int, order: str) -> int:
    """Append an IFD at the end of ``fh`` and store its offset at ``pointer_position``.

    Returns the offset of the new IFD.
    """
    fh.seek(0, 2)
    end = fh.tell()
    pad = -end % 4
    fh.write(b"\0" * pad)
    offset = end + pad
    fh.write(encode_ifd(entries, offset, order))
    fh.seek(pointer_position)
    fh.write(struct.pack(order + "I", offset))
    fh.seek(0, 2)
    return offset


def placeholder_tag(pointer_tag: int) -> int:
    """The tag written in place of a sub-IFD pointer that tifffile refuses to write.

    It sorts right after the pointer tag (no standard tag lies between), so
    renaming it keeps the IFD sorted.
    """
    return pointer_tag + 1


def attach_sub_ifds(fh: BinaryIO, subs: dict[int, list[Entry]], order: str) -> None:
    """Append one IFD per ``subs`` item and turn IFD0's placeholder tags into pointers to them.

    ``subs`` maps a pointer tag (34665 EXIF, 34853 GPS) to the entries of its IFD;
    IFD0 must hold :func:`placeholder_tag` of each, as a LONG.
    """
    if not subs:
        return
    wanted = {placeholder_tag(tag): tag for tag in subs}
    fh.seek(4)
    (ifd0_offset,) = struct.unpack(order + "I", fh.read(4))
    fh.seek(ifd0_offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    table = fh.read(12 * count)
    found = 0
    for i in range(count):
        tag, typ, n = struct.unpack_from(order + "HHI", table, 12 * i)
        if tag in wanted and typ == LONG and n == 1:
            position = ifd0_offset + 2 + 12 * i
            fh.seek(position)
            fh.write(struct.pack(order + "H", wanted[tag]))
            append_sub_ifd(fh, subs[wanted[tag]], position + 8, order)
            found += 1
    if found != len(subs):  # pragma: no cover - the writers always add the placeholders
        raise RuntimeError("sub-IFD placeholder tag missing from IFD0")


def retype_ifd0_tag(fh: BinaryIO, tag: int, new_type: int, order: str) -> None:
    """Change the field type of an IFD0 entry in place (types of equal size only)."""
    fh.seek(4)
    (ifd0_offset,) = struct.unpack(order + "I", fh.read(4))
    fh.seek(ifd0_offset)
    (count,) = struct.unpack(order + "H", fh.read(2))
    table = fh.read(12 * count)
    for i in range(count):
        found, typ = struct.unpack_from(order + "HH", table, 12 * i)
        if found == tag:
            if TYPE_SIZES[typ] != TYPE_SIZES[new_type]:  # pragma: no cover - caller error
                raise ValueError(f"cannot retype tag {tag} from {typ} to {new_type}")
            fh.seek(ifd0_offset + 2 + 12 * i + 2)
            fh.write(struct.pack(order + "H", new_type))
    fh.seek(0, 2)


# --- entry builders -----------------------------------------------------------


def rational_entry(tag: int, pairs: list[tuple[int, int]], order: str, *, signed: bool = False) -> Entry:
    """A RATIONAL (or SRATIONAL) entry from ``(numerator, denominator)`` pairs."""
    flat = [int(v) for pair in pairs for v in pair]
    code = "i" if signed else "I"
    return Entry(
        tag, SRATIONAL if signed else RATIONAL, len(pairs), struct.pack(f"{order}{len(flat)}{code}", *flat)
    )


def ascii_entry(tag: int, text: str) -> Entry:
    """An ASCII entry (NUL terminated; non-ASCII characters become ``?``)."""
    data = text.encode("ascii", "replace").replace(b"\0", b"") + b"\0"
    return Entry(tag, ASCII, len(data), data)


def ints_entry(tag: int, typ: int, values: list[int] | tuple[int, ...], order: str) -> Entry:
    """A BYTE, SHORT or LONG entry."""
    code = {BYTE: "B", SHORT: "H", LONG: "I", UNDEFINED: "B"}[typ]
    return Entry(tag, typ, len(values), struct.pack(f"{order}{len(values)}{code}", *[int(v) for v in values]))


def doubles_entry(tag: int, values: list[float] | tuple[float, ...], order: str) -> Entry:
    """A DOUBLE entry."""
    return Entry(tag, DOUBLE, len(values), struct.pack(f"{order}{len(values)}d", *[float(v) for v in values]))


def undefined_entry(tag: int, data: bytes) -> Entry:
    """An UNDEFINED entry holding ``data`` verbatim."""
    return Entry(tag, UNDEFINED, len(data), bytes(data))
