"""Optics of the simulator: slanted-edge MTF against the analytic model, geometry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from rawlab.sim import load_camera
from rawlab.sim.capture import capture
from rawlab.sim.optics import geometry_maps, system_mtf, vignetting_gain
from rawlab.sim.scene import dot_grid, flat_field, slanted_edge


def _ideal_lens(name: str, **changes):
    cam = load_camera(name)
    optics = dataclasses.replace(cam.optics, distortion_k1=0.0, distortion_k2=0.0, vignetting_cos4=False,
                                 vignetting_poly=(), ca_magnification=(1.0, 1.0, 1.0), **changes)
    sensor = dataclasses.replace(cam.sensor, prnu_fraction=0.0, dsnu_e=0.0, hot_pixel_fraction=0.0)
    return dataclasses.replace(cam, optics=optics, sensor=sensor)


def _mtf50(freqs: np.ndarray, mtf: np.ndarray) -> float:
    i = int(np.argmax(mtf < 0.5))
    return float(np.interp(0.5, [mtf[i], mtf[i - 1]], [freqs[i], freqs[i - 1]]))


def _slanted_edge_mtf(image: np.ndarray, geometry: dict) -> tuple[np.ndarray, np.ndarray]:
    """Slanted-edge SFR (ISO 12233 idea): project pixels on the edge normal,
    bin the ESF at 1/4 px (+-100 px: the Airy PSF has long tails), differentiate,
    FFT (noise-free, so no window); corrects the bin and
    derivative sinc factors."""
    h, w = image.shape
    cx, cy = geometry["edge_center_xy"]
    nx, ny = geometry["normal_xy"]
    yy, xx = np.mgrid[0:h, 0:w]
    d = (xx + 0.5 - cx) * nx + (yy + 0.5 - cy) * ny
    keep = (np.abs(d) < 100) & (yy > 16) & (yy < h - 16)
    step = 0.25
    bins = np.floor(d[keep] / step).astype(int)
    bins -= bins.min()
    esf = np.bincount(bins, image[keep]) / np.maximum(np.bincount(bins), 1)
    lsf = np.diff(esf)
    spectrum = np.abs(np.fft.rfft(lsf, 4096))
    freqs = np.fft.rfftfreq(4096, d=step)
    mtf = spectrum / spectrum[0]
    mtf /= np.abs(np.sinc(freqs * step)) ** 2  # bin width and finite difference
    return freqs, mtf


@pytest.mark.parametrize(
    "camera_name, changes",
    [
        ("fullframe", {"psf_sigma_px": 0.7}),
        ("fullframe", {"psf_sigma_px": 1.2}),
        ("phone-1in", {"f_number": 8.0}),  # Airy: diffraction cut-off 0.74 cy/px, MTF50 below Nyquist
    ],
)
def test_slanted_edge_mtf50_matches_analytic(camera_name, changes):
    cam = _ideal_lens(camera_name, **changes)
    scene_ = slanted_edge((256, 256), angle_deg=5.0, low=0.1, high=0.8, supersample=8)
    frame = capture(scene_, cam, exposure_time_s=0.002, noise=False).frame
    data = frame.data - cam.sensor.black_level_dn
    # each CFA phase sees the grey edge at its own level: normalise by its bright side
    grey = np.empty_like(data)
    for dy in (0, 1):
        for dx in (0, 1):
            phase = data[dy::2, dx::2]
            grey[dy::2, dx::2] = phase / np.median(phase[:, -20:])
    assert frame.data.max() < 0.9 * cam.sensor.white_level_dn, "the bright side must not clip"
    freqs, mtf = _slanted_edge_mtf(grey, scene_.geometry)
    f = np.linspace(0, 1, 2001)
    # the mosaic holds R, G, G, B sites: its edge response is the site-weighted mean
    analytic = sum(wt * system_mtf(f, cam, channel=c, width=256) for c, wt in ((0, 0.25), (1, 0.5), (2, 0.25)))
    measured50 = _mtf50(freqs, mtf)
    model50 = _mtf50(f, analytic)
    assert measured50 == pytest.approx(model50, rel=0.02)


def test_geometry_maps_identity_and_motion():
    mx, my = geometry_maps(None, 6, 8)
    assert np.allclose(mx, np.arange(8)[None, :]) and np.allclose(my, np.arange(6)[:, None])
    mx, my = geometry_maps(None, 6, 8, motion=(1.5, -0.25, 0.0))
    assert np.allclose(mx, np.arange(8)[None, :] - 1.5) and np.allclose(my, np.arange(6)[:, None] + 0.25)
    # a 90 degree turn maps the pixel right of the centre to one above it
    mx, my = geometry_maps(None, 9, 9, motion=(0.0, 0.0, 90.0))
    assert mx[4, 8] == pytest.approx(4.0, abs=1e-5) and my[4, 8] == pytest.approx(8.0, abs=1e-5)


def test_distortion_moves_dots_as_the_model_says():
    cam = load_camera("phone-small")
    k1, k2 = cam.optics.distortion_k1, cam.optics.distortion_k2
    h, w = 240, 320
    mx, my = geometry_maps(cam, h, w, channel=1)
    half_diag = 0.5 * np.hypot(h, w)
    # the sensor pixel near the corner looks at a scene point at ideal radius r with r(1+k1 r^2+k2 r^4) = r_d
    y, x = 2, 3
    r_d = np.hypot(x + 0.5 - w / 2, y + 0.5 - h / 2) / half_diag
    r_u = np.hypot(mx[y, x] + 0.5 - w / 2, my[y, x] + 0.5 - h / 2) / half_diag
    assert r_u * (1 + k1 * r_u**2 + k2 * r_u**4) == pytest.approx(r_d, rel=1e-4)


def test_vignetting_is_one_at_centre_and_falls_off():
    cam = load_camera("phone-small")
    v = vignetting_gain(cam, 101, 101)
    assert v[50, 50] == pytest.approx(1.0, abs=1e-3)
    assert v[0, 0] < v[25, 25] < v[50, 50]
    assert v.dtype == np.float32


def test_dot_grid_geometry():
    s = dot_grid((128, 96), spacing_px=32, radius_px=4)
    gain = s.gain
    for x, y in s.geometry["dots"]:
        assert gain[int(y), int(x)] < 0.1
    assert gain[0, 0] > 0.8


def _no_fixed_pattern(cam, **optics_changes):
    return dataclasses.replace(
        cam,
        optics=dataclasses.replace(cam.optics, **optics_changes),
        sensor=dataclasses.replace(cam.sensor, prnu_fraction=0.0, dsnu_e=0.0, hot_pixel_fraction=0.0),
    )


def _dot_centroids(values, xs, ys, expected, half_px, white):
    """Darkness-weighted centroid of the samples within ``half_px`` of each expected position."""
    out = []
    for px, py in expected:
        sel = (np.abs(xs - px) <= half_px) & (np.abs(ys - py) <= half_px)
        weight = np.clip(white - values[sel], 0.0, None)
        out.append([(weight * xs[sel]).sum() / weight.sum(), (weight * ys[sel]).sum() / weight.sum()])
    return np.array(out)


def test_lateral_ca_on_the_dot_grid_matches_the_per_channel_magnification():
    """Each colour's dots, measured on its own CFA sites, sit where the model puts
    them (distortion and magnification m_c), and the R and B images are the G
    image magnified by m_R / m_G and m_B / m_G.  The CA is exaggerated (0.6 % and
    -0.7 %, shifts of about 2.5 px at the corners) so that the ratio is measured
    to a small fraction of itself."""
    ca = (1.006, 1.0, 0.993)
    cam = _no_fixed_pattern(load_camera("phone-small"), ca_magnification=ca, vignetting_cos4=False,
                            vignetting_poly=())
    w, h = 640, 480
    scene_ = dot_grid((w, h), spacing_px=40, radius_px=6)
    data = capture(scene_, cam, exposure_time_s=0.004, noise=False).frame.data - cam.sensor.black_level_dn
    dots = np.array(scene_.geometry["dots"])
    centre = np.array([w / 2.0, h / 2.0])
    half_diag = 0.5 * np.hypot(h, w)
    rel = dots - centre
    r = np.hypot(*rel.T) / half_diag
    o = cam.optics
    measured = {}
    for c, sites in ((0, [(0, 0)]), (1, [(0, 1), (1, 0)]), (2, [(1, 1)])):  # RGGB
        vals, xs, ys = [], [], []
        for dy, dx in sites:
            yy, xx = np.mgrid[dy:h:2, dx:w:2]
            vals.append(data[dy::2, dx::2].ravel())
            xs.append(xx.ravel() + 0.5)
            ys.append(yy.ravel() + 0.5)
        vals, xs, ys = np.concatenate(vals), np.concatenate(xs), np.concatenate(ys)
        # the model, written out: r_d = r m_c (1 + k1 r^2 + k2 r^4)
        scale = ca[c] * (1 + o.distortion_k1 * r**2 + o.distortion_k2 * r**4)
        expected = centre + rel * scale[:, None]
        found = _dot_centroids(vals, xs, ys, expected, 14, np.median(vals))
        np.testing.assert_allclose(found, expected, atol=0.1)
        measured[c] = np.hypot(*(found - centre).T)
    use = r > 0.15  # dots near the centre carry no radial information
    for c in (0, 2):
        ratio = float((measured[c][use] * measured[1][use]).sum() / (measured[1][use] ** 2).sum())
        assert ratio - 1 == pytest.approx(ca[c] / ca[1] - 1, rel=0.02)


def test_vignetting_is_cos4_times_the_polynomial():
    """A flat field's mosaic, each CFA phase over its centre value, against
    cos^4 of the field angle times 1 + a1 r^2 + a2 r^4 (written out here from the
    model's focal length, sensor size and coefficients)."""
    for name in ("phone-small", "phone-1in", "fullframe"):
        cam = _no_fixed_pattern(load_camera(name))
        w, h = 160, 120
        frame = capture(flat_field((w, h), reflectance=0.9), cam, exposure_time_s=0.002, noise=False).frame
        data = frame.data.astype(np.float64) - cam.sensor.black_level_dn
        assert frame.data.max() < cam.sensor.white_level_dn
        s, o = cam.sensor, cam.optics
        yy, xx = np.mgrid[0:h, 0:w]
        r = np.hypot(xx + 0.5 - w / 2, yy + 0.5 - h / 2) / (0.5 * np.hypot(h, w))
        half_diag_mm = 0.5 * np.hypot(s.width_px, s.height_px) * s.pixel_pitch_um * 1e-3
        theta = np.arctan(r * half_diag_mm / o.focal_length_mm)
        a1, a2 = o.vignetting_poly
        model = np.cos(theta) ** 4 * (1 + a1 * r**2 + a2 * r**4)
        for dy in (0, 1):
            for dx in (0, 1):
                mid = (slice(h // 4 - 1, h // 4 + 1), slice(w // 4 - 1, w // 4 + 1))  # the 4 sites at the centre
                phase, expect = data[dy::2, dx::2], model[dy::2, dx::2]
                centre = phase[mid].mean()
                expect = expect / expect[mid].mean()
                # the PSF reflects at the border: leave out its 2-pixel reach there
                np.testing.assert_allclose((phase / centre)[2:-2, 2:-2], expect[2:-2, 2:-2], rtol=1e-3)
        assert model[0, 0] < 0.75  # a real fall-off is tested, not a flat one
