"""Spectra for the simulator: camera sensitivities, illuminants, reflectances.

Everything is sampled on one grid, :data:`WAVELENGTHS_NM` (380..780 nm, 5 nm),
as float64 arrays.  The measured data come from colour-science (camera
sensitivities measured by NPL, CIE illuminants, the ColorChecker N Ohta
reflectances and the CIE 1931 2 degree observer); the parametric phone
sensitivities are Gaussian channels times a logistic IR-cut filter.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams
from rawlab.sim.camera import SpectralModel

WAVELENGTHS_NM = np.arange(380.0, 781.0, 5.0)

#: Scene illuminants: our name -> (colour-science name, EXIF LightSource code).
ILLUMINANTS: dict[str, tuple[str, int]] = {
    "D65": ("D65", 21),
    "D50": ("D50", 23),
    "A": ("A", 17),
    "F2": ("FL2", 14),  # cool white fluorescent
    "F11": ("FL11", 14),  # narrow-band tri-phosphor fluorescent, 4000 K
    "LED": ("LED-B3", 255),  # CIE 2018 phosphor-converted blue LED, ~4100 K
}


def _colour():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    return colour


def _on_grid(sd) -> NDArray[np.float64]:
    colour = _colour()
    shape = colour.SpectralShape(380, 780, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(sd.copy().align(shape).values, dtype=np.float64)


@lru_cache(maxsize=None)
def cmfs_xyz() -> NDArray[np.float64]:
    """CIE 1931 2 degree colour matching functions, shape (N, 3)."""
    colour = _colour()
    cmfs = colour.MSDS_CMFS["CIE 1931 2 Degree Standard Observer"]
    out = _on_grid(cmfs)
    out.setflags(write=False)
    return out


@lru_cache(maxsize=None)
def illuminant_spd(name: str) -> NDArray[np.float64]:
    """Relative spectral power of a scene illuminant (D65, D50, A, F2, F11, LED),
    scaled so that a perfect white diffuser has Y = 1 (see :func:`xyz_of`)."""
    if name not in ILLUMINANTS:
        raise InvalidParams(f"unknown illuminant {name!r}; known: {', '.join(ILLUMINANTS)}")
    colour = _colour()
    spd = _on_grid(colour.SDS_ILLUMINANTS[ILLUMINANTS[name][0]])
    spd = spd / float(spd @ cmfs_xyz()[:, 1])
    spd.setflags(write=False)
    return spd


@lru_cache(maxsize=None)
def colorchecker_reflectances() -> tuple[tuple[str, ...], NDArray[np.float64]]:
    """Names and spectral reflectances (24, N) of the ColorChecker 24 (N Ohta data)."""
    colour = _colour()
    data = colour.SDS_COLOURCHECKERS["ColorChecker N Ohta"]
    names = tuple(data.keys())
    refl = np.stack([_on_grid(data[n]) for n in names])
    refl.setflags(write=False)
    return names, refl


def xyz_of(reflectances: NDArray, illuminant: NDArray) -> NDArray[np.float64]:
    """CIE XYZ of reflectances (K, N) under an illuminant spectrum (N,) normalised
    as in :func:`illuminant_spd`: a perfect white diffuser gives Y = 1."""
    return np.asarray(reflectances, dtype=np.float64) * illuminant @ cmfs_xyz()


def white_xyz(illuminant: NDArray) -> NDArray[np.float64]:
    """XYZ of the perfect white diffuser under ``illuminant`` (Y = 1)."""
    return xyz_of(np.ones((1, WAVELENGTHS_NM.size)), illuminant)[0]


@lru_cache(maxsize=None)
def _measured(name: str) -> NDArray[np.float64]:
    colour = _colour()
    out = _on_grid(colour.MSDS_CAMERA_SENSITIVITIES[name])
    out = np.clip(out, 0.0, None)
    return out / out.max()


def camera_sensitivities(model: SpectralModel) -> NDArray[np.float64]:
    """Relative spectral sensitivities (N, 3) of the R, G, B pixels, peak 1.

    For ``"parametric"``, channel ``c`` is ``h exp(-(l - p)^2 / (2 s^2))`` times
    the IR-cut ``1 / (1 + exp((l - ir_cut_nm) / ir_cut_width_nm))``.
    """
    if model.sensitivities != "parametric":
        return _measured(model.sensitivities).copy()
    lam = WAVELENGTHS_NM
    ir_cut = 1.0 / (1.0 + np.exp((lam - model.ir_cut_nm) / model.ir_cut_width_nm))
    chans = []
    for peak_nm, sigma_nm, height in (model.red, model.green, model.blue):  # type: ignore[misc]
        chans.append(height * np.exp(-0.5 * ((lam - peak_nm) / sigma_nm) ** 2) * ir_cut)
    out = np.stack(chans, axis=1)
    return out / out.max()


def camera_response(reflectances: NDArray, illuminant: NDArray, sensitivities: NDArray) -> NDArray[np.float64]:
    """Relative camera RGB (K, 3) of reflectances (K, N) under an illuminant (N,)."""
    return np.asarray(reflectances, dtype=np.float64) * illuminant @ sensitivities


@lru_cache(maxsize=None)
def srgb_reflectance_basis_mallett2019() -> NDArray[np.float64]:
    """Three bounded reflectance spectra (3, N) whose mixtures unprocess linear sRGB.

    Spectral primary decomposition of Mallett and Yuksel (2019, "Spectral
    Primary Decomposition for Rendering with sRGB Reflectance", EGSR), as
    colour-science ships it (``MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019``, on
    this module's 380..780 nm, 5 nm grid): a linear sRGB triple ``c`` becomes
    the reflectance ``c @ basis``.  Each basis spectrum lies in 0..1 and the
    three sum to 1 at every wavelength, so any ``c`` in ``[0, 1]^3`` gives a
    physically plausible reflectance in 0..1 (``(1, 1, 1)`` is the flat 100 %
    reflector) and every camera response is >= 0.  Under D65 the spectra
    reproduce the sRGB primaries (IEC 61966-2-1, white Y = 1) to within
    CIEDE2000 0.03; under another light they behave as smooth real surfaces do.

    Returns
    -------
    ndarray
        (3, N) float64 in 0..1, rows R, G, B, columns :data:`WAVELENGTHS_NM`.
    """
    colour = _colour()
    basis = _on_grid(colour.recovery.MSDS_BASIS_FUNCTIONS_sRGB_MALLETT2019).T  # (3, N)
    basis = np.clip(basis, 0.0, 1.0)
    basis = basis / basis.sum(axis=0, keepdims=True)  # the published sums are 1 to 1e-5: make it exact
    basis = np.ascontiguousarray(basis)
    basis.setflags(write=False)
    return basis
