"""Capture of the simulator: exposure physics (f-number, luminance, metering),
the ground truth's conventions (motion, hot pixels) and its independence from
the develop stages."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.sim import capture_burst, load_camera
from rawlab.sim.capture import capture, write_captures
from rawlab.sim.scene import dot_grid, flat_field

pytestmark = pytest.mark.filterwarnings("ignore:.*Aligning")

SIM_DIR = Path(__file__).resolve().parents[1] / "src" / "rawlab" / "sim"


def _quiet(name: str, **optics_changes):
    """A camera without fixed patterns (so means are exact expectations)."""
    cam = load_camera(name)
    return dataclasses.replace(
        cam,
        optics=dataclasses.replace(cam.optics, **optics_changes),
        sensor=dataclasses.replace(cam.sensor, prnu_fraction=0.0, dsnu_e=0.0, hot_pixel_fraction=0.0,
                                   dark_current_e_per_s=0.0),
    )


def _electrons(cap) -> float:
    """Mean photo-electrons of the centre of a noise-free capture (green sites)."""
    cam = load_camera(cap.truth["camera"])
    data = cap.frame.data - cam.sensor.black_level_dn
    h, w = data.shape
    centre = data[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
    return float(centre[0::2, 1::2].mean()) * cap.truth["noise"]["conversion_gain_e_per_dn"]


@pytest.mark.parametrize("camera_name", ["phone-small", "phone-1in", "fullframe"])
def test_one_stop_of_f_number_halves_the_electrons(camera_name):
    cam = _quiet(camera_name)
    scene_ = flat_field((96, 64), reflectance=0.5)
    n0 = cam.optics.f_number
    base = capture(scene_, cam, exposure_time_s=0.002, noise=False)
    stopped = capture(scene_, cam, exposure_time_s=0.002, f_number=n0 * np.sqrt(2), noise=False)
    wide = capture(scene_, cam, exposure_time_s=0.002, f_number=n0 * 2, noise=False)
    assert _electrons(stopped) / _electrons(base) == pytest.approx(0.5, rel=1e-3)
    assert _electrons(wide) / _electrons(base) == pytest.approx(0.25, rel=1e-3)
    # the camera equation E = pi L / (4 N^2): electrons at the white centre, from first principles
    assert stopped.truth["electrons_per_white_center"] == pytest.approx(base.truth["electrons_per_white_center"] / 2)
    assert stopped.truth["f_number"] == pytest.approx(n0 * np.sqrt(2))
    assert stopped.frame.capture.f_number == pytest.approx(n0 * np.sqrt(2))
    assert stopped.frame.lens.f_number_min_at_min_focal == n0  # the lens's widest aperture stays
    # metered: the shutter opens 2x longer for one stop, so the exposure stays
    metered0 = capture(scene_, cam, noise=False)
    metered1 = capture(scene_, cam, f_number=n0 * np.sqrt(2), noise=False)
    assert metered1.truth["exposure_time_s"] == pytest.approx(2 * metered0.truth["exposure_time_s"])
    assert _electrons(metered1) == pytest.approx(_electrons(metered0), rel=1e-3)


def test_scene_luminance_scales_the_electrons_and_the_metered_shutter():
    cam = _quiet("phone-small")
    scene_ = flat_field((96, 64), reflectance=0.5)
    dim = capture(scene_, cam, exposure_time_s=0.002, scene_luminance_cd_m2=50.0, noise=False)
    bright = capture(scene_, cam, exposure_time_s=0.002, scene_luminance_cd_m2=200.0, noise=False)
    assert _electrons(bright) / _electrons(dim) == pytest.approx(4.0, rel=1e-3)
    assert bright.truth["white_luminance_cd_m2"] == 200.0
    assert bright.truth["mean_luminance_cd_m2"] == pytest.approx(0.5 * 200.0, rel=1e-3)
    # ISO 2720 reflected-light metering: t = K N^2 / (L S), K = 12.5
    metered = capture(scene_, cam, iso=100, scene_luminance_cd_m2=80.0, noise=False)
    expect = 12.5 * cam.optics.f_number**2 / (0.5 * 80.0 * 100)
    assert metered.truth["exposure_time_s"] == pytest.approx(expect, rel=1e-3)
    # the default is the scene's own light level
    same = capture(dataclasses.replace(scene_, white_luminance_cd_m2=50.0), cam, exposure_time_s=0.002, noise=False)
    np.testing.assert_array_equal(same.frame.data, dim.frame.data)


def test_electrons_match_the_camera_equation():
    """Photo-electrons at the white centre from the photometry written out:
    E = pi L / (4 N^2) (lx), photons at 555 nm (683 lm/W), QE at peak, pixel area."""
    cam = _quiet("fullframe")
    cap = capture(flat_field((64, 64), reflectance=1.0), cam, exposure_time_s=0.01, scene_luminance_cd_m2=100.0,
                  f_number=2.8, noise=False)
    e_lux = np.pi * 100.0 / (4 * 2.8**2)
    watts_per_m2 = e_lux / 683.0
    photons = watts_per_m2 * (cam.sensor.pixel_pitch_um * 1e-6) ** 2 * 0.01 / (6.62607015e-34 * 299792458.0 / 550e-9)
    assert cap.truth["electrons_per_white_center"] == pytest.approx(photons * cam.sensor.quantum_efficiency_peak,
                                                                    rel=0.02)


def test_burst_passes_f_number_and_luminance_to_every_frame():
    cam = _quiet("phone-small")
    frames = capture_burst(flat_field((64, 48), reflectance=0.5), cam, n_frames=3, exposure_time_s=0.002,
                           f_number=4.0, scene_luminance_cd_m2=123.0, shake_px=0.0, shake_deg=0.0)
    assert [f.truth["f_number"] for f in frames] == [4.0] * 3
    assert [f.truth["white_luminance_cd_m2"] for f in frames] == [123.0] * 3


def test_exposure_arguments_are_checked():
    scene_ = flat_field((32, 32))
    with pytest.raises(InvalidParams, match="f-number"):
        capture(scene_, "phone-small", f_number=0.1)
    with pytest.raises(InvalidParams, match="luminance"):
        capture(scene_, "phone-small", scene_luminance_cd_m2=-5.0)
    with pytest.raises(InvalidParams, match="bracket"):
        capture_burst(scene_, "phone-small", n_frames=5, bracket_ev=[-1.0, 0.0, 1.0])
    with pytest.raises(InvalidParams, match="at least 1 frame"):
        capture_burst(scene_, "phone-small", n_frames=0)


def _centroids(image: np.ndarray, expected: np.ndarray, half_px: float, white: float) -> np.ndarray:
    h, w = image.shape
    yy, xx = np.mgrid[0:h, 0:w]
    out = []
    for px, py in expected:
        sel = (np.abs(xx + 0.5 - px) <= half_px) & (np.abs(yy + 0.5 - py) <= half_px)
        weight = np.clip(white - image[sel], 0.0, None)
        out.append([(weight * (xx[sel] + 0.5)).sum() / weight.sum(), (weight * (yy[sel] + 0.5)).sum() / weight.sum()])
    return np.array(out)


def test_motion_convention_in_the_truth():
    """The documented convention: a scene dot at S lies at R (S - c) + c + d in the
    frame's truth and in its mosaic; ``scene_to_frame_affine`` is that map."""
    cam = _quiet("fullframe", distortion_k1=0.0, distortion_k2=0.0, ca_magnification=(1.0, 1.0, 1.0),
                 vignetting_cos4=False, vignetting_poly=())
    w, h = 320, 240
    scene_ = dot_grid((w, h), spacing_px=40, radius_px=6)
    motion = (3.3, -2.1, 2.0)
    cap = capture(scene_, cam, exposure_time_s=0.003, motion=motion, noise=False)
    m = cap.truth["motion"]
    assert m["center_xy"] == [w / 2, h / 2]
    a = np.deg2rad(motion[2])
    R = np.array([[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
    dots = np.array(scene_.geometry["dots"])
    expected = (dots - [w / 2, h / 2]) @ R.T + [w / 2, h / 2] + motion[:2]
    affine = np.array(m["scene_to_frame_affine"])
    np.testing.assert_allclose(dots @ affine[:, :2].T + affine[:, 2], expected, atol=1e-9)
    inside = (expected[:, 0] > 24) & (expected[:, 0] < w - 24) & (expected[:, 1] > 24) & (expected[:, 1] < h - 24)
    expected = expected[inside]
    truth_y = cap.truth_xyz[..., 1]
    np.testing.assert_allclose(_centroids(truth_y, expected, 14, float(np.median(truth_y))), expected, atol=0.05)
    green = cap.frame.data - cam.sensor.black_level_dn
    green = green / np.where((np.add.outer(np.arange(h), np.arange(w)) % 2) == 1,
                             np.median(green[0::2, 1::2]), np.nan)  # RGGB: green where row + col is odd
    found = _centroids(np.nan_to_num(green, nan=1.0), expected, 14, 1.0)
    np.testing.assert_allclose(found, expected, atol=0.1)
    # positive angles turn the content counter-clockwise on screen: a dot right of
    # the centre moves up (smaller y)
    assert (np.array([w / 2 + 100, h / 2]) - [w / 2, h / 2]) @ R.T @ [0, 1] < 0


def test_truth_json_lists_hot_pixels_and_light_source(tmp_path):
    cam = load_camera("phone-small")
    cam = dataclasses.replace(cam, sensor=dataclasses.replace(cam.sensor, hot_pixel_fraction=2e-3))
    cap = capture(flat_field((128, 96), reflectance=0.0), cam, illuminant="F11", exposure_time_s=0.05, seed=3)
    write_captures([cap], tmp_path)
    truth = json.loads((tmp_path / "truth.json").read_text())["frames"][0]
    hot = truth["noise"]["hot_pixel_rows_cols"]
    assert len(hot) == truth["noise"]["hot_pixels"] == round(2e-3 * 128 * 96)
    rates = np.array(truth["noise"]["hot_pixel_dark_current_e_per_s"])
    assert rates.min() >= 1000.0 and rates.max() <= 20000.0
    # in a dark frame the hot pixels are where the model says, as bright as it says
    gain = truth["noise"]["conversion_gain_e_per_dn"]
    rows, cols = np.array(hot).T
    signal_e = (cap.frame.data[rows, cols] - cam.sensor.black_level_dn) * gain
    expected_e = rates * 0.05
    assert np.all(np.abs(signal_e - expected_e) < 5 * np.sqrt(expected_e) + 20)
    others = np.ones(cap.frame.data.shape, bool)
    others[rows, cols] = False
    assert (cap.frame.data[others] - cam.sensor.black_level_dn).max() * gain < 40
    assert truth["illuminant_exif_light_source"] == 14


def _rawlab_modules_after(code: str) -> list[str]:
    listing = "\nimport sys, json\nprint(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'rawlab')))"
    out = subprocess.run([sys.executable, "-c", code + listing], capture_output=True, text=True, check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


#: What the DNG writer needs by itself: a CFA frame built from rawlab.core with
#: an opcode and an EXIF blob, written plain and LJPEG-compressed.
WRITER_ALONE = """
import numpy as np
from rawlab.core.frame import Encoding, Frame
from rawlab.core.metadata import CaptureInfo, CfaPattern, SensorInfo
from rawlab.core.opcodes import GainMap, OpcodeArea
from rawlab.io.dng_write import write_dng
gm = GainMap(list_index=2, opcode_id=9, optional=True, area=OpcodeArea(top=0, left=0, bottom=16, right=16),
             points_v=2, points_h=2, spacing_v=1.0, spacing_h=1.0, origin_v=0.0, origin_h=0.0, map_planes=1,
             gains=np.ones((2, 2, 1), np.float32))
f = Frame(data=np.full((16, 16), 100, np.float32), encoding=Encoding.CFA,
          sensor=SensorInfo(cfa=CfaPattern.from_string("RGGB"), bits_per_sample=12, black_level_dn=0.0,
                            white_level_dn=[4095.0]),
          capture=CaptureInfo(make="x", model="y", iso=100), opcodes=(gm,),
          exif=b"Exif\\0\\0II*\\0\\x08\\0\\0\\0\\0\\0\\0\\0\\0\\0")
import os
os.makedirs({out!r}, exist_ok=True)
write_dng(f, os.path.join({out!r}, "a.dng"), compression="ljpeg")
write_dng(f, os.path.join({out!r}, "b.dng"))
"""


def test_simulator_uses_no_develop_stage(tmp_path):
    """After captures, a burst, the CLI and DNG writes, the process holds only
    rawlab.core, rawlab.errors, rawlab.sim and what the DNG writer needs (run in
    a fresh interpreter, so nothing else has been imported before)."""
    writer_needs = set(_rawlab_modules_after(WRITER_ALONE.format(out=str(tmp_path / "w"))))
    used = _rawlab_modules_after(
        "import argparse, warnings\n"
        "warnings.simplefilter('ignore')\n"
        "from rawlab.sim import capture, capture_burst, write_captures, scene\n"
        "from rawlab.sim.cli import add_simulate_parser, run_simulate\n"
        f"out = {str(tmp_path)!r}\n"
        "cap = capture(scene.colorchecker((60, 40)), 'phone-small', seed=1, gainmap_opcode=True)\n"
        "write_captures([cap], out + '/a', compression='ljpeg')\n"
        "write_captures(capture_burst(scene.dead_leaves((48, 32)), 'phone-small', n_frames=2), out + '/b')\n"
        "p = argparse.ArgumentParser(); s = p.add_subparsers(dest='c'); add_simulate_parser(s)\n"
        "run_simulate(p.parse_args(['simulate', 'slanted_edge', '--size', '48x32', '--bracket', '-1,1', "
        "'--gainmap', '-o', out + '/c']))\n"
    )
    allowed = writer_needs | {"rawlab"}
    extra = [m for m in used if m not in allowed and not m.startswith(("rawlab.core", "rawlab.sim"))
             and m != "rawlab.errors"]
    assert extra == [], f"the simulator pulled in {extra}"
    stages = ("sensor", "burst", "demosaic", "color", "denoise", "tone", "optics", "look", "detail", "caption",
              "pipeline", "lab")
    assert not [m for m in used if m.split(".")[1:2] and m.split(".")[1] in stages]
    assert "rawlab.sim.capture" in used and "rawlab.io.dng_write" in used


def test_simulator_sources_import_only_the_allowed_modules():
    """Every import in src/rawlab/sim, lazy ones included (the process check
    above only sees the paths it ran)."""
    allowed = ("rawlab.core", "rawlab.errors", "rawlab.io.dng_write", "rawlab.sim")
    found = []
    for path in sorted(SIM_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                if name.split(".")[0] == "rawlab":
                    found.append((path.name, name))
    assert found, "the scan found no imports at all"
    bad = [(f, n) for f, n in found if n == "rawlab" or not n.startswith(allowed)]
    assert bad == []
