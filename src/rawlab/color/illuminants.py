"""Calibration illuminants of DNG colour profiles: EXIF LightSource code -> white.

A DNG profile says under which light each ColorMatrix was measured with an
EXIF LightSource code (CalibrationIlluminant1/2).  Interpolating between the
two matrices needs each illuminant's correlated colour temperature (CCT).
As the DNG SDK does since DNG 1.6, each code is first mapped to a white
chromaticity (CIE 1931 2 degree xy of the standard illuminant named by the
code; CIE 15:2004, tables T.3 and T.8) and the CCT is then found from that xy
with Robertson's method (A. R. Robertson, "Computation of correlated color
temperature and distribution temperature", JOSA 58(11), 1968), the same
method used for the scene white, so a scene lit exactly by a calibration
illuminant gets exactly that illuminant's matrix.

Resulting CCTs: StdA 2856 K, StdB 4873 K, StdC 6774 K, D50 5001 K, D55 5501 K,
D65 6504 K, D75 7505 K, F1 6426 K, F2 4223 K, F3 3446 K, F4 2938 K, F8 4997 K,
ISO studio tungsten 3200 K.  Code 14 (cool white fluorescent) uses F2 here;
the Adobe DNG SDK uses F9 (about 4150 K) for it.
"""

from __future__ import annotations

import functools

import numpy as np

__all__ = ["LIGHT_SOURCE_NAMES", "light_source_xy", "light_source_CCT", "xy_to_CCT_robertson1968"]

# CIE 1931 2 degree chromaticities of the standard illuminants (CIE 15:2004).
_XY_A = (0.44757, 0.40745)
_XY_B = (0.34842, 0.35161)
_XY_C = (0.31006, 0.31616)
_XY_D50 = (0.34567, 0.35850)
_XY_D55 = (0.33242, 0.34743)
_XY_D65 = (0.31271, 0.32902)
_XY_D75 = (0.29902, 0.31485)
_XY_F1 = (0.31310, 0.33727)
_XY_F2 = (0.37208, 0.37529)
_XY_F3 = (0.40910, 0.39430)
_XY_F4 = (0.44018, 0.40329)
_XY_F8 = (0.34588, 0.35875)

#: EXIF LightSource code -> (name, CIE xy of the illuminant used for it).
_LIGHT_SOURCES: dict[int, tuple[str, tuple[float, float] | None]] = {
    1: ("daylight (D55)", _XY_D55),
    2: ("fluorescent (F2)", _XY_F2),
    3: ("tungsten (Standard A)", _XY_A),
    4: ("flash (D55)", _XY_D55),
    9: ("fine weather (D55)", _XY_D55),
    10: ("cloudy (D65)", _XY_D65),
    11: ("shade (D75)", _XY_D75),
    12: ("daylight fluorescent (F1)", _XY_F1),
    13: ("day white fluorescent (F8)", _XY_F8),
    14: ("cool white fluorescent (F2)", _XY_F2),
    15: ("white fluorescent (F3)", _XY_F3),
    16: ("warm white fluorescent (F4)", _XY_F4),
    17: ("Standard A", _XY_A),
    18: ("Standard B", _XY_B),
    19: ("Standard C", _XY_C),
    20: ("D55", _XY_D55),
    21: ("D65", _XY_D65),
    22: ("D75", _XY_D75),
    23: ("D50", _XY_D50),
    24: ("ISO studio tungsten (3200 K)", None),  # a Planckian radiator at 3200 K
}

#: Human-readable names of the EXIF LightSource codes known here.
LIGHT_SOURCE_NAMES: dict[int, str] = {code: name for code, (name, _) in _LIGHT_SOURCES.items()}

_ISO_STUDIO_TUNGSTEN_K = 3200.0


def xy_to_CCT_robertson1968(xy: tuple[float, float] | np.ndarray) -> float:
    """Correlated colour temperature (K) of a CIE 1931 xy chromaticity, Robertson (1968).

    Parameters
    ----------
    xy
        Chromaticity near the Planckian locus (roughly 1667 K .. 100000 K).

    Returns
    -------
    float
        CCT in kelvin (colour-science's implementation of Robertson 1968).
    """
    import colour  # imported on first use: colour-science is slow to import

    uv = colour.xy_to_UCS_uv(np.asarray(xy, dtype=np.float64))
    return float(colour.uv_to_CCT(uv, method="Robertson 1968")[0])


@functools.lru_cache(maxsize=None)
def light_source_xy(code: int | None) -> tuple[float, float] | None:
    """CIE 1931 xy of the white of EXIF LightSource ``code``, or ``None`` if unknown.

    Unknown (0), "other" (255) and unlisted codes give ``None``.
    """
    if code is None or int(code) not in _LIGHT_SOURCES:
        return None
    xy = _LIGHT_SOURCES[int(code)][1]
    if xy is None:  # ISO studio tungsten: Planckian locus at 3200 K
        import colour

        uv = colour.CCT_to_uv(np.array([_ISO_STUDIO_TUNGSTEN_K, 0.0]), method="Robertson 1968")
        xy = tuple(float(v) for v in colour.UCS_uv_to_xy(uv))
    return xy


@functools.lru_cache(maxsize=None)
def light_source_CCT(code: int | None) -> float | None:
    """Correlated colour temperature (K) of EXIF LightSource ``code``, or ``None`` if unknown.

    See the module docstring for the values and how they are found.
    """
    if code is not None and int(code) == 24:
        return _ISO_STUDIO_TUNGSTEN_K
    xy = light_source_xy(code)
    return None if xy is None else xy_to_CCT_robertson1968(xy)
