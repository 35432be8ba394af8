"""Whole-pipeline checks: the built-in sample against its source photo, agreement
with LibRaw, and every real file of the test data developed."""

from __future__ import annotations

import colour
import numpy as np
import pytest
import rawpy

from rawlab.core.frame import Encoding
from rawlab.io.read import read
from rawlab.pipeline import Recipe, develop


def _lab_from_srgb(rgb_srgb: np.ndarray) -> np.ndarray:
    xyz = colour.RGB_to_XYZ(rgb_srgb, colour.RGB_COLOURSPACES["sRGB"], apply_cctf_decoding=True)
    return colour.XYZ_to_Lab(xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])


def _lab_from_linear_srgb(rgb_linear: np.ndarray) -> np.ndarray:
    xyz = colour.RGB_to_XYZ(rgb_linear, colour.RGB_COLOURSPACES["sRGB"])
    return colour.XYZ_to_Lab(xyz, colour.CCS_ILLUMINANTS["CIE 1931 2 Degree Standard Observer"]["D65"])


def test_sample_develops_back_to_its_photo(tmp_path):
    """End-to-end colour: unprocess a photo to a DNG, develop it with the default
    recipe, compare with the photo: mean CIEDE2000 <= 2, clipped pixels excluded.

    The sample's sensor has twice the photo's linear resolution (every photo
    pixel is seen by a whole 2x2 Bayer quad, as on a phone's binned sensor), and
    the developed frame is area-averaged back to the photo's size, so the number
    measures colour reproduction, not the demosaicker's edge errors on a photo
    that has already been demosaiced and sharpened once (those are measured by
    the Kodak CPSNR test in test_demosaic.py).  At 1x the same check gives
    about 3.9, nearly all of it at edges.
    """
    import cv2
    import skimage.data

    from rawlab.sample import make_sample

    photo8 = skimage.data.astronaut()
    height, width = photo8.shape[:2]
    path = make_sample(tmp_path / "sample.dng", image="astronaut", seed=1, size=(2 * width, 2 * height))
    out = develop(read(path))
    assert out.encoding is Encoding.RGB and out.data.shape == (2 * height, 2 * width, 3)
    clipped = cv2.resize((out.data.max(axis=2) >= 1.0).astype(np.float32), (width, height), interpolation=cv2.INTER_AREA) > 0
    developed = cv2.resize(np.clip(out.data, 0.0, 1.0), (width, height), interpolation=cv2.INTER_AREA)
    photo = photo8.astype(np.float64) / 255.0
    valid = (photo.max(axis=2) < 0.98) & ~clipped
    assert valid.mean() > 0.9
    delta_e = colour.delta_E(
        _lab_from_srgb(developed.astype(np.float64)), _lab_from_srgb(photo), method="CIE 2000"
    )[valid]
    print(f"sample round trip: mean dE2000 {delta_e.mean():.3f}, median {np.median(delta_e):.3f}")
    assert delta_e.mean() <= 2.0


def _libraw_linear_srgb(path: str, neutral: np.ndarray) -> np.ndarray:
    gains = 1.0 / neutral
    with rawpy.imread(path) as raw:
        rgb = raw.postprocess(
            demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR,
            user_wb=[float(gains[0]), float(gains[1]), float(gains[2]), float(gains[1])],
            no_auto_bright=True,
            gamma=(1, 1),
            output_bps=16,
            output_color=rawpy.ColorSpace.sRGB,
            highlight_mode=rawpy.HighlightMode.Clip,
            user_flip=0,
        )
    return rgb.astype(np.float64) / 65535.0


@pytest.mark.parametrize("relpath", ["raw/canon_eos_d30/RAW_CANON_D30_SRGB.CRW", "raw/huawei_p9/RAW_00242.dng"])
def test_agrees_with_libraw(shared_data, relpath):
    """rawlab (bilinear, no tone curve, sRGB) against LibRaw (LINEAR demosaic,
    gamma 1, no auto-bright) with the same white balance: mean dE2000 <= 2.

    Like with like: LibRaw white-balances in camera space and maps with the D65
    ColorMatrix (ignoring ForwardMatrix), so rawlab runs its ``dcraw`` matrix
    convention here.  The default DNG path (scene-white adaptation, forward
    matrices) differs by design; its own correctness is tested in
    test_color_dng_matrices.py and by the sample round trip.
    """
    path = str(shared_data / relpath)
    frame = read(path)
    recipe = (
        Recipe.builtin("linear").without("crop", "orientation").with_params("camera_to_xyz", matrix="dcraw")
    )
    ours_frame = develop(frame, recipe)
    neutral = np.asarray(ours_frame.color.applied_neutral, dtype=np.float64)
    theirs = _libraw_linear_srgb(path, neutral)
    ours = ours_frame.data.astype(np.float64)
    h, w = min(ours.shape[0], theirs.shape[0]), min(ours.shape[1], theirs.shape[1])
    assert abs(ours.shape[0] - theirs.shape[0]) <= 8 and abs(ours.shape[1] - theirs.shape[1]) <= 8
    ours, theirs = ours[4 : h - 4, 4 : w - 4], theirs[4 : h - 4, 4 : w - 4]
    # one common scale for both (the Huawei DNG holds ~10-bit data under a 16-bit white level)
    gain = 0.8 / max(float(np.percentile(theirs.max(axis=2), 99.5)), 1e-6)
    ours, theirs = ours * gain, theirs * gain
    valid = (theirs.max(axis=2) < 0.98) & (ours.max(axis=2) < 0.98) & (theirs.max(axis=2) > 0.01)
    assert valid.mean() > 0.5
    delta_e = colour.delta_E(_lab_from_linear_srgb(ours), _lab_from_linear_srgb(theirs), method="CIE 2000")[valid]
    print(f"{relpath}: mean dE2000 vs LibRaw {delta_e.mean():.3f}, median {np.median(delta_e):.3f}")
    assert delta_e.mean() <= 2.0


READABLE = [
    "raw/canon_eos_d30/RAW_CANON_D30_SRGB.CRW",
    "raw/kodak_dc50/RAW_KODAK_DC50.KDC",
    "raw/huawei_p9/RAW_00242.dng",
    "raw/lg_g4_h815/skia_sample_1mp.dng",
    "raw/canon_eos_6d/canon_eos_6d_lossy.dng",
    "charts/lg_g4_lab_scene/lg_g4_iso_800.dng",
    "charts/canon_eos_550d_ml_colorchecker/colorchart.dng",
]


@pytest.mark.parametrize("relpath", READABLE)
def test_every_real_raw_develops_to_a_plausible_photo(shared_data, relpath):
    frame = read(shared_data / relpath)
    out = develop(frame)
    assert out.encoding is Encoding.RGB and out.data.ndim == 3
    assert np.isfinite(out.data).all()
    mean = float(np.clip(out.data, 0, 1).mean())
    print(f"{relpath}: {out.width}x{out.height} mean {mean:.3f}")
    assert 0.03 < mean < 0.97
