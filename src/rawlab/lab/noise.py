"""Noise: SNR per patch, luminance and chroma noise, ISO 15739 visual noise.

* SNR of a uniform patch: mean / standard deviation (ISO 15739:2013 clause 6,
  "total noise"), after removing a fitted plane so that illumination fall-off
  across the patch does not count as noise.
* Luminance / chroma noise: standard deviation of CIE L* and of the a*b*
  chroma (sqrt(var a* + var b*)) over the patch, CIELAB D50 (CIE 15:2004).
* Visual noise, ISO 15739:2013 annex B: the patch is taken to the opponent
  space of Zhang & Wandell (S-CIELAB, SID 1996), each channel filtered by a
  contrast sensitivity function for the viewing condition (luminance
  ``a v^c exp(-b v)`` with a = 75, b = 0.2, c = 0.8, held at 1 below its peak so
  the mean passes; chrominance: the sums of two exponentials of Johnson &
  Fairchild, "On contrast sensitivity in an image difference model", PICS
  2002), taken back to XYZ and to CIELUV, and combined as
  ``sigma(L*) + 0.852 sigma(u*) + 0.323 sigma(v*)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import M_rgb_to_XYZ_D50, XYZ_D50, XYZ_to_Lab, XYZ_to_Luv, check_choice, to_linear
from rawlab.lab.deadleaves import pixels_per_degree

#: XYZ -> opponent (luminance, red-green, blue-yellow), Zhang & Wandell (1996) S-CIELAB.
M_XYZ_to_opponent = np.array(
    [
        [0.279, 0.72, -0.107],
        [-0.449, 0.29, -0.077],
        [0.086, -0.59, 0.501],
    ]
)


@dataclass(frozen=True, slots=True)
class PatchNoise:
    """Noise of one uniform patch, per channel (one entry for a single-channel patch).

    Attributes
    ----------
    mean, std
        Mean and standard deviation (ddof=1) after removing the fitted trend.
    variance
        ``std ** 2``.
    snr, snr_db
        ``mean / std`` and ``20 log10(snr)``.
    """

    mean: NDArray[np.float64]
    std: NDArray[np.float64]
    variance: NDArray[np.float64]
    snr: NDArray[np.float64]
    snr_db: NDArray[np.float64]


def _as_patch(patch: ArrayLike) -> NDArray[np.float64]:
    a = np.asarray(patch, dtype=np.float64)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[0] < 4 or a.shape[1] < 4:
        raise InvalidParams(f"a patch must be (H, W) or (H, W, C) with H, W >= 4, got shape {np.shape(patch)}")
    if not np.all(np.isfinite(a)):
        raise InvalidParams("patch contains NaN or infinite values")
    return a


def _detrend_plane(a: NDArray[np.float64]) -> NDArray[np.float64]:
    """Residuals of a least-squares plane per channel, plus the channel mean (so the mean is kept)."""
    h, w, c = a.shape
    yy, xx = np.mgrid[0:h, 0:w]
    A = np.stack([np.ones(h * w), (yy.ravel() - (h - 1) / 2.0), (xx.ravel() - (w - 1) / 2.0)], axis=1)
    b = a.reshape(h * w, c)
    coef, *_ = np.linalg.lstsq(A, b, rcond=None)
    return (b - A[:, 1:] @ coef[1:]).reshape(h, w, c)


def patch_snr(patch: ArrayLike, *, detrend: Literal["plane", "none"] = "plane") -> PatchNoise:
    """Mean, noise and SNR of a uniform patch.

    Parameters
    ----------
    patch
        (H, W) or (H, W, C) patch of a uniform chart area, any scale; linear data
        with black at 0 gives the physical SNR, encoded data the output SNR.
    detrend
        ``"plane"`` removes a least-squares plane per channel (shading), ``"none"`` keeps it.

    Returns
    -------
    PatchNoise
    """
    check_choice("detrend", detrend, ("plane", "none"))
    a = _as_patch(patch)
    if detrend == "plane":
        a = _detrend_plane(a)
    flat = a.reshape(-1, a.shape[-1])
    mean = flat.mean(axis=0)
    std = flat.std(axis=0, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        snr = np.where(std > 0, mean / std, np.inf)
        snr_db = 20.0 * np.log10(np.abs(snr))
    return PatchNoise(mean=mean, std=std, variance=std**2, snr=snr, snr_db=snr_db)


@dataclass(frozen=True, slots=True)
class ColorNoise:
    """Luminance and chroma noise of a uniform colour patch (CIELAB D50 units)."""

    std_L: float
    std_a: float
    std_b: float
    chroma_noise: float
    mean_Lab: NDArray[np.float64]


def _patch_XYZ(patch: ArrayLike, transfer: str, primaries: str, detrend: str) -> NDArray[np.float64]:
    a = _as_patch(patch)
    if a.shape[-1] != 3:
        raise InvalidParams(f"a colour patch needs 3 channels (R, G, B), got {a.shape[-1]}")
    check_choice("detrend", detrend, ("plane", "none"))
    lin = to_linear(a, transfer)
    if detrend == "plane":
        lin = _detrend_plane(lin)
    return lin @ M_rgb_to_XYZ_D50(primaries).T


def luminance_chroma_noise(
    patch: ArrayLike,
    *,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    detrend: Literal["plane", "none"] = "plane",
) -> ColorNoise:
    """Luminance noise (std of L*) and chroma noise (sqrt(var a* + var b*)) of a uniform patch.

    Parameters
    ----------
    patch
        (H, W, 3) R, G, B, output-referred with white at 1.0 (an 8-bit image / 255).
    transfer
        ``"srgb"`` (encoded, decoded here) or ``"linear"``.
    primaries
        RGB primaries (white adapted to D50 with Bradford).
    detrend
        Shading removal on linear values before conversion.

    Returns
    -------
    ColorNoise
    """
    XYZ = _patch_XYZ(patch, transfer, primaries, detrend)
    Lab = XYZ_to_Lab(XYZ, XYZ_D50).reshape(-1, 3)
    s = Lab.std(axis=0, ddof=1)
    return ColorNoise(
        std_L=float(s[0]),
        std_a=float(s[1]),
        std_b=float(s[2]),
        chroma_noise=float(np.hypot(s[1], s[2])),
        mean_Lab=Lab.mean(axis=0),
    )


def csf_visual_noise(frequency_cy_deg: ArrayLike) -> NDArray[np.float64]:
    """(3, ...) CSFs (luminance, red-green, blue-yellow) used by the visual noise, unit gain at 0."""
    v = np.clip(np.asarray(frequency_cy_deg, dtype=np.float64), 0.0, None)
    v_peak = 0.8 / 0.2  # maximum of v^c exp(-b v) at c/b
    peak = v_peak**0.8 * np.exp(-0.2 * v_peak)
    lum = np.where(v < v_peak, 1.0, v**0.8 * np.exp(-0.2 * v) / peak)
    rg = 109.1413 * np.exp(-0.00038 * v**3.42436) + 93.59711 * np.exp(-0.00367 * v**2.16771)
    by = 7.0328 * np.exp(-0.000004 * v**4.258461) + 40.69095 * np.exp(-0.103909 * v**1.64847)
    return np.stack([lum, rg / (109.1413 + 93.59711), by / (7.0328 + 40.69095)])


@dataclass(frozen=True, slots=True)
class VisualNoise:
    """ISO 15739 visual noise of a uniform patch (CIELUV units after CSF filtering)."""

    visual_noise: float
    std_L: float
    std_u: float
    std_v: float
    pixels_per_deg: float


def visual_noise_iso15739(
    patch: ArrayLike,
    *,
    transfer: Literal["linear", "srgb"] = "srgb",
    primaries: Literal["srgb", "display_p3", "rec2020", "prophoto"] = "srgb",
    pixels_per_deg: float | None = None,
    detrend: Literal["plane", "none"] = "plane",
) -> VisualNoise:
    """Visual noise of a uniform patch, ISO 15739:2013 annex B.

    Parameters
    ----------
    patch
        (H, W, 3) R, G, B, output-referred, white at 1.0; at least 32 x 32 px.
    transfer, primaries
        Encoding of ``patch`` (decoded to linear, then XYZ D50).
    pixels_per_deg
        Viewing condition; default :func:`rawlab.lab.deadleaves.pixels_per_degree` ()
        (100 % on a 100 ppi display at 0.5 m, 34.4 px/degree).
    detrend
        Shading removal on linear values before filtering.

    Returns
    -------
    VisualNoise
        ``visual_noise = std_L + 0.852 std_u + 0.323 std_v`` (0 for a noiseless patch).
    """
    XYZ = _patch_XYZ(patch, transfer, primaries, detrend)
    h, w, _ = XYZ.shape
    if h < 32 or w < 32:
        raise InvalidParams(f"visual noise needs a patch of at least 32 x 32 px, got {h} x {w}")
    ppd = pixels_per_degree() if pixels_per_deg is None else float(pixels_per_deg)
    if not ppd > 0:
        raise InvalidParams(f"pixels_per_deg must be > 0, got {pixels_per_deg}")
    opp = XYZ @ M_XYZ_to_opponent.T
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    csf = csf_visual_noise(np.sqrt(fy**2 + fx**2) * ppd)  # (3, h, w//2+1)
    spec = np.fft.rfft2(opp, axes=(0, 1))
    filtered = np.fft.irfft2(spec * np.moveaxis(csf, 0, -1), s=(h, w), axes=(0, 1))
    XYZ_f = filtered @ np.linalg.inv(M_XYZ_to_opponent).T
    Luv = XYZ_to_Luv(XYZ_f, XYZ_D50).reshape(-1, 3)
    s = Luv.std(axis=0, ddof=1)
    return VisualNoise(
        visual_noise=float(s[0] + 0.852 * s[1] + 0.323 * s[2]),
        std_L=float(s[0]),
        std_u=float(s[1]),
        std_v=float(s[2]),
        pixels_per_deg=ppd,
    )
