"""Scenes for the simulator: spectral charts, lab charts and RGB photos.

A :class:`Scene` is a few reflectance spectra and, per pixel, either a label
(which spectrum) times a gain, or coefficients that mix the spectra.  The
spectral integration is then done once per spectrum, never per pixel.  Gains
above 1 are emitters (a window, a lamp).  Coordinates are in pixels of the
scene grid with pixel ``(i, j)`` covering ``[j, j+1) x [i, i+1)``; lab charts
are integrated over each pixel's area (supersampling), so the pixel aperture
is part of the rendered scene.  ``geometry`` holds what the lab needs
(edge positions, patch boxes as ``[top, left, bottom, right]``, dot centres
as ``[x, y]``) and is written to the ground-truth JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams
from rawlab.sim import spectral


@dataclass(frozen=True, eq=False)
class Scene:
    """A scene on its own pixel grid.

    Attributes
    ----------
    name
        What it is (``"colorchecker"``, ``"slanted_edge"``, ...).
    spectra
        Reflectance spectra (K, N) on :data:`spectral.WAVELENGTHS_NM`.
    labels, gain
        Per pixel: index into ``spectra`` (int16, or ``None`` for spectrum 0)
        and a float32 gain (or ``None`` for 1).
    coefficients
        Alternatively (H, W, K) float32 mixing weights of the spectra.
    geometry
        JSON-serialisable chart geometry.
    white_luminance_cd_m2
        Luminance of a perfect white diffuser in the scene light (cd/m^2).
    """

    name: str
    spectra: NDArray[np.float64]
    height: int
    width: int
    labels: NDArray[np.int16] | None = None
    gain: NDArray[np.float32] | None = None
    coefficients: NDArray[np.float32] | None = None
    geometry: dict[str, Any] = field(default_factory=dict)
    white_luminance_cd_m2: float = 200.0

    def linear_images(self, illuminant: NDArray, sensitivities: NDArray) -> tuple[NDArray, NDArray]:
        """Relative camera RGB and CIE XYZ (both (H, W, 3) float32) of the scene.

        Camera RGB is ``sum(reflectance * illuminant * sensitivity)`` with the
        illuminant normalised so the white diffuser has Y = 1; XYZ likewise.
        """
        cam_k = spectral.camera_response(self.spectra, illuminant, sensitivities).astype(np.float32)
        xyz_k = spectral.xyz_of(self.spectra, illuminant).astype(np.float32)
        if self.coefficients is not None:
            if self.coefficients.shape[2] <= 4:  # cv2.transform: up to 4 input channels
                return cv2.transform(self.coefficients, cam_k.T), cv2.transform(self.coefficients, xyz_k.T)
            flat = self.coefficients.reshape(-1, self.coefficients.shape[2])
            cam = (flat @ cam_k).reshape(self.height, self.width, 3)
            xyz = (flat @ xyz_k).reshape(self.height, self.width, 3)
            return cam, xyz
        if self.labels is None:
            gain = np.ones((self.height, self.width, 1), np.float32) if self.gain is None else self.gain[..., None]
            return gain * cam_k[0], gain * xyz_k[0]
        cam = cam_k[self.labels]
        xyz = xyz_k[self.labels]
        if self.gain is not None:
            cam *= self.gain[..., None]
            xyz *= self.gain[..., None]
        return cam, xyz


def _flat(value: float) -> NDArray[np.float64]:
    return np.full((1, spectral.WAVELENGTHS_NM.size), float(value))


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    w, h = (int(v) for v in size)
    if not (8 <= w <= 20000 and 8 <= h <= 20000):
        raise InvalidParams(f"scene size must be 8..20000 px per side, got {w}x{h}")
    return w, h


def render_supersampled(
    fn: Callable[[NDArray, NDArray], NDArray], height: int, width: int, *, supersample: int = 4
) -> NDArray[np.float32]:
    """Area-integrate ``fn(x, y)`` over every pixel by ``supersample``^2 point samples.

    ``fn`` takes float32 coordinate grids (pixel units) and returns values of
    the same shape; the work is done in bands of rows to bound memory.
    """
    ss = int(supersample)
    offsets = ((np.arange(ss, dtype=np.float32) + 0.5) / ss).astype(np.float32)
    xs = (np.arange(width, dtype=np.float32)[:, None] + offsets).reshape(-1)
    out = np.empty((height, width), np.float32)
    band = max(1, (1 << 22) // max(1, width * ss * ss))
    for top in range(0, height, band):
        rows = np.arange(top, min(height, top + band), dtype=np.float32)
        ys = (rows[:, None] + offsets).reshape(-1)
        values = fn(xs[None, :], ys[:, None]).astype(np.float32)
        out[top : top + rows.size] = values.reshape(rows.size, ss, width, ss).mean(axis=(1, 3))
    return out


def flat_field(size: tuple[int, int] = (512, 512), *, reflectance: float = 0.9) -> Scene:
    """A uniform grey field (photon transfer, PRNU, vignetting)."""
    w, h = _check_size(size)
    return Scene("flat_field", _flat(reflectance), h, w, geometry={"reflectance": reflectance})


def colorchecker(size: tuple[int, int] = (600, 400), *, surround: float = 0.05) -> Scene:
    """ColorChecker 24 (6 x 4 patches, N Ohta spectral reflectances) on a dark
    surround; ``geometry["patches"]`` has each patch's name and box."""
    w, h = _check_size(size)
    names, refl = spectral.colorchecker_reflectances()
    spectra = np.concatenate([refl, _flat(surround)])
    labels = np.full((h, w), 24, np.int16)
    cell_w, cell_h = w / 6.0, h / 4.0
    patches = []
    for k in range(24):
        row, col = divmod(k, 6)
        top = int(round(row * cell_h + 0.12 * cell_h))
        bottom = int(round((row + 1) * cell_h - 0.12 * cell_h))
        left = int(round(col * cell_w + 0.12 * cell_w))
        right = int(round((col + 1) * cell_w - 0.12 * cell_w))
        labels[top:bottom, left:right] = k
        patches.append({"name": names[k], "box": [top, left, bottom, right]})
    return Scene("colorchecker", spectra, h, w, labels=labels, geometry={"patches": patches})


def slanted_edge(
    size: tuple[int, int] = (256, 256),
    *,
    angle_deg: float = 5.0,
    low: float = 0.1,
    high: float = 0.8,
    supersample: int = 8,
) -> Scene:
    """ISO 12233 style slanted edge: dark left, bright right, a near-vertical
    edge through the centre tilted by ``angle_deg`` (clockwise from vertical)."""
    w, h = _check_size(size)
    cx, cy = w / 2.0, h / 2.0
    theta = np.deg2rad(angle_deg)
    nx, ny = np.float32(np.cos(theta)), np.float32(-np.sin(theta))

    def fn(x: NDArray, y: NDArray) -> NDArray:
        return np.where((x - cx) * nx + (y - cy) * ny >= 0, np.float32(high), np.float32(low))

    gain = render_supersampled(fn, h, w, supersample=supersample)
    geometry = {"edge_center_xy": [cx, cy], "angle_deg": angle_deg, "low": low, "high": high,
                "normal_xy": [float(nx), float(ny)]}
    return Scene("slanted_edge", _flat(1.0), h, w, gain=gain, geometry=geometry)


def dead_leaves(
    size: tuple[int, int] = (512, 512),
    *,
    seed: int = 0,
    radius_min_px: float = 2.0,
    radius_max_px: float = 100.0,
    n_discs: int | None = None,
    offset_xy: tuple[float, float] = (0.0, 0.0),
) -> Scene:
    """Dead leaves texture (Cao, Guichard and Hornung 2010): occluding grey discs
    with radii drawn from a 1/r^3 density, reflectances uniform in 0.05..0.9.

    ``offset_xy`` moves every disc (the same texture rendered displaced, with
    no resampling: an exact reference for motion estimates)."""
    w, h = _check_size(size)
    rng = np.random.default_rng(seed)
    n = n_discs or int(20 * w * h / (np.pi * radius_min_px * radius_max_px))
    u = rng.random(n)
    # inverse CDF of p(r) ~ r^-3 on [rmin, rmax]
    r = 1.0 / np.sqrt(u / radius_max_px**2 + (1 - u) / radius_min_px**2)
    cx = rng.random(n) * w + offset_xy[0]
    cy = rng.random(n) * h + offset_xy[1]
    val = 0.05 + 0.85 * rng.random(n)
    ss = 4 if w * h <= 4_000_000 else 2
    canvas = np.full((h * ss, w * ss), 0.5, np.float32)
    shift = 4
    for k in range(n):  # a few thousand discs, drawn by OpenCV (not a pixel loop)
        center = (int(cx[k] * ss * (1 << shift)), int(cy[k] * ss * (1 << shift)))
        cv2.circle(canvas, center, int(r[k] * ss * (1 << shift)), float(val[k]), -1, cv2.LINE_8, shift)
    gain = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    return Scene("dead_leaves", _flat(1.0), h, w, gain=gain, geometry={"seed": seed, "n_discs": n})


def gray_steps(size: tuple[int, int] = (640, 160), *, n_steps: int = 20, density_step: float = 0.15) -> Scene:
    """Grey step chart (OECF, ISO 14524 style): ``n_steps`` patches in a row,
    reflectance ``0.9 * 10^(-density_step * k)``; boxes and reflectances in geometry."""
    w, h = _check_size(size)
    gain = np.full((h, w), 0.02, np.float32)
    steps = []
    cell = w / n_steps
    for k in range(n_steps):
        value = 0.9 * 10 ** (-density_step * k)
        box = [int(0.2 * h), int(round(k * cell + 0.1 * cell)), int(0.8 * h), int(round((k + 1) * cell - 0.1 * cell))]
        gain[box[0] : box[2], box[1] : box[3]] = value
        steps.append({"reflectance": value, "box": box})
    return Scene("gray_steps", _flat(1.0), h, w, gain=gain, geometry={"steps": steps})


def dot_grid(size: tuple[int, int] = (512, 512), *, spacing_px: float = 32.0, radius_px: float = 4.0) -> Scene:
    """Black dots on white on a regular grid (distortion, lateral CA); the dot
    centres ``[x, y]`` are in ``geometry["dots"]``."""
    w, h = _check_size(size)
    xs = np.arange(spacing_px / 2, w, spacing_px)
    ys = np.arange(spacing_px / 2, h, spacing_px)
    rr = np.float32(radius_px**2)

    def fn(x: NDArray, y: NDArray) -> NDArray:
        dx = x % np.float32(spacing_px) - np.float32(spacing_px / 2)
        dy = y % np.float32(spacing_px) - np.float32(spacing_px / 2)
        return np.where(dx * dx + dy * dy <= rr, np.float32(0.03), np.float32(0.85))

    gain = render_supersampled(fn, h, w, supersample=4)
    dots = [[float(x), float(y)] for y in ys for x in xs]
    return Scene("dot_grid", _flat(1.0), h, w, gain=gain, geometry={"dots": dots, "spacing_px": spacing_px})


def siemens_star(size: tuple[int, int] = (512, 512), *, n_cycles: int = 36) -> Scene:
    """Siemens star with ``n_cycles`` black/white sector pairs around the centre."""
    w, h = _check_size(size)
    cx, cy = w / 2.0, h / 2.0
    radius = 0.48 * min(w, h)

    def fn(x: NDArray, y: NDArray) -> NDArray:
        ang = np.arctan2(y - cy, x - cx)
        inside = (x - cx) ** 2 + (y - cy) ** 2 <= radius**2
        bright = np.sin(n_cycles * ang) >= 0
        return np.where(inside, np.where(bright, np.float32(0.85), np.float32(0.04)), np.float32(0.45))

    gain = render_supersampled(fn, h, w, supersample=4)
    return Scene("siemens_star", _flat(1.0), h, w, gain=gain,
                 geometry={"center_xy": [cx, cy], "radius_px": radius, "n_cycles": n_cycles})


def hdr_window(size: tuple[int, int] = (512, 384), *, ratio: float = 2.0**16, seed: int = 0) -> Scene:
    """A window in a dark room: a dim dead-leaves room (reflectances 0.01..0.2)
    and a bright window whose brightest radiance is ``ratio`` times the darkest
    room radiance."""
    w, h = _check_size(size)
    room = dead_leaves((w, h), seed=seed).gain
    lo, hi = float(room.min()), float(room.max())
    room = 0.01 + (room - lo) * (0.19 / max(hi - lo, 1e-6))
    top, left, bottom, right = int(0.15 * h), int(0.55 * w), int(0.6 * h), int(0.85 * w)
    yy = np.linspace(1.0, 0.5, bottom - top, dtype=np.float32)[:, None]
    room[top:bottom, left:right] = 0.01 * ratio * yy  # sky gradient, brightest at the top
    room = room.astype(np.float32)
    geometry = {"window_box": [top, left, bottom, right], "radiance_ratio": float(room.max() / room.min())}
    return Scene("hdr_window", _flat(1.0), h, w, gain=room, geometry=geometry)


def srgb_to_linear(encoded: NDArray) -> NDArray[np.float32]:
    """IEC 61966-2-1 sRGB decoding (0..1 in, linear 0..1 out)."""
    v = np.asarray(encoded, dtype=np.float32)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def rgb_photo(image: NDArray, *, encoded: bool = True, name: str = "photo") -> Scene:
    """An RGB photo unprocessed into spectra: each pixel's linear sRGB becomes a
    mix of the three bounded basis spectra of Mallett and Yuksel (2019), see
    :func:`spectral.srgb_reflectance_basis_mallett2019`.  Pixels in 0..1 become
    reflectances in 0..1 that under D65 have the photo's colorimetry (CIEDE2000
    below 0.03); under other lights they change colour as smooth real
    reflectances do.

    Parameters
    ----------
    image
        (H, W, 3) sRGB; uint8/uint16 or float in 0..1 (negative values are
        set to 0; values above 1 are emitters, as a scene's gains above 1 are).
    encoded
        True when values carry the sRGB transfer (a normal photo).
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] < 3:
        raise InvalidParams(f"an RGB photo needs an (H, W, 3) array, got shape {arr.shape}")
    arr = arr[..., :3]
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        arr = arr.astype(np.float32) / 65535.0
    arr = arr.astype(np.float32)
    if not np.isfinite(arr).all():
        raise InvalidParams("an RGB photo must not contain NaN or infinite values")
    linear = srgb_to_linear(np.maximum(arr, 0.0)) if encoded else np.maximum(arr, 0.0)
    h, w = linear.shape[:2]
    _check_size((w, h))
    return Scene(name, spectral.srgb_reflectance_basis_mallett2019(), h, w,
                 coefficients=np.ascontiguousarray(linear), geometry={})


SCENES: dict[str, Callable[..., Scene]] = {
    "flat_field": flat_field,
    "colorchecker": colorchecker,
    "slanted_edge": slanted_edge,
    "dead_leaves": dead_leaves,
    "gray_steps": gray_steps,
    "dot_grid": dot_grid,
    "siemens_star": siemens_star,
    "hdr_window": hdr_window,
}


def make_scene(name: str, size: tuple[int, int], **kwargs: Any) -> Scene:
    """A named chart (see :data:`SCENES`) at ``size`` = (width, height), or an
    image file (PNG/JPEG/TIFF) given by path, resized to ``size``."""
    if name in SCENES:
        return SCENES[name](size, **kwargs)
    from pathlib import Path

    path = Path(name)
    if not path.is_file():
        raise InvalidParams(f"unknown scene {name!r}: not a file and not one of {', '.join(SCENES)}")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED | cv2.IMREAD_ANYCOLOR)
    if image is None or image.ndim != 3:
        raise InvalidParams("cannot read as an RGB image", path=str(path))
    image = cv2.cvtColor(image[..., :3], cv2.COLOR_BGR2RGB)
    w, h = _check_size(size)
    if image.shape[:2] != (h, w):
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
    return rgb_photo(image, name=path.stem)
