"""The ``camera_to_xyz`` stage: camera RGB -> CIE XYZ (D50) with the DNG colour model.

Reference: Adobe, Digital Negative (DNG) Specification 1.6, chapter 6,
"Mapping Camera Color Space to CIE XYZ Space".

Notation (DNG tag -> name here):

* ``CM`` ColorMatrix1/2 -- XYZ -> reference camera, for calibration illuminant 1/2;
* ``CC`` CameraCalibration1/2 -- reference camera -> this camera (identity if absent);
* ``AB`` diag(AnalogBalance) (identity if absent);
* ``FM`` ForwardMatrix1/2 -- white-balanced reference camera -> XYZ D50.

``XYZtoCamera = AB . CC . CM`` where CM, CC (and FM) are interpolated between
the two calibration illuminants linearly in inverse correlated colour
temperature (mireds) of the scene white, clamped outside the two, as the
specification prescribes.  Before interpolating, each ColorMatrix is scaled so
that the D50 white maps to a camera value whose largest channel is 1, and each
ForwardMatrix so that camera (1, 1, 1) maps to D50, as the DNG SDK does.

The scene white's chromaticity is found from the camera neutral with the
specification's iteration (start at D50, interpolate the matrices for the
current guess, map the neutral to XYZ, repeat until stable).

Camera -> XYZ D50:

* forward-matrix path: ``FM . diag(1 / ReferenceNeutral) . inv(AB . CC)`` with
  ``ReferenceNeutral = inv(AB . CC) . neutral``;
* colour-matrix path: ``CA . inv(XYZtoCamera)``, ``CA`` the linear Bradford
  adaptation from the scene white to D50.

The frame's data may already be white balanced (divided by
``color.applied_neutral``); the stage folds that in.  Scale convention of this
project: white-balanced camera (1, 1, 1) -- a neutral whose green sample is at
the sensor's white level -- maps to the D50 white with **Y = 1**.

``matrix="dcraw"`` renders as dcraw and LibRaw do instead, for comparisons
with those peers: white balance in camera space, then the ColorMatrix of the
calibration nearest D65 turned into camera -> linear sRGB with its rows scaled
so that balanced (1, 1, 1) is white (D. Coffin, dcraw.c, ``cam_xyz_coeff``),
no ForwardMatrix and no adaptation to the scene white; Bradford D65 -> D50.

Frames without colour matrices (headerless dumps) are treated as if camera RGB,
once white balanced, were linear sRGB (ITU-R BT.709 primaries, D65), adapted to
D50 with Bradford -- not colorimetric, but it develops.  Four-colour (CMYG)
matrices are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import NDArray

from rawlab.color._matrix import apply_matrix_3x3, propagate_clip_level
from rawlab.color.illuminants import light_source_CCT, xy_to_CCT_robertson1968
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import ColorCalibration
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import StageError

__all__ = [
    "CameraToXYZParams",
    "camera_to_xyz",
    "XY_D50",
    "xy_to_XYZ",
    "XYZ_to_xy",
    "matrix_bradford",
    "interpolation_weight",
    "calibration_weight",
    "xyz_to_camera_matrix",
    "camera_neutral_to_xy",
    "xy_to_camera_neutral",
    "camera_to_xyz_d50_matrix",
]

#: CIE xy of D50, the DNG profile connection space white (as in the DNG SDK).
XY_D50 = (0.3457, 0.3585)

_MAX_PASSES = 30


@dataclass(frozen=True)
class CameraToXYZParams(Params):
    """Parameters of the ``camera_to_xyz`` stage."""

    VERSION: ClassVar[int] = 1
    matrix: str = param(
        "auto",
        choices=("auto", "forward", "color", "dcraw"),
        doc="auto: ForwardMatrix when the file has one, else ColorMatrix; forward / color force one; "
        "dcraw: the dcraw/LibRaw convention (to compare with those peers)",
    )


# --------------------------------------------------------------------------- helpers


def xy_to_XYZ(xy: tuple[float, float] | NDArray) -> NDArray[np.float64]:
    """CIE XYZ with Y = 1 of chromaticity ``xy`` (clamped into the valid triangle)."""
    x, y = (float(v) for v in xy)
    x = min(max(x, 1e-6), 0.999999)
    y = min(max(y, 1e-6), 0.999999)
    if x + y > 0.999999:
        s = 0.999999 / (x + y)
        x, y = x * s, y * s
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def XYZ_to_xy(XYZ: NDArray) -> tuple[float, float]:
    """Chromaticity of ``XYZ``; D50 when the sum is not positive."""
    XYZ = np.asarray(XYZ, dtype=np.float64)
    total = float(XYZ.sum())
    if not np.isfinite(total) or total <= 0:
        return XY_D50
    return float(XYZ[0] / total), float(XYZ[1] / total)


def matrix_bradford(xy_source: tuple[float, float], xy_target: tuple[float, float]) -> NDArray[np.float64]:
    """Linear Bradford (von Kries in the Bradford cone space) adaptation matrix for XYZ.

    Maps the XYZ (Y = 1) of ``xy_source`` to that of ``xy_target``
    (Lam 1985; computed with colour-science).
    """
    import colour

    return np.asarray(
        colour.adaptation.matrix_chromatic_adaptation_VonKries(
            xy_to_XYZ(xy_source), xy_to_XYZ(xy_target), transform="Bradford"
        ),
        dtype=np.float64,
    )


def interpolation_weight(CCT_K: float, CCT_1_K: float | None, CCT_2_K: float | None) -> float:
    """Weight of calibration 1 for a white of ``CCT_K`` (DNG 1.6, chapter 6).

    Linear in inverse temperature between the two calibration illuminants,
    clamped outside them: ``g = (1/T - 1/T2) / (1/T1 - 1/T2)``.  When either
    temperature is unknown or both are equal, calibration 1 alone is used (1.0).
    """
    if CCT_1_K is None or CCT_2_K is None or CCT_1_K <= 0 or CCT_2_K <= 0 or CCT_1_K == CCT_2_K:
        return 1.0
    lo, hi = min(CCT_1_K, CCT_2_K), max(CCT_1_K, CCT_2_K)
    if CCT_K <= lo:
        return 1.0 if CCT_1_K == lo else 0.0
    if CCT_K >= hi:
        return 1.0 if CCT_1_K == hi else 0.0
    return (1.0 / CCT_K - 1.0 / CCT_2_K) / (1.0 / CCT_1_K - 1.0 / CCT_2_K)


def _check_three_colour(calib: ColorCalibration) -> None:
    for name in ("M_XYZ_to_camera_1", "M_XYZ_to_camera_2", "M_camera_calibration_1",
                 "M_camera_calibration_2", "M_forward_1", "M_forward_2"):
        m = getattr(calib, name)
        if m is not None and m.shape != (3, 3):
            raise StageError(
                f"camera_to_xyz: {name} has shape {m.shape[0]}x{m.shape[1]}; only 3-colour cameras are "
                "supported (4-colour CMYG matrices are not)"
            )
    for name in ("analog_balance", "as_shot_neutral", "applied_neutral"):
        v = getattr(calib, name)
        if v is not None and v.size != 3:
            raise StageError(
                f"camera_to_xyz: {name} has {v.size} values; only 3-colour cameras are supported"
            )


def _normalized_color_matrix(CM: NDArray) -> NDArray[np.float64]:
    """Scale ColorMatrix so the largest camera channel of D50 white is 1.

    (The DNG SDK does the same but leaves matrices already within 1 % alone.)
    """
    coord = CM @ xy_to_XYZ(XY_D50)
    top = float(coord.max())
    if not np.isfinite(top) or top <= 0:
        raise StageError("camera_to_xyz: the ColorMatrix maps the D50 white to no positive camera value")
    return np.asarray(CM, dtype=np.float64) / top


def _normalized_forward_matrix(FM: NDArray) -> NDArray[np.float64]:
    """Scale ForwardMatrix rows so camera (1, 1, 1) maps exactly to D50 (Y = 1)."""
    xyz = FM @ np.ones(3)
    if np.any(xyz == 0):
        raise StageError("camera_to_xyz: ForwardMatrix maps camera white to a zero XYZ component")
    return (xy_to_XYZ(XY_D50) / xyz)[:, None] * FM


def _mix(m1: NDArray | None, m2: NDArray | None, g: float, default: NDArray | None = None) -> NDArray | None:
    if m1 is None:
        return default
    if m2 is None or g >= 1.0:
        return np.asarray(m1, dtype=np.float64)
    if g <= 0.0:
        return np.asarray(m2, dtype=np.float64)
    return g * np.asarray(m1, dtype=np.float64) + (1.0 - g) * np.asarray(m2, dtype=np.float64)


def calibration_weight(calib: ColorCalibration, xy: tuple[float, float]) -> float:
    """Weight of calibration 1 for a scene white ``xy`` (1.0 with a single calibration)."""
    if calib.M_XYZ_to_camera_2 is None:
        return 1.0
    T1 = light_source_CCT(calib.illuminant_1)
    T2 = light_source_CCT(calib.illuminant_2)
    if T1 is None or T2 is None or T1 == T2:
        return 1.0
    return interpolation_weight(xy_to_CCT_robertson1968(xy), T1, T2)


def _matrices(calib: ColorCalibration, g: float):
    """Interpolated (CM, CC, FM or None) for weight ``g`` of calibration 1."""
    CM1 = _normalized_color_matrix(calib.M_XYZ_to_camera_1)
    CM2 = None if calib.M_XYZ_to_camera_2 is None else _normalized_color_matrix(calib.M_XYZ_to_camera_2)
    CM = _mix(CM1, CM2, g)
    CC1 = calib.M_camera_calibration_1
    CC2 = calib.M_camera_calibration_2 if CM2 is not None else None
    if CC1 is None and CC2 is not None:
        CC1 = np.eye(3)
    if CC2 is None and CC1 is not None and CM2 is not None:
        CC2 = np.eye(3)
    CC = _mix(CC1, CC2, g, default=np.eye(3))
    FM = None
    if calib.M_forward_1 is not None:
        FM1 = _normalized_forward_matrix(calib.M_forward_1)
        FM2 = None
        if calib.M_forward_2 is not None and CM2 is not None:
            FM2 = _normalized_forward_matrix(calib.M_forward_2)
        FM = _mix(FM1, FM2, g)
    return CM, CC, FM


def _analog_balance(calib: ColorCalibration) -> NDArray[np.float64]:
    return np.ones(3) if calib.analog_balance is None else np.asarray(calib.analog_balance, dtype=np.float64)


def xyz_to_camera_matrix(calib: ColorCalibration, xy: tuple[float, float]) -> NDArray[np.float64]:
    """``XYZtoCamera = AB . CC . CM`` interpolated for a scene white ``xy`` (DNG 1.6 ch. 6)."""
    _check_three_colour(calib)
    if not calib.has_matrices:
        raise StageError("camera_to_xyz: the file has no ColorMatrix")
    CM, CC, _ = _matrices(calib, calibration_weight(calib, xy))
    return np.diag(_analog_balance(calib)) @ CC @ CM


def camera_neutral_to_xy(calib: ColorCalibration, neutral: NDArray) -> tuple[float, float]:
    """Chromaticity of the white whose camera response is ``neutral`` (DNG 1.6 ch. 6).

    Starts at D50; each pass interpolates ``XYZtoCamera`` for the current
    guess and maps the neutral back to XYZ; stops when x + y moves less than
    1e-7, or after 30 passes (then averaging the last two guesses, which ends
    a two-value oscillation).
    """
    neutral = np.asarray(neutral, dtype=np.float64).reshape(3)
    last = XY_D50
    for n_pass in range(_MAX_PASSES):
        M = xyz_to_camera_matrix(calib, last)
        nxt = XYZ_to_xy(_inverse(M, "XYZtoCamera") @ neutral)
        if abs(nxt[0] - last[0]) + abs(nxt[1] - last[1]) < 1e-7:
            return nxt
        if n_pass == _MAX_PASSES - 1:
            nxt = ((last[0] + nxt[0]) / 2, (last[1] + nxt[1]) / 2)
        last = nxt
    return last


def xy_to_camera_neutral(calib: ColorCalibration, xy: tuple[float, float]) -> NDArray[np.float64]:
    """Camera response to a white of chromaticity ``xy``, green = 1 (DNG AsShotWhiteXY).

    ``XYZtoCamera(xy) . XYZ(xy, Y = 1)``, scaled so the green sample is 1.
    """
    neutral = xyz_to_camera_matrix(calib, xy) @ xy_to_XYZ(xy)
    if not np.all(np.isfinite(neutral)) or neutral[1] <= 0 or np.any(neutral <= 0):
        raise StageError(
            f"camera_to_xyz: the colour matrices give a non-positive neutral {neutral.tolist()} for xy {xy}"
        )
    return neutral / neutral[1]


def _inverse(M: NDArray, name: str) -> NDArray[np.float64]:
    try:
        inv = np.linalg.inv(M)
    except np.linalg.LinAlgError:
        inv = None
    if inv is None or not np.all(np.isfinite(inv)):
        raise StageError(f"camera_to_xyz: the {name} matrix is singular")
    return inv


def _check_neutral(neutral: NDArray, name: str) -> NDArray[np.float64]:
    neutral = np.asarray(neutral, dtype=np.float64).reshape(-1)
    if neutral.size != 3 or not np.all(np.isfinite(neutral)) or np.any(neutral <= 0):
        raise StageError(f"camera_to_xyz: {name} must be 3 positive numbers, got {neutral.tolist()}")
    return neutral / neutral[1]


def _srgb_to_XYZ_d50() -> NDArray[np.float64]:
    """Linear sRGB -> XYZ D50, derived from the BT.709 primaries and D65 so (1, 1, 1) is exactly D50."""
    import colour

    srgb = colour.RGB_COLOURSPACES["sRGB"]
    white = tuple(float(v) for v in srgb.whitepoint)
    M_rgb_to_XYZ = colour.normalised_primary_matrix(srgb.primaries, white)
    return matrix_bradford(white, XY_D50) @ np.asarray(M_rgb_to_XYZ, dtype=np.float64)


def _dcraw_camera_to_XYZ_d50(calib: ColorCalibration) -> NDArray[np.float64]:
    """Balanced camera -> XYZ D50 the dcraw/LibRaw way (see the module docstring)."""
    import colour

    g = 1.0
    if calib.M_XYZ_to_camera_2 is not None:
        T1, T2 = light_source_CCT(calib.illuminant_1), light_source_CCT(calib.illuminant_2)
        if T1 is not None and T2 is not None and abs(1 / T2 - 1 / 6504.0) < abs(1 / T1 - 1 / 6504.0):
            g = 0.0
    CM, CC, _ = _matrices(calib, g)
    srgb = colour.RGB_COLOURSPACES["sRGB"]
    white = tuple(float(v) for v in srgb.whitepoint)
    M_srgb_to_XYZ = np.asarray(colour.normalised_primary_matrix(srgb.primaries, white), dtype=np.float64)
    camera_from_srgb = np.diag(_analog_balance(calib)) @ CC @ CM @ M_srgb_to_XYZ
    sums = camera_from_srgb.sum(axis=1, keepdims=True)
    if np.any(sums == 0):
        raise StageError("camera_to_xyz: the ColorMatrix maps sRGB white to zero in a camera channel")
    srgb_from_camera = _inverse(camera_from_srgb / sums, "camera from sRGB")
    return _srgb_to_XYZ_d50() @ srgb_from_camera


def camera_to_xyz_d50_matrix(
    calib: ColorCalibration,
    *,
    neutral: NDArray | None,
    applied_neutral: NDArray | None = None,
    matrix: str = "auto",
) -> NDArray[np.float64]:
    """The 3x3 matrix taking the frame's camera data to XYZ D50 (DNG 1.6 ch. 6).

    Parameters
    ----------
    calib
        The camera's colour calibration.
    neutral
        Camera response to the scene white (any scale; green is normalised to
        1), or ``None`` for a D50 scene white.
    applied_neutral
        The neutral the data has already been divided by (white balance), or
        ``None`` when the data is not white balanced.
    matrix
        ``"auto"`` (ForwardMatrix when present), ``"forward"``, ``"color"`` or
        ``"dcraw"`` (see the module docstring).

    Returns
    -------
    numpy.ndarray
        float64 ``(3, 3)``; the data's rendering of the scene white at the
        sensor's white level maps to the D50 white with Y = 1.
    """
    _check_three_colour(calib)
    applied = np.ones(3) if applied_neutral is None else _check_neutral(applied_neutral, "applied_neutral")
    has_forward = calib.M_forward_1 is not None
    if matrix == "forward" and not has_forward:
        raise StageError("camera_to_xyz: matrix='forward' but the file has no ForwardMatrix")
    if matrix == "color" and not calib.has_matrices and has_forward:
        raise StageError("camera_to_xyz: matrix='color' but the file has no ColorMatrix")
    if neutral is not None:
        n = _check_neutral(neutral, "neutral")
    elif applied_neutral is not None:
        n = applied
    else:
        n = None

    if not calib.has_matrices and not has_forward:
        # No calibration at all: white-balanced camera RGB is taken as linear sRGB.
        n = np.ones(3) if n is None else n
        return _srgb_to_XYZ_d50() @ np.diag(applied / n)
    if matrix == "dcraw":
        if not calib.has_matrices:
            raise StageError("camera_to_xyz: matrix='dcraw' needs a ColorMatrix")
        n = np.ones(3) if n is None else n
        return _dcraw_camera_to_XYZ_d50(calib) @ np.diag(applied / n)

    if calib.has_matrices:
        if n is None:
            xy = XY_D50
            n = xy_to_camera_neutral(calib, xy)
        else:
            xy = camera_neutral_to_xy(calib, n)
        g = calibration_weight(calib, xy)
    else:  # ForwardMatrix without ColorMatrix: the white cannot be located, use calibration 1
        n = np.ones(3) if n is None else n
        xy, g = XY_D50, 1.0
    if calib.has_matrices:
        CM, CC, FM = _matrices(calib, g)
    else:
        CM = None
        CC = np.eye(3) if calib.M_camera_calibration_1 is None else np.asarray(calib.M_camera_calibration_1)
        FM = _normalized_forward_matrix(calib.M_forward_1)
    AB = np.diag(_analog_balance(calib))
    use_forward = matrix == "forward" or (matrix == "auto" and FM is not None)
    if use_forward:
        to_reference = _inverse(AB @ CC, "AnalogBalance . CameraCalibration")
        reference_neutral = to_reference @ n
        if np.any(reference_neutral <= 0):
            raise StageError("camera_to_xyz: the neutral maps to a non-positive reference neutral")
        M_balanced = FM @ np.diag(1.0 / reference_neutral) @ to_reference @ np.diag(n)
    else:
        camera_to_xyz = _inverse(AB @ CC @ CM, "XYZtoCamera")
        M_balanced = matrix_bradford(xy, XY_D50) @ camera_to_xyz @ np.diag(n)
        Y = float((M_balanced @ np.ones(3))[1])
        if not np.isfinite(Y) or Y <= 0:
            raise StageError("camera_to_xyz: the colour matrix maps the white to a non-positive luminance")
        M_balanced = M_balanced / Y
    return M_balanced @ np.diag(applied / n)


@stage("camera_to_xyz", params=CameraToXYZParams, consumes=Encoding.CAMERA_RGB, produces=Encoding.XYZ_D50, pointwise=True)
def camera_to_xyz(frame: Frame, p: CameraToXYZParams) -> Frame:
    """Map linear camera RGB to CIE XYZ with a D50 white (DNG colour model).

    In: ``CAMERA_RGB``, linear, normalised, white balanced or not (the stage
    reads ``color.applied_neutral``).  Out: ``XYZ_D50``, linear; the scene white
    at the sensor's white level is the D50 white with Y = 1.  The scene white
    is ``applied_neutral``, else ``as_shot_neutral``, else derived from
    ``as_shot_white_xy``, else D50.  ``clip_level`` becomes the XYZ of a
    neutral at the lowest channel clip level.
    """
    color = frame.color
    _check_three_colour(color)
    if color.applied_neutral is not None:
        neutral = color.applied_neutral
    elif color.as_shot_neutral is not None:
        neutral = color.as_shot_neutral
    elif color.as_shot_white_xy is not None and color.has_matrices:
        neutral = xy_to_camera_neutral(color, color.as_shot_white_xy)
    else:
        neutral = None
    M = camera_to_xyz_d50_matrix(
        color, neutral=neutral, applied_neutral=color.applied_neutral, matrix=p.matrix
    )
    white_in = _inverse(M, "camera to XYZ") @ xy_to_XYZ(XY_D50)  # the scene white in the data's units
    return frame.replace(
        data=apply_matrix_3x3(frame.data, M),
        encoding=Encoding.XYZ_D50,
        clip_level=propagate_clip_level(frame.clip_level, M, white_in),
    )
