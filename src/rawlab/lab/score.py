"""Lab scores: Exposure, Color, Texture, Noise, Artifacts (0-100) and an overall score.

Formula version :data:`SCORE_VERSION`; ``docs/lab.md`` gives the rationale.
Any change to an anchor, a weight or a mapping is a new version.

Each measurement is mapped to 0..100 by a :class:`Anchor`: the value that
scores 0 and the value that scores 100, linear in the value or in its
logarithm in between, clamped outside.  A sub-score is the weighted mean of
its components; a component whose measurement is missing (the chart could
not be measured) is left out and named in ``missing``.  The overall score is
the weighted mean of the five sub-scores, and only exists when all five do
(a capture set that measures colour alone has a colour score and no overall).
Over a protocol, each sub-score is the mean over the capture sets that have
it, and the overall score is the weighted mean of those means.

Version history: 1 (first formula); 2 (colour on the linear rendering,
tone-normalised; exposure and noise at the metered grey of the grey steps;
texture scores MTF50P with anchors 0.15-0.60 cy/px; overall only from all
five sub-scores, aggregated from the sub-score means).  ``docs/lab.md``
gives the reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

#: Version of the scoring formula (anchors, weights, mappings).
SCORE_VERSION = 2


@dataclass(frozen=True, slots=True)
class Anchor:
    """Maps one measurement to 0..100.

    Attributes
    ----------
    metric
        Key in the metrics dict.
    at_0, at_100
        Values that score 0 and 100 (either order: lower-is-better when ``at_100 < at_0``).
    scale
        ``"linear"`` or ``"log"`` (linear in log(value); both anchors > 0).
    weight
        Weight inside the sub-score.
    absolute
        Score ``abs(value)`` (signed errors such as exposure error or distortion).
    why
        One line of rationale (shown in the report and docs).
    """

    metric: str
    at_0: float
    at_100: float
    scale: str
    weight: float
    absolute: bool = False
    why: str = ""

    def __call__(self, value: float | None) -> float:
        """Score of ``value`` (NaN when the value is missing or not finite)."""
        if value is None or not isinstance(value, (int, float)) or not math.isfinite(value):
            return float("nan")
        v = abs(float(value)) if self.absolute else float(value)
        a, b = self.at_0, self.at_100
        if self.scale == "log":
            v = math.log(max(v, 1e-12))
            a, b = math.log(a), math.log(b)
        t = (v - a) / (b - a)
        return 100.0 * min(1.0, max(0.0, t))


#: The formula: sub-score -> components.
ANCHORS: dict[str, tuple[Anchor, ...]] = {
    "exposure": (
        Anchor("exposure_error_ev", 1.0, 0.0, "linear", 0.5, absolute=True,
               why="the metered luminance of the grey-step chart should render at 18 % (ISO 12232 SOS); "
                   "1 EV off is a failed exposure"),
        Anchor("dynamic_range_snr10_ev", 3.0, 9.0, "linear", 0.5,
               why="tonal range with SNR >= 10 on the grey steps; 9 EV is the chart's usable span"),
    ),
    "color": (
        Anchor("delta_e2000_mean", 10.0, 1.0, "log", 0.6,
               why="mean CIEDE2000 on the ColorChecker (linear rendering, tone-normalised on the neutrals): "
                   "1 is at the threshold of visibility, 10 is a different colour"),
        Anchor("wb_error_delta_ab_mean", 10.0, 1.0, "log", 0.2,
               why="a*b* error of the neutral patches: 1 invisible, 10 an obvious cast"),
        Anchor("chroma_level_error_pct", 30.0, 0.0, "linear", 0.2, absolute=True,
               why="saturation relative to the reference: 30 % off is a different look"),
    ),
    "texture": (
        Anchor("texture_acutance", 0.2, 1.0, "linear", 0.5,
               why="CPIQ dead-leaves acutance (100 % view, 100 ppi, 0.5 m): 1 keeps all visible texture"),
        Anchor("mtf50p_cy_px", 0.15, 0.60, "linear", 0.5,
               why="slanted-edge MTF50P: 0.60 cy/px is a perfect lens on a 100 % fill-factor pixel "
                   "(sinc, MTF50 = 0.603), 0.15 a Gaussian blur of 1.25 px; the peak reference keeps "
                   "sharpening from buying sharpness"),
    ),
    "noise": (
        Anchor("snr_db", 14.0, 38.0, "linear", 0.5,
               why="SNR at the metered grey of the grey steps: 10:1 (20 dB, ISO 12232 'acceptable') scores 25, "
                   "40:1 (32 dB, 'excellent') scores 75"),
        Anchor("visual_noise", 8.0, 0.5, "log", 0.5,
               why="ISO 15739 visual noise at the metered grey of the grey steps: 0.5 invisible, 8 objectionable"),
    ),
    "artifacts": (
        Anchor("false_color_mean_chroma", 10.0, 0.5, "log", 0.4,
               why="mean C*ab on the black-and-white Siemens star: 0.5 invisible, 10 strong colour moire"),
        Anchor("edge_overshoot_pct", 40.0, 5.0, "linear", 0.3, absolute=True,
               why="sharpening halo on the slanted edge: 5 % invisible, 40 % a bright outline"),
        Anchor("vignetting_worst_ev", 1.5, 0.0, "linear", 0.3, absolute=True,
               why="corner fall-off of a uniform field (the DNG carries the lens-shading gain map): "
                   "1.5 EV is a dark frame"),
    ),
}

#: Sub-score weights in the overall score.
WEIGHTS: dict[str, float] = {"exposure": 0.2, "color": 0.25, "texture": 0.2, "noise": 0.2, "artifacts": 0.15}


def derived_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Metrics the anchors use that are computed from measured ones (``chroma_level_error_pct``)."""
    out = {}
    c = metrics.get("chroma_level_pct")
    if isinstance(c, (int, float)) and math.isfinite(c):
        out["chroma_level_error_pct"] = float(c) - 100.0
    return out


def score_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Scores of one capture set from its metrics.

    Parameters
    ----------
    metrics
        Flat dict of measurements (the keys of :data:`ANCHORS`); missing keys are allowed.

    Returns
    -------
    dict
        ``{"exposure", "color", "texture", "noise", "artifacts", "overall"}`` (0..100,
        NaN when nothing in a sub-score could be measured; overall NaN unless all five
        sub-scores are there), ``"components"`` (each
        anchor's score) and ``"missing"`` (metrics that were absent), ``"version"``.
    """
    m = {**metrics, **derived_metrics(metrics)}
    components: dict[str, float] = {}
    missing: list[str] = []
    out: dict[str, Any] = {}
    for sub, anchors in ANCHORS.items():
        total = wsum = 0.0
        for a in anchors:
            s = a(m.get(a.metric))
            components[a.metric] = s
            if math.isnan(s):
                missing.append(a.metric)
                continue
            total += a.weight * s
            wsum += a.weight
        out[sub] = total / wsum if wsum > 0 else float("nan")
    out["overall"] = overall_score(out)
    out["components"] = components
    out["missing"] = missing
    out["version"] = SCORE_VERSION
    return out


def overall_score(subscores: Mapping[str, Any]) -> float:
    """Weighted mean of the five sub-scores (:data:`WEIGHTS`); NaN unless all five are finite."""
    total = 0.0
    for sub, w in WEIGHTS.items():
        v = subscores.get(sub)
        if not isinstance(v, (int, float)) or not math.isfinite(v):
            return float("nan")
        total += w * float(v)
    return total / sum(WEIGHTS.values())


def aggregate_scores(per_set: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Scores over capture sets: each sub-score's mean over the sets that have it (NaNs
    skipped), ``n_<sub-score>`` how many did, and the overall score of those means."""
    out: dict[str, Any] = {"n_sets": len(per_set), "version": SCORE_VERSION}
    for key in WEIGHTS:
        vals = [float(s[key]) for s in per_set if isinstance(s.get(key), (int, float)) and math.isfinite(s[key])]
        out[key] = sum(vals) / len(vals) if vals else float("nan")
        out[f"n_{key}"] = len(vals)
    out["overall"] = overall_score(out)
    return out


def anchors_table() -> list[dict[str, Any]]:
    """The formula as data (for the JSON and the report)."""
    return [{"subscore": sub, "subscore_weight": WEIGHTS[sub], "metric": a.metric, "at_0": a.at_0,
             "at_100": a.at_100, "scale": a.scale, "weight": a.weight, "absolute": a.absolute, "why": a.why}
            for sub, anchors in ANCHORS.items() for a in anchors]
