"""ICC v4 matrix/TRC display profiles for rawlab's output spaces.

Every encoded image carries the profile of its buffer: the RGB primaries of
the frame (sRGB, Display P3, Rec. 2020, ProPhoto) and its transfer (the
IEC 61966-2-1 sRGB curve or linear).  The profiles are built here from the
colourimetry, not copied from elsewhere:

* header and tag layout per ICC.1:2022 (profile version 4.3, device class
  ``mntr``, colour space ``RGB``, PCS ``XYZ``), profile ID = MD5 per section 7.2.18;
* ``rXYZ/gXYZ/bXYZ``: the RGB -> XYZ matrix of the primaries (colour-science
  ``RGB_COLOURSPACES``), adapted to the PCS white D50 with the Bradford
  transform and rounded to s15Fixed16 so that RGB white maps exactly to D50;
* ``chad``: the Bradford matrix from the space's white to D50;
* ``wtpt``: D50 (ICC v4 rule for display profiles);
* ``rTRC/gTRC/bTRC``: one ``para`` curve shared by the three channels --
  function type 3 with the sRGB constants (g 2.4, a 1/1.055, b 0.055/1.055,
  c 1/12.92, d 0.04045) or type 0 with g 1 for linear data.
"""

from __future__ import annotations

import functools
import hashlib
import struct

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Primaries, Transfer

#: The ICC profile connection space illuminant, D50 (ICC.1 section 7.2.16).
XYZ_ICC_D50 = np.array([0.9642, 1.0, 0.8249])

#: colour-science colourspace of each rawlab primaries value.
_COLOURSPACE_NAMES = {
    Primaries.SRGB: "sRGB",
    Primaries.DISPLAY_P3: "Display P3",
    Primaries.REC2020: "ITU-R BT.2020",
    Primaries.PROPHOTO: "ProPhoto RGB",
}
_DESCRIPTIONS = {
    Primaries.SRGB: "sRGB IEC 61966-2-1",
    Primaries.DISPLAY_P3: "Display P3",
    Primaries.REC2020: "Rec. ITU-R BT.2020",
    Primaries.PROPHOTO: "ProPhoto RGB (ROMM primaries)",
}
#: IEC 61966-2-1 decoding curve as ICC parametric function type 3.
_SRGB_PARAMETERS = (2.4, 1.0 / 1.055, 0.055 / 1.055, 1.0 / 12.92, 0.04045)
_COPYRIGHT = "No copyright, use freely (CC0)"
#: Fixed creation date so that a profile's bytes (and MD5 ID) never change.
_CREATED = (2024, 1, 1, 0, 0, 0)


def _s15f16(values: NDArray[np.float64] | list[float] | tuple[float, ...]) -> NDArray[np.int64]:
    """Round values to s15Fixed16Number integers (value * 65536)."""
    return np.round(np.asarray(values, dtype=np.float64) * 65536.0).astype(np.int64)


def _pack_s15f16(fixed: NDArray[np.int64]) -> bytes:
    return struct.pack(f">{fixed.size}i", *fixed.reshape(-1).tolist())


def matrix_RGB_to_XYZ_D50(primaries: Primaries) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """RGB -> XYZ (ICC D50) matrix of ``primaries`` and the Bradford adaptation used.

    Parameters
    ----------
    primaries
        The RGB primaries and white (sRGB, Display P3, Rec. 2020: D65;
        ProPhoto: D50).

    Returns
    -------
    M_RGB_to_XYZ_D50, M_adapt_to_D50
        3x3 float64 matrices.  ``M_RGB_to_XYZ_D50`` maps linear RGB in 0..1 to
        XYZ relative to the ICC D50 white (Y of white = 1); its columns are the
        ICC colorants.  ``M_adapt_to_D50`` is the Bradford matrix from the
        space's white to D50 (the ``chad`` tag).

    References
    ----------
    ICC.1:2022, Annex E (chromatic adaptation, Bradford); colour-science
    ``RGB_COLOURSPACES`` for the primaries.
    """
    import colour  # lazy: colour-science is heavy to import

    space = colour.RGB_COLOURSPACES[_COLOURSPACE_NAMES[primaries]]
    M_RGB_to_XYZ = np.asarray(space.matrix_RGB_to_XYZ, dtype=np.float64)
    XYZ_white = colour.xy_to_XYZ(np.asarray(space.whitepoint, dtype=np.float64))
    M_adapt = colour.adaptation.matrix_chromatic_adaptation_VonKries(
        XYZ_white, XYZ_ICC_D50, transform="Bradford"
    )
    return np.asarray(M_adapt @ M_RGB_to_XYZ), np.asarray(M_adapt)


def _colorants_fixed(M_RGB_to_XYZ_D50: NDArray[np.float64]) -> NDArray[np.int64]:
    """s15Fixed16 colorant matrix whose rows sum exactly to the fixed-point D50."""
    fixed = _s15f16(M_RGB_to_XYZ_D50)
    target = _s15f16(XYZ_ICC_D50)
    for row in range(3):
        error = int(target[row] - fixed[row].sum())
        fixed[row, int(np.argmax(np.abs(fixed[row])))] += error
    return fixed


def _tag_xyz(xyz_fixed: NDArray[np.int64]) -> bytes:
    return b"XYZ \0\0\0\0" + _pack_s15f16(xyz_fixed)


def _tag_mluc(text: str) -> bytes:
    encoded = text.encode("utf-16-be")
    header = b"mluc\0\0\0\0" + struct.pack(">II", 1, 12)
    record = b"enUS" + struct.pack(">II", len(encoded), 16 + 12)
    return header + record + encoded


def _tag_para(transfer: Transfer) -> bytes:
    if transfer is Transfer.SRGB:
        function, parameters = 3, _SRGB_PARAMETERS
    elif transfer is Transfer.LINEAR:
        function, parameters = 0, (1.0,)
    else:  # pragma: no cover - guarded by the enum
        raise ValueError(f"no ICC curve for transfer {transfer!r}")
    return b"para\0\0\0\0" + struct.pack(">HH", function, 0) + _pack_s15f16(_s15f16(parameters))


def _tag_sf32(matrix: NDArray[np.float64]) -> bytes:
    return b"sf32\0\0\0\0" + _pack_s15f16(_s15f16(matrix))


def _assemble(tags: list[tuple[bytes, bytes]]) -> bytes:
    """Header + tag table + 4-byte aligned tag data; identical data share storage."""
    table_size = 4 + 12 * len(tags)
    offset = 128 + table_size
    placed: dict[bytes, tuple[int, int]] = {}
    table = struct.pack(">I", len(tags))
    body = bytearray()
    for signature, data in tags:
        if data not in placed:
            placed[data] = (offset + len(body), len(data))
            body += data
            body += b"\0" * (-len(body) % 4)
        position, size = placed[data]
        table += signature + struct.pack(">II", position, size)
    size = 128 + table_size + len(body)
    header = bytearray(128)
    struct.pack_into(">I", header, 0, size)
    struct.pack_into(">I", header, 8, 0x04300000)  # version 4.3
    header[12:16] = b"mntr"
    header[16:20] = b"RGB "
    header[20:24] = b"XYZ "
    struct.pack_into(">6H", header, 24, *_CREATED)
    header[36:40] = b"acsp"
    struct.pack_into(">I", header, 64, 0)  # perceptual intent
    header[68:80] = _pack_s15f16(_s15f16(XYZ_ICC_D50))
    profile = bytearray(header + table + body)
    # Profile ID: MD5 of the profile with flags, intent and ID fields zeroed.
    digest = bytearray(profile)
    digest[44:48] = b"\0" * 4
    digest[64:68] = b"\0" * 4
    digest[84:100] = b"\0" * 16
    profile[84:100] = hashlib.md5(bytes(digest)).digest()
    return bytes(profile)


@functools.lru_cache(maxsize=16)
def icc_profile(primaries: Primaries, *, transfer: Transfer = Transfer.SRGB) -> bytes:
    """An ICC v4.3 matrix/TRC display profile describing an RGB buffer.

    Parameters
    ----------
    primaries
        RGB primaries of the encoded image.
    transfer
        Encoding curve of the stored values: ``Transfer.SRGB`` (IEC 61966-2-1,
        also used by Display P3) or ``Transfer.LINEAR``.

    Returns
    -------
    bytes
        The profile (about 600 bytes), deterministic for given arguments.

    References
    ----------
    ICC.1:2022 (profile version 4.3); IEC 61966-2-1:1999 (sRGB curve).
    """
    if not isinstance(primaries, Primaries):
        raise TypeError(f"primaries must be a Primaries value, got {primaries!r}")
    if not isinstance(transfer, Transfer):
        raise TypeError(f"transfer must be a Transfer value, got {transfer!r}")
    M_RGB_to_XYZ_D50, M_adapt = matrix_RGB_to_XYZ_D50(primaries)
    colorants = _colorants_fixed(M_RGB_to_XYZ_D50)
    description = _DESCRIPTIONS[primaries] + (" (linear)" if transfer is Transfer.LINEAR else "")
    curve = _tag_para(transfer)
    tags = [
        (b"desc", _tag_mluc(f"rawlab {description}")),
        (b"cprt", _tag_mluc(_COPYRIGHT)),
        (b"wtpt", _tag_xyz(_s15f16(XYZ_ICC_D50))),
        (b"chad", _tag_sf32(M_adapt)),
        (b"rXYZ", _tag_xyz(colorants[:, 0])),
        (b"gXYZ", _tag_xyz(colorants[:, 1])),
        (b"bXYZ", _tag_xyz(colorants[:, 2])),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
    ]
    return _assemble(tags)
