"""Edge spatial frequency response (e-SFR) of a slanted edge, ISO 12233:2017.

ISO 12233:2017 "Photography - Electronic still picture imaging - Resolution
and spatial frequency responses", clause 6 / annex D (the e-SFR algorithm, as
also published in P. D. Burns, "Slanted-edge MTF for digital camera and
scanner analysis", PICS 2000, and its sfrmat3 revision):

1. per row, the derivative of the row profile ([-1/2, +1/2] FIR) and the
   centroid of that *signed* derivative, weighted by a Hamming window (first
   pass centred on the region, second pass centred on the first-pass edge);
2. a polynomial fit of the edge location against the row (degree 1 in the
   2017 edition; higher degrees as allowed by the 2023 edition for curved edges);
3. the rows kept are an integer number of edge phase cycles, every pixel is
   projected on the edge normal and binned at 1/4 px (4x oversampled ESF);
4. the LSF is the [-1/2, 0, +1/2] derivative of the ESF, windowed by a Hamming
   window centred on its centroid, and its DFT magnitude (normalised at 0) is
   divided by the transfer function of that derivative (derivative correction).

Frequencies are in cycles per pixel *along the edge normal* (the projection
uses perpendicular distances, i.e. the cos(angle) correction of sfrmat3), so
an isotropic Gaussian PSF of sigma ``s`` px gives MTF50 = sqrt(2 ln 2)/(2 pi s)
= 0.18739/s at any angle.  The input is one channel of a region of interest
that holds a single near-vertical or near-horizontal edge; ISO 12233 asks for
data linearised through the OECF first (the caller does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.special import ndtr

from rawlab.errors import InvalidParams
from rawlab.lab._colorimetry import check_choice


@dataclass(frozen=True, slots=True)
class SfrResult:
    """Result of an e-SFR measurement.

    Attributes
    ----------
    frequency_cy_px
        Frequencies of ``mtf``, cycles/px along the edge normal, 0 .. 1.
    mtf
        SFR (MTF) normalised to 1 at zero frequency, derivative-corrected.
    mtf50_cy_px
        First frequency where the MTF falls to 0.5 (linear interpolation); NaN if never.
    mtf50p_cy_px
        First frequency above the MTF peak where it falls to half the peak (MTF50P).
    mtf_peak
        Maximum of the MTF below Nyquist (> 1 means sharpening).
    mtf_at_nyquist
        MTF at 0.5 cycles/px.
    edge_angle_deg
        Edge angle from the image axis it is closest to, degrees, signed:
        ``x = x0 + tan(angle) * y`` for a vertical edge (``y = y0 + tan(angle) * x``
        for a horizontal one), with x to the right and y down.
    orientation
        ``"vertical"`` or ``"horizontal"``.
    esf_position_px, esf
        Oversampled edge spread function against the distance to the edge, px.
    lsf
        Line spread function (derivative of ``esf``, before the window).
    overshoot_pct, undershoot_pct
        Peak above the bright plateau and dip below the dark plateau of the ESF,
        in percent of the edge step (sharpening halos; about 0 for an unsharpened edge).
    rows_used
        Rows (lines along the edge) used: an integer number of phase cycles.
    """

    frequency_cy_px: NDArray[np.float64]
    mtf: NDArray[np.float64]
    mtf50_cy_px: float
    mtf50p_cy_px: float
    mtf_peak: float
    mtf_at_nyquist: float
    edge_angle_deg: float
    orientation: str
    esf_position_px: NDArray[np.float64]
    esf: NDArray[np.float64]
    lsf: NDArray[np.float64]
    overshoot_pct: float
    undershoot_pct: float
    rows_used: int


def _hamming_centred(n: int, centre: float | NDArray[np.float64]) -> NDArray[np.float64]:
    """Hamming window over indices 0..n-1 with its peak at ``centre`` (per row when an array).

    The half width is the larger distance from ``centre`` to either end, so the
    window stays positive over the whole row (the asymmetric Hamming of sfrmat3).
    """
    x = np.arange(n, dtype=np.float64)
    c = np.asarray(centre, dtype=np.float64)[..., None]
    half = np.maximum(c, (n - 1) - c) + 0.5
    return 0.54 + 0.46 * np.cos(np.pi * (x - c) / half)


def _tukey_centred(n: int, centre: float, alpha: float = 0.5) -> NDArray[np.float64]:
    x = np.arange(n, dtype=np.float64)
    half = max(centre, (n - 1) - centre) + 0.5
    u = np.abs(x - centre) / half  # 0 at centre, <1 inside
    w = np.ones(n)
    taper = u > 1.0 - alpha
    w[taper] = 0.5 * (1.0 + np.cos(np.pi * (u[taper] - (1.0 - alpha)) / alpha))
    return w


def _row_centroids(a: NDArray[np.float64], centre: NDArray[np.float64]) -> NDArray[np.float64]:
    """Centroid (in pixel-centre coordinates) of the windowed signed derivative of each row."""
    d = a[:, 1:] - a[:, :-1]  # derivative located at j + 0.5
    n = d.shape[1]
    w = _hamming_centred(n, centre - 0.5)
    wd = w * d
    x = np.arange(n, dtype=np.float64) + 0.5
    s = wd.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (wd * x).sum(axis=1) / s


def _first_crossing(freq: NDArray[np.float64], mtf: NDArray[np.float64], level: float, start: int = 0) -> float:
    below = np.nonzero(mtf[start:] < level)[0]
    if below.size == 0:
        return float("nan")
    i = start + int(below[0])
    if i == 0:
        return 0.0
    f0, f1, m0, m1 = freq[i - 1], freq[i], mtf[i - 1], mtf[i]
    return float(f0 + (m0 - level) * (f1 - f0) / (m0 - m1))


def sfr_slanted_edge_iso12233(
    image: ArrayLike,
    *,
    oversampling: int = 4,
    window: Literal["hamming", "tukey", "none"] = "hamming",
    polynomial_degree: int = 1,
) -> SfrResult:
    """Measure the e-SFR (MTF) of one slanted edge, ISO 12233:2017.

    Parameters
    ----------
    image
        (H, W) region of interest around one straight edge, one channel (use
        luminance or one colour channel), any float or integer scale; linear
        (OECF-corrected) data is what the standard assumes.  The edge must cross
        the region from one side to the opposite side, be within about 45° of an
        axis, and be tilted enough that the rows cover at least one phase cycle
        (about 2-10°).  At least 8 x 16 px.
    oversampling
        ESF bins per pixel (4 in the standard), 2..8.
    window
        LSF window, centred on the LSF centroid: ``"hamming"`` (ISO 12233:2017),
        ``"tukey"`` (a Tukey window, alpha = 0.5, flat over the middle half, as the
        2023 edition moved to a tapered-flat window) or ``"none"``.
    polynomial_degree
        Degree of the edge-location fit, 1 (straight edge) .. 5.

    Returns
    -------
    SfrResult
        MTF curve (cycles/px along the edge normal), MTF50, MTF50P, edge angle,
        ESF/LSF and sharpening overshoot.

    Raises
    ------
    InvalidParams
        Bad arguments, NaN in the region, no edge, or an edge too close to an axis.
    """
    check_choice("window", window, ("hamming", "tukey", "none"))
    if not 2 <= int(oversampling) <= 8:
        raise InvalidParams(f"oversampling must be 2..8, got {oversampling}")
    if not 1 <= int(polynomial_degree) <= 5:
        raise InvalidParams(f"polynomial_degree must be 1..5, got {polynomial_degree}")
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise InvalidParams(f"e-SFR needs a 2-D single-channel region, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise InvalidParams("e-SFR region contains NaN or infinite values")

    # Orientation: the edge runs along the axis over which the ends differ least.
    k = max(2, min(a.shape) // 10)
    dx = abs(a[:, :k].mean() - a[:, -k:].mean())
    dy = abs(a[:k, :].mean() - a[-k:, :].mean())
    orientation = "vertical"
    if dy > dx:
        a = a.T
        orientation = "horizontal"
    nrows, ncols = a.shape
    if nrows < 8 or ncols < 16:
        raise InvalidParams(f"e-SFR region too small ({nrows} lines x {ncols} px across the edge)")
    step = float(np.abs(a[:, :k].mean() - a[:, -k:].mean()))
    if not step > 1e-6 * max(1.0, float(np.abs(a).max())):
        raise InvalidParams("e-SFR region holds no edge (both sides have the same level)")

    rows = np.arange(nrows, dtype=np.float64)
    deg = int(polynomial_degree)
    # Pass 1: window centred on the region; pass 2: centred on the fitted edge.
    loc = _row_centroids(a, np.full(nrows, (ncols - 1) / 2.0))
    if not np.all(np.isfinite(loc)):
        raise InvalidParams("e-SFR: the edge could not be located in every line")
    coef = np.polynomial.polynomial.polyfit(rows, loc, deg)
    loc = _row_centroids(a, np.polynomial.polynomial.polyval(rows, coef))
    coef = np.polynomial.polynomial.polyfit(rows, loc, deg)
    slope = float(np.polynomial.polynomial.polyval((nrows - 1) / 2.0, np.polynomial.polynomial.polyder(coef)))

    # Keep an integer number of phase cycles (ISO 12233 / sfrmat3).
    cycles = np.floor(nrows * abs(slope))
    if cycles < 1:
        raise InvalidParams(
            f"e-SFR: edge angle {np.degrees(np.arctan(slope)):.2f}° is too close to the axis for "
            f"{nrows} lines (needs at least one phase cycle; tilt it more or use more lines)"
        )
    n_use = int(min(nrows, round(cycles / abs(slope))))
    first = (nrows - n_use) // 2
    a = a[first : first + n_use]
    rows = np.arange(n_use, dtype=np.float64)
    loc = loc[first : first + n_use]
    coef = np.polynomial.polynomial.polyfit(rows, loc, deg)
    edge_x = np.polynomial.polynomial.polyval(rows, coef)
    slope = float(np.polynomial.polynomial.polyval((n_use - 1) / 2.0, np.polynomial.polynomial.polyder(coef)))
    cos_t = float(np.cos(np.arctan(slope)))

    # Bin every pixel by its distance to the edge along the line (1/oversampling px);
    # with whole phase cycles every bin is filled evenly.  The perpendicular
    # scale enters afterwards as the cos(angle) frequency correction.
    delta = 1.0 / int(oversampling)
    cols = np.arange(ncols, dtype=np.float64)
    dist = cols[None, :] - edge_x[:, None]
    lo = float(np.max(-edge_x))
    hi = float(np.min(ncols - 1 - edge_x))
    half = int(np.floor(min(-lo, hi) / delta))
    if half < 4 * int(oversampling):
        raise InvalidParams("e-SFR: the edge is too close to the side of the region (needs >= 4 px each side)")
    nbins = 2 * half
    idx = np.floor(dist / delta).astype(np.int64) + half
    ok = (idx >= 0) & (idx < nbins)
    counts = np.bincount(idx[ok], minlength=nbins).astype(np.float64)
    sums = np.bincount(idx[ok], weights=a[ok], minlength=nbins)
    pos = (np.arange(nbins) - half + 0.5) * delta
    filled = counts > 0
    esf = np.empty(nbins)
    esf[filled] = sums[filled] / counts[filled]
    if not filled.all():
        esf[~filled] = np.interp(pos[~filled], pos[filled], esf[filled])

    # LSF: central difference of the ESF.
    lsf = np.empty(nbins)
    lsf[1:-1] = (esf[2:] - esf[:-2]) / 2.0
    lsf[0], lsf[-1] = lsf[1], lsf[-2]
    if lsf.sum() < 0:
        lsf = -lsf
    rising = esf[-1] >= esf[0]
    weights = np.clip(lsf, 0.0, None)
    centre = float((weights * np.arange(nbins)).sum() / weights.sum()) if weights.sum() > 0 else nbins / 2.0
    if window == "hamming":
        w = _hamming_centred(nbins, centre)
    elif window == "tukey":
        w = _tukey_centred(nbins, centre)
    else:
        w = np.ones(nbins)
    spectrum = np.abs(np.fft.rfft(lsf * w))
    mtf = spectrum / spectrum[0]
    freq_line = np.arange(mtf.size) / (nbins * delta)
    # Derivative correction: the [-1/2, 0, 1/2] filter at spacing delta has gain sin(2 pi f delta)/(2 pi f delta).
    arg = 2.0 * np.pi * freq_line * delta
    gain = np.ones_like(freq_line)
    nz = arg > 0
    gain[nz] = np.sin(arg[nz]) / arg[nz]
    mtf = mtf / np.clip(gain, 0.1, None)
    freq = freq_line / cos_t  # cycles/px along the edge normal
    keep = freq <= 1.0 + 1e-12
    freq, mtf = freq[keep], mtf[keep]

    below_nyq = freq <= 0.5 + 1e-12
    mtf50 = _first_crossing(freq, mtf, 0.5)
    i_peak = int(np.argmax(np.where(below_nyq, mtf, -np.inf)))
    peak = float(mtf[i_peak])
    mtf50p = _first_crossing(freq, mtf, 0.5 * peak, start=i_peak)
    mtf_nyq = float(np.interp(0.5, freq, mtf))

    # Overshoot / undershoot from the ESF plateaus (outer 15 % of each side).
    e = esf if rising else esf[::-1]
    m = max(2, nbins * 15 // 100)
    low, high = float(e[:m].mean()), float(e[-m:].mean())
    span = high - low
    overshoot = 100.0 * (float(e.max()) - high) / span
    undershoot = 100.0 * (low - float(e.min())) / span

    return SfrResult(
        frequency_cy_px=freq,
        mtf=mtf,
        mtf50_cy_px=mtf50,
        mtf50p_cy_px=mtf50p,
        mtf_peak=peak,
        mtf_at_nyquist=mtf_nyq,
        edge_angle_deg=float(np.degrees(np.arctan(slope))),
        orientation=orientation,
        esf_position_px=pos * cos_t,
        esf=esf,
        lsf=lsf,
        overshoot_pct=overshoot,
        undershoot_pct=undershoot,
        rows_used=n_use,
    )


def render_gaussian_edge(
    shape: tuple[int, int],
    *,
    angle_deg: float,
    sigma_px: float,
    offset_px: float = 0.0,
    low: float = 0.2,
    high: float = 0.8,
    orientation: Literal["vertical", "horizontal"] = "vertical",
) -> NDArray[np.float32]:
    """A straight edge blurred by an isotropic Gaussian PSF, sampled at pixel centres.

    The profile across the edge is ``low + (high - low) * Phi(d / sigma_px)``
    (Phi the standard normal CDF, d the signed distance of the pixel centre from
    the edge line), so the MTF along the edge normal is exactly
    ``exp(-2 pi^2 sigma^2 f^2)`` with no pixel-aperture factor, and MTF50 =
    0.18739 / sigma_px.  A chart-synthesis helper for tests and the lab protocol.

    Parameters
    ----------
    shape
        (H, W) of the output.
    angle_deg
        Edge tilt from the vertical (or horizontal) axis, same convention as
        :attr:`SfrResult.edge_angle_deg`.
    sigma_px
        Gaussian PSF standard deviation, px (> 0).
    offset_px
        Shift of the edge from the image centre along x (y for a horizontal edge), px.
    low, high
        Levels on the left/top and right/bottom side.
    orientation
        ``"vertical"`` or ``"horizontal"``.

    Returns
    -------
    numpy.ndarray
        float32 (H, W), values between ``low`` and ``high``.
    """
    check_choice("orientation", orientation, ("vertical", "horizontal"))
    if not sigma_px > 0:
        raise InvalidParams(f"sigma_px must be > 0, got {sigma_px}")
    h, w = (shape[1], shape[0]) if orientation == "horizontal" else (shape[0], shape[1])
    y = np.arange(h, dtype=np.float64)[:, None] - (h - 1) / 2.0
    x = np.arange(w, dtype=np.float64)[None, :] - (w - 1) / 2.0 - offset_px
    t = np.radians(angle_deg)
    d = x * np.cos(t) - y * np.sin(t)
    out = low + (high - low) * ndtr(d / sigma_px)
    if orientation == "horizontal":
        out = out.T
    return np.ascontiguousarray(out, dtype=np.float32)
