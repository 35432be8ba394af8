"""Lab report (rawlab.lab.report): results.json with every number, report.html with its plots."""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from rawlab.lab.protocol import load_protocol
from rawlab.lab.report import render_html, write_report, write_results_json
from rawlab.lab.run import run_protocol

SUBSCORES = ("Exposure", "Color", "Texture", "Noise", "Artifacts", "Overall")


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    p = load_protocol("quick")
    small = replace(p, isos=(100.0, 3200.0),
                    charts=tuple(c for c in p.charts if c.name in ("colorchecker", "slanted_edge", "flat_field",
                                                                   "dead_leaves", "siemens_star")))
    run = run_protocol(small, ["rawlab", "rawpy"])
    out = tmp_path_factory.mktemp("lab_report")
    write_report(run.results, out, run.crops)
    return out, run


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def test_results_json_is_standard_and_complete(report_dir):
    out, run = report_dir
    data = json.loads((out / "results.json").read_text(), parse_constant=_reject_constant)
    assert data["rawlab_lab"]["score_version"] == 1
    assert data["protocol"]["name"] == "quick"
    cs = data["capture_sets"][0]
    for name in ("rawlab", "rawpy"):
        p = cs["pipelines"][name]
        assert len(p["curves"]["delta_e2000"]) == 24
        assert len(p["curves"]["mtf"]) == len(p["curves"]["mtf_frequency_cy_px"]) > 10
        assert p["registration"]["colorchecker"]["method"] == "identity"
        assert set(p["scores"]) >= {s.lower() for s in SUBSCORES}
    assert {a["metric"] for a in data["score_anchors"]} >= {"delta_e2000_mean", "snr_db"}


def test_nan_is_written_as_null(tmp_path):
    path = write_results_json({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2.5)}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": 2.5}


def test_html_has_scoreboard_and_plots(report_dir):
    out, run = report_dir
    page = (out / "report.html").read_text()
    board = page.split("id='scoreboard'")[1].split("<h2")[0]
    for s in SUBSCORES:
        assert f"<th>{s}</th>" in board
    for name in ("rawlab", "rawpy"):
        row = re.search(rf"<tr><th>{name}</th>(.*?)</tr>", board).group(1)
        values = re.findall(r"<td>([^<]*)</td>", row)
        assert len(values) == 6 and all(0.0 <= float(v) <= 100.0 for v in values)
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert "noise against ISO" in imgs
    assert imgs.count("MTF") == 2 and imgs.count("delta E per patch") == 2
    assert imgs.count("rawlab") == 4  # dead-leaves and star crops, two ISOs


def test_html_reports_unavailable_pipelines(report_dir):
    _, run = report_dir
    results = dict(run.results)
    results["pipelines"] = dict(results["pipelines"],
                                ghost={"status": "unavailable", "reason": "ghost is not installed", "errors": []})
    page = render_html(results, run.crops)
    assert "ghost: not run: ghost is not installed" in page


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report_dir, tmp_path):
    """The page opens in a browser and shows its plots (Debian package chromium)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("chromium is not installed (Debian package chromium); make test installs it")
    out, _ = report_dir
    shot = tmp_path / "shot.png"
    subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    f"--screenshot={shot}", "--window-size=1100,1600", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=False)
    from PIL import Image

    with Image.open(shot) as im:
        a = np.asarray(im.convert("RGB")).astype(np.float32)
    assert a.shape[:2] == (1600, 1100)
    # a rendered page with plots: not blank, and coloured plot lines are present
    assert a.std() > 20.0
    chroma = a.max(axis=2) - a.min(axis=2)
    assert np.count_nonzero(chroma > 80) > 2000
    assert not math.isnan(float(a.mean()))
