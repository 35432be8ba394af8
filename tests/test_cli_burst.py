"""``rawlab burst FRAME... -o OUT [--dng] [--mode merge|night|hdr]``: photos, DNGs,
progress bar and one-line errors (exit 2)."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest

from rawlab.burst import merge
from rawlab.cli import main
from rawlab.io.read import read
from rawlab.sim.burst import capture_burst
from rawlab.sim.capture import write_captures
from rawlab.sim.scene import dead_leaves


@pytest.fixture(scope="module")
def burst_dngs(tmp_path_factory):
    """A hand-held burst of 4 frames (the simulator's phone camera), as DNG files."""
    out = tmp_path_factory.mktemp("burst")
    caps = capture_burst(dead_leaves((256, 192), seed=2), "phone-small", n_frames=4, iso=400, seed=3)
    return [str(p) for p in write_captures(caps, out / "merge")]


@pytest.fixture(scope="module")
def bracket_dngs(tmp_path_factory):
    """A hand-held bracket of -2, 0, +2 EV, as DNG files (exposure times in their EXIF)."""
    out = tmp_path_factory.mktemp("bracket")
    caps = capture_burst(dead_leaves((256, 192), seed=4), "phone-small", bracket_ev=[-2.0, 0.0, 2.0], seed=5)
    return [str(p) for p in write_captures(caps, out / "hdr")]


def test_burst_writes_a_photo(tmp_path, burst_dngs, capsys):
    out = tmp_path / "merged.jpg"
    assert main(["burst", *burst_dngs, "-o", str(out)]) == 0
    assert capsys.readouterr().out.strip() == str(out)
    image = cv2.imread(str(out))
    assert image is not None and image.dtype == np.uint8
    assert abs(image.shape[0] - 192) <= 16 and abs(image.shape[1] - 256) <= 16
    assert 10 < image.mean() < 245  # a developed picture, not a black or white frame


@pytest.mark.parametrize("mode", ["merge", "night", "hdr"])
def test_burst_dng_round_trip_keeps_noise_profile_and_baseline_exposure(
    tmp_path, burst_dngs, bracket_dngs, mode, capsys
):
    paths = bracket_dngs if mode == "hdr" else burst_dngs
    out = tmp_path / f"{mode}.dng"
    assert main(["burst", *paths, "-o", str(out), "--dng", "--mode", mode]) == 0
    capsys.readouterr()
    # the same merge in memory (the merge is deterministic)
    expected = merge([read(p) for p in paths], mode=mode)
    back = read(out)
    assert back.data.shape == expected.data.shape
    # NoiseProfile (S, O) in normalised units: the same after the round trip (one pair per plane or colour)
    for pair in back.sensor.noise_profile:
        np.testing.assert_allclose(pair, expected.sensor.noise_profile[0], rtol=1e-6)
    assert back.color.baseline_exposure_ev == pytest.approx(expected.color.baseline_exposure_ev, abs=1e-6)
    if mode == "hdr":  # the reference is the median exposure (+0 of -2, 0, +2 EV): 2 EV over the shortest
        lift = expected.color.baseline_exposure_ev - read(paths[1]).color.baseline_exposure_ev
        assert lift == pytest.approx(2.0)
    if mode == "night":  # lifted by the noise model's choice
        assert expected.color.baseline_exposure_ev > read(paths[0]).color.baseline_exposure_ev
    # the samples, to the DNG's 16-bit precision, where the merge lies in 0..1 (the writer's range)
    white = float(np.max(back.sensor.white_level_dn))
    black = float(np.max(back.sensor.black_level_dn))
    stored = (back.data.astype(np.float64) - black) / (white - black)
    inside = (expected.data >= 0) & (expected.data <= 1)
    assert inside.mean() > 0.9
    np.testing.assert_allclose(stored[inside], expected.data[inside], atol=1.0 / 65535)
    # and the merge is less noisy than one frame: its NoiseProfile says so
    single = read(paths[0]).sensor.noise_profile[0]
    if mode != "hdr":
        assert back.sensor.noise_profile[0][1] < single[1]


def test_burst_progress_bar_on_a_terminal(tmp_path, burst_dngs, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr("sys.stderr", err)
    assert main(["burst", *burst_dngs, "-o", str(tmp_path / "m.dng"), "--dng"]) == 0
    text = err.getvalue()
    n = len(burst_dngs)
    steps = n + (n - 1) + 4 + 1  # read, align each other frame, merge 4 planes, write
    assert "burst" in text and "100%" in text and f"{steps}/{steps}" in text
    assert "aligned frame" in text and "merged plane" in text  # the steps' names in the bar


def test_burst_api_progress_callback(burst_dngs, bracket_dngs):
    frames = [read(p) for p in burst_dngs]
    messages: list[str] = []
    merge(frames, progress=messages.append)
    aligned = [m for m in messages if m.startswith("aligned frame")]
    assert len(aligned) == len(frames) - 1
    planes = sorted(m for m in messages if m.startswith("merged plane"))
    assert planes == [f"merged plane {k}" for k in range(4)]
    messages.clear()
    merge([read(p) for p in bracket_dngs], mode="hdr", progress=messages.append)
    assert len([m for m in messages if m.startswith("aligned frame")]) == 2 and messages[-1] == "merged"


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_burst_bad_frame_is_a_one_line_error(tmp_path, burst_dngs, capsys):
    bad = tmp_path / "broken.dng"
    bad.write_bytes(b"II*\x00" + b"\x00" * 60)
    assert main(["burst", burst_dngs[0], str(bad), "-o", str(tmp_path / "m.jpg")]) == 2
    line = _one_line_error(capsys)
    assert line.startswith("rawlab: ") and "broken.dng" in line


def test_burst_mismatched_frames_are_a_one_line_error(tmp_path, burst_dngs, capsys):
    other = capture_burst(dead_leaves((320, 192), seed=2), "phone-small", n_frames=1, seed=3)
    odd = write_captures(other, tmp_path / "odd")[0]
    assert main(["burst", burst_dngs[0], str(odd), "-o", str(tmp_path / "m.jpg")]) == 2
    line = _one_line_error(capsys)
    assert str(odd) in line and "size 320x192" in line and "256x192" in line
    assert not (tmp_path / "m.jpg").exists()


def test_burst_needs_two_frames_and_a_known_mode(tmp_path, burst_dngs, capsys):
    assert main(["burst", burst_dngs[0], "-o", str(tmp_path / "m.jpg")]) == 2
    assert "at least 2 frames" in _one_line_error(capsys)
    with pytest.raises(SystemExit) as exc:
        main(["burst", *burst_dngs, "-o", str(tmp_path / "m.jpg"), "--mode", "bogus"])
    assert exc.value.code == 2
    _one_line_error(capsys)
    # night mode picks its own frames: a forced reference is refused
    assert main(["burst", *burst_dngs, "-o", str(tmp_path / "n.dng"), "--dng", "--mode", "night",
                 "--reference", "1"]) == 2
    assert "--reference" in _one_line_error(capsys)
