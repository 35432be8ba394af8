"""Colour accuracy on a ColorChecker: CIEDE2000 per patch, white balance, chroma level.

The colour difference is CIEDE2000 (CIE 142-2001; Luo, Cui & Rigg 2001), written
from the formulas of Sharma, Wu & Dalal (2005), "The CIEDE2000 color-difference
formula: implementation notes, supplementary test data, and mathematical
observations", Color Res. Appl. 30(1):21-30, whose 34 test pairs it reproduces.

The ColorChecker measurement follows common lab practice (ISO 17321-1 style
patch means; exposure normalised on the neutral patches so that a brightness
choice does not read as a colour error):

1. patch means, linear RGB in the given primaries -> XYZ (D50, Bradford);
2. exposure normalisation, one of

   * ``"neutrals"``: one gain ``k`` so that the measured luminance Y of the
     neutral patches matches the reference in the least-squares sense;
   * ``"oecf"`` (tone normalisation): the rendering's own tone curve, read off
     the six neutral patches (an OECF in the sense of ISO 14524), is inverted
     on luminance: each patch is scaled by ``g(Y) / Y``, where ``g`` maps the
     measured luminance of the neutrals to their reference luminance
     (piecewise linear in log Y - log Y; beyond the darkest and brightest
     neutral, the gain of that neutral).  ISO
     17321-1:2012 likewise linearises a camera's output through its inverse
     OECF before the colour analysis; applying the inverse to luminance only
     keeps each patch's chromaticity as rendered, so a tone curve (contrast,
     a highlight shoulder, a brightening) is taken out while hue and
     saturation, including the saturation a curve adds, still count;
3. L*a*b* (D50) of each patch and CIEDE2000 against the reference;
4. white-balance error: the a*b* distance of each neutral patch from its
   reference; chroma level: mean C*ab of the 18 coloured patches relative to
   the reference, in percent (100 = exact saturation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_D50, XYZ_to_Lab, check_choice, to_linear

#: Patch indices (0-based, row-major from "dark skin") of the ColorChecker 24 neutral row.
COLORCHECKER_NEUTRALS = (18, 19, 20, 21, 22, 23)
#: Neutral patches used for exposure normalisation: "neutral 8" to "neutral 3.5"
#: (the white may be clipped by a rendering, the black is dominated by flare and noise).
COLORCHECKER_EXPOSURE_PATCHES = (19, 20, 21, 22)


@dataclass(frozen=True, slots=True)
class ColorCheckerResult:
    """Colour accuracy of one ColorChecker capture.

    Attributes
    ----------
    delta_e_2000
        (24,) CIEDE2000 per patch after exposure normalisation.
    delta_e_2000_mean, delta_e_2000_max
        Mean and maximum over the 24 patches.
    Lab_measured_D50, Lab_reference_D50
        (24, 3) CIELAB (D50 white, Y_white = 1) of the measurement and of the reference.
    exposure_gain
        Gain applied to the linear measurement (1.0 when not normalised; for
        ``"oecf"`` the geometric mean of the per-patch gains of patches 20-23).
    wb_error_delta_ab
        (6,) a*b* distance of each neutral patch from its reference.
    wb_error_delta_ab_mean
        Mean of ``wb_error_delta_ab``.
    chroma_level_pct
        100 x mean C*ab of patches 1-18 measured / reference (saturation).
    """

    delta_e_2000: NDArray[np.float64]
    delta_e_2000_mean: float
    delta_e_2000_max: float
    Lab_measured_D50: NDArray[np.float64]
    Lab_reference_D50: NDArray[np.float64]
    exposure_gain: float
    wb_error_delta_ab: NDArray[np.float64]
    wb_error_delta_ab_mean: float
    chroma_level_pct: float


def delta_e_ciede2000(
    Lab_1: ArrayLike, Lab_2: ArrayLike, *, k_L: float = 1.0, k_C: float = 1.0, k_H: float = 1.0
) -> NDArray[np.float64]:
    """CIEDE2000 colour difference between two sets of CIELAB colours.

    Parameters
    ----------
    Lab_1, Lab_2
        CIELAB values, last axis (L*, a*, b*); L* in 0..100, a*, b* about -128..128.
        Broadcast against each other.
    k_L, k_C, k_H
        Parametric weights (1 for the reference conditions of CIE 142-2001).

    Returns
    -------
    numpy.ndarray
        ΔE00 >= 0, float64, with the broadcast shape less the last axis.

    Notes
    -----
    Sharma, Wu & Dalal (2005), equations (1)-(22).  The hue difference is taken
    as the signed angle between the two a'b' vectors (``atan2`` of their cross
    and dot products), which equals the paper's case analysis; exactly opposite
    hues (a zero cross product, as in their test pairs 9-14) take the paper's
    "|h1' - h2'| <= 180°" branch for the mean hue without depending on how the
    two hue angles round.  Where either chroma C' is zero the hue difference is zero and
    the mean hue is the sum of the hues, as in the paper.
    """
    L1, a1, b1 = np.moveaxis(np.asarray(Lab_1, dtype=np.float64), -1, 0)
    L2, a2, b2 = np.moveaxis(np.asarray(Lab_2, dtype=np.float64), -1, 0)

    C1 = np.hypot(a1, b1)
    C2 = np.hypot(a2, b2)
    C_bar7 = ((C1 + C2) / 2.0) ** 7
    G = 0.5 * (1.0 - np.sqrt(C_bar7 / (C_bar7 + 25.0**7)))
    a1p = (1.0 + G) * a1
    a2p = (1.0 + G) * a2
    C1p = np.hypot(a1p, b1)
    C2p = np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)

    zero_chroma = (C1p * C2p) == 0
    dLp = L2 - L1
    dCp = C2p - C1p
    cross = a1p * b2 - b1 * a2p
    dot = a1p * a2p + b1 * b2
    dhp = np.degrees(np.arctan2(cross, dot))
    dhp = np.where(zero_chroma, 0.0, dhp)
    # Exactly opposite hues: |h1' - h2'| = 180, the paper's "<= 180" branch (plain mean),
    # decided on the exact cross product rather than on rounded angles.
    antipodal = (cross == 0) & (dot < 0)
    dHp = 2.0 * np.sqrt(C1p * C2p) * np.sin(np.radians(dhp) / 2.0)

    Lp_bar = (L1 + L2) / 2.0
    Cp_bar = (C1p + C2p) / 2.0
    h_sum = h1p + h2p
    hp_bar = np.where(
        (np.abs(h2p - h1p) <= 180.0) | antipodal,
        h_sum / 2.0,
        np.where(h_sum < 360.0, (h_sum + 360.0) / 2.0, (h_sum - 360.0) / 2.0),
    )
    hp_bar = np.where(zero_chroma, h_sum, hp_bar)

    T = (
        1.0
        - 0.17 * np.cos(np.radians(hp_bar - 30.0))
        + 0.24 * np.cos(np.radians(2.0 * hp_bar))
        + 0.32 * np.cos(np.radians(3.0 * hp_bar + 6.0))
        - 0.20 * np.cos(np.radians(4.0 * hp_bar - 63.0))
    )
    d_theta = 30.0 * np.exp(-(((hp_bar - 275.0) / 25.0) ** 2))
    Cp_bar7 = Cp_bar**7
    R_C = 2.0 * np.sqrt(Cp_bar7 / (Cp_bar7 + 25.0**7))
    L50 = (Lp_bar - 50.0) ** 2
    S_L = 1.0 + 0.015 * L50 / np.sqrt(20.0 + L50)
    S_C = 1.0 + 0.045 * Cp_bar
    S_H = 1.0 + 0.015 * Cp_bar * T
    R_T = -np.sin(np.radians(2.0 * d_theta)) * R_C

    tL = dLp / (k_L * S_L)
    tC = dCp / (k_C * S_C)
    tH = dHp / (k_H * S_H)
    return np.sqrt(tL**2 + tC**2 + tH**2 + R_T * tC * tH)


def colorchecker_reference_Lab_D50() -> NDArray[np.float64]:
    """(24, 3) CIELAB (D50) of the X-Rite ColorChecker 24 (post-November 2014 formulation).

    Values from colour-science's ``CCS_COLOURCHECKERS['ColorChecker24 - After November 2014']``
    (X-Rite published xyY under D50), row-major from "dark skin" to "black 2 (1.5 D)".
    """
    import colour

    cc = colour.CCS_COLOURCHECKERS["ColorChecker24 - After November 2014"]
    xyY = np.array(list(cc.data.values()), dtype=np.float64)
    x, y, Y = xyY[:, 0], xyY[:, 1], xyY[:, 2]
    XYZ = np.stack([x * Y / y, Y, (1.0 - x - y) * Y / y], axis=-1)
    return XYZ_to_Lab(XYZ, XYZ_D50)


def measure_colorchecker(
    rgb_patches: ArrayLike,
    *,
    Lab_reference_D50: ArrayLike | None = None,
    transfer: Literal["linear", "srgb"] = "linear",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    exposure_normalization: Literal["neutrals", "oecf", "none"] = "neutrals",
) -> ColorCheckerResult:
    """Colour accuracy of a ColorChecker 24 from its 24 patch means.

    Parameters
    ----------
    rgb_patches
        (24, 3) mean RGB of each patch, row-major from "dark skin", channel order
        R, G, B; output-referred values with white at 1.0 (0..1, an 8-bit image
        divided by 255).  Means must be taken on the encoded or linear values
        according to ``transfer``; take them on linear values when possible.
    Lab_reference_D50
        (24, 3) reference CIELAB (D50); default :func:`colorchecker_reference_Lab_D50`.
    transfer
        ``"linear"`` or ``"srgb"`` (IEC 61966-2-1 encoded; decoded here).
    primaries
        RGB primaries of the image; its white is adapted to D50 with Bradford.
    exposure_normalization
        ``"neutrals"``: one gain on linear values so that Y of patches 20-23
        ("neutral 8" to "neutral 3.5") matches the reference in least squares;
        ``"oecf"``: the inverse of the rendering's tone curve read off the six
        neutrals, applied to each patch's luminance (see the module docstring;
        neutrals whose luminance does not rise by 2 % over the next darker one,
        e.g. a clipped white, are left out of the curve; three must remain);
        ``"none"``: as measured.

    Returns
    -------
    ColorCheckerResult
    """
    check_choice("exposure_normalization", exposure_normalization, ("neutrals", "oecf", "none"))
    rgb = np.asarray(rgb_patches, dtype=np.float64)
    if rgb.shape != (24, 3):
        raise InvalidParams(f"rgb_patches must have shape (24, 3), got {rgb.shape}")
    if not np.all(np.isfinite(rgb)):
        raise InvalidParams("rgb_patches contains NaN or infinite values")
    Lab_ref = colorchecker_reference_Lab_D50() if Lab_reference_D50 is None else np.asarray(
        Lab_reference_D50, dtype=np.float64
    )
    if Lab_ref.shape != (24, 3):
        raise InvalidParams(f"Lab_reference_D50 must have shape (24, 3), got {Lab_ref.shape}")

    XYZ = to_linear(rgb, transfer) @ M_rgb_to_XYZ_D50(primaries).T
    gain = 1.0
    if exposure_normalization == "neutrals":
        idx = list(COLORCHECKER_EXPOSURE_PATCHES)
        Y_ref = (Lab_to_Y(Lab_ref[idx, 0]))
        Y_meas = XYZ[idx, 1]
        denom = float(np.dot(Y_meas, Y_meas))
        if denom <= 0.0:
            raise InvalidParams("the neutral patches are black: cannot normalise exposure")
        gain = float(np.dot(Y_meas, Y_ref) / denom)
        XYZ = XYZ * gain
    elif exposure_normalization == "oecf":
        gains = _inverse_oecf_gains(XYZ[:, 1], Lab_to_Y(Lab_ref[:, 0]))
        XYZ = XYZ * gains[:, None]
        gain = float(np.exp(np.mean(np.log(gains[list(COLORCHECKER_EXPOSURE_PATCHES)]))))
    Lab = XYZ_to_Lab(XYZ, XYZ_D50)

    dE = delta_e_ciede2000(Lab, Lab_ref)
    neutral = list(COLORCHECKER_NEUTRALS)
    wb = np.hypot(Lab[neutral, 1] - Lab_ref[neutral, 1], Lab[neutral, 2] - Lab_ref[neutral, 2])
    chroma_meas = np.hypot(Lab[:18, 1], Lab[:18, 2]).mean()
    chroma_ref = np.hypot(Lab_ref[:18, 1], Lab_ref[:18, 2]).mean()
    return ColorCheckerResult(
        delta_e_2000=dE,
        delta_e_2000_mean=float(dE.mean()),
        delta_e_2000_max=float(dE.max()),
        Lab_measured_D50=Lab,
        Lab_reference_D50=Lab_ref,
        exposure_gain=gain,
        wb_error_delta_ab=wb,
        wb_error_delta_ab_mean=float(wb.mean()),
        chroma_level_pct=float(100.0 * chroma_meas / chroma_ref),
    )


def _inverse_oecf_gains(Y_measured: NDArray[np.float64], Y_reference: NDArray[np.float64]) -> NDArray[np.float64]:
    """Per-patch gains ``g(Y) / Y`` that take the measured luminances onto the reference tone scale.

    ``g`` is the rendering's inverse tone curve through the neutral patches (measured Y ->
    reference Y), piecewise linear in log-log; beyond the darkest and brightest neutral it is
    the end point's gain.
    """
    neutral = np.array(COLORCHECKER_NEUTRALS)
    order = neutral[np.argsort(Y_reference[neutral])]  # darkest first
    xs: list[float] = []
    ys: list[float] = []
    for i in order:  # a loop over six patches
        y = float(Y_measured[i])
        if y > 0 and (not xs or y > 1.02 * np.exp(xs[-1])):
            xs.append(float(np.log(y)))
            ys.append(float(np.log(Y_reference[i])))
    if len(xs) < 3:
        raise InvalidParams("tone normalisation needs at least 3 neutral patches of rising luminance "
                            f"(got {len(xs)}: the neutrals are clipped, black or out of order)")
    if np.any(Y_measured <= 0):
        raise InvalidParams("tone normalisation: a patch has zero or negative luminance")
    x, y = np.array(xs), np.array(ys)
    lx = np.log(Y_measured)
    # inside the neutrals' range the curve; beyond it, the end point's gain (slope 1 in log-log):
    # an extrapolated slope would amplify any error of the end segment
    out = np.interp(lx, x, y, left=np.nan, right=np.nan)
    lo, hi = lx < x[0], lx > x[-1]
    out[lo] = y[0] + (lx[lo] - x[0])
    out[hi] = y[-1] + (lx[hi] - x[-1])
    return np.exp(out - lx)


def Lab_to_Y(L: ArrayLike) -> NDArray[np.float64]:
    """Relative luminance Y (white = 1) from CIE L* (CIE 15:2004)."""
    L = np.asarray(L, dtype=np.float64)
    fy = (L + 16.0) / 116.0
    return np.where(fy**3 > 216.0 / 24389.0, fy**3, L * 27.0 / 24389.0)
