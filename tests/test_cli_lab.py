"""``rawlab lab run|measure`` through the command's entry point, rawlab.cli.main."""

from __future__ import annotations

import json
import math

import pytest

from rawlab.cli import main


@pytest.fixture(scope="module")
def simulated_tiffs(tmp_path_factory):
    """A slanted edge and a ColorChecker from the simulator, developed by rawlab to 16-bit TIFFs,
    each in its own folder with the simulator's truth.json."""
    from rawlab.io.encode import write_image
    from rawlab.io.read import read
    from rawlab.lab.run import _without_vignetting
    from rawlab.pipeline import develop
    from rawlab.sim import capture, scene, write_captures
    from rawlab.sim.camera import load_camera

    root = tmp_path_factory.mktemp("cli_lab")
    camera = _without_vignetting(load_camera("phone-1in"))  # as the lab captures its charts
    out = {}
    for name, sc, kw in (("edge", scene.slanted_edge((200, 200), angle_deg=4.0), {}),
                         ("cc", scene.colorchecker((300, 200)), {"exposure_ev": -1.0})):
        folder = root / name
        dng = write_captures([capture(sc, camera, iso=100, seed=2, **kw)], folder)[0]
        out[name] = (write_image(develop(read(dng)), folder / f"{name}.tif"), folder / "truth.json")
    return out


def _one_line_error(capsys, *needles):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("rawlab: ")
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def test_lab_run_quick(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["lab", "run", "--quick", "--iso", "100", "--pipelines", "rawlab,rawpy", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "overall" in text and "rawpy" in text and str(out / "report.html") in text
    results = json.loads((out / "results.json").read_text())
    assert results["rawlab_lab"]["score_version"] == 2
    assert [cs["key"] for cs in results["capture_sets"]] == ["phone-1in/D65 bright/ISO100"]
    for name in ("rawlab", "rawpy"):
        assert results["pipelines"][name]["status"] == "ok"
        assert results["summary"][name]["overall"] is not None
        assert not math.isnan(results["summary"][name]["overall"])
    assert (out / "report.html").stat().st_size > 10_000
    assert not (out / "captures").exists()  # DNGs only with --keep-dngs


def test_lab_measure_slanted_edge(simulated_tiffs, capsys):
    tif, truth = simulated_tiffs["edge"]
    assert main(["lab", "measure", str(tif), "--chart", str(truth)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["chart"] == "slanted_edge" and out["image"] == str(tif)
    assert out["metrics"]["edge_angle_deg"] == pytest.approx(4.0, abs=0.2)
    assert 0.1 < out["metrics"]["mtf50_cy_px"] < 0.8
    assert math.isfinite(out["metrics"]["edge_false_color_mean_chroma"])


def test_lab_measure_colorchecker(simulated_tiffs, capsys):
    """With the truth file the scene's own colours are the reference: rawlab's default sits near the
    3x3-matrix floor under D65 (read from the 16-bit sRGB file; no linear rendering here)."""
    tif, truth = simulated_tiffs["cc"]
    assert main(["lab", "measure", str(tif), "--chart", str(truth)]) == 0
    m = json.loads(capsys.readouterr().out)["metrics"]
    assert m["colorchecker_rendering"] == "srgb"
    assert m["delta_e2000_mean"] < 1.5
    assert m["wb_error_delta_ab_mean"] < 1.0


def test_lab_measure_bad_chart_file(simulated_tiffs, tmp_path, capsys):
    tif, _ = simulated_tiffs["edge"]
    bad = tmp_path / "chart.json"
    bad.write_text("{not json")
    assert main(["lab", "measure", str(tif), "--chart", str(bad)]) == 2
    _one_line_error(capsys, str(bad), "not valid JSON")
    bad.write_text('{"chart": "colorchecker", "geometry": {"patches": [{"box": [0, 0, 5, 5]}]}}')
    assert main(["lab", "measure", str(tif), "--chart", str(bad)]) == 2
    _one_line_error(capsys, str(bad), "24 patches")
    assert main(["lab", "measure", str(tif), "--chart", "no_such_chart"]) == 2
    _one_line_error(capsys, "unknown chart")


def test_lab_measure_bad_image(tmp_path, capsys):
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not a png")
    assert main(["lab", "measure", str(junk), "--chart", "canon_550d_colorchart"]) == 2
    _one_line_error(capsys, str(junk))
    missing = tmp_path / "missing.tif"
    assert main(["lab", "measure", str(missing), "--chart", "canon_550d_colorchart"]) == 2
    _one_line_error(capsys, str(missing), "not found")


def test_lab_run_bad_arguments(tmp_path, capsys):
    out = str(tmp_path / "lab")
    assert main(["lab", "run", "--quick", "--pipelines", "photoshop", "-o", out]) == 2
    _one_line_error(capsys, "unknown pipeline 'photoshop'")
    assert main(["lab", "run", "--quick", "--iso", "fast", "-o", out]) == 2
    _one_line_error(capsys, "--iso")
    assert main(["lab", "run", "--protocol", "nonexistent", "-o", out]) == 2
    _one_line_error(capsys, "unknown protocol")
    assert main(["lab", "run", "--quick", "--condition", "moonlight", "-o", out]) == 2
    _one_line_error(capsys, "unknown condition 'moonlight'")
    with pytest.raises(SystemExit) as info:
        main(["lab", "frobnicate"])
    assert info.value.code == 2
    _one_line_error(capsys, "frobnicate")
