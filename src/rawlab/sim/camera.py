"""Simulated camera models, kept as data (``sim/cameras/*.toml``).

A model is the sensor (pixel grid, CFA, levels, conversion gain, noise
sources), its spectral sensitivities and the lens (focal length, f-number, PSF,
distortion, vignetting, lateral chromatic aberration).  :func:`load_camera`
reads a built-in model by name or a TOML file by path and validates every key,
so a wrong file fails with one line naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rawlab.errors import InvalidParams

CAMERAS_DIR = Path(__file__).resolve().parent / "cameras"
MEASURED_SENSITIVITIES = ("Nikon 5100 (NPL)", "Sigma SDMerill (NPL)")


@dataclass(frozen=True, slots=True)
class SensorModel:
    """The image sensor.

    Gains are in electrons per digital number (e-/DN) at ``iso_base``; at ISO
    ``s`` the gain is ``conversion_gain_e_per_dn * iso_base / s``.  Noise sources
    are in electrons; ``prnu_fraction`` is the standard deviation of the
    per-pixel gain (photo-response non-uniformity) and ``dsnu_e`` that of the
    per-pixel dark offset (dark signal non-uniformity).  ``fixed_pattern_seed``
    draws the fixed patterns (PRNU, DSNU, hot pixels): they belong to the
    sensor and stay the same in every capture.
    """

    width_px: int
    height_px: int
    pixel_pitch_um: float
    cfa: str
    bits_per_sample: int
    black_level_dn: float
    white_level_dn: float
    conversion_gain_e_per_dn: float
    iso_base: float
    iso_max: float
    full_well_e: float
    quantum_efficiency_peak: float
    read_noise_e: float
    dark_current_e_per_s: float
    prnu_fraction: float
    dsnu_e: float
    hot_pixel_fraction: float
    fixed_pattern_seed: int = 0


@dataclass(frozen=True, slots=True)
class SpectralModel:
    """Spectral sensitivities: a measured set from colour-science by name, or
    ``"parametric"``: Gaussian channels ``(peak_nm, sigma_nm, height)`` times a
    logistic IR-cut filter."""

    sensitivities: str
    red: tuple[float, float, float] | None = None
    green: tuple[float, float, float] | None = None
    blue: tuple[float, float, float] | None = None
    ir_cut_nm: float = 650.0
    ir_cut_width_nm: float = 10.0


@dataclass(frozen=True, slots=True)
class OpticsModel:
    """The lens.

    ``psf`` is ``"gaussian"`` (standard deviation ``psf_sigma_px``) or
    ``"airy"`` (diffraction-limited for ``f_number``); either is convolved with
    the pixel aperture.  Distortion is radial, ``r_d = r (1 + k1 r^2 + k2 r^4)``
    with ``r`` relative to the half-diagonal.  Vignetting is cos^4 of the field
    angle (from the focal length and sensor size) times
    ``1 + a1 r^2 + a2 r^4``.  ``ca_magnification`` is the lateral chromatic
    aberration: per-channel (R, G, B) image magnification.
    """

    focal_length_mm: float
    focal_length_35mm_mm: float
    f_number: float
    psf: str
    psf_sigma_px: float
    distortion_k1: float
    distortion_k2: float
    vignetting_cos4: bool
    vignetting_poly: tuple[float, ...]
    ca_magnification: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class CameraModel:
    """A complete simulated camera."""

    name: str
    make: str
    model: str
    sensor: SensorModel
    spectral: SpectralModel
    optics: OpticsModel

    def gain_e_per_dn(self, iso: float) -> float:
        """Conversion gain (e-/DN) at ``iso``."""
        return self.sensor.conversion_gain_e_per_dn * self.sensor.iso_base / float(iso)


# (key, type, min, max) checks per section; None: no bound.
_RANGES: dict[str, tuple[float | None, float | None]] = {
    "width_px": (16, 20000),
    "height_px": (16, 20000),
    "pixel_pitch_um": (0.3, 30.0),
    "bits_per_sample": (8, 16),
    "black_level_dn": (0, 65535),
    "white_level_dn": (1, 65535),
    "conversion_gain_e_per_dn": (1e-3, 1e3),
    "iso_base": (1, 1e6),
    "iso_max": (1, 1e7),
    "full_well_e": (10, 1e7),
    "quantum_efficiency_peak": (0.01, 1.0),
    "read_noise_e": (0, 1e3),
    "dark_current_e_per_s": (0, 1e6),
    "prnu_fraction": (0, 0.5),
    "dsnu_e": (0, 1e4),
    "hot_pixel_fraction": (0, 0.1),
    "focal_length_mm": (0.1, 5000),
    "focal_length_35mm_mm": (1, 5000),
    "f_number": (0.5, 64),
    "psf_sigma_px": (0, 20),
    "distortion_k1": (-1, 1),
    "distortion_k2": (-1, 1),
    "ir_cut_nm": (500, 900),
    "ir_cut_width_nm": (0.5, 100),
}


def _convert(where: str, name: str, hint: str, value: Any) -> Any:
    """Check and convert one TOML value against its annotated type."""
    bad = InvalidParams(f"key {where}.{name}: expected {hint}, got {value!r}")
    if hint == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
    elif hint == "float":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        value = float(value)
    elif hint == "bool":
        if not isinstance(value, bool):
            raise bad
    elif hint == "str":
        if not isinstance(value, str):
            raise bad
    elif hint.startswith("tuple"):
        if value is None and "None" in hint:
            return None
        if not isinstance(value, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise bad
        value = tuple(float(v) for v in value)
        expect = 3 if "float, float, float" in hint else None
        if expect is not None and len(value) != expect:
            raise InvalidParams(f"key {where}.{name}: expected {expect} numbers, got {len(value)}")
    lo_hi = _RANGES.get(name)
    if lo_hi is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = lo_hi
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise InvalidParams(f"key {where}.{name}: {value} is outside {lo}..{hi}")
    return value


def _build(cls: type, where: str, table: Any) -> Any:
    if not isinstance(table, dict):
        raise InvalidParams(f"[{where}] must be a table")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(table) - set(known))
    if unknown:
        raise InvalidParams(f"key {where}.{unknown[0]}: unknown (expected one of {', '.join(known)})")
    values = {}
    for name, f in known.items():
        if name not in table:
            if f.default is not dataclasses.MISSING:
                continue
            raise InvalidParams(f"key {where}.{name}: missing")
        values[name] = _convert(where, name, str(f.type).replace("'", ""), table[name])
    return cls(**values)


def camera_from_dict(data: dict[str, Any]) -> CameraModel:
    """Build and validate a :class:`CameraModel` from a parsed TOML table."""
    top = {"name", "make", "model", "sensor", "spectral", "optics"}
    unknown = sorted(set(data) - top)
    if unknown:
        raise InvalidParams(f"key {unknown[0]}: unknown (expected {', '.join(sorted(top))})")
    for key in ("name", "make", "model"):
        if not isinstance(data.get(key), str):
            raise InvalidParams(f"key {key}: expected a string")
    for key in ("sensor", "spectral", "optics"):
        if key not in data:
            raise InvalidParams(f"[{key}]: missing table")
    sensor = _build(SensorModel, "sensor", data["sensor"])
    spectral = _build(SpectralModel, "spectral", data["spectral"])
    optics = _build(OpticsModel, "optics", data["optics"])
    if sensor.white_level_dn <= sensor.black_level_dn or sensor.white_level_dn > 2**sensor.bits_per_sample - 1:
        raise InvalidParams(
            "key sensor.white_level_dn: must lie above black_level_dn and within bits_per_sample"
        )
    if sensor.iso_max < sensor.iso_base:
        raise InvalidParams("key sensor.iso_max: below sensor.iso_base")
    if len(sensor.cfa) != 4 or sorted(sensor.cfa.upper()) != ["B", "G", "G", "R"]:
        raise InvalidParams(f"key sensor.cfa: expected a Bayer name such as RGGB, got {sensor.cfa!r}")
    if spectral.sensitivities == "parametric":
        for ch in ("red", "green", "blue"):
            if getattr(spectral, ch) is None:
                raise InvalidParams(f"key spectral.{ch}: needed for parametric sensitivities")
    elif spectral.sensitivities not in MEASURED_SENSITIVITIES:
        raise InvalidParams(
            f"key spectral.sensitivities: expected 'parametric' or one of {', '.join(MEASURED_SENSITIVITIES)}"
        )
    if optics.psf not in ("gaussian", "airy"):
        raise InvalidParams(f"key optics.psf: expected 'gaussian' or 'airy', got {optics.psf!r}")
    if len(optics.vignetting_poly) > 4:
        raise InvalidParams("key optics.vignetting_poly: at most 4 coefficients")
    if any(not 0.9 < m < 1.1 for m in optics.ca_magnification):
        raise InvalidParams("key optics.ca_magnification: values must lie in 0.9..1.1")
    return CameraModel(
        name=data["name"], make=data["make"], model=data["model"], sensor=sensor, spectral=spectral, optics=optics
    )


def builtin_cameras() -> list[str]:
    """Names of the built-in camera models."""
    return sorted(p.stem for p in CAMERAS_DIR.glob("*.toml"))


def load_camera(name_or_path: str | Path) -> CameraModel:
    """Load a built-in camera model by name, or a camera TOML file by path.

    Raises
    ------
    InvalidParams
        Unknown name (the message lists the known ones) or a bad file (the
        message names the file and the key).
    """
    text = str(name_or_path)
    path = Path(text)
    if not (text.endswith(".toml") or path.is_file()):
        path = CAMERAS_DIR / f"{text}.toml"
        if not path.is_file():
            raise InvalidParams(f"unknown camera {text!r}; known cameras: {', '.join(builtin_cameras())}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidParams(f"cannot read camera file: {exc.strerror}", path=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParams(f"not valid TOML: {exc}", path=str(path)) from None
    try:
        return camera_from_dict(data)
    except InvalidParams as exc:
        raise InvalidParams(exc.message, path=str(path)) from None
