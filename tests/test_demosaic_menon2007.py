"""Demosaicing: Menon, Andriani & Calvagno (2007) DDFAPD against colour-demosaicing,
its NumPy twin, analytic cases and Kodak CPSNR."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CfaPattern, SensorInfo
from rawlab.demosaic.malvar2004 import demosaic_bayer_malvar2004
from rawlab.demosaic.menon2007 import (
    STRIP_ROWS,
    demosaic_bayer_menon2007,
    demosaic_bayer_menon2007_reference,
)
from rawlab.demosaic.stage import DemosaicParams, demosaic
from rawlab.errors import StageError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour_demosaicing

PHASES = ("RGGB", "GRBG", "GBRG", "BGGR")
# colour-demosaicing sums the decision window with zeros outside the image
# (scipy convolve mode="constant"); we run the whole method on the reflect-101
# extended mosaic.  Measured: the two differ up to 5 px in from an edge.
BORDER = 6


def mosaic(rgb: np.ndarray, pattern: str) -> np.ndarray:
    """Sample an RGB image through a Bayer pattern (independent of the code under test)."""
    out = np.empty(rgb.shape[:2], dtype=rgb.dtype)
    for k, (dy, dx) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        out[dy::2, dx::2] = rgb[dy::2, dx::2, "RGB".index(pattern[k])]
    return out


def peer(cfa: np.ndarray, pattern: str, refining_step: bool) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return colour_demosaicing.demosaicing_CFA_Bayer_Menon2007(
            cfa.astype(np.float64), pattern, refining_step=refining_step
        )


def interior(a: np.ndarray) -> np.ndarray:
    return a[BORDER:-BORDER, BORDER:-BORDER]


@pytest.fixture(scope="module")
def kodim19(shared_data):
    from PIL import Image

    photo = Image.open(shared_data / "kodak24" / "kodim19.png").convert("RGB")
    return np.asarray(photo, dtype=np.float32) / 255


@pytest.mark.parametrize("refining_step", [True, False])
@pytest.mark.parametrize("pattern", PHASES)
def test_matches_colour_demosaicing_on_random_data(pattern, refining_step):
    rng = np.random.default_rng(11)
    cfa = rng.random((41, 70), dtype=np.float32) * 1.2 - 0.1  # noise below 0, highlights above 1
    ours = demosaic_bayer_menon2007(cfa, pattern, refining_step=refining_step)
    assert ours.dtype == np.float32 and ours.shape == (41, 70, 3)
    ref = peer(cfa, pattern, refining_step)
    np.testing.assert_allclose(interior(ours), interior(ref), atol=1e-5)
    # and the border is still a close estimate, not garbage
    assert np.abs(ours - ref).max() < 2.0


@pytest.mark.parametrize("refining_step", [True, False])
@pytest.mark.parametrize("pattern", PHASES)
def test_matches_colour_demosaicing_on_kodim19(kodim19, pattern, refining_step):
    # 8-bit data has many exact ties in the direction decision; they must resolve alike
    cfa = mosaic(kodim19, pattern)
    ours = demosaic_bayer_menon2007(cfa, pattern, refining_step=refining_step)
    ref = peer(cfa, pattern, refining_step)
    np.testing.assert_allclose(interior(ours), interior(ref), atol=1e-5)


@pytest.mark.parametrize("refining_step", [True, False])
@pytest.mark.parametrize("pattern", PHASES)
@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 6), (2, 2), (3, 7), (6, 3), (9, 9), (31, 47), (64, 65), (2 * STRIP_ROWS + 5, 19)]
)
def test_numba_kernel_matches_its_numpy_twin_everywhere(pattern, refining_step, shape):
    rng = np.random.default_rng(shape[0] * 100 + shape[1])
    cfa = rng.random(shape, dtype=np.float32)
    ours = demosaic_bayer_menon2007(cfa, pattern, refining_step=refining_step)
    assert ours.shape == shape + (3,) and ours.dtype == np.float32
    twin = demosaic_bayer_menon2007_reference(cfa, pattern, refining_step=refining_step)
    np.testing.assert_allclose(ours, twin, atol=2e-6)
    assert np.all(np.isfinite(ours))


def test_many_strips_and_row_chunks_join_seamlessly():
    # taller than many strips, odd height, so chunk and strip edges fall everywhere
    rng = np.random.default_rng(5)
    cfa = rng.random((13 * STRIP_ROWS + 7, 23), dtype=np.float32)
    np.testing.assert_allclose(
        demosaic_bayer_menon2007(cfa, "GRBG"), demosaic_bayer_menon2007_reference(cfa, "GRBG"), atol=2e-6
    )


@pytest.mark.parametrize("refining_step", [True, False])
@pytest.mark.parametrize("pattern", PHASES)
def test_measured_samples_pass_through_and_flat_fields_stay_flat(pattern, refining_step):
    rng = np.random.default_rng(3)
    cfa = rng.random((20, 23), dtype=np.float32)
    out = demosaic_bayer_menon2007(cfa, pattern, refining_step=refining_step)
    index = CfaPattern.from_string(pattern).color_index_map(20, 23)
    picked = np.take_along_axis(out, index[..., None].astype(np.intp), axis=2)[..., 0]
    np.testing.assert_array_equal(picked, cfa)
    # every filter reproduces a constant colour exactly, borders included
    for value in ((0.3, 0.3, 0.3), (0.2, 0.5, 0.9)):
        flat = mosaic(np.broadcast_to(np.array(value, np.float32), (20, 23, 3)).copy(), pattern)
        got = demosaic_bayer_menon2007(flat, pattern, refining_step=refining_step)
        np.testing.assert_allclose(got, np.broadcast_to(value, got.shape), atol=1e-6)


@pytest.mark.parametrize("refining_step", [True, False])
def test_linear_ramps_are_reproduced_in_the_interior(refining_step):
    # analytic: the directional green filter h0 + h1 is exact on linear signals (the
    # second difference of a linear X is zero), so every colour difference is linear
    # and each later 2- or 3-tap mean of it is exact, whatever the decision
    y, x = np.mgrid[0:40, 0:50].astype(np.float32)
    rgb = np.stack([0.01 * x + 0.2, 0.005 * y + 0.004 * x + 0.1, 0.3 - 0.002 * y + 0.003 * x], axis=-1)
    for pattern in PHASES:
        out = demosaic_bayer_menon2007(mosaic(rgb, pattern), pattern, refining_step=refining_step)
        np.testing.assert_allclose(out[8:-8, 8:-8], rgb[8:-8, 8:-8], atol=2e-6)


def test_the_decision_follows_edges():
    # stripes of constant chroma (R - G, B - G fixed): the estimate across the
    # stripes straddles the edges, the one along them is exact, and the decision
    # must pick it; the colour differences are then constant and every later step
    # exact.  A non-directional method (Malvar's) is not.
    x = np.arange(48, dtype=np.float32)
    column = np.where((x // 3) % 2 == 0, 0.8, 0.1).astype(np.float32)
    stripes = np.stack([column + 0.05, column, column - 0.04], axis=-1)[None]
    vertical = np.broadcast_to(stripes, (40, 48, 3)).copy()
    horizontal = np.ascontiguousarray(vertical.transpose(1, 0, 2))
    for rgb in (vertical, horizontal):
        for pattern in PHASES:
            cfa = mosaic(rgb, pattern)
            out = demosaic_bayer_menon2007(cfa, pattern)
            np.testing.assert_allclose(interior(out), interior(rgb), atol=1e-6)
            assert np.abs(interior(demosaic_bayer_malvar2004(cfa, pattern)) - interior(rgb)).max() > 0.05


@pytest.mark.parametrize("refining_step", [True, False])
def test_a_nan_only_spoils_its_neighbourhood(refining_step):
    cfa = np.full((40, 40), 0.5, dtype=np.float32)
    cfa[20, 20] = np.nan
    out = demosaic_bayer_menon2007(cfa, "RGGB", refining_step=refining_step)
    bad = np.argwhere(np.isnan(out).any(axis=2))
    assert bad.size and np.abs(bad - 20).max() <= 6  # the support of the chain


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
    with pytest.raises(StageError, match="only 2x2 Bayer"):
        demosaic_bayer_menon2007(np.zeros((12, 12), np.float32), xtrans)
    with pytest.raises(StageError, match="2-D"):
        demosaic_bayer_menon2007(np.zeros((4, 4, 3), np.float32), "RGGB")


def test_stage_dispatches_menon2007():
    rng = np.random.default_rng(0)
    cfa = rng.random((16, 18), dtype=np.float32)
    sensor = SensorInfo(cfa=CfaPattern.from_string("BGGR"))
    frame = Frame(cfa, Encoding.CFA, sensor=sensor, clip_level=[2, 1, 3])
    out = demosaic(frame, DemosaicParams(method="menon2007"))
    assert out.encoding is Encoding.CAMERA_RGB and out.data.shape == (16, 18, 3)
    np.testing.assert_array_equal(out.data, demosaic_bayer_menon2007(cfa, "BGGR"))
    np.testing.assert_array_equal(out.clip_level, [2, 1, 3])
    assert out.history[-1].stage == "demosaic"
    assert DemosaicParams().method == "malvar2004"  # the default is unchanged


def cpsnr(a: np.ndarray, b: np.ndarray, border: int = 10) -> float:
    a = np.clip(a, 0, 1)[border:-border, border:-border]
    b = b[border:-border, border:-border]
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_kodak_cpsnr_beats_malvar_and_matches_colour_demosaicing(shared_data):
    from PIL import Image

    names = ["kodim01", "kodim05", "kodim08", "kodim13", "kodim19", "kodim23"]
    scores = {"malvar2004": [], "menon2007": [], "menon2007_no_refining": [], "peer_menon2007": []}
    for name in names:
        rgb = np.asarray(Image.open(shared_data / "kodak24" / f"{name}.png").convert("RGB"), np.float32) / 255
        cfa = mosaic(rgb, "RGGB")
        scores["malvar2004"].append(cpsnr(demosaic_bayer_malvar2004(cfa, "RGGB"), rgb))
        scores["menon2007"].append(cpsnr(demosaic_bayer_menon2007(cfa, "RGGB"), rgb))
        no_refining = demosaic_bayer_menon2007(cfa, "RGGB", refining_step=False)
        scores["menon2007_no_refining"].append(cpsnr(no_refining, rgb))
        scores["peer_menon2007"].append(cpsnr(peer(cfa, "RGGB", True), rgb))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    print(f"\nKodak ({len(names)} images) CPSNR: " + ", ".join(f"{k}={v:.2f} dB" for k, v in mean.items()))
    assert abs(mean["menon2007"] - mean["peer_menon2007"]) < 0.05
    assert mean["menon2007"] >= mean["malvar2004"] + 1.0
    assert mean["menon2007"] > mean["menon2007_no_refining"]
    assert all(m >= v for m, v in zip(scores["menon2007"], scores["malvar2004"]))
