"""Lab scores (rawlab.lab.score): anchors, sub-scores, the overall score, the pinned version-2 formula."""

from __future__ import annotations

import math

import pytest

from rawlab.lab import score
from rawlab.lab.score import ANCHORS, SCORE_VERSION, WEIGHTS, Anchor, aggregate_scores, anchors_table, score_metrics

def test_formula_is_pinned():
    """A change of the formula must bump SCORE_VERSION (and this table, and docs/lab.md)."""
    assert SCORE_VERSION == 2
    # The version-2 formula, written out independently of the module (docs/lab.md table).
    expected = {
        ("exposure", "exposure_error_ev"): (1.0, 0.0, "linear", 0.5, True),
        ("exposure", "dynamic_range_snr10_ev"): (3.0, 9.0, "linear", 0.5, False),
        ("color", "delta_e2000_mean"): (10.0, 1.0, "log", 0.6, False),
        ("color", "wb_error_delta_ab_mean"): (10.0, 1.0, "log", 0.2, False),
        ("color", "chroma_level_error_pct"): (30.0, 0.0, "linear", 0.2, True),
        ("texture", "texture_acutance"): (0.2, 1.0, "linear", 0.5, False),
        ("texture", "mtf50p_cy_px"): (0.15, 0.60, "linear", 0.5, False),
        ("noise", "snr_db"): (14.0, 38.0, "linear", 0.5, False),
        ("noise", "visual_noise"): (8.0, 0.5, "log", 0.5, False),
        ("artifacts", "false_color_mean_chroma"): (10.0, 0.5, "log", 0.4, False),
        ("artifacts", "edge_overshoot_pct"): (40.0, 5.0, "linear", 0.3, True),
        ("artifacts", "vignetting_worst_ev"): (1.5, 0.0, "linear", 0.3, True),
    }
    got = {(a["subscore"], a["metric"]): (a["at_0"], a["at_100"], a["scale"], a["weight"], a["absolute"])
           for a in anchors_table()}
    assert got == expected
    assert WEIGHTS == {"exposure": 0.2, "color": 0.25, "texture": 0.2, "noise": 0.2, "artifacts": 0.15}
    assert math.isclose(sum(WEIGHTS.values()), 1.0)
    for anchors in ANCHORS.values():
        assert math.isclose(sum(a.weight for a in anchors), 1.0)
        assert all(a.why for a in anchors)


def test_anchor_linear_and_clamped():
    a = Anchor("x", 3.0, 9.0, "linear", 1.0)
    assert a(3.0) == 0.0 and a(9.0) == 100.0
    assert a(6.0) == pytest.approx(50.0)
    assert a(1.0) == 0.0 and a(20.0) == 100.0
    down = Anchor("x", 40.0, 5.0, "linear", 1.0, absolute=True)
    assert down(-5.0) == 100.0 and down(22.5) == pytest.approx(50.0)


def test_anchor_log_midpoint_is_geometric_mean():
    a = Anchor("de", 10.0, 1.0, "log", 1.0)
    assert a(math.sqrt(10.0)) == pytest.approx(50.0)
    assert a(1.0) == pytest.approx(100.0) and a(10.0) == pytest.approx(0.0)
    assert a(0.1) == 100.0 and a(100.0) == 0.0


@pytest.mark.parametrize("bad", [None, float("nan"), float("inf"), "3"])
def test_anchor_missing_values_are_nan(bad):
    assert math.isnan(Anchor("x", 0.0, 1.0, "linear", 1.0)(bad))


def _perfect() -> dict:
    return {"exposure_error_ev": 0.0, "dynamic_range_snr10_ev": 10.0, "delta_e2000_mean": 0.5,
            "wb_error_delta_ab_mean": 0.2, "chroma_level_pct": 100.0, "texture_acutance": 1.1,
            "mtf50p_cy_px": 0.65, "snr_db": 45.0, "visual_noise": 0.2, "false_color_mean_chroma": 0.1,
            "edge_overshoot_pct": 0.0, "vignetting_worst_ev": 0.0}


def test_perfect_and_terrible():
    s = score_metrics(_perfect())
    for k in (*WEIGHTS, "overall"):
        assert s[k] == pytest.approx(100.0)
    assert s["missing"] == [] and s["version"] == SCORE_VERSION
    bad = {"exposure_error_ev": -3.0, "dynamic_range_snr10_ev": 0.0, "delta_e2000_mean": 30.0,
           "wb_error_delta_ab_mean": 20.0, "chroma_level_pct": 50.0, "texture_acutance": 0.05,
           "mtf50p_cy_px": 0.01, "snr_db": 5.0, "visual_noise": 20.0, "false_color_mean_chroma": 30.0,
           "edge_overshoot_pct": 80.0, "vignetting_worst_ev": -3.0}
    s = score_metrics(bad)
    for k in (*WEIGHTS, "overall"):
        assert s[k] == pytest.approx(0.0)


def test_overall_is_the_weighted_mean_computed_by_hand():
    m = _perfect() | {"delta_e2000_mean": math.sqrt(10.0), "snr_db": 26.0}
    s = score_metrics(m)
    color = 0.6 * 50.0 + 0.2 * 100.0 + 0.2 * 100.0  # 70
    noise = 0.5 * 50.0 + 0.5 * 100.0  # 75
    assert s["color"] == pytest.approx(color)
    assert s["noise"] == pytest.approx(noise)
    overall = 0.2 * 100 + 0.25 * color + 0.2 * 100 + 0.2 * noise + 0.15 * 100
    assert s["overall"] == pytest.approx(overall)


def test_missing_component_is_left_out_and_named():
    m = _perfect()
    del m["visual_noise"]
    m["snr_db"] = 26.0
    s = score_metrics(m)
    assert s["missing"] == ["visual_noise"]
    assert s["noise"] == pytest.approx(50.0)  # only the SNR component counts
    nothing = score_metrics({})
    assert math.isnan(nothing["overall"]) and len(nothing["missing"]) == len(anchors_table())


def test_overall_needs_all_five_subscores():
    """A colour-only capture set has a colour score and no overall score (version 2)."""
    color_only = {k: _perfect()[k] for k in ("delta_e2000_mean", "wb_error_delta_ab_mean", "chroma_level_pct")}
    s = score_metrics(color_only)
    assert s["color"] == pytest.approx(100.0)
    assert math.isnan(s["exposure"]) and math.isnan(s["overall"])


def test_chroma_level_error_is_signed_distance_from_100():
    assert score.derived_metrics({"chroma_level_pct": 115.0}) == {"chroma_level_error_pct": 15.0}
    s = score_metrics(_perfect() | {"chroma_level_pct": 85.0})
    assert s["components"]["chroma_level_error_pct"] == pytest.approx(50.0)


def test_aggregate_skips_nan_and_weights_the_subscore_means():
    a = score_metrics(_perfect())
    b = dict(a, overall=float("nan"), color=50.0, texture=float("nan"))
    agg = aggregate_scores([a, b])
    assert agg["color"] == pytest.approx(75.0) and agg["n_color"] == 2
    assert agg["texture"] == pytest.approx(100.0) and agg["n_texture"] == 1
    # the overall score is the weighted mean of the sub-score means, not the mean of per-set overalls
    assert agg["overall"] == pytest.approx(100.0 - 0.25 * 25.0)
    assert agg["n_sets"] == 2
    assert math.isnan(aggregate_scores([score_metrics({})])["overall"])
