"""Simulated captures as real DNGs: rawpy, exiftool, darktable, reproducibility, CLI."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from rawlab.errors import InvalidParams
from rawlab.sim import builtin_cameras, load_camera
from rawlab.sim.capture import capture, write_captures
from rawlab.sim.cli import add_simulate_parser, run_simulate
from rawlab.sim.scene import colorchecker

pytestmark = pytest.mark.filterwarnings("ignore:.*Aligning")


def _require_tool(name: str) -> str:
    """Path of a Debian peer tool: skip without it, but fail in CI (``make tools`` installs it)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI run without {name} (make tools)")
        pytest.skip(f"{name} is not installed (make tools)")
    return path


@pytest.fixture(scope="module", params=["phone-small", "phone-1in", "fullframe"])
def written(request, tmp_path_factory):
    out = tmp_path_factory.mktemp("sim_dng")
    cap = capture(colorchecker((240, 160)), request.param, iso=200, illuminant="D65", seed=4, gainmap_opcode=True)
    (path,) = write_captures([cap], out)
    return cap, path


def test_dng_opens_in_rawpy(written):
    rawpy = pytest.importorskip("rawpy")
    cap, path = written
    with rawpy.imread(str(path)) as raw:
        assert raw.raw_image_visible.shape == cap.frame.data.shape
        np.testing.assert_array_equal(raw.raw_image_visible, cap.frame.data.astype(np.uint16))
        s = load_camera(cap.truth["camera"]).sensor
        assert raw.white_level == s.white_level_dn
        assert list(raw.black_level_per_channel) == [s.black_level_dn] * 4
        wb = np.array(raw.camera_whitebalance[:3])
        np.testing.assert_allclose(wb / wb[1], cap.frame.color.as_shot_neutral[1] / cap.frame.color.as_shot_neutral,
                                   rtol=1e-3)
        rgb = raw.postprocess()
        assert rgb.shape[:2] == cap.frame.data.shape and rgb.mean() > 10


def test_dng_is_valid_for_exiftool(written):
    exiftool = _require_tool("exiftool")
    cap, path = written
    out = subprocess.run(
        [exiftool, "-j", "-validate", "-warning", "-error", "-ISO", "-ExposureTime", "-FNumber", "-FocalLength",
         "-Make", "-Model", "-NoiseProfile", "-ColorMatrix2", "-ForwardMatrix1", "-LightSource#", str(path)],
        capture_output=True, text=True, check=True,
    )
    info = json.loads(out.stdout)[0]
    assert info["Validate"] == "OK", info
    assert "Error" not in info and "Warning" not in info
    cam = load_camera(cap.truth["camera"])
    assert info["ISO"] == 200 and info["Make"] == "rawlab" and info["Model"] == cam.model
    assert float(info["FNumber"]) == pytest.approx(cam.optics.f_number)
    assert "NoiseProfile" in info and "ColorMatrix2" in info and "ForwardMatrix1" in info
    assert info["LightSource"] == 21  # EXIF LightSource: D65


def test_darktable_develops_it(written, tmp_path):
    darktable = _require_tool("darktable-cli")
    cap, path = written
    out = tmp_path / "dt.jpg"
    result = subprocess.run(
        [darktable, str(path), str(out), "--core", "--configdir", str(tmp_path / "cfg"), "--library", ":memory:"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr[-500:]
    from PIL import Image

    with Image.open(out) as im:
        assert im.size == (cap.frame.width, cap.frame.height)


def test_dng_round_trip_with_the_reader(written):
    from rawlab.io.dng import read_dng

    cap, path = written
    frame = read_dng(path)
    np.testing.assert_array_equal(frame.data, cap.frame.data)
    assert frame.sensor.noise_profile[0] == pytest.approx(cap.frame.sensor.noise_profile[0], rel=1e-6)
    np.testing.assert_allclose(frame.color.M_XYZ_to_camera_2, cap.frame.color.M_XYZ_to_camera_2, atol=1e-4)
    np.testing.assert_allclose(frame.color.M_forward_1, cap.frame.color.M_forward_1, atol=1e-4)
    assert [op.name for op in frame.opcodes] == ["GainMap"]
    assert frame.capture.iso == 200


@pytest.mark.parametrize("illuminant, code", [("D65", 21), ("D50", 23), ("A", 17), ("F2", 14), ("F11", 14),
                                               ("LED", 255)])
def test_exif_light_source_is_the_scene_illuminant(illuminant, code, tmp_path):
    import tifffile

    cap = capture(colorchecker((60, 40)), "phone-small", illuminant=illuminant, seed=1)
    (path,) = write_captures([cap], tmp_path)
    with tifffile.TiffFile(path) as tif:
        exif = tif.pages[0].tags["ExifTag"].value
    assert int(exif["LightSource"]) == code
    assert float(exif["ISOSpeedRatings"]) == cap.frame.capture.iso  # the built tags are still there


def test_same_seed_same_bytes(tmp_path):
    scene_ = colorchecker((120, 80))
    paths = []
    for i, seed in enumerate((7, 7, 8)):
        (p,) = write_captures([capture(scene_, "fullframe", seed=seed)], tmp_path / str(i))
        paths.append(p.read_bytes())
    assert paths[0] == paths[1]
    assert paths[0] != paths[2]


def _cli(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rawlab")
    sub = parser.add_subparsers(dest="command", required=True)
    add_simulate_parser(sub)
    return parser.parse_args(["simulate", *args])


def test_cli_burst_writes_dngs_and_truth(tmp_path, capsys):
    rc = run_simulate(_cli(["dead_leaves", "--camera", "phone-1in", "--iso", "400", "--burst", "3",
                            "--size", "96x64", "--seed", "2", "-o", str(tmp_path)]))
    assert rc == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["frame_000.dng", "frame_000_truth.npz", "frame_001.dng", "frame_001_truth.npz",
                     "frame_002.dng", "frame_002_truth.npz", "truth.json"]
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert [f["motion"]["dx_px"] != 0 for f in truth["frames"]] == [False, True, True]
    assert truth["frames"][1]["noise"]["conversion_gain_e_per_dn"] == pytest.approx(6.0 * 50 / 400)
    npz = np.load(tmp_path / "frame_001_truth.npz")
    assert npz["xyz"].shape == (64, 96, 3) and npz["srgb_linear"].dtype == np.float32
    assert len(capsys.readouterr().out.splitlines()) == 3


def test_cli_bracket(tmp_path):
    run_simulate(_cli(["gray_steps", "--bracket", "-2,0,2", "--size", "160x40", "--compression", "ljpeg",
                       "-o", str(tmp_path)]))
    rawpy = pytest.importorskip("rawpy")
    with rawpy.imread(str(tmp_path / "frame_001.dng")) as raw:
        assert raw.raw_image_visible.shape == (40, 160)
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert [f["exposure_ev"] for f in truth["frames"]] == [-2.0, 0.0, 2.0]


def _dng_opcode_names(path) -> list[str]:
    from rawlab.io.dng import read_dng

    return [op.name for op in read_dng(path).opcodes]


@pytest.mark.parametrize("mode", [["--burst", "2"], ["--bracket", "-1,1"], []])
def test_cli_gainmap_reaches_every_frame(mode, tmp_path):
    run_simulate(_cli(["flat_field", "--size", "64x48", "--gainmap", *mode, "-o", str(tmp_path)]))
    dngs = sorted(tmp_path.glob("*.dng"))
    assert len(dngs) == (1 if not mode else 2)
    for path in dngs:
        assert _dng_opcode_names(path) == ["GainMap"], path.name
    run_simulate(_cli(["flat_field", "--size", "64x48", *mode, "-o", str(tmp_path / "plain")]))
    assert all(_dng_opcode_names(p) == [] for p in (tmp_path / "plain").glob("*.dng"))


def test_cli_burst_with_bracket_is_a_one_line_usage_error(tmp_path, capsys):
    from rawlab.cli import main

    rc = main(["simulate", "gray_steps", "--size", "64x32", "--burst", "4", "--bracket", "-2,0,2",
               "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2
    assert "--burst" in err and "--bracket" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_cli_f_number_and_luminance(tmp_path):
    run_simulate(_cli(["flat_field", "--size", "64x48", "--exposure", "0.002", "--f-number", "4",
                       "--luminance", "300", "-o", str(tmp_path)]))
    frame = json.loads((tmp_path / "truth.json").read_text())["frames"][0]
    assert frame["f_number"] == 4.0 and frame["white_luminance_cd_m2"] == 300.0
    run_simulate(_cli(["flat_field", "--size", "64x48", "--exposure", "0.002", "--f-number", "8",
                       "--luminance", "300", "-o", str(tmp_path / "b")]))
    other = json.loads((tmp_path / "b" / "truth.json").read_text())["frames"][0]
    assert other["electrons_per_white_center"] == pytest.approx(frame["electrons_per_white_center"] / 4)
    from rawlab.io.dng import read_dng

    assert read_dng(tmp_path / "b" / "frame_000.dng").capture.f_number == pytest.approx(8.0)


def test_unknown_camera_lists_the_known_ones():
    with pytest.raises(InvalidParams) as err:
        load_camera("nikon-z9")
    for name in builtin_cameras():
        assert name in str(err.value)
    assert "\n" not in str(err.value)


def test_bad_camera_toml_names_file_and_key(tmp_path):
    text = (load_camera.__globals__["CAMERAS_DIR"] / "phone-small.toml").read_text()
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("read_noise_e = 2.2", 'read_noise_e = "low"'))
    with pytest.raises(InvalidParams) as err:
        load_camera(bad)
    assert str(bad) in str(err.value) and "sensor.read_noise_e" in str(err.value)
    bad.write_text(text.replace("f_number = 1.8", "f_number = 100.0"))
    with pytest.raises(InvalidParams, match="optics.f_number"):
        load_camera(bad)
    bad.write_text(text + "\n[extra]\n")
    with pytest.raises(InvalidParams, match="extra"):
        load_camera(bad)
    bad.write_text("name = [")
    with pytest.raises(InvalidParams, match="not valid TOML"):
        load_camera(bad)


def test_bad_requests_are_one_line_errors():
    scene_ = colorchecker((60, 40))
    with pytest.raises(InvalidParams, match="illuminant"):
        capture(scene_, "phone-small", illuminant="D93")
    with pytest.raises(InvalidParams, match="ISO"):
        capture(scene_, "phone-small", iso=10)
    with pytest.raises(InvalidParams, match="unknown scene"):
        run_simulate(_cli(["no_such_chart", "-o", "/tmp/x"]))


def test_colour_metadata_through_libraw():
    """LibRaw develops the DNG with our ColorMatrix and AsShotNeutral; its linear
    sRGB of the ColorChecker must match the simulator's truth (an independent
    implementation of the DNG colour maths)."""
    rawpy = pytest.importorskip("rawpy")
    import dataclasses
    import tempfile
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour

    cam = load_camera("fullframe")
    optics = dataclasses.replace(cam.optics, vignetting_cos4=False, vignetting_poly=(), distortion_k1=0.0,
                                 distortion_k2=0.0, ca_magnification=(1.0, 1.0, 1.0))
    cam = dataclasses.replace(cam, optics=optics)
    scene_ = colorchecker((360, 240))
    cap = capture(scene_, cam, iso=100, exposure_time_s=0.05, noise=False)
    with tempfile.TemporaryDirectory() as tmp:
        (path,) = write_captures([cap], tmp)
        with rawpy.imread(str(path)) as raw:
            rgb = raw.postprocess(use_camera_wb=True, output_color=rawpy.ColorSpace.sRGB, gamma=(1, 1),
                                  no_auto_bright=True, output_bps=16, user_flip=0,
                                  demosaic_algorithm=rawpy.DemosaicAlgorithm.LINEAR).astype(np.float64) / 65535
    patches = cap.truth["geometry"]["patches"]
    ours, truth = [], []
    for p in patches:
        top, left, bottom, right = p["box"]
        sl = (slice(top + 4, bottom - 4), slice(left + 4, right - 4))
        ours.append(rgb[sl].reshape(-1, 3).mean(0))
        truth.append(cap.truth_srgb_linear[sl].reshape(-1, 3).mean(0))
    ours, truth = np.array(ours), np.array(truth)
    assert ours.max() < 0.99  # nothing clipped
    ours *= truth[19, 1] / ours[19, 1]  # same exposure: scale on the neutral 8 patch
    to_lab = lambda rgb_lin: colour.XYZ_to_Lab(colour.RGB_to_XYZ(rgb_lin, "sRGB"))  # noqa: E731
    de = colour.delta_E(to_lab(ours), to_lab(truth), method="CIE 2000")
    assert float(np.mean(de)) < 2.0, de


@pytest.mark.parametrize("camera_name, illuminant", [("fullframe", "D65"), ("phone-small", "A"), ("phone-1in", "LED")])
def test_develop_pipeline_reproduces_the_truth(camera_name, illuminant, tmp_path):
    """End to end: the project's own develop (linear recipe) of a simulated
    ColorChecker against the simulator's truth, in mean CIEDE2000."""
    import dataclasses
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import colour
    from rawlab.io.read import read
    from rawlab.pipeline import Recipe, develop

    cam = load_camera(camera_name)
    optics = dataclasses.replace(cam.optics, vignetting_cos4=False, vignetting_poly=(), distortion_k1=0.0,
                                 distortion_k2=0.0, ca_magnification=(1.0, 1.0, 1.0))
    cam = dataclasses.replace(cam, optics=optics)
    cap = capture(colorchecker((360, 240)), cam, illuminant=illuminant, exposure_ev=-1.0, noise=False)
    (path,) = write_captures([cap], tmp_path)
    out = develop(read(path), Recipe.builtin("linear")).data
    ours, truth = [], []
    for p in cap.truth["geometry"]["patches"]:
        top, left, bottom, right = p["box"]
        sl = (slice(top + 4, bottom - 4), slice(left + 4, right - 4))
        ours.append(out[sl].reshape(-1, 3).mean(0))
        truth.append(cap.truth_srgb_linear[sl].reshape(-1, 3).mean(0))
    ours, truth = np.array(ours, np.float64), np.array(truth, np.float64)
    ours *= truth[19, 1] / ours[19, 1]  # exposure: scale on the neutral 8 patch
    to_lab = lambda rgb_lin: colour.XYZ_to_Lab(colour.RGB_to_XYZ(rgb_lin, "sRGB"))  # noqa: E731
    de = colour.delta_E(to_lab(ours), to_lab(truth), method="CIE 2000")
    assert float(np.mean(de)) < 2.0, de
