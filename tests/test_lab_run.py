"""Lab protocols and runs (rawlab.lab.protocol, rawlab.lab.run)."""

from __future__ import annotations

import math
import time
from dataclasses import replace

import numpy as np
import pytest

from rawlab.errors import CorruptFile, InvalidParams, RawlabError
from rawlab.lab.protocol import builtin_protocols, load_protocol, protocol_from_dict
from rawlab.lab.run import run_protocol
from rawlab.lab.score import SCORE_VERSION

SUBSCORES = ("exposure", "color", "texture", "noise", "artifacts", "overall")


# ----------------------------------------------------------------------- protocol
def test_builtin_protocols():
    assert {"default", "quick", "report"} <= set(builtin_protocols())
    d = load_protocol("default")
    assert set(d.cameras) == {"phone-1in", "phone-small"}
    assert min(d.isos) == 100 and max(d.isos) == 12800
    assert {c.illuminant for c in d.conditions} == {"D65", "A"}
    assert any(c.isos for c in d.conditions)  # low light has its own ladder
    q = load_protocol("quick")
    assert q.cameras == ("phone-1in",) and len(q.isos) == 2 and len(q.conditions) == 1
    assert len(list(q.capture_sets())) == 2


def test_seeds_are_fixed_and_distinct():
    p = load_protocol("default")
    sets = list(p.capture_sets())
    seeds = [cs.seed(p.seed, k) for cs in sets for k in range(len(p.charts))]
    assert len(set(seeds)) == len(seeds)
    again = [cs.seed(p.seed, k) for cs in load_protocol("default").capture_sets() for k in range(len(p.charts))]
    assert seeds == again


def test_restricted():
    p = load_protocol("default").restricted(cameras=["phone-1in"], isos=[100, 800], conditions=["D65 bright"])
    assert [cs.key for cs in p.capture_sets()] == ["phone-1in/D65 bright/ISO100", "phone-1in/D65 bright/ISO800"]
    with pytest.raises(InvalidParams, match="unknown condition"):
        load_protocol("default").restricted(conditions=["moonlight"])


def _base() -> dict:
    return {"name": "t", "version": 1, "seed": 1, "cameras": ["phone-1in"], "isos": [100],
            "conditions": [{"name": "d", "illuminant": "D65", "white_luminance_cd_m2": 100.0}],
            "charts": {"colorchecker": {"size": [300, 200]}}}


@pytest.mark.parametrize("change,match", [
    ({"cameras": ["phone-9"]}, "unknown camera"),
    ({"isos": []}, "ISO"),
    ({"conditions": [{"name": "x", "illuminant": "Z9", "white_luminance_cd_m2": 1.0}]}, "unknown illuminant"),
    ({"charts": {"moon": {"size": [64, 64]}}}, "unknown chart"),
    ({"charts": {"colorchecker": {"size": [10, 64]}}}, "size"),
    ({"seed": "x"}, "wrong type"),
])
def test_protocol_validation(change, match):
    with pytest.raises(InvalidParams, match=match):
        protocol_from_dict(_base() | change, source="p.toml")


def test_condition_with_its_own_cameras_and_charts():
    """The report protocol's colour conditions: fullframe, ColorChecker only; appending them
    changes no earlier capture's seed."""
    p = load_protocol("report")
    keys = [cs.key for cs in p.capture_sets()]
    assert keys[-2:] == ["fullframe/D65 colour/ISO100", "fullframe/A colour/ISO100"]
    assert len(keys) == 8 and p.all_cameras() == ("phone-1in", "fullframe")
    colour = list(p.capture_sets())[-1]
    assert colour.includes("colorchecker") and not colour.includes("slanted_edge")
    without = replace(p, conditions=p.conditions[:2])
    for a, b in zip(without.capture_sets(), p.capture_sets()):
        assert a.key == b.key and a.seed(p.seed, 3) == b.seed(p.seed, 3)
    # restricting to the phone drops the fullframe-only conditions; --iso overrides their ladder
    assert [cs.camera for cs in p.restricted(cameras=["phone-1in"]).capture_sets()] == ["phone-1in"] * 6
    assert len(list(p.restricted(isos=[100]).capture_sets())) == 4
    assert p.to_dict()["conditions"][2]["charts"] == ["colorchecker"]


@pytest.mark.parametrize("change,match", [
    ({"cameras": ["phone-9"]}, "unknown camera"),
    ({"cameras": []}, "non-empty list"),
    ({"charts": ["slanted_edge"]}, "not among the protocol's charts"),
    ({"charts": "colorchecker"}, "list of chart names"),
])
def test_condition_validation(change, match):
    d = _base()
    d["conditions"] = [d["conditions"][0] | change]
    with pytest.raises(InvalidParams, match=match):
        protocol_from_dict(d, source="p.toml")


def test_gray_steps_exposure_and_noise_at_the_metered_grey():
    """Exposure and noise are read at the luminance the camera metered (the chart's mean), so a
    pipeline that brightens the whole image is read at the same scene grey, not at white."""
    from rawlab.lab.charts import Registration
    from rawlab.lab.run import ChartImage, measure_chart
    from rawlab.sim.scene import gray_steps

    sc = gray_steps((1280, 160))
    refl = sc.gain.astype(np.float64)  # a neutral scene: luminance = reflectance (white = 1)
    metered = refl.mean()
    rng = np.random.default_rng(1)

    def rendered(gain):
        lin = refl * gain * (1.0 + 0.01 * rng.standard_normal(refl.shape))  # 1 % noise: SNR 40 dB
        lin = np.clip(lin, 0.0, 1.0)
        enc = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * lin ** (1 / 2.4) - 0.055)
        return ChartImage("gray_steps", np.repeat(enc[..., None], 3, axis=2).astype(np.float32),
                          sc.geometry, Registration(), truth_luma=refl.astype(np.float32))

    normal, _ = measure_chart(rendered(0.18 * 2 ** 0.5 / metered))  # the metered grey 0.5 EV bright
    assert normal["metered_reflectance"] == pytest.approx(metered)
    assert normal["exposure_error_ev"] == pytest.approx(0.5, abs=0.02)
    assert normal["snr_db"] == pytest.approx(40.0, abs=1.0)
    assert normal["visual_noise"] > 0
    bright, _ = measure_chart(rendered(0.18 * 2 ** 1.5 / metered))  # 1 EV brighter: the top steps clip
    assert bright["highlight_clipped_steps"] > 0
    assert bright["exposure_error_ev"] == pytest.approx(1.5, abs=0.02)
    assert bright["snr_db"] == pytest.approx(normal["snr_db"], abs=1.0)


def test_protocol_file_errors(tmp_path):
    bad = tmp_path / "p.toml"
    bad.write_text("name = [")
    with pytest.raises(CorruptFile) as info:
        load_protocol(bad)
    assert str(bad) in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(InvalidParams, match="unknown protocol"):
        load_protocol("nonexistent")


# ----------------------------------------------------------------------- a quick run
@pytest.fixture(scope="module")
def quick_run():
    t0 = time.perf_counter()
    run = run_protocol(load_protocol("quick"), ["rawlab", "rawpy"])
    return run, time.perf_counter() - t0


def test_quick_run_is_quick(quick_run):
    run, seconds = quick_run
    assert seconds < 60.0
    assert run.results["rawlab_lab"]["score_version"] == SCORE_VERSION


def test_quick_run_scores_every_subscore(quick_run):
    run, _ = quick_run
    res = run.results
    assert [cs["key"] for cs in res["capture_sets"]] == ["phone-1in/D65 bright/ISO100",
                                                         "phone-1in/D65 bright/ISO3200"]
    for name in ("rawlab", "rawpy"):
        assert res["pipelines"][name]["status"] == "ok"
        assert res["pipelines"][name]["errors"] == []
        for k in SUBSCORES:
            assert 0.0 <= res["summary"][name][k] <= 100.0
        for cs in res["capture_sets"]:
            assert cs["pipelines"][name]["scores"]["missing"] == []


def test_quick_run_numbers_make_sense(quick_run):
    run, _ = quick_run
    sets = run.results["capture_sets"]
    lo, hi = (cs["pipelines"]["rawlab"] for cs in sets)
    # noise grows with ISO: SNR falls, visual noise rises, the noise score drops
    assert hi["metrics"]["snr_db"] < lo["metrics"]["snr_db"] - 6.0
    assert hi["metrics"]["visual_noise"] > lo["metrics"]["visual_noise"]
    assert hi["scores"]["noise"] < lo["scores"]["noise"]
    # colour under D65 at base ISO sits at the 3x3-matrix floor (about 0.93 mean dE2000)
    assert lo["metrics"]["delta_e2000_mean"] < 1.3
    # the simulated lens's shading is corrected by rawlab from the DNG gain map, not by LibRaw
    assert abs(lo["metrics"]["vignetting_worst_ev"]) < 0.2
    assert sets[0]["pipelines"]["rawpy"]["metrics"]["vignetting_worst_ev"] < -1.0
    # the slanted edge is found at its true angle
    assert lo["metrics"]["edge_angle_deg"] == pytest.approx(5.0, abs=0.2)
    # the same protocol and seeds give the same numbers
    again = run_protocol(load_protocol("quick").restricted(isos=[100]), ["rawlab"])
    m_again = again.results["capture_sets"][0]["pipelines"]["rawlab"]["metrics"]
    for key in ("delta_e2000_mean", "snr_db", "mtf50_cy_px", "texture_acutance"):
        assert m_again[key] == pytest.approx(lo["metrics"][key], rel=1e-6)


def test_unavailable_pipeline_is_reported_and_the_run_goes_on():
    class Missing:
        name = "ghost"

        def check(self):
            raise RawlabError("ghost-cli is not installed (Debian package ghost)")

        def render(self, path):  # pragma: no cover - never called
            raise AssertionError

    p = load_protocol("quick")
    small = replace(p, isos=(100.0,), charts=tuple(c for c in p.charts if c.name == "colorchecker"))
    run = run_protocol(small, [Missing(), "rawlab"])
    assert run.results["pipelines"]["ghost"]["status"] == "unavailable"
    assert "not installed" in run.results["pipelines"]["ghost"]["reason"]
    assert run.results["summary"]["rawlab"]["color"] > 0
    assert "ghost" not in run.results["summary"]


def test_iso_outside_camera_range_is_skipped():
    p = load_protocol("quick")
    small = replace(p, cameras=("phone-small",), isos=(100.0, 12800.0),
                    charts=tuple(c for c in p.charts if c.name == "colorchecker"))
    run = run_protocol(small, ["rawlab"])
    assert len(run.results["capture_sets"]) == 1
    assert "ISO12800" in run.results["skipped"][0]


# ----------------------------------------------------------------------- measure_image
# (the CLI, rawlab lab run|measure, is tested through rawlab.cli.main in tests/test_cli_lab.py)
def test_measure_image_is_float_safe():
    from rawlab.lab.run import measure_image

    with pytest.raises(InvalidParams):
        measure_image(np.zeros((50, 60, 3), np.float32), {"chart": "colorchecker", "size_wh": [60, 50],
                                                          "geometry": {"patches": [{"box": [0, 0, 2, 2]}] * 24}})
