"""Capture: scene -> photo-electrons -> optics -> CFA -> noise -> DN, as a DNG.

The chain (one function, top to bottom, in :func:`capture`):

1. the scene's spectra under the illuminant through the camera's spectral
   sensitivities (once per spectrum) give relative camera RGB and CIE XYZ;
2. exposure: scene luminance (cd/m^2), f-number, shutter and pixel area give
   photo-electrons per second (camera equation ``E = pi L / (4 N^2)``,
   quantum efficiency ``quantum_efficiency_peak`` at 550 nm), so electrons
   scale as ``L t / N^2``; the light level is the luminance ``L_w`` of a
   perfect white diffuser in the scene light (``scene_luminance_cd_m2``,
   default the scene's own); without a shutter time the camera meters the
   mean scene luminance (ISO 2720 reflected-light calibration
   ``t = K N^2 / (L S)``, K = 12.5);
3. geometry (hand-shake motion, distortion, lateral CA), vignetting, PSF;
4. CFA sampling and the sensor (:mod:`rawlab.sim.sensor`).

The ground truth is the scene's XYZ (white diffuser Y = 1) and linear sRGB
(Bradford-adapted to D65, white diffuser (1, 1, 1)) on the output pixel grid,
with the frame's motion but without blur, distortion, vignetting or noise.

Motion convention (``truth["motion"]``): in continuous pixel coordinates
(pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)``, x right, y down) a scene
point ``S`` appears in the frame at ``X = R (S - c) + c + (dx, dy)``, with the
centre ``c = (W/2, H/2)`` (``center_xy``) and ``R = [[cos a, sin a],
[-sin a, cos a]]`` for ``a = rotation_deg``: positive angles turn the content
counter-clockwise on screen.  ``scene_to_frame_affine`` is that map as a
2 x 3 matrix ``[R | c + d - R c]``.  The motion is applied before the lens
(distortion and CA act about the same centre).

Hot pixels (``truth["noise"]``): ``hot_pixel_rows_cols`` lists ``[row, col]``
of every hot pixel (array indices of the frame) and
``hot_pixel_dark_current_e_per_s`` their extra dark current.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, LensInfo, SensorInfo
from rawlab.core.opcodes import GainMap, OpcodeArea
from rawlab.errors import InvalidParams
from rawlab.sim import colorfit, optics, sensor, spectral
from rawlab.sim.camera import CameraModel, load_camera
from rawlab.sim.scene import Scene

PLANCK_J_S = 6.62607015e-34
LIGHT_SPEED_M_S = 299792458.0
METER_CALIBRATION_K = 12.5
M_XYZ_TO_SRGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560], [0.0556434, -0.2040259, 1.0572252]]
)
XYZ_D65_WHITE = np.array([0.95047, 1.0, 1.08883])


@dataclass(frozen=True)
class MovingDisc:
    """A flat grey disc that moves across the scene (pixels per frame)."""

    center_xy: tuple[float, float]
    radius_px: float
    velocity_xy_px: tuple[float, float] = (0.0, 0.0)
    reflectance: float = 0.8

    def center_at(self, frame_index: int) -> tuple[float, float]:
        return (self.center_xy[0] + self.velocity_xy_px[0] * frame_index,
                self.center_xy[1] + self.velocity_xy_px[1] * frame_index)


@dataclass(frozen=True, eq=False)
class SimCapture:
    """One simulated frame and its ground truth.

    Attributes
    ----------
    frame
        ``Encoding.CFA`` frame in DN with the DNG metadata computed from the model.
    truth_xyz
        (H, W, 3) float32 scene XYZ under the scene illuminant (white diffuser Y = 1).
    truth_srgb_linear
        (H, W, 3) float32 linear sRGB, adapted to D65 (white diffuser 1, 1, 1);
        computed from ``truth_xyz`` when asked for (it is not kept in memory).
    truth
        JSON-serialisable facts: illuminant, exposure, motion, noise, geometry.
    """

    frame: Frame
    truth_xyz: NDArray[np.float32]
    M_XYZ_to_srgb_linear: NDArray[np.float32]
    truth: dict[str, Any] = field(default_factory=dict)

    @property
    def truth_srgb_linear(self) -> NDArray[np.float32]:
        """Linear sRGB ground truth (see the class attributes)."""
        return cv2.transform(self.truth_xyz, self.M_XYZ_to_srgb_linear)


def camera_color(camera: CameraModel) -> tuple[colorfit.ColorFit, colorfit.ColorFit]:
    """The camera's DNG matrices for illuminant A (1) and D65 (2)."""
    return _color_of_sensitivities(camera.spectral)


@lru_cache(maxsize=16)
def _color_of_sensitivities(model) -> tuple[colorfit.ColorFit, colorfit.ColorFit]:
    sens = spectral.camera_sensitivities(model)
    return colorfit.fit_color(sens, "A"), colorfit.fit_color(sens, "D65")


def electrons_per_second_per_unit(
    camera: CameraModel, scene: Scene, width: int, *, white_luminance_cd_m2: float | None = None
) -> float:
    """Photo-electrons per second in a pixel for relative camera value 1
    (white diffuser peak-normalised response) at the white diffuser's
    luminance (default the scene's) through the lens at ``camera.optics.f_number``."""
    luminance = scene.white_luminance_cd_m2 if white_luminance_cd_m2 is None else white_luminance_cd_m2
    dl_nm = float(spectral.WAVELENGTHS_NM[1] - spectral.WAVELENGTHS_NM[0])
    radiance_per_unit = luminance / (683.0 * dl_nm)  # W / (sr m^2 nm)
    irradiance = np.pi * radiance_per_unit / (4.0 * camera.optics.f_number**2)  # W / (m^2 nm)
    area_m2 = (optics.pixel_pitch_um(camera, width) * 1e-6) ** 2
    electrons_per_joule = camera.sensor.quantum_efficiency_peak * 550e-9 / (PLANCK_J_S * LIGHT_SPEED_M_S)
    return float(irradiance * area_m2 * dl_nm * electrons_per_joule)


@lru_cache(maxsize=1)
def _scene_linear(scene: Scene, illuminant: str, spectral_model) -> tuple[NDArray, NDArray, float]:
    """Camera RGB and XYZ of a scene (read-only), cached for the frames of a burst."""
    cam, xyz = scene.linear_images(spectral.illuminant_spd(illuminant), spectral.camera_sensitivities(spectral_model))
    cam.setflags(write=False)
    xyz.setflags(write=False)
    return cam, xyz, float(xyz[..., 1].mean(dtype=np.float64))


def _paint_discs(cam: NDArray, xyz: NDArray, discs: Sequence[MovingDisc], frame_index: int,
                 cam_white: NDArray, xyz_white: NDArray) -> None:
    h, w = cam.shape[:2]
    for disc in discs:
        cx, cy = disc.center_at(frame_index)
        ss, shift = 4, 4
        x0, x1 = int(max(0, cx - disc.radius_px - 2)), int(min(w, cx + disc.radius_px + 3))
        y0, y1 = int(max(0, cy - disc.radius_px - 2)), int(min(h, cy + disc.radius_px + 3))
        if x1 <= x0 or y1 <= y0:
            continue
        mask = np.zeros(((y1 - y0) * ss, (x1 - x0) * ss), np.float32)
        center = (int((cx - x0) * ss * (1 << shift)), int((cy - y0) * ss * (1 << shift)))
        cv2.circle(mask, center, int(disc.radius_px * ss * (1 << shift)), 1.0, -1, cv2.LINE_8, shift)
        alpha = cv2.resize(mask, (x1 - x0, y1 - y0), interpolation=cv2.INTER_AREA)[..., None]
        for img, white in ((cam, cam_white), (xyz, xyz_white)):
            region = img[y0:y1, x0:x1]
            region *= 1.0 - alpha
            region += alpha * (disc.reflectance * white).astype(np.float32)


def light_source_exif(code: int) -> bytes:
    """An EXIF blob (``b"Exif\\0\\0"`` + TIFF) holding only LightSource (EXIF 2.32,
    tag 0x9208) in its EXIF IFD; the DNG writer keeps it beside the tags it
    builds from the capture info."""
    from PIL import Image

    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9208] = int(code)
    return exif.tobytes()


def vignetting_opcode(camera: CameraModel, height: int, width: int, points: int = 17) -> GainMap:
    """OpcodeList2 GainMap that undoes the lens's vignetting (DNG 1.6, 7.3)."""
    # sample the smooth gain at the grid points' continuous positions: relative
    # position v is pixel coordinate v * height - 0.5 (pixel r's centre is (r + 0.5) / height)
    from scipy.ndimage import map_coordinates

    rel = np.linspace(0.0, 1.0, points)
    yy, xx = np.meshgrid(rel * height - 0.5, rel * width - 0.5, indexing="ij")
    full = optics.vignetting_gain(camera, height, width)
    at_points = map_coordinates(np.asarray(full, np.float64), [yy, xx], order=1, mode="nearest")
    gains = (1.0 / at_points).astype(np.float32)[..., None]
    return GainMap(
        list_index=2, opcode_id=9, optional=True,
        area=OpcodeArea(top=0, left=0, bottom=height, right=width),
        points_v=points, points_h=points, spacing_v=1.0 / (points - 1), spacing_h=1.0 / (points - 1),
        origin_v=0.0, origin_h=0.0, map_planes=1, gains=gains,
    )


def capture(
    scene: Scene,
    camera: CameraModel | str,
    *,
    iso: float | None = None,
    illuminant: str = "D65",
    exposure_time_s: float | None = None,
    exposure_ev: float = 0.0,
    f_number: float | None = None,
    scene_luminance_cd_m2: float | None = None,
    seed: int = 0,
    frame_index: int = 0,
    motion: tuple[float, float, float] = (0.0, 0.0, 0.0),
    moving_objects: Sequence[MovingDisc] = (),
    noise: bool = True,
    gainmap_opcode: bool = False,
) -> SimCapture:
    """Simulate one RAW capture of ``scene``.

    Parameters
    ----------
    scene
        What is photographed; its pixel grid is the sensor's output grid
        (a smaller grid than the model's samples the same sensor with larger
        pixels).
    camera
        A :class:`CameraModel` or a built-in name (``"phone-small"``, ...).
    iso
        ISO speed (default the base ISO), within the model's range.
    illuminant
        Scene light: D65, D50, A, F2, F11 or LED.
    exposure_time_s
        Shutter time; default: metered on the scene's mean luminance.
    exposure_ev
        Exposure compensation added to the metered (or given) exposure.
    f_number
        Aperture for this shot (0.5..64; default the lens's ``optics.f_number``).
        The irradiance scales as ``1 / N^2`` (one stop, ``N * sqrt(2)``, halves
        the electrons at a fixed shutter), the metered shutter as ``N^2``, and
        the diffraction (Airy) PSF follows ``N``.
    scene_luminance_cd_m2
        Light level: luminance of a perfect white diffuser in the scene light
        (cd/m^2, 1e-6..1e7; default ``scene.white_luminance_cd_m2``).  At a
        fixed shutter the electrons are proportional to it; the metered
        shutter is inversely proportional to it.
    seed, frame_index
        Noise is drawn from ``numpy.random.default_rng([seed, frame_index])``:
        the same inputs give the same bytes.
    motion
        ``(dx_px, dy_px, rotation_deg)`` of the scene content in this frame.
    moving_objects
        Discs painted into the scene at their position for ``frame_index``.
    noise
        False renders the expected values only (tests).
    gainmap_opcode
        Also write the vignetting correction as an OpcodeList2 GainMap.

    Returns
    -------
    SimCapture
        The CFA frame (DN) with metadata and the ground truth.
    """
    if isinstance(camera, str):
        camera = load_camera(camera)
    widest_f_number = camera.optics.f_number  # the lens's own maximum aperture (LensSpecification)
    if f_number is not None:
        f_number = float(f_number)
        if not 0.5 <= f_number <= 64:
            raise InvalidParams(f"f-number {f_number:g} is outside 0.5..64")
        if f_number != camera.optics.f_number:
            camera = dataclasses.replace(camera, optics=dataclasses.replace(camera.optics, f_number=f_number))
    if scene_luminance_cd_m2 is None:
        white_luminance = float(scene.white_luminance_cd_m2)
    else:
        white_luminance = float(scene_luminance_cd_m2)
        if not 1e-6 <= white_luminance <= 1e7:
            raise InvalidParams(f"scene luminance {white_luminance:g} cd/m^2 is outside 1e-6..1e7")
    s = camera.sensor
    iso = float(s.iso_base if iso is None else iso)
    if not s.iso_base <= iso <= s.iso_max:
        raise InvalidParams(f"ISO {iso:g} is outside {camera.name}'s range {s.iso_base:g}..{s.iso_max:g}")
    if illuminant not in spectral.ILLUMINANTS:
        raise InvalidParams(f"unknown illuminant {illuminant!r}; known: {', '.join(spectral.ILLUMINANTS)}")
    if len(motion) != 3:
        raise InvalidParams(f"motion must be (dx_px, dy_px, rotation_deg), got {motion!r}")
    motion = (float(motion[0]), float(motion[1]), float(motion[2]))
    h, w = scene.height, scene.width
    spd = spectral.illuminant_spd(illuminant)
    sens = spectral.camera_sensitivities(camera.spectral)

    # 1. spectra -> relative camera RGB and XYZ (white diffuser: XYZ Y = 1)
    cam_rel, xyz, mean_y = _scene_linear(scene, illuminant, camera.spectral)
    cam_white = spectral.camera_response(np.ones((1, spd.size)), spd, sens)[0]
    xyz_white = spectral.white_xyz(spd)
    if moving_objects:
        cam_rel, xyz = cam_rel.copy(), xyz.copy()
        _paint_discs(cam_rel, xyz, moving_objects, frame_index, cam_white, xyz_white)
        mean_y = float(xyz[..., 1].mean())

    # 2. exposure
    rate = electrons_per_second_per_unit(camera, scene, w, white_luminance_cd_m2=white_luminance)
    mean_luminance_cd_m2 = mean_y * white_luminance
    if exposure_time_s is None:
        metered = METER_CALIBRATION_K * camera.optics.f_number**2 / (max(mean_luminance_cd_m2, 1e-6) * iso)
        exposure_time_s = metered
    exposure_time_s = float(exposure_time_s) * 2.0 ** float(exposure_ev)
    if not 1e-6 <= exposure_time_s <= 3600:
        raise InvalidParams(f"exposure time {exposure_time_s:g} s is outside 1e-6..3600 s")
    electrons_per_unit = np.float32(rate * exposure_time_s)

    # 3. PSF (shift-invariant, so it commutes with the motion), then geometry
    #    (motion, distortion, lateral CA) sampled only at each colour's CFA
    #    sites, then vignetting: one plane's worth of resampling in all.
    cfa = CfaPattern.from_string(s.cfa)
    vig = optics.vignetting_gain(camera, h, w)
    mean_e = np.empty((h, w), np.float32)
    ry, rx = cfa.shape
    still = motion == (0.0, 0.0, 0.0)
    for c in range(3):
        plane = optics.apply_psf(np.ascontiguousarray(cam_rel[..., c]), camera, channel=c, width=w)
        for dy in range(ry):
            for dx in range(rx):
                if cfa.pattern[dy][dx] != c:
                    continue
                if still and optics.is_identity_geometry(camera, c):
                    site = plane[dy::ry, dx::rx]
                else:
                    maps = optics.geometry_maps(camera, h, w, channel=c, motion=motion, site=(dy, dx, ry, rx))
                    site = optics.remap(plane, maps)
                mean_e[dy::ry, dx::rx] = site * vig[dy::ry, dx::rx] * electrons_per_unit
    np.maximum(mean_e, 0.0, out=mean_e)  # Lanczos ringing must not give negative photon counts

    # 4. sensor
    rng = np.random.default_rng([int(seed), int(frame_index)])
    dn = sensor.electrons_to_dn(mean_e, camera, iso=iso, exposure_time_s=exposure_time_s, rng=rng, noise=noise)

    # ground truth on the output grid (motion only)
    if motion != (0.0, 0.0, 0.0):
        maps = optics.geometry_maps(None, h, w, motion=motion)
        xyz = np.ascontiguousarray(optics.remap(np.ascontiguousarray(xyz), maps))
    M_cat = colorfit.bradford_cat(xyz_white, XYZ_D65_WHITE)
    M_xyz_to_srgb = (M_XYZ_TO_SRGB @ M_cat).astype(np.float32)

    fit_a, fit_d65 = camera_color(camera)
    S_np, O_np = sensor.noise_profile(camera, iso)
    white_dn = float(s.white_level_dn)
    frame = Frame(
        data=dn,
        encoding=Encoding.CFA,
        clip_level=np.full(3, white_dn, np.float32),
        sensor=SensorInfo(
            cfa=cfa,
            bits_per_sample=int(s.bits_per_sample),
            black_level_dn=float(s.black_level_dn),
            white_level_dn=[white_dn],
            noise_profile=((S_np, O_np),),
        ),
        color=ColorCalibration(
            M_XYZ_to_camera_1=fit_a.M_XYZ_to_camera,
            M_XYZ_to_camera_2=fit_d65.M_XYZ_to_camera,
            M_forward_1=fit_a.M_forward,
            M_forward_2=fit_d65.M_forward,
            illuminant_1=17,
            illuminant_2=21,
            as_shot_neutral=cam_white / cam_white.max(),
        ),
        capture=CaptureInfo(
            make=camera.make,
            model=camera.model,
            unique_camera_model=f"{camera.make} {camera.model}",
            software="rawlab sim",
            iso=iso,
            exposure_time_s=exposure_time_s,
            f_number=camera.optics.f_number,
            focal_length_mm=camera.optics.focal_length_mm,
            focal_length_35mm_mm=camera.optics.focal_length_35mm_mm,
            datetime_original=f"2026:01:01 12:00:{int(frame_index) % 60:02d}",
        ),
        lens=LensInfo(
            make=camera.make,
            model=f"{camera.optics.focal_length_mm:g} mm f/{min(widest_f_number, camera.optics.f_number):g}",
            focal_min_mm=camera.optics.focal_length_mm,
            focal_max_mm=camera.optics.focal_length_mm,
            f_number_min_at_min_focal=min(widest_f_number, camera.optics.f_number),
            f_number_min_at_max_focal=min(widest_f_number, camera.optics.f_number),
        ),
        opcodes=(vignetting_opcode(camera, h, w),) if gainmap_opcode else (),
        exif=light_source_exif(spectral.ILLUMINANTS[illuminant][1]),
    )
    xy = (xyz_white[:2] / xyz_white.sum()).tolist()
    fixed = sensor.fixed_patterns(s, h, w)
    hot_rc = [[int(r), int(c)] for r, c in fixed.hot_pixels]
    hot_rate = [float(fixed.hot_rate_e_per_s[r, c]) for r, c in fixed.hot_pixels]
    angle = np.deg2rad(motion[2])
    rot = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    centre = np.array([w / 2.0, h / 2.0])
    affine = np.column_stack([rot, centre + np.array(motion[:2]) - rot @ centre])
    truth = {
        "camera": camera.name,
        "scene": scene.name,
        "size_wh": [w, h],
        "illuminant": illuminant,
        "illuminant_exif_light_source": spectral.ILLUMINANTS[illuminant][1],
        "illuminant_white_xy": xy,
        "camera_neutral": (cam_white / cam_white.max()).tolist(),
        "white_luminance_cd_m2": white_luminance,
        "mean_luminance_cd_m2": mean_luminance_cd_m2,
        "iso": iso,
        "exposure_time_s": exposure_time_s,
        "exposure_ev": float(exposure_ev),
        "f_number": camera.optics.f_number,
        "electrons_per_white_center": float(electrons_per_unit * cam_white.max()),  # before PRNU
        "frame_index": int(frame_index),
        "seed": int(seed),
        "motion": {
            "dx_px": float(motion[0]), "dy_px": float(motion[1]), "rotation_deg": float(motion[2]),
            "center_xy": centre.tolist(),
            "scene_to_frame_affine": affine.tolist(),
            "convention": "continuous pixel coordinates (pixel (i, j) covers [j, j+1) x [i, i+1), x right, "
                          "y down); a scene point S appears at R (S - center_xy) + center_xy + (dx_px, dy_px), "
                          "R = [[cos a, sin a], [-sin a, cos a]], a = rotation_deg: positive turns the content "
                          "counter-clockwise on screen",
        },
        "moving_objects": [
            {"center_xy": list(d.center_at(frame_index)), "radius_px": d.radius_px, "reflectance": d.reflectance}
            for d in moving_objects
        ],
        "noise": {
            "conversion_gain_e_per_dn": camera.gain_e_per_dn(iso),
            "read_noise_e": s.read_noise_e,
            "full_well_e": s.full_well_e,
            "dark_current_e_per_s": s.dark_current_e_per_s,
            "prnu_fraction": s.prnu_fraction,
            "dsnu_e": s.dsnu_e,
            "hot_pixels": len(fixed.hot_pixels),
            "hot_pixel_rows_cols": hot_rc,
            "hot_pixel_dark_current_e_per_s": hot_rate,
            "black_level_dn": s.black_level_dn,
            "white_level_dn": s.white_level_dn,
            "noise_profile": [S_np, O_np],
        },
        "optics": {
            "psf": camera.optics.psf,
            "psf_sigma_px": camera.optics.psf_sigma_px,
            "distortion_k1": camera.optics.distortion_k1,
            "distortion_k2": camera.optics.distortion_k2,
            "ca_magnification": list(camera.optics.ca_magnification),
            "pixel_pitch_um": optics.pixel_pitch_um(camera, w),
        },
        "geometry": scene.geometry,
    }
    return SimCapture(frame=frame, truth_xyz=np.ascontiguousarray(xyz, dtype=np.float32),
                      M_XYZ_to_srgb_linear=M_xyz_to_srgb, truth=truth)


def write_captures(captures: Sequence[SimCapture], out_dir: str | Path, *, compression: str = "none") -> list[Path]:
    """Write ``frame_NNN.dng`` and ``frame_NNN_truth.npz`` (``xyz``,
    ``srgb_linear``) per capture and one ``truth.json`` with every frame's facts."""
    from rawlab.io.dng_write import write_dng

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InvalidParams("output must be a folder", path=str(out))
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    frames_json = []
    for i, cap in enumerate(captures):
        dng = out / f"frame_{i:03d}.dng"
        write_dng(cap.frame, dng, compression=compression)
        np.savez(out / f"frame_{i:03d}_truth.npz", xyz=cap.truth_xyz, srgb_linear=cap.truth_srgb_linear)
        paths.append(dng)
        frames_json.append({"dng": dng.name, "truth": f"frame_{i:03d}_truth.npz", **cap.truth})
    (out / "truth.json").write_text(json.dumps({"frames": frames_json}, indent=1, default=float), encoding="utf-8")
    return paths
