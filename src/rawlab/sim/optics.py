"""Lens of the simulator: PSF, radial distortion, lateral CA, vignetting, motion.

Coordinates: pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``; the optical
centre is the sensor centre.  Radii ``r`` are relative to the half-diagonal
(1 at the corners).  When a capture is rendered at fewer pixels than the
model's sensor, angles and
relative radii are kept for distortion, vignetting and CA, while each
pixel stays the model's pixel (same photometry, full well and PSF in pixels).

* Distortion (Brown 1966, radial terms): a scene point at ideal radius ``r``
  lands at ``r * m_c * (1 + k1 r^2 + k2 r^4)`` where ``m_c`` is the lateral
  chromatic magnification of channel ``c``.
* Vignetting: ``cos^4`` of the field angle (natural illumination fall-off)
  times ``1 + a1 r^2 + a2 r^4 + ...``.
* PSF: a Gaussian (MTF ``exp(-2 pi^2 sigma^2 f^2)``) or the diffraction limit
  of a circular pupil (Goodman, Introduction to Fourier Optics, 2005, eq.
  6-32: ``MTF = 2/pi (acos v - v sqrt(1 - v^2))``, ``v = f lambda N``).  The
  pixel aperture is in the rendered scene (area sampling), so the system MTF
  is the PSF's MTF times ``|sinc(f)|``.  Kernels are designed in the frequency
  domain so that their response on the pixel grid is the continuous MTF (a
  sampled narrow Gaussian would alias).
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.sim.camera import CameraModel

#: Centre wavelengths (um) of the R, G, B channels for the diffraction PSF.
CHANNEL_WAVELENGTH_UM = (0.61, 0.54, 0.465)


def pixel_pitch_um(camera: CameraModel, width: int) -> float:
    """Pixel pitch (um) used for photometry and the diffraction PSF: always the
    model's pixel, whatever the rendered size (see the module docstring)."""
    del width
    return camera.sensor.pixel_pitch_um


def relative_radius(height: int, width: int) -> NDArray[np.float32]:
    """Radius of every pixel centre relative to the half-diagonal (H, W)."""
    y = (np.arange(height, dtype=np.float32) + 0.5 - height / 2.0)[:, None]
    x = (np.arange(width, dtype=np.float32) + 0.5 - width / 2.0)[None, :]
    half_diag = np.float32(0.5 * np.hypot(height, width))
    return np.sqrt(x * x + y * y) / half_diag


@lru_cache(maxsize=4)
def vignetting_gain(camera: CameraModel, height: int, width: int) -> NDArray[np.float32]:
    """Relative illumination (H, W), 1 at the centre: cos^4 times the polynomial."""
    o = camera.optics
    r = relative_radius(height, width)
    gain = np.ones((height, width), np.float32)
    if o.vignetting_cos4:
        s = camera.sensor
        half_diag_mm = 0.5 * np.hypot(s.height_px, s.width_px) * s.pixel_pitch_um * 1e-3
        tan_theta = r * np.float32(half_diag_mm / o.focal_length_mm)
        gain = 1.0 / (1.0 + tan_theta * tan_theta) ** 2  # cos^4 = 1 / (1 + tan^2)^2
    r2 = r * r
    poly = np.ones_like(r)
    power = r2.copy()
    for a in o.vignetting_poly:
        poly += np.float32(a) * power
        power *= r2
    out = (gain * poly).astype(np.float32)
    out.setflags(write=False)
    return out


def distort_radius(r: NDArray, camera: CameraModel, channel: int) -> NDArray:
    """Sensor radius of a scene point at ideal relative radius ``r``."""
    o = camera.optics
    r2 = r * r
    return r * o.ca_magnification[channel] * (1.0 + o.distortion_k1 * r2 + o.distortion_k2 * r2 * r2)


def is_identity_geometry(camera: CameraModel, channel: int) -> bool:
    o = camera.optics
    return o.distortion_k1 == 0 and o.distortion_k2 == 0 and o.ca_magnification[channel] == 1.0


@lru_cache(maxsize=8)
def _undistorted_coords(
    camera: CameraModel | None, height: int, width: int, channel: int, site: tuple[int, int, int, int]
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Ideal (undistorted) position, relative to the centre, of the scene point
    seen by each sensor pixel of ``site`` = (row0, col0, row_step, col_step)."""
    r0, c0, rs, cs = site
    y = (np.arange(r0, height, rs, dtype=np.float64) + 0.5 - height / 2.0)[:, None]
    x = (np.arange(c0, width, cs, dtype=np.float64) + 0.5 - width / 2.0)[None, :]
    if camera is None or is_identity_geometry(camera, channel):
        xx, yy = np.broadcast_arrays(x, y)
    else:
        half_diag = 0.5 * np.hypot(height, width)
        r_d = np.sqrt(x * x + y * y) / half_diag
        table_r = np.linspace(0.0, 1.6, 4097)
        table_rd = distort_radius(table_r, camera, channel)
        if np.any(np.diff(table_rd) <= 0):
            table_r = table_r[: int(np.argmax(np.diff(table_rd) <= 0)) + 1]
            table_rd = table_rd[: table_r.size]
        r_u = np.interp(r_d, table_rd, table_r)
        scale = np.where(r_d > 1e-9, r_u / np.maximum(r_d, 1e-12), 1.0 / camera.optics.ca_magnification[channel])
        xx, yy = x * scale, y * scale
    xx = np.ascontiguousarray(xx, dtype=np.float32)
    yy = np.ascontiguousarray(yy, dtype=np.float32)
    xx.setflags(write=False)
    yy.setflags(write=False)
    return xx, yy


def geometry_maps(
    camera: CameraModel | None,
    height: int,
    width: int,
    *,
    channel: int = 1,
    motion: tuple[float, float, float] = (0.0, 0.0, 0.0),
    site: tuple[int, int, int, int] = (0, 0, 1, 1),
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """For every sensor pixel (of ``site``: row0, col0, row_step, col_step),
    where to sample the scene (cv2.remap maps, scene pixel-index coordinates).

    ``motion = (dx_px, dy_px, rotation_deg)``: the scene content moves by
    ``(dx, dy)`` and turns by ``rotation_deg`` (counter-clockwise on screen)
    about the centre.  ``camera=None`` applies the motion only (ground truth).
    """
    x, y = _undistorted_coords(camera, height, width, channel, tuple(int(v) for v in site))
    dx, dy, rot_deg = (float(v) for v in motion)
    cx, cy = np.float32(width / 2.0 - 0.5), np.float32(height / 2.0 - 0.5)
    if rot_deg:
        t = np.deg2rad(rot_deg)
        cos_t, sin_t = np.float32(np.cos(t)), np.float32(np.sin(t))
        xs = x - np.float32(dx)
        ys = y - np.float32(dy)
        # inverse of a counter-clockwise (on screen, y down) rotation
        map_x = cos_t * xs - sin_t * ys
        map_y = sin_t * xs + cos_t * ys
        map_x += cx
        map_y += cy
    else:
        map_x = x + np.float32(cx - dx)
        map_y = y + np.float32(cy - dy)
    return map_x, map_y


def remap(image: NDArray[np.float32], maps: tuple[NDArray, NDArray]) -> NDArray[np.float32]:
    """Resample with Lanczos-4 interpolation, reflecting at the borders."""
    return cv2.remap(image, maps[0], maps[1], cv2.INTER_LANCZOS4, borderMode=cv2.BORDER_REFLECT_101)


def gaussian_mtf(f: NDArray, sigma_px: float) -> NDArray:
    """MTF of a Gaussian PSF (``f`` in cycles/pixel)."""
    return np.exp(-2.0 * np.pi**2 * sigma_px**2 * np.asarray(f, dtype=np.float64) ** 2)


def airy_mtf(f: NDArray, cutoff_cy_px: float) -> NDArray:
    """Diffraction MTF of a circular pupil with cut-off ``1 / (lambda N)`` (cycles/pixel)."""
    v = np.clip(np.abs(np.asarray(f, dtype=np.float64)) / cutoff_cy_px, 0.0, 1.0)
    return 2.0 / np.pi * (np.arccos(v) - v * np.sqrt(1.0 - v * v))


def pixel_aperture_mtf(f: NDArray) -> NDArray:
    """MTF of a 100 % fill-factor square pixel along one axis: ``|sinc(f)|``."""
    return np.abs(np.sinc(np.asarray(f, dtype=np.float64)))


def airy_cutoff_cy_px(camera: CameraModel, width: int, channel: int) -> float:
    return pixel_pitch_um(camera, width) / (CHANNEL_WAVELENGTH_UM[channel] * camera.optics.f_number)


@lru_cache(maxsize=32)
def _gaussian_kernel_1d(sigma_px: float) -> NDArray[np.float32]:
    n = 64
    f = np.fft.fftfreq(n)
    k = np.fft.fftshift(np.real(np.fft.ifft(gaussian_mtf(f, sigma_px))))
    radius = min(n // 2 - 1, int(np.ceil(4 * sigma_px)) + 2)
    k = k[n // 2 - radius : n // 2 + radius + 1]
    out = (k / k.sum()).astype(np.float32)
    out.setflags(write=False)
    return out


AIRY_KERNEL_RADIUS_PX = 12


@lru_cache(maxsize=32)
def _airy_kernel_2d(cutoff_cy_px: float) -> tuple[NDArray[np.float32], float]:
    """Frequency-sampled diffraction PSF, cropped to 25 x 25, and the energy
    its crop loses (the PSF's 1/r^3 tails; returned so the caller can spread it
    as a broad halo and keep the DC gain at 1)."""
    n = 128
    f = np.fft.fftfreq(n)
    rho = np.hypot(f[:, None], f[None, :])
    k = np.fft.fftshift(np.real(np.fft.ifft2(airy_mtf(rho, cutoff_cy_px))))
    r = AIRY_KERNEL_RADIUS_PX
    k = k[n // 2 - r : n // 2 + r + 1, n // 2 - r : n // 2 + r + 1]
    out = k.astype(np.float32)
    out.setflags(write=False)
    return out, float(1.0 - k.sum())


def apply_psf(plane: NDArray[np.float32], camera: CameraModel, *, channel: int, width: int) -> NDArray[np.float32]:
    """Blur one colour plane (H, W) with the lens PSF of ``channel``."""
    o = camera.optics
    if o.psf == "gaussian":
        if o.psf_sigma_px <= 0:
            return plane
        k = _gaussian_kernel_1d(float(o.psf_sigma_px))
        return cv2.sepFilter2D(plane, -1, k, k, borderType=cv2.BORDER_REFLECT_101)
    k2, lost = _airy_kernel_2d(round(airy_cutoff_cy_px(camera, width, channel), 6))
    out = cv2.filter2D(plane, -1, k2, borderType=cv2.BORDER_REFLECT_101)
    if lost > 0:
        size = 4 * AIRY_KERNEL_RADIUS_PX + 1
        out += np.float32(lost) * cv2.blur(plane, (size, size), borderType=cv2.BORDER_REFLECT_101)
    return out


def system_mtf(f: NDArray, camera: CameraModel, *, channel: int = 1, width: int | None = None) -> NDArray:
    """Analytic MTF of lens PSF times pixel aperture along one axis (cycles/pixel)."""
    o = camera.optics
    if o.psf == "gaussian":
        lens = gaussian_mtf(f, o.psf_sigma_px)
    else:
        lens = airy_mtf(f, airy_cutoff_cy_px(camera, width or camera.sensor.width_px, channel))
    return lens * pixel_aperture_mtf(f)
