"""Bracketed HDR (issue 5): the merged frame's dynamic range, measured with the
lab, is at least 4 EV above the single base exposure.

Measurement (ISO 15739 as implemented by :func:`rawlab.lab.tone.measure_tone_steps`:
saturation luminance over the luminance where SNR = 1, SNR = mean / spatial
standard deviation inside a uniform step) on a simulated grey-step chart of
40 steps, 0.6 EV apart (23 EV in all), captured by the simulator's phone-small
camera as a bracket of -4, -2, 0, +2 EV around the base exposure.  The same
steps (green sites, away from the step borders) are measured on the single
base frame and on ``merge(frames, mode="hdr")``; both are linear with black
at 0, saturating at 1 (raw white for the single frame, the shortest frame's
white for the merge).

Why a step chart and not the simulator's window scene: that scene's
luminances form a dim room (0.01..0.2, 4.3 EV) and a window 13 EV brighter
(1 EV of sky gradient), with nothing in between, so the single frame's
saturation falls in the gap and the lab's saturation estimate becomes a
10 EV extrapolation; a step chart puts measured steps at every level.

The camera's lens distortion and vignetting are turned off (the chart's
geometry is then the patch boxes exactly and it is uniformly lit, as ISO
15739 asks; a 1024 px wide chart would otherwise lose 1 EV at its ends) and
the scene is bright (short exposures: the sensor's dark current stays
negligible); the bracket is taken from a tripod (the
chart's steps repeat every 26 px, so a hand-held bracket of it aligns
ambiguously; alignment under hand-shake is tested in ``test_burst_align``).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rawlab.burst import merge
from rawlab.burst._planes import normalized_mosaic
from rawlab.burst.hdr import exposure_gains
from rawlab.lab.tone import measure_tone_steps
from rawlab.sim.burst import capture_burst
from rawlab.sim.camera import load_camera
from rawlab.sim.capture import capture
from rawlab.sim.scene import gray_steps

BRACKET_EV = [-4.0, -2.0, 0.0, 2.0]  # frame 2 is the base exposure (and the merge's reference)
#: The base exposure saturates near step 11 of 40: steps remain above the merge's saturation.
BASE_EV_OVER_METERED = 5.0
MARGIN_PX = 5


@pytest.fixture(scope="module")
def bracket():
    camera = load_camera("phone-small")
    camera = dataclasses.replace(
        camera, optics=dataclasses.replace(
            camera.optics, distortion_k1=0.0, distortion_k2=0.0, vignetting_cos4=False, vignetting_poly=(),
            ca_magnification=(1.0, 1.0, 1.0),
        ),
    )
    chart = gray_steps((1024, 192), n_steps=40, density_step=0.18)
    chart = dataclasses.replace(chart, white_luminance_cd_m2=5e4)
    metered_s = capture(chart, camera, noise=False).truth["exposure_time_s"]
    base_s = metered_s * 2**BASE_EV_OVER_METERED
    captures = capture_burst(chart, camera, bracket_ev=BRACKET_EV, exposure_time_s=base_s, seed=1,
                             shake_px=0.0, shake_deg=0.0)
    frames = [c.frame for c in captures]
    return chart, frames, merge(frames, mode="hdr")


def _measure(mosaic, chart, cfa):
    green = cfa.color_index_map(*mosaic.shape) == 1
    patches, luminance = [], []
    for step in chart.geometry["steps"]:
        top, left, bottom, right = step["box"]
        win = (slice(top + MARGIN_PX, bottom - MARGIN_PX), slice(left + MARGIN_PX, right - MARGIN_PX))
        patches.append(mosaic[win][green[win]])
        luminance.append(step["reflectance"])
    return measure_tone_steps(patches, relative_luminance=luminance, clip_level=1.0)


def test_bracketed_hdr_extends_dynamic_range_by_4_ev(bracket):
    chart, frames, merged = bracket
    base = 2
    cfa = frames[base].sensor.cfa
    single = _measure(normalized_mosaic(frames[base]), chart, cfa)
    hdr = _measure(merged.data, chart, cfa)
    gain_ev = hdr.dynamic_range_snr1_ev - single.dynamic_range_snr1_ev
    print(f"single: DR {single.dynamic_range_snr1_ev:.2f} EV (sat {single.saturation_luminance:.3g}, "
          f"SNR=1 at {single.luminance_snr1:.3g}); merged: DR {hdr.dynamic_range_snr1_ev:.2f} EV "
          f"(sat {hdr.saturation_luminance:.3g}, SNR=1 at {hdr.luminance_snr1:.3g}); gain {gain_ev:.2f} EV; "
          f"SNR=10 range {single.dynamic_range_snr10_ev:.2f} -> {hdr.dynamic_range_snr10_ev:.2f} EV")
    # the chart brackets both ends for both frames: a real measurement, not an edge of the chart
    assert single.saturation_reached and hdr.saturation_reached
    assert np.isfinite(single.luminance_snr1) and np.isfinite(hdr.luminance_snr1)
    # the single frame: about log2(full well / read noise) of this sensor (5754 e / ~2.3 e: 11.3 EV)
    assert 9.0 < single.dynamic_range_snr1_ev < 12.5
    # highlights: the shortest frame saturates 4 EV later
    assert np.log2(hdr.saturation_luminance / single.saturation_luminance) == pytest.approx(4.0, abs=0.3)
    assert gain_ev >= 4.0
    # SNR = 10 (the 'acceptable' range) gains too
    assert hdr.dynamic_range_snr10_ev - single.dynamic_range_snr10_ev >= 4.0


def test_hdr_merge_is_linear_in_the_base_exposures_units(bracket):
    """The merge is the radiance in units of the shortest frame: x gain equals the
    base frame wherever the base frame is well exposed (no bias the SNR could hide)."""
    chart, frames, merged = bracket
    g_ref = exposure_gains(frames)[2]
    cfa = frames[2].sensor.cfa
    single = _measure(normalized_mosaic(frames[2]), chart, cfa)
    hdr = _measure(merged.data, chart, cfa)
    ok = (single.mean > 0.05) & (single.mean < 0.8)
    assert ok.sum() >= 4
    np.testing.assert_allclose(hdr.mean[ok] * g_ref, single.mean[ok], rtol=0.01)
    # above the base frame's saturation the merge keeps rising with the chart (log-log slope 1)
    above = (single.clipped_fraction > 0.5) & (hdr.mean < 0.8)
    assert above.sum() >= 4
    slope = np.polyfit(np.log(hdr.relative_luminance[above]), np.log(hdr.mean[above]), 1)[0]
    assert slope == pytest.approx(1.0, abs=0.05)
