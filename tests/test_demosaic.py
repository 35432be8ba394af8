"""Demosaicing: bilinear and Malvar-He-Cutler (2004) against colour-demosaicing,
their NumPy/OpenCV twins, analytic cases and Kodak CPSNR."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern, SensorInfo
from rawlab.demosaic.bilinear import demosaic_bayer_bilinear, demosaic_bayer_bilinear_reference
from rawlab.demosaic.malvar2004 import demosaic_bayer_malvar2004, demosaic_bayer_malvar2004_reference
from rawlab.demosaic.stage import DemosaicParams, demosaic
from rawlab.errors import InvalidParams, StageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour_demosaicing

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
OURS = {"bilinear": demosaic_bayer_bilinear, "malvar2004": demosaic_bayer_malvar2004}
TWINS = {"bilinear": demosaic_bayer_bilinear_reference, "malvar2004": demosaic_bayer_malvar2004_reference}
PEERS = {
    "bilinear": colour_demosaicing.demosaicing_CFA_Bayer_bilinear,
    "malvar2004": colour_demosaicing.demosaicing_CFA_Bayer_Malvar2004,
}
BORDER = 3  # colour-demosaicing reflects about the edge (scipy "reflect"); we use reflect-101


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a Bayer pattern (independent of the code under test)."""
    letters = pattern
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        channel = "RGB".index(letters[k])
        out[dy::2, dx::2] = rgb[dy::2, dx::2, channel]
    return out


def peer(method: str, cfa: np.ndarray, pattern: str) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PEERS[method](cfa.astype(np.float64), pattern)


@pytest.fixture(scope="module")
def kodim19(shared_data):
    from PIL import Image

    return np.asarray(Image.open(shared_data / "kodak24" / "kodim19.png").convert("RGB"), dtype=np.float32) / 255


@pytest.mark.parametrize("method", sorted(OURS))
@pytest.mark.parametrize("pattern", PHASES)
def test_matches_colour_demosaicing_on_random_data(method, pattern):
    rng = np.random.default_rng(7)
    cfa = rng.random((37, 54), dtype=np.float32) * 1.2 - 0.1  # noise below 0, highlights above 1
    ours = OURS[method](cfa, pattern)
    ref = peer(method, cfa, pattern)
    assert ours.dtype == np.float32 and ours.shape == (37, 54, 3)
    np.testing.assert_allclose(ours[BORDER:-BORDER, BORDER:-BORDER], ref[BORDER:-BORDER, BORDER:-BORDER], atol=1e-5)


@pytest.mark.parametrize("method", sorted(OURS))
@pytest.mark.parametrize("pattern", PHASES)
def test_matches_colour_demosaicing_on_kodim19(kodim19, method, pattern):
    cfa = mosaic(kodim19, pattern)
    ours = OURS[method](cfa, pattern)
    ref = peer(method, cfa, pattern)
    np.testing.assert_allclose(ours[BORDER:-BORDER, BORDER:-BORDER], ref[BORDER:-BORDER, BORDER:-BORDER], atol=1e-5)


@pytest.mark.parametrize("method", sorted(OURS))
@pytest.mark.parametrize("pattern", PHASES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (2, 2), (3, 7), (6, 3), (31, 47), (64, 65)])
def test_numba_kernel_matches_its_numpy_twin_everywhere(method, pattern, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    cfa = rng.random(shape, dtype=np.float32)
    ours = OURS[method](cfa, pattern)
    assert ours.shape == shape + (3,)
    if min(shape) >= 2:  # a 1-pixel-wide image has no reflect-101 neighbour; OpenCV and we differ there
        np.testing.assert_allclose(ours, TWINS[method](cfa, pattern), atol=2e-6)
    assert np.all(np.isfinite(ours))


@pytest.mark.parametrize("method", sorted(OURS))
@pytest.mark.parametrize("pattern", PHASES)
def test_measured_samples_pass_through_and_flat_fields_stay_flat(method, pattern):
    rng = np.random.default_rng(3)
    cfa = rng.random((20, 23), dtype=np.float32)
    out = OURS[method](cfa, pattern)
    index = CfaPattern.from_string(pattern).color_index_map(20, 23)
    picked = np.take_along_axis(out, index[..., None].astype(np.intp), axis=2)[..., 0]
    np.testing.assert_array_equal(picked, cfa)
    # flat fields come back exactly, borders included: each kernel's weights on
    # the colour it estimates sum to one and on every other colour to zero
    for value in ((0.3, 0.3, 0.3), (0.2, 0.5, 0.9)):
        flat = mosaic(np.broadcast_to(np.array(value, np.float32), (20, 23, 3)).copy(), pattern)
        got = OURS[method](flat, pattern)
        np.testing.assert_allclose(got, np.broadcast_to(value, got.shape), atol=1e-6)


@pytest.mark.parametrize("method", sorted(OURS))
def test_linear_ramps_are_reproduced_in_the_interior(method):
    # both methods are exact for a colour-constant linear ramp (bilinear: exact for
    # linear signals; Malvar: the Laplacian correction of a linear signal is zero)
    y, x = np.mgrid[0:40, 0:50].astype(np.float32)
    rgb = np.stack([0.01 * x + 0.2, 0.005 * y + 0.004 * x + 0.1, 0.3 - 0.002 * y], axis=-1)
    for pattern in PHASES:
        out = OURS[method](mosaic(rgb, pattern), pattern)
        np.testing.assert_allclose(out[2:-2, 2:-2], rgb[2:-2, 2:-2], atol=1e-5)


@pytest.mark.parametrize("method", sorted(OURS))
def test_a_nan_only_spoils_its_neighbourhood(method):
    cfa = np.full((30, 30), 0.5, dtype=np.float32)
    cfa[15, 15] = np.nan
    out = OURS[method](cfa, "RGGB")
    bad = np.argwhere(np.isnan(out).any(axis=2))
    radius = 1 if method == "bilinear" else 2
    assert bad.size and np.abs(bad - 15).max() <= radius


def test_non_bayer_patterns_are_refused_clearly():
    xtrans = CfaPattern(
        (
            (1, 1, 0, 1, 1, 2),
            (1, 1, 2, 1, 1, 0),
            (2, 0, 1, 0, 2, 1),
            (1, 1, 2, 1, 1, 0),
            (1, 1, 0, 1, 1, 2),
            (0, 2, 1, 2, 0, 1),
        )
    )
    for func in OURS.values():
        with pytest.raises(StageError, match="only 2x2 Bayer"):
            func(np.zeros((12, 12), np.float32), xtrans)
    frame = Frame(np.zeros((12, 12), np.float32), Encoding.CFA, sensor=SensorInfo(cfa=xtrans))
    with pytest.raises(StageError, match="6x6 CFA pattern"):
        demosaic(frame)
    with pytest.raises(StageError, match="no CFA pattern"):
        demosaic(Frame(np.zeros((4, 4), np.float32), Encoding.CFA))
    with pytest.raises(StageError, match="2-D"):
        demosaic_bayer_malvar2004(np.zeros((4, 4, 3), np.float32), "RGGB")


def test_stage_produces_camera_rgb_and_records_history():
    rng = np.random.default_rng(0)
    cfa = rng.random((16, 18), dtype=np.float32)
    frame = Frame(cfa, Encoding.CFA, sensor=SensorInfo(cfa=CfaPattern.from_string("GBRG")), clip_level=[2, 1, 3])
    out = demosaic(frame)
    assert out.encoding is Encoding.CAMERA_RGB and out.data.shape == (16, 18, 3)
    np.testing.assert_array_equal(out.data, demosaic_bayer_malvar2004(cfa, "GBRG"))
    np.testing.assert_array_equal(out.clip_level, [2, 1, 3])
    assert out.history[-1].stage == "demosaic"
    out = demosaic(frame, DemosaicParams(method="bilinear"))
    np.testing.assert_array_equal(out.data, demosaic_bayer_bilinear(cfa, "GBRG"))
    with pytest.raises(InvalidParams):
        DemosaicParams(method="ahd")
    # an RGB frame (LinearRaw) passes through, noted as skipped
    rgb = Frame(np.zeros((4, 4, 3), np.float32), Encoding.CAMERA_RGB)
    assert demosaic(rgb).history[-1].skipped


def cpsnr(a: np.ndarray, b: np.ndarray, border: int = 10) -> float:
    a = np.clip(a, 0, 1)[border:-border, border:-border]
    b = b[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_kodak_cpsnr_matches_colour_demosaicing(shared_data):
    from PIL import Image

    names = ["kodim01", "kodim05", "kodim08", "kodim13", "kodim19", "kodim23"]
    scores = {"bilinear": [], "malvar2004": [], "peer_malvar2004": []}
    for name in names:
        rgb = np.asarray(Image.open(shared_data / "kodak24" / f"{name}.png").convert("RGB"), np.float32) / 255
        cfa = mosaic(rgb, "RGGB")
        scores["bilinear"].append(cpsnr(demosaic_bayer_bilinear(cfa, "RGGB"), rgb))
        scores["malvar2004"].append(cpsnr(demosaic_bayer_malvar2004(cfa, "RGGB"), rgb))
        scores["peer_malvar2004"].append(cpsnr(peer("malvar2004", cfa, "RGGB"), rgb))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    print(f"\nKodak ({len(names)} images) CPSNR: " + ", ".join(f"{k}={v:.2f} dB" for k, v in mean.items()))
    assert abs(mean["malvar2004"] - mean["peer_malvar2004"]) < 0.1
    assert mean["malvar2004"] > mean["bilinear"] + 2.0
    assert 33.0 < mean["malvar2004"] < 45.0 and 27.0 < mean["bilinear"] < 40.0
