"""Open any RAW file: look at its first bytes and hand it to the right reader.

The decision is made from the content, never from the file name:

* a TIFF whose first IFD has DNGVersion -> :func:`rawlab.io.dng.read_dng`;
* another camera RAW container (CRW, CR2, CR3, NEF, ARW, RAF, KDC, ORF, RW2,
  ...) -> :func:`rawlab.io.libraw.read_libraw`;
* an ordinary image (JPEG, PNG, plain TIFF, HEIF, ...) -> ``UnsupportedFile``
  "not a RAW file (looks like a JPEG image)";
* no recognisable header (a headerless sensor dump) -> ``UnsupportedFile``
  pointing to :func:`rawlab.io.bayer.read_bayer`;
* a missing or empty file -> ``UnsupportedFile`` / ``CorruptFile``.
"""

from __future__ import annotations

import os
from pathlib import Path

from rawlab.core.frame import Frame
from rawlab.errors import UnsupportedFile
from rawlab.io._sniff import sniff
from rawlab.io.libraw import BAYER_HINT


def read(path: str | os.PathLike[str]) -> Frame:
    """Read a RAW file into a :class:`~rawlab.core.frame.Frame`.

    Parameters
    ----------
    path
        A DNG or a camera RAW file; it is only read, never modified.

    Returns
    -------
    Frame
        ``Encoding.CFA`` with ``data`` in DN for mosaic sensors, or
        ``Encoding.CAMERA_RGB`` for data stored already interpolated (LinearRaw
        DNG); see the individual readers.

    Raises
    ------
    UnsupportedFile
        Missing file, not a RAW file, or a headerless dump (use ``read_bayer``).
    CorruptFile
        Empty, truncated or damaged file.
    LimitExceeded
        The header asks for an absurdly large image.
    """
    path = Path(path)
    kind = sniff(path)
    if kind.kind == "dng":
        from rawlab.io.dng import read_dng

        return read_dng(path)
    if kind.kind == "raw":
        from rawlab.io.libraw import read_libraw

        return read_libraw(path)
    if kind.kind == "image":
        hint = "; a PNG holding a Bayer mosaic reads with rawlab.read_bayer(path, packing='png16', ...)" if (
            "PNG" in kind.container
        ) else ""
        raise UnsupportedFile(f"not a RAW file (looks like {kind.container}){hint}", path=str(path))
    raise UnsupportedFile(f"not a RAW file: no RAW container header; {BAYER_HINT}", path=str(path))
