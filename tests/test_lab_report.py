"""Lab report (rawlab.lab.report) on the issue's configuration, and colour under tungsten.

One module fixture runs the built-in ``report`` protocol with all five pipelines
(rawlab, LibRaw/rawpy, dcraw, darktable-cli, rawtherapee-cli): phone-1in at ISO
100, 800 and 3200 under D65 and illuminant A with every chart, and the
ColorChecker on the fullframe camera (Nikon D5100 sensitivities) under D65 and A.
Measured on a shared 2-core machine: about 65 s for the run and 10 s for the
report.  The peers are Debian packages that ``make test`` installs; a missing one
fails these tests.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import time

import numpy as np
import pytest

from rawlab.lab.adapters import PIPELINES
from rawlab.lab.protocol import load_protocol
from rawlab.lab.report import render_html, write_report, write_results_json
from rawlab.lab.run import run_protocol

SUBSCORES = ("Exposure", "Color", "Texture", "Noise", "Artifacts", "Overall")
PEERS = ("rawpy", "dcraw", "darktable", "rawtherapee")
PHONE_SETS = [f"phone-1in/{cond}/ISO{iso}" for cond in ("D65 bright", "A indoor") for iso in (100, 800, 3200)]
COLOUR_SETS = ["fullframe/D65 colour/ISO100", "fullframe/A colour/ISO100"]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    t0 = time.perf_counter()
    run = run_protocol(load_protocol("report"), list(PIPELINES))
    t_run = time.perf_counter() - t0
    out = tmp_path_factory.mktemp("lab_report")
    write_report(run.results, out, run.crops)
    print(f"\nreport protocol, 5 pipelines: run {t_run:.0f} s, report {time.perf_counter() - t0 - t_run:.0f} s")
    return out, run


def _reject_constant(name):
    raise ValueError(f"non-standard JSON constant {name}")


def test_every_pipeline_ran_every_capture_set(report_dir):
    _, run = report_dir
    res = run.results
    assert [cs["key"] for cs in res["capture_sets"]] == PHONE_SETS + COLOUR_SETS
    for name in PIPELINES:
        assert res["pipelines"][name]["status"] == "ok", res["pipelines"][name]
        assert res["pipelines"][name]["errors"] == []
        for cs in res["capture_sets"][:6]:
            assert cs["pipelines"][name]["scores"]["missing"] == []
        for cs in res["capture_sets"][6:]:  # colour-only: a colour score, no overall
            sc = cs["pipelines"][name]["scores"]
            assert 0.0 <= sc["color"] <= 100.0 and math.isnan(sc["overall"])


def test_results_json_is_standard_and_complete(report_dir):
    out, _ = report_dir
    data = json.loads((out / "results.json").read_text(), parse_constant=_reject_constant)
    assert data["rawlab_lab"]["score_version"] == 2
    assert data["protocol"]["name"] == "report"
    cs = data["capture_sets"][0]
    for name in PIPELINES:
        p = cs["pipelines"][name]
        assert len(p["curves"]["delta_e2000"]) == 24
        assert len(p["curves"]["mtf"]) == len(p["curves"]["mtf_frequency_cy_px"]) > 10
        assert p["metrics"]["colorchecker_rendering"] == "linear16"
        assert set(p["scores"]) >= {s.lower() for s in SUBSCORES}
        # the artifacts added in version 2: false colour on the edges, zipper on star and edges
        for k in ("edge_false_color_mean_chroma", "zipper_pct", "edge_zipper_pct", "edge_zipper_noise_floor_pct"):
            assert math.isfinite(p["metrics"][k]), k
    assert data["capture_sets"][0]["pipelines"]["rawtherapee"]["registration"]["colorchecker"]["method"] == "phase"
    assert {a["metric"] for a in data["score_anchors"]} >= {"delta_e2000_mean", "snr_db", "mtf50p_cy_px"}
    assert [(r["camera"], r["condition"]) for r in data["color_by_illuminant"]] == [
        ("phone-1in", "D65 bright"), ("phone-1in", "A indoor"), ("fullframe", "D65 colour"),
        ("fullframe", "A colour")]


def test_nan_is_written_as_null(tmp_path):
    path = write_results_json({"a": float("nan"), "b": [1.0, float("inf")], "c": np.float32(2.5)}, tmp_path / "r.json")
    assert json.loads(path.read_text()) == {"a": None, "b": [1.0, None], "c": 2.5}


def test_scoreboard_lists_every_subscore_of_every_pipeline(report_dir):
    out, _ = report_dir
    page = (out / "report.html").read_text()
    board = page.split("id='scoreboard'")[1].split("<h3")[0]
    for s in SUBSCORES:
        assert f"<th>{s}</th>" in board
    for name in PIPELINES:
        row = re.search(rf"<tr><th>{name}</th>(.*?)</tr>", board).group(1)
        values = re.findall(r"<td>([^<]*)</td>", row)
        assert len(values) == 6 and all(0.0 <= float(v) <= 100.0 for v in values)
    imgs = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,', page)
    assert "noise against ISO" in imgs
    assert imgs.count("MTF") == 6 and imgs.count("delta E per patch") == 8
    for name in PIPELINES:
        assert imgs.count(name) == 12  # dead-leaves and star crops, six full capture sets


def test_scoreboard_shows_colour_under_d65_and_a_side_by_side(report_dir):
    out, run = report_dir
    page = (out / "report.html").read_text()
    table = page.split("id='color-by-illuminant'")[1].split("</table>")[0]
    assert table.count("illuminant D65") == 2 and table.count("illuminant A") == 2
    for name in PIPELINES:
        row = re.search(rf"<tr><th>{name}</th>(.*?)</tr>", table).group(1)
        values = [float(v) for v in re.findall(r"<td>([^<]*)</td>", row)]
        assert len(values) == 8  # mean and max for four camera x condition columns
    rows = {r["condition"]: r["pipelines"] for r in run.results["color_by_illuminant"]}
    assert f"{rows['A colour']['rawlab']['mean']:.2f}" in table


def test_colour_under_tungsten(report_dir):
    """ColorChecker on the simulated Nikon D5100 (fullframe) under A and D65, ISO 100.

    rawlab interpolates the DNG's two calibrations for the scene's white; the peers use the
    D65 matrix only.  Measured (mean / max ΔE2000, linear rendering, tone-normalised):
    D65: rawlab 0.91/3.5, rawpy and dcraw 0.84/3.6, darktable 1.08/3.4, RawTherapee 1.61/4.4
    (its white balance misses the neutrals by 2 a*b*; 1.3 once balanced);
    A: rawlab 1.04/4.8, rawpy and dcraw 3.00/8.8, darktable 2.80/6.7, RawTherapee 3.89/9.6.
    """
    _, run = report_dir
    rows = {r["condition"]: r["pipelines"] for r in run.results["color_by_illuminant"]}
    a, d65 = rows["A colour"], rows["D65 colour"]
    assert a["rawlab"]["mean"] <= 1.2  # the bound
    for peer in PEERS:
        assert a[peer]["mean"] > 2.5 and a[peer]["mean"] > a["rawlab"]["mean"] + 1.5, (peer, a[peer])
        assert a[peer]["max"] > 6.0 > a["rawlab"]["max"], (peer, a[peer])
    # under D65 every pipeline is near the 3x3-matrix floor (about 0.9) ...
    for name in ("rawlab", "rawpy", "dcraw", "darktable"):
        assert d65[name]["mean"] < 1.2, (name, d65[name])
    # ... RawTherapee a little above it, by its white balance
    assert d65["rawtherapee"]["mean"] < 2.0
    rt = next(cs for cs in run.results["capture_sets"] if cs["key"] == COLOUR_SETS[0])["pipelines"]["rawtherapee"]
    assert rt["metrics"]["delta_e2000_mean_neutral_balanced"] < 1.4
    # read as sRGB, LibRaw's BT.709-encoded, auto-brightened file looks 2 ΔE worse: why the lab
    # measures colour on each tool's linear rendering
    assert d65["rawpy"]["mean_as_seen"] > d65["rawpy"]["mean"] + 1.5


def test_html_reports_unavailable_pipelines(report_dir):
    _, run = report_dir
    results = dict(run.results)
    results["pipelines"] = dict(results["pipelines"],
                                ghost={"status": "unavailable", "reason": "ghost is not installed", "errors": []})
    page = render_html(results, run.crops)
    assert "ghost: not run: ghost is not installed" in page


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
