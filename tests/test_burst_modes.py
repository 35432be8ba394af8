"""Night mode, bracketed HDR and the ``rawlab burst`` command."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from rawlab.burst import merge
from rawlab.burst.cli import add_burst_parser, run_burst
from rawlab.burst.hdr import exposure_gains
from rawlab.burst.night import frames_needed
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, SensorInfo
from rawlab.errors import InvalidParams

RGGB = CfaPattern.from_string("RGGB")


def _frame(data, S, O, t=0.01):
    return Frame(data=np.asarray(data, np.float32), encoding=Encoding.CFA,
                 sensor=SensorInfo(cfa=RGGB, black_level_dn=0.0, white_level_dn=[1.0], noise_profile=((S, O),)),
                 capture=CaptureInfo(exposure_time_s=t, iso=100.0))


def test_frames_needed_follows_the_noise_model():
    # x = 0.01, S = 1e-4, O = 1e-6: SNR_1 = 0.01 / sqrt(2e-6) = 7.07; target 20 -> (20/7.07)^2 = 8
    assert frames_needed(0.01, noise_scale=1e-4, noise_offset=1e-6, target_snr=20.0) == 8
    assert frames_needed(0.5, noise_scale=1e-4, noise_offset=1e-6, target_snr=20.0) == 1
    with pytest.raises(InvalidParams):
        frames_needed(0.1, noise_scale=1e-4, noise_offset=1e-6, target_snr=0.0)


def test_night_mode_merges_and_lifts_without_raising_noise():
    rng = np.random.default_rng(0)
    clean = np.full((96, 128), 0.01, np.float32)
    S, O = 1e-4, 1e-6
    frames = [_frame(clean + rng.standard_normal(clean.shape).astype(np.float32) * np.sqrt(S * clean + O), S, O)
              for _ in range(12)]
    out = merge(frames, mode="night", target_snr=20.0)
    lift = out.color.baseline_exposure_ev
    assert lift == pytest.approx(np.log2(0.18 / 0.01), abs=0.2)
    snr_single = 0.01 / np.std(frames[0].data)
    snr_out = np.mean(out.data) / np.std(out.data)
    assert snr_out >= 0.9 * 20.0 and snr_out > 2.5 * snr_single  # 8 frames: sqrt(8) = 2.8x
    assert out.sensor.noise_profile[0][1] == pytest.approx(O / 8, rel=0.1)


def test_hdr_bracket_extends_range_and_weights_by_snr():
    rng = np.random.default_rng(1)
    h, w = 96, 128
    radiance = np.exp(np.linspace(np.log(1e-3), np.log(60.0), w, dtype=np.float32))[None, :].repeat(h, 0)
    S, O = 1e-4, 1e-6
    evs = [0.0, -3.0, -6.0]
    frames = []
    for ev in evs:
        x = radiance * np.float32(2.0**ev)
        noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(S * np.minimum(x, 1) + O)
        frames.append(_frame(np.minimum(noisy, 1.0), S, O, t=0.01 * 2.0**ev))
    np.testing.assert_allclose(exposure_gains(frames), [64.0, 8.0, 1.0])
    out = merge(frames, mode="hdr")
    expected = radiance / 64.0  # units of the shortest frame
    ok = expected < 0.9
    rel = np.abs(out.data[ok] - expected[ok]) / np.maximum(expected[ok], 1e-3)
    assert np.median(rel) < 0.05
    assert out.color.baseline_exposure_ev == pytest.approx(3.0)  # reference: the median exposure (-3 EV)
    # shadows keep the long frame's SNR (weights by SNR, not an average)
    dark = expected < 2e-4
    assert np.std(out.data[dark] - expected[dark]) < 2.0 * np.sqrt(O) / 64.0


def test_hdr_rejects_a_ghost_where_the_reference_is_clipped():
    """A dark object seen only by the short frame, inside an area where the
    reference is clipped, contradicts the reference (clipped = at least its clip
    level): it is left out, and the merge is not darker than the reference there."""
    rng = np.random.default_rng(3)
    h, w = 128, 256
    yy, xx = np.mgrid[0:h, 0:w]
    # radiance in units of the short frame
    radiance = (0.02 + 0.01 * np.sin(xx / 3.0) * np.cos(yy / 4.0)).astype(np.float32)
    radiance[:, 96:] = 0.6  # a bright area: clipped in the reference (x8) and the long frame (x64)
    S, O = 1e-4, 1e-6
    frames = []
    for ev in (0.0, -3.0, -6.0):
        x = radiance * np.float32(2.0 ** (ev + 6))
        if ev == -6.0:
            x = x.copy()
            x[24:104, 136:216] = 0.02  # the ghost: only in the short frame, too large to be aligned away
        noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(S * np.minimum(x, 1) + O)
        frames.append(_frame(np.minimum(noisy, 1.0), S, O, t=0.01 * 2.0**ev))
    out = merge(frames, mode="hdr")
    ghost = out.data[40:88, 152:200]
    assert ghost.min() >= 0.95 / 8 - 0.01  # the reference's clip level, in units of the short frame
    bright = out.data[4:20, 110:250]
    assert np.median(bright) == pytest.approx(0.6, rel=0.05)


@pytest.mark.parametrize("disc_radiance", [0.03, 0.015])
def test_hdr_moving_object_is_not_ghosted_where_the_reference_is_unclipped(disc_radiance):
    """A low-contrast disc moves 30 px a frame across a textured, static scene in a
    3-frame bracket (0, -2, -4 EV; the reference is the median exposure, unclipped
    everywhere): inside the disc's region in the reference, the merge's PSNR is not
    below the reference frame's by more than 0.5 dB (no ghost), while the static
    background gains from the longer frame."""
    import cv2

    rng = np.random.default_rng(5)
    h, w = 128, 192
    t = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    texture = 0.004 + 0.04 * (t - t.min()) / (t.max() - t.min())  # radiance, units of the short frame
    S, O = 1e-4, 1e-6
    evs = (0.0, -2.0, -4.0)
    radius, speed = 18, 30
    frames, truths = [], []
    for k, ev in enumerate(evs):
        radiance = texture.copy()
        cv2.circle(radiance, (96 + speed * (k - 1), 64), radius, disc_radiance, -1)
        truths.append(radiance)
        x = radiance * np.float32(2.0 ** (ev + 4))
        noisy = x + rng.standard_normal(x.shape).astype(np.float32) * np.sqrt(S * np.minimum(x, 1) + O)
        frames.append(_frame(np.minimum(noisy, 1.0), S, O, t=0.01 * 2.0**ev))
    # nothing clipped in the reference (nor in the long frame)
    assert frames[1].data.max() < 0.95 and frames[0].data.max() < 0.95
    out = merge(frames, mode="hdr")
    reference = frames[1].data / 4.0  # the reference (-2 EV), in units of the short frame
    truth = truths[1]

    def psnr(a, region):
        return 10 * np.log10(0.05**2 / np.mean((a[region] - truth[region]) ** 2))

    region = np.zeros((h, w), np.uint8)
    cv2.circle(region, (96, 64), radius + 4, 1, -1)
    region = region.astype(bool)
    static = np.ones((h, w), bool)
    for k in range(3):
        m = np.zeros((h, w), np.uint8)
        cv2.circle(m, (96 + speed * (k - 1), 64), radius + 8, 1, -1)
        static &= ~m.astype(bool)
    static[:8] = static[-8:] = False
    static[:, :8] = static[:, -8:] = False
    p_ref, p_out = psnr(reference, region), psnr(out.data, region)
    b_ref, b_out = psnr(reference, static), psnr(out.data, static)
    print(f"HDR moving disc {disc_radiance}: object region PSNR reference {p_ref:.2f} dB, merged {p_out:.2f} dB; "
          f"static background {b_ref:.2f} -> {b_out:.2f} dB")
    assert p_out >= p_ref - 0.5
    assert b_out >= b_ref + 3.0  # the merge is a merge, not the reference


def test_cli_writes_a_dng(tmp_path):
    from rawlab.io.dng_write import write_dng
    from rawlab.io.read import read

    rng = np.random.default_rng(2)
    paths = []
    for i in range(3):
        f = _frame(0.3 + 0.02 * rng.standard_normal((64, 96)), 1e-4, 1e-5)
        paths.append(str(write_dng(f, tmp_path / f"f{i}.dng")))
    parser = argparse.ArgumentParser()
    add_burst_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["burst", *paths, "-o", str(tmp_path / "merged.dng"), "--dng"])
    assert run_burst(args) == 0
    merged = read(tmp_path / "merged.dng")
    assert merged.data.shape == (64, 96)
    args = parser.parse_args(["burst", paths[0], "-o", str(tmp_path / "x.dng"), "--dng"])
    with pytest.raises(InvalidParams):
        run_burst(args)
