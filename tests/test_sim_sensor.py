"""Sensor model of the simulator: photon transfer (EMVA 1288) and NoiseProfile."""

from __future__ import annotations

import importlib
import logging
import os

import numpy as np
import pytest

from rawlab.sim import load_camera
from rawlab.sim.capture import capture
from rawlab.sim.scene import flat_field
from rawlab.sim.sensor import electrons_to_dn, fixed_patterns, noise_profile

CAMERA = load_camera("phone-small")
ISO = 800.0  # read noise ~6 DN: well above the quantisation step
SIZE = 512  # the flat field; the statistics use its centre half (256 x 256)
EXPOSURE_S = 0.01  # fixed: the levels come from the scene luminance (EMVA 1288 varies the irradiance)
LEVELS_E = np.linspace(15.0, 250.0, 12)  # mean photo-electrons; saturation is 959 DN * 0.375 e/DN = 360 e
PROBE_CD_M2 = 20.0


def _require(module: str):
    """Import an optional test dependency: skip without it, but fail in CI."""
    try:
        return importlib.import_module(module)
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail(f"CI run without the {module} package (pip install emva1288)")
        pytest.skip(f"{module} is not installed")


def _green_sites(frame) -> np.ndarray:
    """The centre crop's green CFA sites (RGGB: both phases side by side), DN."""
    c = slice(SIZE // 4, 3 * SIZE // 4)
    data = frame.data[c, c].astype(np.float64)
    return np.concatenate([data[0::2, 1::2], data[1::2, 0::2]], axis=1)


@pytest.fixture(scope="module")
def flat_pairs() -> tuple[dict[float, tuple[np.ndarray, np.ndarray]], float]:
    """EMVA 1288 flat-field pairs from full captures (lens, vignetting, PRNU,
    DSNU, dark current, hot pixels all in): mean photo-electrons -> (frame a,
    frame b) of the green sites; 0 is the dark pair.  Also the expected
    photo-electrons per cd/m^2 of the lit field (noise-free probe minus dark)."""
    lit, dark = flat_field((SIZE, SIZE), reflectance=0.9), flat_field((SIZE, SIZE), reflectance=0.0)

    def shot(scene_, luminance, **kw):
        return _green_sites(capture(scene_, CAMERA, iso=ISO, exposure_time_s=EXPOSURE_S,
                                    scene_luminance_cd_m2=luminance, **kw).frame)

    probe = shot(lit, PROBE_CD_M2, noise=False) - shot(dark, PROBE_CD_M2, noise=False)
    e_per_cd_m2 = float(probe.mean()) * CAMERA.gain_e_per_dn(ISO) / PROBE_CD_M2
    pairs = {0.0: (shot(dark, PROBE_CD_M2, seed=100), shot(dark, PROBE_CD_M2, seed=101))}
    for i, level in enumerate(LEVELS_E):
        luminance = float(level) / e_per_cd_m2
        pairs[float(level)] = (shot(lit, luminance, seed=200 + 2 * i), shot(lit, luminance, seed=201 + 2 * i))
    return pairs


def _mean_var(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """EMVA 1288 temporal statistics of a pair: mean and var(a - b) / 2 (the
    difference removes the fixed patterns and the vignetting)."""
    return float((a + b).mean() / 2), float(np.var(a - b) / 2)


def _photon_transfer(pairs) -> tuple[float, float]:
    """rawlab's estimate: system gain K (DN/e-) as the slope through the origin
    of temporal variance against mean (dark subtracted), and read noise (e-)."""
    dark_mean, dark_var = _mean_var(*pairs[0.0])
    signal, noise = [], []
    for level, (a, b) in pairs.items():
        if level == 0.0:
            continue
        m, v = _mean_var(a, b)
        signal.append(m - dark_mean)
        noise.append(v - dark_var)
    signal, noise = np.array(signal), np.array(noise)
    K_dn_per_e = float((signal * noise).sum() / (signal * signal).sum())
    return K_dn_per_e, float(np.sqrt(dark_var - 1.0 / 12.0) / K_dn_per_e)


def test_photon_transfer_gain_and_read_noise(flat_pairs):
    span = CAMERA.sensor.white_level_dn - CAMERA.sensor.black_level_dn
    top = flat_pairs[float(LEVELS_E[-1])][0].mean() - flat_pairs[0.0][0].mean()
    assert 0.6 * span < top < 0.8 * span  # a real range, below saturation
    K_dn_per_e, read_noise_e = _photon_transfer(flat_pairs)
    assert 1.0 / K_dn_per_e == pytest.approx(CAMERA.gain_e_per_dn(ISO), rel=0.02)
    assert read_noise_e == pytest.approx(CAMERA.sensor.read_noise_e, rel=0.05)


def test_photon_transfer_agrees_with_emva1288_package(flat_pairs, monkeypatch):
    # emva1288 1.0.2 still calls np.asfarray, which NumPy 2 removed.
    monkeypatch.setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False)
    emva_routines = _require("emva1288.process.routines")
    from emva1288.process.data import Data1288
    from emva1288.process.results import Results1288

    temporal = {EXPOSURE_S: {}}
    qe = CAMERA.sensor.quantum_efficiency_peak
    for level, (a, b) in flat_pairs.items():
        imgs = emva_routines.get_int_imgs([a.astype(np.int64), b.astype(np.int64)])
        temporal[EXPOSURE_S][level / qe] = {
            "sum": np.sum(imgs["sum"]), "pvar": np.sum(imgs["pvar"]), "dmean": imgs["dmean"],
        }
    a, b = flat_pairs[float(LEVELS_E[-1])]
    d, e = flat_pairs[0.0]
    spatial_bright = emva_routines.get_int_imgs([a.astype(np.int64), b.astype(np.int64)])
    spatial_dark = emva_routines.get_int_imgs([d.astype(np.int64), e.astype(np.int64)])
    height, width = a.shape
    data = {
        "width": width, "height": height, "temporal": temporal,
        "spatial": {EXPOSURE_S: {0.0: spatial_dark, float(LEVELS_E[-1]) / qe: spatial_bright}},
    }
    results = Results1288(Data1288(data, loglevel=logging.WARNING).data, loglevel=logging.WARNING)
    K_ours, read_ours = _photon_transfer(flat_pairs)
    gain_model = CAMERA.gain_e_per_dn(ISO)
    assert 1.0 / results.K == pytest.approx(gain_model, rel=0.05)
    assert 1.0 / results.K == pytest.approx(1.0 / K_ours, rel=0.05)
    assert results.sigma_d == pytest.approx(CAMERA.sensor.read_noise_e, rel=0.05)
    assert results.sigma_d == pytest.approx(read_ours, rel=0.05)
    assert results.QE / 100 == pytest.approx(qe, rel=0.05)


def test_noise_profile_round_trip():
    """(S, O) written for the frame are recovered from pair statistics (10..90 % of white)."""
    cam = load_camera("fullframe")
    iso = 400.0
    scene_ = flat_field((384, 384), reflectance=0.9)
    s_model, o_model = noise_profile(cam, iso)
    black, span = cam.sensor.black_level_dn, cam.sensor.white_level_dn - cam.sensor.black_level_dn
    centre = (slice(96, 288), slice(96, 288))  # vignetting < 1 % here, so nothing clips at 90 %
    probe = capture(scene_, cam, iso=iso, exposure_time_s=0.01, noise=False).frame.data[centre]
    brightest = max(probe[dy::2, dx::2].mean() for dy in (0, 1) for dx in (0, 1)) - black
    xs, vs = [], []
    for k, target in enumerate(np.linspace(0.1, 0.9, 9)):
        t = 0.01 * target * span / brightest
        a = capture(scene_, cam, iso=iso, exposure_time_s=t, seed=10 + k).frame
        b = capture(scene_, cam, iso=iso, exposure_time_s=t, seed=50 + k).frame
        assert a.sensor.noise_profile[0] == pytest.approx((s_model, o_model))
        for dy in (0, 1):
            for dx in (0, 1):
                ga = (a.data[centre][dy::2, dx::2].astype(np.float64) - black) / span
                gb = (b.data[centre][dy::2, dx::2].astype(np.float64) - black) / span
                xs.append(float((ga + gb).mean() / 2))
                vs.append(float(np.var(ga - gb) / 2))
    xs, vs = np.array(xs), np.array(vs)
    assert xs.max() == pytest.approx(0.9, abs=0.02) and xs.min() < 0.1
    s_fit, o_fit = np.polyfit(xs, vs, 1)
    assert s_fit == pytest.approx(s_model, rel=0.03)
    # O is under 1 % of the variance at 10 % of white, so it cannot be fitted from
    # 10..90 % data: compare the predicted variance there, and measure O on a dark pair
    np.testing.assert_allclose(s_fit * xs + o_fit, s_model * xs + o_model, rtol=0.03)
    black_scene = flat_field((384, 384), reflectance=0.0)
    dark_a = capture(black_scene, cam, iso=iso, exposure_time_s=1e-3, seed=90).frame.data
    dark_b = capture(black_scene, cam, iso=iso, exposure_time_s=1e-3, seed=91).frame.data
    o_dark = np.var((dark_a.astype(np.float64) - dark_b) / span) / 2
    assert o_dark == pytest.approx(o_model, rel=0.03)


def test_fixed_patterns_are_fixed_and_seeded_noise_reproducible():
    s = CAMERA.sensor
    f1, f2 = fixed_patterns(s, 64, 64), fixed_patterns(s, 64, 64)
    assert f1 is f2
    assert np.std(f1.prnu_gain) == pytest.approx(s.prnu_fraction, rel=0.15)
    field = np.full((64, 64), 100.0, np.float32)
    a = electrons_to_dn(field, CAMERA, iso=100, exposure_time_s=0.01, rng=np.random.default_rng(3))
    b = electrons_to_dn(field, CAMERA, iso=100, exposure_time_s=0.01, rng=np.random.default_rng(3))
    assert np.array_equal(a, b)
    assert a.dtype == np.float32 and np.all(a == np.rint(a))
    assert a.min() >= 0 and a.max() <= s.white_level_dn


def test_clipping_at_white_and_full_well():
    field = np.full((32, 32), 1e7, np.float32)
    dn = electrons_to_dn(field, CAMERA, iso=50, exposure_time_s=0.01, rng=np.random.default_rng(0))
    assert dn.max() == CAMERA.sensor.white_level_dn
    assert np.all(dn >= CAMERA.sensor.white_level_dn - 1)
