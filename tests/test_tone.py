"""Tone stages: exposure (EV), the filmic curve (analytic properties and inverse)
and the sRGB output transfer (against colour-science)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.core.metadata import ColorCalibration
from rawlab.errors import InvalidParams, StageError
from rawlab.tone.exposure import ExposureParams, apply_exposure_ev, exposure
from rawlab.tone.filmic import FilmicParams, filmic, filmic_shoulder_k, tone_filmic, tone_filmic_reference
from rawlab.tone.transfer import (
    OutputTransferParams,
    encode_srgb_iec61966,
    encode_srgb_iec61966_reference,
    output_transfer,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour


def rgb_frame(data, **kw):
    return Frame(np.asarray(data, np.float32), Encoding.RGB, primaries=Primaries.SRGB, **kw)


# ------------------------------------------------------------------ exposure


def test_exposure_in_stops_with_and_without_baseline():
    data = np.full((2, 3, 3), 0.25, np.float32)
    frame = rgb_frame(data, color=ColorCalibration(baseline_exposure_ev=0.5), clip_level=[1, 1, 1])
    out = exposure(frame, ExposureParams(exposure_ev=1.5))
    np.testing.assert_allclose(out.data, 0.25 * 4.0, rtol=1e-6)
    np.testing.assert_allclose(out.clip_level, 4.0, rtol=1e-6)
    out = exposure(frame, ExposureParams(exposure_ev=-1.0, baseline=False))
    np.testing.assert_allclose(out.data, 0.125, rtol=1e-6)
    assert exposure(frame, ExposureParams(exposure_ev=-0.5)).data is frame.data  # 0 EV in total: untouched
    np.testing.assert_allclose(apply_exposure_ev(np.array([-1.0, 2.0], np.float32), exposure_ev=-2), [-0.25, 0.5])
    xyz = Frame(data, Encoding.XYZ_D50)
    assert exposure(xyz, ExposureParams(exposure_ev=1)).encoding is Encoding.XYZ_D50
    with pytest.raises(InvalidParams):
        ExposureParams(exposure_ev=20.0)
    with pytest.raises(StageError, match="linear"):
        exposure(rgb_frame(data, transfer=Transfer.SRGB), ExposureParams(exposure_ev=1))


# ------------------------------------------------------------------ filmic

CASES = [(0.6, 4.0), (0.18, 16.0), (0.9, 1.2), (0.5, 2.0)]


@pytest.mark.parametrize("t, w", CASES)
def test_filmic_k_solves_its_equation(t, w):
    k = filmic_shoulder_k(t, w)
    assert k > 0
    assert (1 - t) * k / (1 - math.exp(-k * (w - t))) == pytest.approx(1.0, abs=1e-12)


def long_form(x, t, w):
    """The contract's formula, written out in float64."""
    k = filmic_shoulder_k(t, w)
    x = np.asarray(x, dtype=np.float64)
    return np.where(x <= t, x, t + (1 - t) * (1 - np.exp(-k * (x - t))) / (1 - np.exp(-k * (w - t))))


@pytest.mark.parametrize("t, w", CASES)
def test_filmic_curve_properties(t, w):
    k = filmic_shoulder_k(t, w)
    x = np.concatenate([np.linspace(-1, 3 * w, 20001), [t, w]]).astype(np.float32)
    y = tone_filmic(x, shoulder_start=t, white_point=w)
    below = x <= t
    np.testing.assert_array_equal(y[below], x[below])  # identity, negatives included
    assert y[-1] == pytest.approx(1.0, abs=1e-6)  # y(w) = 1
    assert np.all(np.diff(y[:-2]) >= 0)  # monotone (float32 flattens far above w)
    assert y[x > w].min() >= 1.0 and y.max() <= t + 1 / k + 1e-6  # past 1, not past the asymptote
    # strictly rising (and above 1 past w), in float64, as far as float64 resolves the shoulder
    xs = np.linspace(t, w + 2 / k, 20001)
    ys = long_form(xs, t, w)
    assert np.all(np.diff(ys) > 0) and np.all(ys[xs > w] > 1.0)
    assert float(long_form(w, t, w)) == pytest.approx(1.0, abs=1e-14)
    # C1 at t: slope 1 from the left (identity) and from the right
    for h in (1e-5, 1e-7):
        right = (float(long_form(t + h, t, w)) - t) / h
        assert right == pytest.approx(1.0, abs=k * h)
    np.testing.assert_allclose(y, long_form(x, t, w), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("t, w", CASES)
def test_filmic_analytic_inverse_and_numpy_twin(t, w):
    k = filmic_shoulder_k(t, w)
    x = np.linspace(t, w + 2 / k, 5001)  # beyond, the curve is too flat for float64 to invert
    y = long_form(x, t, w)
    # the inverse of the long form: x = t - ln(1 - (y - t)(1 - e^{-k(w-t)})/(1 - t)) / k
    x_back = t - np.log(1 - (y - t) * (1 - math.exp(-k * (w - t))) / (1 - t)) / k
    np.testing.assert_allclose(x_back, x, rtol=1e-7)
    # and the short form of the module docstring, t - ln(1 - k (y - t)) / k
    np.testing.assert_allclose(t - np.log(1 - k * (y - t)) / k, x, rtol=1e-7)
    z = np.random.default_rng(0).uniform(-1, 3 * w, 1000).astype(np.float32)
    np.testing.assert_allclose(
        tone_filmic(z, shoulder_start=t, white_point=w), tone_filmic_reference(z, shoulder_start=t, white_point=w),
        rtol=1e-6, atol=1e-7,
    )


def test_filmic_stage_nan_and_params():
    data = np.array([[[np.nan, 0.3, 4.0]]], np.float32)
    out = filmic(rgb_frame(data, clip_level=[4, 4, 4]))
    assert np.isnan(out.data[0, 0, 0]) and out.data[0, 0, 1] == np.float32(0.3)
    assert out.data[0, 0, 2] == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(out.clip_level, 1.0, atol=1e-6)
    for bad in ({"shoulder_start": 1.0}, {"shoulder_start": 0.0}, {"white_point": 1.0}, {"white_point": 0.5}):
        with pytest.raises(InvalidParams):
            FilmicParams(**bad)
    with pytest.raises(InvalidParams):
        filmic_shoulder_k(0.5, 0.9)
    with pytest.raises(StageError):
        filmic(Frame(data, Encoding.XYZ_D50))


# ------------------------------------------------------------------ output transfer


def test_srgb_encoding_matches_colour_science():
    x = np.concatenate([np.linspace(0, 1, 100001), np.linspace(1, 4, 1001), [0.0031308, 0.00313]]).astype(np.float32)
    ours = encode_srgb_iec61966(x)
    ref = colour.cctf_encoding(x.astype(np.float64), function="sRGB")
    np.testing.assert_allclose(ours, ref, atol=1e-5, rtol=2e-6)
    np.testing.assert_allclose(encode_srgb_iec61966_reference(x), ref, atol=1e-6)
    assert ours[0] == 0 and ours[100000] == pytest.approx(1.0, abs=1e-6)


def test_srgb_encoding_odd_extension_nan_and_shape():
    x = np.random.default_rng(1).uniform(0, 2, (4, 5, 3)).astype(np.float32)
    np.testing.assert_array_equal(encode_srgb_iec61966(-x), -encode_srgb_iec61966(x))
    assert encode_srgb_iec61966(x).shape == (4, 5, 3)
    nan = encode_srgb_iec61966(np.array([np.nan, -0.001], np.float32))
    assert np.isnan(nan[0]) and nan[1] == pytest.approx(-0.01292, rel=1e-6)


def test_output_transfer_stage():
    data = np.full((2, 2, 3), 0.18, np.float32)
    out = output_transfer(rgb_frame(data, clip_level=[1, 1, 1]))
    assert out.transfer is Transfer.SRGB
    np.testing.assert_allclose(out.data, colour.cctf_encoding(0.18, function="sRGB"), atol=1e-6)
    np.testing.assert_allclose(out.clip_level, 1.0, atol=1e-6)
    linear = output_transfer(rgb_frame(data), OutputTransferParams(transfer="linear"))
    assert linear.transfer is Transfer.LINEAR and linear.data is not None
    with pytest.raises(StageError, match="linear"):
        output_transfer(out)
