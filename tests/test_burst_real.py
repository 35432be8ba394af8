"""The real Huawei P9 pairs merge without ghosting.

Black level: unknown for these dumps; the data reaches 0 DN and its 0.1th
percentile is 1-2 DN, so any pedestal is at most 2 DN: black 0 is assumed.
The 8-bit frame holds the top 8 of 10 bits: with white 255 its normalised
values are on the 10-bit frame's scale (a factor 4 in DN).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from rawlab.burst import merge_burst
from rawlab.io.bayer import read_bayer

PAIRS = {
    "box": (("huawei_p9_pair_box/RAW_00016.raw10", dict(bits=10, packing="p9_raw10")),
            ("huawei_p9_pair_box/RAW_00017.raw8", dict(bits=8))),
    "keyboard": (("huawei_p9_pair_keyboard/RAW_00018.raw12", dict(bits=10, packing="p9_raw12")),
                 ("huawei_p9_pair_keyboard/RAW_00019.raw16", dict(bits=10))),
}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_huawei_p9_pair_merges_without_ghosting(shared_data, name):
    frames = [read_bayer(shared_data / "burst" / path, width=1920, height=1080, cfa="RGGB", black=0.0, **kw)
              for path, kw in PAIRS[name]]
    merged, burst = merge_burst(frames)
    ref = burst.planes[burst.ref_index].mean(axis=0)
    other = burst.planes[1 - burst.ref_index].mean(axis=0)
    out = merged.data.reshape(540, 2, 960, 2).mean(axis=(1, 3))
    gy, gx = np.gradient(cv2.GaussianBlur(ref, (0, 0), 2.0))
    grad = np.hypot(gy, gx)
    edges = grad > np.percentile(grad, 95)  # high-gradient regions, where ghosts show
    S, O = burst.noise_per_plane.mean(axis=0)
    noise_rms = float(np.sqrt(np.mean((S * np.maximum(ref[edges], 0) + O) / 4)))
    rms_merged = float(np.sqrt(np.mean((out - ref)[edges] ** 2)))
    rms_naive = float(np.sqrt(np.mean(((ref + other) / 2 - ref)[edges] ** 2)))
    # real noise reduction in flat regions (the lowest-gradient fifth of the frame):
    # the variance of the high-pass residual, merged over reference (0.5 for two
    # frames averaged fully; a merge that returned the reference would give 1)
    flat = grad < np.percentile(grad, 20)

    def high_pass(x):
        return x - cv2.GaussianBlur(x, (0, 0), 1.5)

    var_ratio = float(np.var(high_pass(out)[flat]) / np.var(high_pass(ref)[flat]))
    print(f"{name}: rms(merged - ref) {rms_merged:.5f}, rms(plain average - ref) {rms_naive:.5f}, "
          f"ref noise {noise_rms:.5f}; flat-region noise variance merged / reference {var_ratio:.3f}")
    # the merge stays within the reference's own noise at edges (no ghosts); a plain average does not
    assert rms_merged <= 1.5 * noise_rms
    assert rms_merged <= 0.3 * rms_naive
    # and it has less noise than the reference in flat regions, and says so in its NoiseProfile
    assert var_ratio < 0.7
    assert merged.sensor.noise_profile[0][1] < O
