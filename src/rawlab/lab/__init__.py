"""Image-quality lab: objective measurements on chart captures.

Each measurement is a plain function on an image (float arrays; the docstring
states whether it expects linear or encoded values and the channel order) plus
the chart geometry, returning a small frozen dataclass of numbers and curves.

* :mod:`rawlab.lab.sfr` -- ISO 12233 e-SFR (slanted edge): MTF, MTF50, MTF50P, overshoot
* :mod:`rawlab.lab.deadleaves` -- dead-leaves texture MTF (noise corrected), CPIQ acutance
* :mod:`rawlab.lab.noise` -- SNR, luminance/chroma noise, ISO 15739 visual noise
* :mod:`rawlab.lab.color` -- CIEDE2000, ColorChecker ΔE, white balance, chroma level
* :mod:`rawlab.lab.tone` -- OECF, dynamic range (SNR 1 / 10), clipping
* :mod:`rawlab.lab.geometry` -- vignetting, distortion, lateral CA
* :mod:`rawlab.lab.artifacts` -- demosaicing false colour and zipper
"""

from __future__ import annotations

from rawlab.lab.artifacts import FalseColorResult, false_color_achromatic, zipper_lu_tan2003
from rawlab.lab.color import (
    ColorCheckerResult,
    colorchecker_reference_Lab_D50,
    delta_e_ciede2000,
    measure_colorchecker,
)
from rawlab.lab.deadleaves import (
    TextureMtfResult,
    acutance_cpiq,
    pixels_per_degree,
    radial_psd,
    render_dead_leaves,
    texture_mtf_dead_leaves,
)
from rawlab.lab.geometry import (
    DistortionResult,
    LateralCaResult,
    VignettingResult,
    distortion_dot_grid,
    find_dots,
    lateral_ca_dot_grid,
    render_dot_grid,
    vignetting_ev,
)
from rawlab.lab.noise import (
    ColorNoise,
    PatchNoise,
    VisualNoise,
    luminance_chroma_noise,
    patch_snr,
    visual_noise_iso15739,
)
from rawlab.lab.sfr import SfrResult, render_gaussian_edge, sfr_slanted_edge_iso12233
from rawlab.lab.tone import ClippingResult, ToneResult, clipping_fractions, measure_tone_steps

__all__ = [
    "ClippingResult",
    "ColorCheckerResult",
    "ColorNoise",
    "DistortionResult",
    "FalseColorResult",
    "LateralCaResult",
    "PatchNoise",
    "SfrResult",
    "TextureMtfResult",
    "ToneResult",
    "VignettingResult",
    "VisualNoise",
    "acutance_cpiq",
    "clipping_fractions",
    "colorchecker_reference_Lab_D50",
    "delta_e_ciede2000",
    "distortion_dot_grid",
    "false_color_achromatic",
    "find_dots",
    "lateral_ca_dot_grid",
    "luminance_chroma_noise",
    "measure_colorchecker",
    "patch_snr",
    "pixels_per_degree",
    "radial_psd",
    "render_dead_leaves",
    "render_dot_grid",
    "render_gaussian_edge",
    "sfr_slanted_edge_iso12233",
    "texture_mtf_dead_leaves",
    "vignetting_ev",
    "visual_noise_iso15739",
    "zipper_lu_tan2003",
]
