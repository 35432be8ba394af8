"""The built-in sample RAW: a photo "unprocessed" into a realistic camera DNG.

A fresh clone has no RAW file, so ``rawlab sample -o sample.dng`` makes one:
a photo shipped with scikit-image is run backwards through a camera pipeline,
after Brooks et al. (2019), and written as a Bayer DNG whose metadata
(ColorMatrix1, AsShotNeutral, BaselineExposure, NoiseProfile, DefaultCrop)
describe exactly what was done, so that developing the DNG gives the photo
back (up to the noise that was added).

The steps, each the inverse of one develop stage::

    sRGB 8-bit photo
      -> linear sRGB              (IEC 61966-2-1 decoding, colour-science)
      -> scene-referred linear    (inverse of the filmic curve, below)
      -> XYZ (D65)                (colour-science sRGB matrix)
      -> camera RGB               (ColorMatrix at D65: not white balanced)
      -> x exposure scale s       (brightest possible value at 90 % of the range)
      -> Bayer mosaic             (RGGB, after an 8 px reflected border)
      -> shot + read noise        (Poisson-Gaussian, seeded)
      -> black level, quantise    (14-bit: black 512, white 16383)

This module shares no code with the develop stages (only the frame/metadata
types, the DNG writer and colour-science), so an error on one side cannot hide
in the other.

References
----------
T. Brooks, B. Mildenhall, T. Xue, J. Chen, D. Sharlet, J. T. Barron,
"Unprocessing Images for Learned Raw Denoising", CVPR 2019.
Adobe, *Digital Negative (DNG) Specification* 1.6 (ColorMatrix, AsShotNeutral,
BaselineExposure, NoiseProfile, DefaultCropOrigin/Size).
IEC 61966-2-1:1999, sRGB.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, ColorCalibration, SensorInfo
from rawlab.errors import InvalidParams, LimitExceeded

#: Canon EOS 5D Mark II ColorMatrix2 (XYZ -> camera, D65), as published by
#: Adobe in the DNG Converter camera profiles (also tabulated, x 10000, in the
#: ``adobe_coeff`` table of dcraw/LibRaw).  Used as data, a realistic camera.
M_XYZ_TO_CAMERA_CANON_5D2_D65 = np.array(
    [
        [0.4716, 0.0603, -0.0830],
        [-0.7798, 1.5474, 0.2480],
        [-0.1496, 0.1937, 0.6651],
    ]
)

#: Oversampling of the built-in sample (``rawlab sample``): 2 sensor pixels per photo pixel and side.
BUILTIN_OVERSAMPLE = 2

#: EXIF LightSource code of D65 (CalibrationIlluminant1).
ILLUMINANT_D65 = 21

#: Photos of ``skimage.data`` that ship with scikit-image (no download).
SAMPLE_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "colorwheel",
)

#: Filmic curve of the develop contract: identity up to ``t``, then a shoulder
#: that reaches 1 at scene value ``w``.
FILMIC_T = 0.6
FILMIC_W = 4.0

#: Sensor model (a 2008-era full-frame DSLR at base ISO 100): full well in
#: electrons, read noise before the ISO gain (electrons) and after it (DN).
FULL_WELL_E_AT_ISO100 = 60000.0
READ_NOISE_E = 3.0
ADC_NOISE_DN = 5.0

BLACK_LEVEL_DN = 512.0
WHITE_LEVEL_DN = 16383.0
PAD_PX = 8
#: Normalised raw value given to the largest value the scene can produce.
HEADROOM = 0.9

MAX_SIDE_PX = 20000


def filmic_k(*, t: float = FILMIC_T, w: float = FILMIC_W) -> float:
    """Shoulder rate ``k > 0`` of the filmic curve: slope 1 at ``t``.

    Solves ``(1 - t) k / (1 - exp(-k (w - t))) = 1``, i.e. the root ``k > 0`` of
    the convex ``f(k) = (1 - t) k - 1 + exp(-k (w - t))`` (unique when
    ``w > 1``), by Newton's method from ``k = 1 / (1 - t)``, where ``f > 0``, so
    the iteration decreases monotonically onto the root.
    """
    if not (0.0 < t < 1.0 < w):
        raise InvalidParams(f"filmic curve needs 0 < t < 1 < w and w - t > 1 - t, got t={t}, w={w}")
    k = 1.0 / (1.0 - t)
    span = w - t
    for _ in range(60):
        e = math.exp(-k * span)
        f = (1.0 - t) * k - (1.0 - e)
        df = (1.0 - t) - span * e
        step = f / df
        k -= step
        if abs(step) < 1e-15 * k:
            break
    return k


def filmic_inverse(y: NDArray, *, t: float = FILMIC_T, w: float = FILMIC_W) -> NDArray[np.float32]:
    """Inverse of the develop contract's filmic tone curve (closed form).

    Forward curve, per channel: ``y = x`` for ``x <= t``; above,
    ``y = t + (1 - t) (1 - exp(-k (x - t))) / (1 - exp(-k (w - t)))``.
    Solving for ``x``:
    ``x = t - ln(1 - (y - t) (1 - exp(-k (w - t))) / (1 - t)) / k``.

    Parameters
    ----------
    y
        Display-referred linear values in ``[0, 1]`` (values above 1 are
        clipped to 1, whose inverse is ``w``).

    Returns
    -------
    ndarray of float32
        Scene-referred linear values in ``[0, w]``.
    """
    k = filmic_k(t=t, w=w)
    y = np.minimum(np.asarray(y, dtype=np.float64), 1.0)
    denom = 1.0 - math.exp(-k * (w - t))
    shoulder = np.maximum(1.0 - (y - t) * denom / (1.0 - t), math.exp(-k * (w - t)))
    x = np.where(y <= t, y, t - np.log(shoulder) / k)
    return x.astype(np.float32)


def noise_profile(
    *, iso: float = 100.0, white_level_dn: float = WHITE_LEVEL_DN, black_level_dn: float = BLACK_LEVEL_DN
) -> tuple[float, float]:
    """DNG NoiseProfile ``(S, O)`` of the sample's sensor at ``iso``.

    Variance of a normalised raw value ``x`` (0 black, 1 white) is
    ``S x + O``: ``S`` is one electron in normalised units (shot noise), ``O``
    the read noise before and after the ISO gain plus the 1/12 DN^2 of
    quantisation.
    """
    range_dn = white_level_dn - black_level_dn
    electron = (iso / 100.0) / FULL_WELL_E_AT_ISO100
    S = electron
    O = (READ_NOISE_E * electron) ** 2 + (ADC_NOISE_DN**2 + 1.0 / 12.0) / range_dn**2
    return float(S), float(O)


def unprocess(
    rgb_srgb8: NDArray[np.uint8],
    *,
    cfa: str = "RGGB",
    seed: int = 0,
    iso: float = 100.0,
    M_XYZ_to_camera: NDArray = M_XYZ_TO_CAMERA_CANON_5D2_D65,
    black_level_dn: float = BLACK_LEVEL_DN,
    white_level_dn: float = WHITE_LEVEL_DN,
    pad_px: int = PAD_PX,
) -> tuple[NDArray[np.uint16], SensorInfo, ColorCalibration]:
    """Turn an sRGB photo into a noisy Bayer mosaic and its DNG metadata.

    After Brooks et al., "Unprocessing Images for Learned Raw Denoising",
    CVPR 2019, with this project's develop contract inverted step by step
    (see the module docstring).

    Parameters
    ----------
    rgb_srgb8
        (H, W, 3) uint8 sRGB photo (IEC 61966-2-1 encoded, D65).
    cfa
        Bayer layout of the mosaic (``"RGGB"``, ``"GRBG"``, ``"GBRG"``, ``"BGGR"``).
    seed
        Seed of ``numpy.random.default_rng`` for the noise.
    iso
        Sensitivity; scales shot and read noise (base ISO 100).
    M_XYZ_to_camera
        ColorMatrix (XYZ -> camera RGB) at D65.
    black_level_dn, white_level_dn
        Sensor levels of the 14-bit mosaic.
    pad_px
        Border reflected around the photo before mosaicing; the DNG default
        crop removes it again.

    Returns
    -------
    mosaic_dn : ndarray of uint16, (H + 2 pad, W + 2 pad)
        Quantised raw values in ``[0, white_level_dn]``.
    sensor : SensorInfo
        CFA, levels, default crop and the NoiseProfile of the added noise.
    color : ColorCalibration
        ColorMatrix1 (D65), AsShotNeutral (the camera's response to D65 white,
        green 1) and BaselineExposure ``-log2(s)``.
    """
    photo = np.asarray(rgb_srgb8)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise InvalidParams(f"expected an (H, W, 3) uint8 sRGB image, got {photo.dtype} {photo.shape}")
    if min(photo.shape[:2]) < 2 or not 0 <= pad_px <= min(photo.shape[:2]) - 1:
        raise InvalidParams(
            f"image of {photo.shape[1]}x{photo.shape[0]} is too small for a {pad_px} px border"
        )
    if not 0 <= black_level_dn < white_level_dn <= 65535:
        raise InvalidParams(f"need 0 <= black < white <= 65535, got {black_level_dn}, {white_level_dn}")
    if not 1 <= iso <= 409600:
        raise InvalidParams(f"iso must be in 1..409600, got {iso}")
    try:
        pattern = CfaPattern.from_string(cfa)
    except ValueError as exc:
        raise InvalidParams(str(exc)) from None
    import colour

    M_XYZ_to_camera = np.asarray(M_XYZ_to_camera, dtype=np.float64).reshape(3, 3)
    srgb = colour.RGB_COLOURSPACES["sRGB"]

    # Camera response to the D65 white (Y = 1): the as-shot neutral, green 1.
    XYZ_white_D65 = colour.xy_to_XYZ(srgb.whitepoint)
    camera_white = M_XYZ_to_camera @ XYZ_white_D65
    neutral = camera_white / camera_white[1]

    # linear sRGB -> XYZ (D65) -> camera RGB, in units where the white's green is 1.
    M_rgb_to_camera = M_XYZ_to_camera @ srgb.matrix_RGB_to_XYZ / camera_white[1]
    # Exposure: the largest camera value any in-gamut scene colour up to the
    # filmic white point w can produce lands at HEADROOM of the raw range.
    peak = FILMIC_W * float(np.clip(M_rgb_to_camera, 0.0, None).sum(axis=1).max())
    scale = HEADROOM / peak
    baseline_exposure_ev = -math.log2(scale)

    # Photo -> scene-referred linear sRGB (inverse transfer, then inverse
    # filmic) as a 256-entry table, since the photo has 8-bit codes.
    scene_linear_lut = filmic_inverse(colour.cctf_decoding(np.arange(256) / 255.0, function="sRGB"))
    padded = np.pad(photo, ((pad_px, pad_px), (pad_px, pad_px), (0, 0)), mode="reflect")

    # Each pixel keeps only its CFA colour: one matrix row per CFA cell, folded
    # into the tables, evaluated on one strided view per cell.
    h, w = padded.shape[:2]
    M = scale * M_rgb_to_camera
    signal = np.empty((h, w), dtype=np.float32)
    ry, rx = pattern.shape
    for dy in range(ry):
        for dx in range(rx):
            row = M[pattern.pattern[dy][dx]]
            tables = [(scene_linear_lut * np.float32(row[k])).astype(np.float32) for k in range(3)]
            codes = padded[dy::ry, dx::rx]
            cell = tables[0][codes[..., 0]]
            cell += tables[1][codes[..., 1]]
            cell += tables[2][codes[..., 2]]
            signal[dy::ry, dx::rx] = cell

    # Poisson-Gaussian noise in normalised units (variance S x + O).
    rng = np.random.default_rng(seed)
    S, O = noise_profile(iso=iso, white_level_dn=white_level_dn, black_level_dn=black_level_dn)
    electron = S
    positive = np.maximum(signal, 0.0)
    shot = rng.poisson(positive / electron).astype(np.float32) * np.float32(electron)
    read_sigma = math.sqrt(O - 1.0 / 12.0 / (white_level_dn - black_level_dn) ** 2)
    read_noise = rng.standard_normal((h, w), dtype=np.float32) * np.float32(read_sigma)
    noisy = shot + (signal - positive) + read_noise

    range_dn = white_level_dn - black_level_dn
    mosaic_dn = np.rint(noisy * np.float32(range_dn) + np.float32(black_level_dn))
    np.clip(mosaic_dn, 0.0, white_level_dn, out=mosaic_dn)
    mosaic_dn = mosaic_dn.astype(np.uint16)

    sensor = SensorInfo(
        cfa=pattern,
        bits_per_sample=16,
        black_level_dn=black_level_dn,
        white_level_dn=[white_level_dn],
        crop_px=(pad_px, pad_px, photo.shape[0], photo.shape[1]),
        noise_profile=((S, O),),
    )
    color = ColorCalibration(
        M_XYZ_to_camera_1=M_XYZ_to_camera,
        illuminant_1=ILLUMINANT_D65,
        as_shot_neutral=neutral,
        baseline_exposure_ev=baseline_exposure_ev,
    )
    return mosaic_dn, sensor, color


def load_photo(image: str | NDArray[np.uint8], *, size: tuple[int, int] | None = None) -> NDArray[np.uint8]:
    """A sample photo as (H, W, 3) uint8 sRGB, resized to ``size = (width, height)``."""
    if isinstance(image, str):
        if image not in SAMPLE_IMAGES:
            raise InvalidParams(f"unknown sample image {image!r}; expected one of {', '.join(SAMPLE_IMAGES)}")
        import skimage.data

        photo = getattr(skimage.data, image)()
    else:
        photo = np.asarray(image)
    if photo.ndim != 3 or photo.shape[2] != 3 or photo.dtype != np.uint8:
        raise InvalidParams(f"expected an (H, W, 3) uint8 sRGB image, got {photo.dtype} {photo.shape}")
    if size is not None:
        try:
            width, height = (int(v) for v in size)
        except (TypeError, ValueError):
            raise InvalidParams(f"size must be (width, height), got {size!r}") from None
        if width < 2 * PAD_PX or height < 2 * PAD_PX:
            raise InvalidParams(f"size must be at least {2 * PAD_PX}x{2 * PAD_PX}, got {width}x{height}")
        if width > MAX_SIDE_PX or height > MAX_SIDE_PX:
            raise LimitExceeded(f"size {width}x{height} exceeds {MAX_SIDE_PX} px per side")
        if (width, height) != (photo.shape[1], photo.shape[0]):
            import cv2

            photo = cv2.resize(photo, (width, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(photo)


def make_sample(
    path: str | os.PathLike[str],
    *,
    image: str | NDArray[np.uint8] = "astronaut",
    seed: int = 0,
    iso: float = 100.0,
    size: tuple[int, int] | None = None,
    oversample: int = 1,
) -> Path:
    """Write the built-in sample DNG.

    Parameters
    ----------
    path
        DNG file to write (atomically, by the DNG writer).
    image
        Name of a scikit-image photo (:data:`SAMPLE_IMAGES`) or an
        (H, W, 3) uint8 sRGB array.
    seed
        Noise seed; the same seed gives the same file, byte for byte.
    iso
        Sensitivity of the simulated capture (noise grows with it).
    size
        ``(width, height)`` to resize the photo to first (bicubic), e.g.
        ``(4000, 3000)`` for a 12 MP benchmark input.
    oversample
        Sensor pixels per photo pixel along each side (1..4): the photo (after
        ``size``) is enlarged by this factor (bicubic) before it is
        unprocessed, so that each photo pixel is seen by a whole Bayer quad,
        as on a sensor with more pixels than the output.  The photo is
        already demosaiced and sharpened to its own pixel grid; mosaicing it
        at 1x asks the demosaicker to restore detail no camera lens passes.
        The built-in sample (``rawlab sample``, ``make demo``) uses
        :data:`BUILTIN_OVERSAMPLE`.

    Returns
    -------
    Path
        The written file.  Developing it with the default recipe gives back the
        photo at its original size (the 8 px border is the DNG default crop).
    """
    from rawlab.io.dng_write import write_dng

    if not isinstance(oversample, (int, np.integer)) or not 1 <= oversample <= 4:
        raise InvalidParams(f"oversample must be an integer in 1..4, got {oversample!r}")
    photo = load_photo(image, size=size)
    if oversample > 1:
        photo = load_photo(photo, size=(photo.shape[1] * int(oversample), photo.shape[0] * int(oversample)))
    mosaic_dn, sensor, color = unprocess(photo, seed=seed, iso=iso)
    frame = Frame(
        data=mosaic_dn.astype(np.float32),
        encoding=Encoding.CFA,
        clip_level=np.full(3, sensor.white_level_dn[0], dtype=np.float32),
        sensor=sensor,
        color=color,
        capture=CaptureInfo(
            make="rawlab",
            model="unprocessed sample",
            unique_camera_model="rawlab unprocessed sample",
            software="rawlab sample",
            iso=float(iso),
            exposure_time_s=1.0 / 125.0,
            f_number=5.6,
            focal_length_mm=50.0,
            focal_length_35mm_mm=50.0,
            datetime_original="2024:06:21 12:00:00",
            orientation=1,
        ),
    )
    return Path(write_dng(frame, path))
