"""Clipped highlights: a clipped white develops white, not magenta (rawlab.color.highlights)."""

from __future__ import annotations

import numpy as np
import pytest

from rawlab.color.highlights import HighlightsParams, clip_highlights, highlights
from rawlab.pipeline import Recipe, develop


@pytest.fixture(scope="module")
def overexposed():
    from rawlab.sim import capture, scene

    sc = scene.colorchecker((300, 200))
    return sc, capture(sc, "phone-small", iso=50, seed=2, exposure_ev=3.0).frame


def _patch_means(sc, rgb):
    return np.array([rgb[t:b, l:r].reshape(-1, 3).mean(0) for t, l, b, r in (p["box"] for p in sc.geometry["patches"])])


def test_clipped_neutrals_develop_neutral(overexposed):
    # at +3 EV the four brightest neutral patches clip in green; red and blue (gains ~2.6 and ~1.4)
    # would go on above it and turn them pink without the clip
    sc, frame = overexposed
    means = _patch_means(sc, develop(frame, Recipe.builtin("default")).data)
    neutrals = means[18:22]
    assert np.all(np.ptp(neutrals, axis=1) < 0.01), neutrals
    unclipped = _patch_means(sc, develop(frame, Recipe.builtin("default").with_params("highlights", mode="none")).data)
    assert np.ptp(unclipped[19]) > 0.05  # the failure the stage prevents: a magenta white
    # patches below the clip are untouched by it
    np.testing.assert_allclose(means[22:], unclipped[22:], atol=1e-6)


def test_clip_level_is_the_lowest_channel_and_only_values_above_change():
    from rawlab.core.frame import Encoding, Frame

    rng = np.random.default_rng(0)
    data = rng.uniform(0, 2.5, (8, 8)).astype(np.float32)
    clipped, level = clip_highlights(data, np.array([2.4, 1.0, 1.6]))
    assert level == 1.0
    np.testing.assert_array_equal(clipped, np.minimum(data, 1.0))
    assert clip_highlights(data, np.array([np.inf, 1.0, 1.0]))[1] is None  # unknown level: nothing clipped
    frame = Frame(data=data, encoding=Encoding.CAMERA_RGB if data.ndim == 3 else Encoding.CFA,
                  clip_level=np.array([2.4, 1.0, 1.6], np.float32))
    out = highlights(frame, HighlightsParams())
    assert out.clip_level.tolist() == [1.0, 1.0, 1.0] and out.data.max() <= 1.0
    assert np.shares_memory(frame.data, data) and frame.data.max() > 1.0  # the input is not modified
    assert highlights(frame, HighlightsParams(mode="none")).data is frame.data
