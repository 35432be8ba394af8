"""DNG colour matrices fitted from spectral sensitivities.

For a calibration illuminant, the camera responses and the CIE XYZ of a set of
reflectances (the ColorChecker 24) are computed from spectra; the matrix that
maps camera RGB to XYZ is fitted with the white-point preserving constraint
(Finlayson and Drew 1996, "White-point preserving color correction"): the
camera's response to the perfect white diffuser maps exactly to the
illuminant's white.  Within that constraint (6 free parameters) it is fitted
by least squares and then refined by minimising the mean CIEDE2000 colour
difference (Sharma et al. 2005, via colour-science).  So the ColorMatrix and
the AsShotNeutral the simulator writes agree exactly, as a DNG reader assumes.
Its inverse is the DNG ColorMatrix (XYZ -> camera), normalised as in the DNG
specification 1.6 (chapter 6): the illuminant's white maps to a camera
neutral whose largest component is 1.  ``method="lstsq"`` is the plain,
unconstrained 3x3 least-squares fit (the reference the issue quotes).

The ForwardMatrix (DNG 1.6, chapter 6) maps white-balanced camera RGB to XYZ
D50; it is fitted per row by least squares with the constraint that camera
white (1, 1, 1) maps exactly to the D50 white.  The target XYZ are adapted
from the calibration illuminant to D50 with the Bradford transform.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams
from rawlab.sim import spectral

#: XYZ of the D50 white used by DNG / ICC (Y = 1).
XYZ_D50_WHITE = np.array([0.9642, 1.0, 0.8249])


@dataclass(frozen=True)
class ColorFit:
    """Result of fitting one calibration illuminant.

    Attributes
    ----------
    M_XYZ_to_camera
        DNG ColorMatrix, normalised (largest camera component of the
        illuminant white is 1).
    M_camera_to_XYZ
        The fitted camera -> XYZ matrix (inverse of ``M_XYZ_to_camera``).
    M_forward
        DNG ForwardMatrix (white-balanced camera -> XYZ D50).
    camera_neutral
        Camera response to the illuminant's white, largest component 1.
    mean_delta_E2000
        Mean CIEDE2000 of the fitted matrix on the training reflectances.
    """

    M_XYZ_to_camera: NDArray[np.float64]
    M_camera_to_XYZ: NDArray[np.float64]
    M_forward: NDArray[np.float64]
    camera_neutral: NDArray[np.float64]
    mean_delta_E2000: float


def _lab(xyz: NDArray, white_xyz: NDArray) -> NDArray:
    """CIE 1976 L*a*b* of XYZ relative to ``white_xyz`` (CIE 15:2004)."""
    t = xyz / white_xyz
    d = 6.0 / 29.0
    f = np.where(t > d**3, np.cbrt(np.maximum(t, 0)), t / (3 * d * d) + 4.0 / 29.0)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], -1)


def delta_E2000(xyz_a: NDArray, xyz_b: NDArray, white_xyz: NDArray) -> NDArray:
    """CIEDE2000 between XYZ sets under the white ``white_xyz`` (colour-science)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

        return colour.difference.delta_E_CIE2000(_lab(xyz_a, white_xyz), _lab(xyz_b, white_xyz))


def fit_camera_to_xyz_lstsq(camera_rgb: NDArray, xyz: NDArray) -> NDArray[np.float64]:
    """Least-squares 3x3 ``M`` with ``xyz ~ M @ camera_rgb`` (rows are samples)."""
    solution, *_ = np.linalg.lstsq(camera_rgb, xyz, rcond=None)
    return solution.T


def fit_camera_to_xyz_white_preserving(
    camera_rgb: NDArray, xyz: NDArray, camera_neutral: NDArray, white_xyz: NDArray
) -> NDArray[np.float64]:
    """3x3 ``M`` with ``M @ camera_neutral == white_xyz`` exactly, minimising the
    mean CIEDE2000 of ``M @ camera_rgb`` against ``xyz``.

    White-point preserving colour correction (Finlayson and Drew 1996): write
    ``M = W + B N`` with ``W = white n^T / (n . n)`` and the rows of ``N``
    (2 x 3) an orthonormal basis of the plane orthogonal to ``n``, so any
    ``B`` (3 x 2) keeps the white.  ``B`` starts from least squares and is
    refined on the per-sample CIEDE2000 (trust-region least squares).

    Parameters
    ----------
    camera_rgb, xyz
        (K, 3) camera responses and their XYZ (rows are samples).
    camera_neutral, white_xyz
        Camera response to the white diffuser and its XYZ (3,).

    Returns
    -------
    ndarray
        (3, 3) float64 camera -> XYZ matrix.
    """
    from scipy.optimize import least_squares

    n = np.asarray(camera_neutral, dtype=np.float64)
    white_xyz = np.asarray(white_xyz, dtype=np.float64)
    q, _ = np.linalg.qr(np.column_stack([n / np.linalg.norm(n), np.eye(3)]))
    N = q[:, 1:3].T  # (2, 3), N @ n = 0
    W = np.outer(white_xyz, n) / float(n @ n)
    B_t, *_ = np.linalg.lstsq(camera_rgb @ N.T, xyz - camera_rgb @ W.T, rcond=None)
    start = B_t.T.ravel()

    def matrix(p: NDArray) -> NDArray:
        return W + p.reshape(3, 2) @ N

    def residuals(p: NDArray) -> NDArray:
        return delta_E2000(camera_rgb @ matrix(p).T, xyz, white_xyz)

    result = least_squares(residuals, start, method="trf", x_scale="jac", max_nfev=60, xtol=1e-6, ftol=1e-6)
    best = result.x if residuals(result.x).mean() <= residuals(start).mean() else start
    return matrix(best)


def bradford_cat(white_src: NDArray, white_dst: NDArray) -> NDArray[np.float64]:
    """Bradford chromatic adaptation matrix (XYZ -> XYZ) from one white to another."""
    M = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    gain = (M @ white_dst) / (M @ white_src)
    return np.linalg.inv(M) @ np.diag(gain) @ M


def fit_forward_matrix(camera_wb: NDArray, xyz_d50: NDArray) -> NDArray[np.float64]:
    """ForwardMatrix: least squares per row with ``F @ (1, 1, 1) = D50 white``."""
    n = camera_wb.shape[1]
    kkt = np.block([[2 * camera_wb.T @ camera_wb, np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
    rows = []
    for i in range(3):
        rhs = np.concatenate([2 * camera_wb.T @ xyz_d50[:, i], [XYZ_D50_WHITE[i]]])
        rows.append(np.linalg.solve(kkt, rhs)[:n])
    return np.array(rows)


def fit_color(
    sensitivities: NDArray,
    illuminant: str,
    *,
    reflectances: NDArray | None = None,
    method: str = "delta_e",
) -> ColorFit:
    """Fit the DNG ColorMatrix and ForwardMatrix of a camera for one illuminant.

    Parameters
    ----------
    sensitivities
        Camera spectral sensitivities (N, 3) on :data:`spectral.WAVELENGTHS_NM`.
    illuminant
        Calibration illuminant name (``"A"``, ``"D65"``, ...).
    reflectances
        Training reflectances (K, N); default the ColorChecker 24.
    method
        ``"delta_e"`` (white-point preserving, refined by CIEDE2000; the
        default) or ``"lstsq"`` (unconstrained least squares).

    Returns
    -------
    ColorFit
        Matrices in the DNG conventions; XYZ with Y = 1 for the white diffuser.
    """
    if reflectances is None:
        reflectances = spectral.colorchecker_reflectances()[1]
    spd = spectral.illuminant_spd(illuminant)
    cam = spectral.camera_response(reflectances, spd, sensitivities)
    white_cam = spectral.camera_response(np.ones((1, spd.size)), spd, sensitivities)[0]
    scale = 1.0 / white_cam.max()
    cam = cam * scale
    neutral = white_cam * scale
    xyz = spectral.xyz_of(reflectances, spd)
    white = spectral.white_xyz(spd)
    if method == "lstsq":
        M_cam_to_xyz = fit_camera_to_xyz_lstsq(cam, xyz)
    elif method == "delta_e":
        M_cam_to_xyz = fit_camera_to_xyz_white_preserving(cam, xyz, neutral, white)
    else:
        raise InvalidParams(f"colour fit method must be 'delta_e' or 'lstsq', got {method!r}")
    M_xyz_to_cam = np.linalg.inv(M_cam_to_xyz)
    # DNG normalisation: ColorMatrix @ white_XYZ has largest component 1.
    norm = (M_xyz_to_cam @ white).max()
    M_xyz_to_cam = M_xyz_to_cam / norm
    mean_de = float(delta_E2000(cam @ M_cam_to_xyz.T, xyz, white).mean())
    cam_wb = cam / neutral
    xyz_d50 = xyz @ bradford_cat(white, XYZ_D50_WHITE).T
    forward = fit_forward_matrix(cam_wb, xyz_d50)
    return ColorFit(
        M_XYZ_to_camera=M_xyz_to_cam,
        M_camera_to_XYZ=np.linalg.inv(M_xyz_to_cam),
        M_forward=forward,
        camera_neutral=neutral,
        mean_delta_E2000=mean_de,
    )
