"""Fusing runs of point-wise stages into one pass: a speed optimisation of :func:`rawlab.pipeline.develop`.

The stages stay the reference; this module only changes *how* a recipe runs.
:func:`fuse_recipe` replaces each run of fusable steps, e.g. ::

    camera_to_xyz, xyz_to_rgb, exposure, look_white_balance_bias,     (linear: one 3x3 matrix)
    look_vignette,                                                    (a smooth gain field)
    look_saturation, look_hsl, look_tone_curve, look_split_tone,
    output_transfer, look_lut,                                        (point-wise: baked tables)
    look_grain                                                        (added after the tables)
    crop                                                              (only these pixels computed)

by one ``fused_pointwise`` step whose params hold the steps it replaces.  That
stage makes one pass over the image (Numba, float32, one new output array)::

    v   = M @ rgb                    M: the linear prefix, measured by running its
                                     stages on the basis vectors (metadata-dependent)
    v  *= gain(y, x)                 vignettes, evaluated on a grid every 8 px (less on
                                     small images) and interpolated bilinearly (smooth)
    out = tables(shaper(v))          the point-wise chain, baked by running its stages
                                     on lattice points with the frame's real metadata
    out += grain                     the stage's own grain field and formula

**Shaper.**  Each channel ``x`` becomes ``s = sign(x) log2(1 + |x| / eps)``
(:data:`SHAPER_EPS` = 2^-10): stops above ``eps`` for bright values, linear
near zero, odd and smooth (C1) through zero, so noise and out-of-gamut
negatives are represented like the rest.  The kernel evaluates the ``log2``
from the float's exponent and a degree-7 polynomial on its mantissa
(:func:`shaper_reference` is the NumPy twin; they agree to 1e-6 stop).

**Per-channel chains** (each output channel depends on its own input channel
only; the default develop: filmic and the sRGB curve) are detected on a fixed
set of probe colours and baked into one table per channel over ``s``, with
:data:`LUT1D_PER_STOP` points per stop, linearly interpolated.

**Colour chains** (saturation, HSL, mono, split toning, LUTs) are baked into a
3D lattice over ``u = (s_R + s_G + s_B) / 3`` (brightness) and the chroma
coordinates ``a = s_R - s_G``, ``b = s_B - s_G`` (log ratios), with
:data:`LUT3D_U_PER_STOP` points per stop along ``u``, and along ``a`` and
``b`` :data:`LUT3D_CHROMA_PER_STOP` per stop within ±:data:`LUT3D_CHROMA_STOPS`
of grey, then :data:`LUT3D_CHROMA_OUTER_PER_STOP` per stop out to
±:data:`LUT3D_CHROMA_OUTER_STOPS` (saturated colours: a red of 150:1:1 is
7 stops from grey), and interpolated tetrahedrally (Kasson et al.
1995, see :mod:`rawlab.look.lut`).  Two choices keep the error small:

* the lattice is fine across hue and chroma and coarse in brightness, where
  photographic colour operations vary least: a scene-referred colour operation
  that commutes with exposure (saturation, HSL, a channel mixer) is an exact
  translation along ``u``, so all the lattice's resolution goes where the
  operations bend.  On per-channel log coordinates (a lattice over ``s_R,
  s_G, s_B``) the same 65^3 table had cells of a third of a stop across the
  grey axis, and chroma boosts of near-neutral colours (most pixels) were
  interpolated across one cell: on the Canon D30 test RAW the ``vibrant`` look
  had mean CIEDE2000 0.49, 99th percentile 1.9;
* the tetrahedra are cut along the lattice's diagonal, so the planes where the
  ordering of R, G, B changes (R = G is ``a = 0``, B = G is ``b = 0``, R = B is
  ``a = b``), where saturation and HSL operations have kinks, are faces of the
  tetrahedra, and greys (``a = b = 0``) are interpolated along ``u`` only.

Each lattice output is stored as a coordinate on the chain's fine response to
greys (one increasing curve per channel, applied after the interpolation: the
usual shaper / 3D / 1D split of colour management), so greys and per-channel
curves are exact up to the fine table and the lattice only interpolates what
the colour operations add.

**Exactness.**  A pixel the tables cannot represent (a channel outside
:data:`SHAPER_RANGE`, brightness or chroma outside the lattice, NaN or
infinity, or a table entry that is not finite) is flagged by the kernel and
run through the exact stages afterwards (gathered, run, scattered back;
grain added with the grain stage's own function), so nothing is clamped: the
fused result differs from stage-by-stage only by interpolation error, on every
pixel.  Measured (``tests/test_look_fused.py``, CIEDE2000 of the encoded sRGB
results against ``fuse=False``) on the Canon D30 CRW (3 MP): without a look,
mean 0.0001, max 0.001; with the built-in looks, mean at most 0.027 and the
99.9th percentile at most 0.14 (``film``, ``vivid``), the maximum at most
about 2.2 (``mono``, ``sepia``: a few strongly saturated pixels in the coarse
outer cells).  On the 12 MP built-in sample 14 pixels leave the lattice and
run exactly; with a lattice ending at ±6 stops it was 1.4 % of them, and
their exact re-run cost a third of the pass.  The test bounds are mean <= 0.1,
p99.9 <= 0.75, max <= 3.

**Cache.**  Baked tables are cached (a few, least recently used, behind a
lock).  The key holds the chain's stages and params *and a fingerprint of what
the chain computes*: its outputs on a fixed set of probe colours, run with the
frame's real metadata.  A stage in the chain that reads metadata (``exposure``
reads the DNG BaselineExposure, for example) thus gets new tables when the
metadata changes what it does.

The metadata of the result (transfer, clip level, history) is that of the
exact path: every replaced stage also runs on a 1-pixel probe frame with the
real metadata, so the history lists each replaced stage (then
``fused_pointwise``), and a misplaced stage raises the same error as unfused.
Where the pass cannot express a run (a linear stage that is not linear on this
frame, grain on linear data) it runs the steps one by one.  The grain field is
the grain stage's own, kept for the next image of the same size (one field).
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, ClassVar, NamedTuple

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import InvalidParams

__all__ = [
    "FUSED_STAGE",
    "FusedParams",
    "LINEAR_STAGES",
    "SHAPER_RANGE",
    "fuse_recipe",
    "fused_pointwise",
    "fused_pointwise_reference",
    "shaper_reference",
    "shaper_inverse",
]

FUSED_STAGE = "fused_pointwise"
#: Point-wise stages that are 3x3 linear maps per frame (folded into one matrix).
LINEAR_STAGES = ("camera_to_xyz", "xyz_to_rgb", "exposure", "look_white_balance_bias")
#: Position-dependent stages the fused pass takes over (a gain before the tables, grain after them).
GAIN_STAGES = ("look_vignette",)
GRAIN_STAGES = ("look_grain",)
#: The default crop, when it ends a run: the pass writes only the cropped pixels (no copy afterwards).
CROP_STAGES = ("crop",)
#: Below this magnitude the shaper is linear (a value near 0 has no stops).
SHAPER_EPS = 2.0**-10
#: Scene-linear range of the per-channel tables; values beyond run through the exact stages.
SHAPER_RANGE = (-2.0, 64.0)
#: Per-channel tables: points per stop of the shaper.
LUT1D_PER_STOP = 64
#: The 3D lattice: brightness ``u`` from .. to (shaper stops) and points per stop.
LUT3D_U_RANGE = (-4.0, 16.0)
LUT3D_U_PER_STOP = 2
#: The 3D lattice: chroma ``a``, ``b``: points per stop within +-LUT3D_CHROMA_STOPS of grey,
#: then LUT3D_CHROMA_OUTER_PER_STOP out to +-LUT3D_CHROMA_OUTER_STOPS (saturated colours).
LUT3D_CHROMA_STOPS = 6.0
LUT3D_CHROMA_PER_STOP = 8
LUT3D_CHROMA_OUTER_STOPS = 11.0
LUT3D_CHROMA_OUTER_PER_STOP = 4
#: Largest spacing of the gain-field grid (pixels).
GAIN_STEP_PX = 8
#: Tables kept in the cache.
TABLES_CACHED = 8


@dataclass(frozen=True)
class FusedParams(Params):
    """Parameters of ``fused_pointwise``: the recipe steps it replaces, in order."""

    VERSION: ClassVar[int] = 2
    steps: tuple[Any, ...] = param((), doc="the replaced RecipeSteps (made by fuse_recipe, not written by hand)")

    def __post_init__(self) -> None:
        super().__post_init__()
        for s in self.steps:
            if not (hasattr(s, "stage") and isinstance(getattr(s, "params", None), Params)):
                raise InvalidParams("FusedParams.steps: fused_pointwise is made by rawlab.look.fused.fuse_recipe "
                                    "from recipe steps; it cannot be written in a recipe")


# ------------------------------------------------------------------ the optimiser
def _is_pointwise(name: str) -> bool:
    from rawlab.core.stage import get_stage

    try:
        return bool(get_stage(name).pointwise)
    except KeyError:
        return False


def _split(steps) -> tuple[list, list, list, list, list]:
    """``(linear prefix, gains, point-wise chain, grain, crop)`` of a fusable run (see :func:`fuse_recipe`)."""
    i = 0
    prefix, gains, chain, grain, crop = [], [], [], [], []
    while i < len(steps) and steps[i].stage in LINEAR_STAGES:
        prefix.append(steps[i])
        i += 1
    while i < len(steps) and steps[i].stage in GAIN_STAGES:
        gains.append(steps[i])
        i += 1
    while i < len(steps) and _is_pointwise(steps[i].stage):
        chain.append(steps[i])
        i += 1
    if i < len(steps) and steps[i].stage in GRAIN_STAGES:
        grain.append(steps[i])
        i += 1
    if i < len(steps) and steps[i].stage in CROP_STAGES:
        crop.append(steps[i])
        i += 1
    if i != len(steps):
        raise ValueError(f"not a fusable run: {[s.stage for s in steps]}")
    return prefix, gains, chain, grain, crop


def _take_run(steps, start: int) -> int:
    """End (exclusive) of the longest fusable run starting at ``start``."""
    i = start
    n = len(steps)
    while i < n and steps[i].stage in LINEAR_STAGES:
        i += 1
    while i < n and steps[i].stage in GAIN_STAGES:
        i += 1
    while i < n and _is_pointwise(steps[i].stage):
        i += 1
    if i < n and steps[i].stage in GRAIN_STAGES and i > start:
        i += 1
    if i < n and steps[i].stage in CROP_STAGES and i > start:
        i += 1
    return i


def fuse_recipe(recipe):
    """``recipe`` with each run of two or more fusable steps replaced by one ``fused_pointwise`` step.

    A run is: linear stages (:data:`LINEAR_STAGES`), then vignettes, then
    point-wise stages (registered with ``pointwise=True``), then at most one
    ``look_grain``, then at most one ``crop`` (the pass then computes only the
    cropped pixels, on the uncropped frame's grid); any part may be empty.  Other steps are kept as they are.
    The result develops to the same image as ``recipe`` within interpolation
    error (see the module docstring); the recipe's name is kept.
    """
    from rawlab.pipeline import RecipeStep, load_stages

    load_stages()
    steps = list(recipe.steps)
    out = []
    i = 0
    while i < len(steps):
        end = _take_run(steps, i)
        if end - i >= 2:
            out.append(RecipeStep(FUSED_STAGE, FusedParams(steps=tuple(steps[i:end]))))
            i = end
        else:
            out.append(steps[i])
            i += 1
    return replace(recipe, steps=tuple(out))


# ------------------------------------------------------------------------ shaper
def shaper_reference(x: NDArray) -> NDArray[np.float64]:
    """The shaper ``s = sign(x) log2(1 + |x| / eps)`` (NumPy twin of the kernel's, float64).

    Input: scene-linear values, any range; output: stops above
    :data:`SHAPER_EPS` (odd; NaN stays NaN).
    """
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.log2(1.0 + np.abs(x) / SHAPER_EPS)


def shaper_inverse(s: NDArray) -> NDArray[np.float64]:
    """Scene-linear value of shaper values ``s`` (the exact inverse of :func:`shaper_reference`)."""
    s = np.asarray(s, np.float64)
    return np.sign(s) * SHAPER_EPS * np.expm1(np.abs(s) * math.log(2.0))


def _log2_mantissa_poly() -> NDArray[np.float32]:
    """Coefficients ``r`` of ``log2(1 + t) ~ t + t (1 - t) r(t)`` on ``0 <= t < 1``.

    Least squares on Chebyshev nodes (degree 5 in ``r``, 7 in all); exact at
    ``t = 0`` and ``t = 1`` (continuous across octaves), max error 1.2e-6 with float32 coefficients.
    """
    t = np.cos(np.pi * (np.arange(400) + 0.5) / 400) * 0.5 + 0.5
    y = (np.log2(1.0 + t) - t) / (t * (1.0 - t))
    return np.polynomial.polynomial.polyfit(t, y, 5).astype(np.float32)


_POLY = _log2_mantissa_poly()
_S_LO = float(shaper_reference(SHAPER_RANGE[0]))
_S_HI = float(shaper_reference(SHAPER_RANGE[1]))


def _fine_axis() -> NDArray[np.float64]:
    """Shaper values of the per-channel tables' points (:data:`LUT1D_PER_STOP` per stop)."""
    n = int(math.ceil((_S_HI - _S_LO) * LUT1D_PER_STOP)) + 1
    return _S_LO + np.arange(n, dtype=np.float64) / LUT1D_PER_STOP


def _chroma_centre() -> float:
    """Lattice index of grey on the chroma axes (``(nc - 1) / 2``)."""
    return (LUT3D_CHROMA_PER_STOP * LUT3D_CHROMA_STOPS
            + LUT3D_CHROMA_OUTER_PER_STOP * (LUT3D_CHROMA_OUTER_STOPS - LUT3D_CHROMA_STOPS))


def chroma_index_reference(d: NDArray) -> NDArray[np.float64]:
    """Lattice coordinate of chroma ``d`` (stops): fine near grey, coarser beyond (NumPy twin of the kernel's)."""
    d = np.asarray(d, np.float64)
    m = np.abs(d)
    k = LUT3D_CHROMA_PER_STOP * np.minimum(m, LUT3D_CHROMA_STOPS) \
        + LUT3D_CHROMA_OUTER_PER_STOP * np.maximum(m - LUT3D_CHROMA_STOPS, 0.0)
    return _chroma_centre() + np.sign(d) * k


def _chroma_axis() -> NDArray[np.float64]:
    """Chroma (stops) of the lattice's points: the inverse of :func:`chroma_index_reference` at integers."""
    c = _chroma_centre()
    n = int(round(2 * c)) + 1
    k = np.abs(np.arange(n, dtype=np.float64) - c)
    inner = LUT3D_CHROMA_PER_STOP * LUT3D_CHROMA_STOPS
    m = np.where(k <= inner, k / LUT3D_CHROMA_PER_STOP,
                 LUT3D_CHROMA_STOPS + (k - inner) / LUT3D_CHROMA_OUTER_PER_STOP)
    return np.sign(np.arange(n) - c) * m


def _lattice_axes() -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    lo, hi = LUT3D_U_RANGE
    nu = int(round((hi - lo) * LUT3D_U_PER_STOP)) + 1
    return np.linspace(lo, hi, nu), _chroma_axis()


def _colours_of(u: NDArray, a: NDArray, b: NDArray) -> NDArray[np.float32]:
    """Scene-linear RGB of lattice coordinates ``(u, a, b)`` (see the module docstring)."""
    s_g = u - (a + b) / 3.0
    return shaper_inverse(np.stack([s_g + a, s_g, s_g + b], axis=-1)).astype(np.float32)


def _probe_colours() -> NDArray[np.float32]:
    """Fixed probe colours: greys over the range, a grid across brightness and chroma, seeded random ones."""
    greys = np.repeat(shaper_inverse(np.arange(math.ceil(_S_LO), _S_HI + 1.0))[:, None], 3, axis=1)
    c = np.array([-7.0, -4.0, -2.0, -1.0, -0.3, 0.0, 0.3, 1.0, 2.0, 4.0, 7.0])
    u, a, b = np.meshgrid([-3.0, 0.0, 3.0, 6.0, 9.0, 12.0, 15.0], c, c, indexing="ij")
    grid = _colours_of(u.ravel(), a.ravel(), b.ravel())
    rng = np.random.default_rng(20240611)
    rnd = _colours_of(rng.uniform(-4.0, 17.0, 512), rng.uniform(-9.0, 9.0, 512), rng.uniform(-9.0, 9.0, 512))
    return np.concatenate([greys.astype(np.float32), grid, rnd]).astype(np.float32)


_PROBE = _probe_colours()
_PROBE.setflags(write=False)


# ------------------------------------------------------------------ table baking
class _Tables(NamedTuple):
    """Baked tables: ``mode`` 1 per channel (``post``), 3 direct lattice outputs, 4 lattice coordinates on ``post``."""

    mode: int
    post: NDArray[np.float32]  # (3, M): the chain's response to greys on the fine axis
    lattice: NDArray[np.float32]  # (nu * nc * nc, 3), or (1, 3) unused


_TABLES: "OrderedDict[tuple, _Tables]" = OrderedDict()
_TABLES_LOCK = threading.Lock()


def _run_steps(frame: Frame, steps) -> Frame:
    for s in steps:
        frame = s.spec(frame, s.params)
    return frame


def _run_on(meta: Frame, chain, colours: NDArray) -> NDArray[np.float32]:
    """The chain's outputs on ``colours`` ``(K, 3)`` with ``meta``'s metadata."""
    rows = np.ascontiguousarray(colours, np.float32).reshape(1, -1, 3)
    return _run_steps(meta.replace(data=rows, history=()), chain).data.reshape(-1, 3)


def _same(x: NDArray, y: NDArray) -> bool:
    return bool(np.allclose(x, y, rtol=1e-6, atol=1e-6, equal_nan=True))


def _tables(chain, meta: Frame) -> _Tables:
    """The baked tables of ``chain`` for frames like ``meta`` (cached by content, see the module docstring)."""
    probe_out = _run_on(meta, chain, _PROBE)
    # repr, not params_hash: LutParams leaves its table out of the hash (it is no TOML data)
    key = (tuple((s.stage, s.params.VERSION, repr(s.params)) for s in chain), meta.encoding, meta.primaries,
           meta.transfer, SHAPER_EPS, SHAPER_RANGE, LUT1D_PER_STOP, LUT3D_U_RANGE, LUT3D_U_PER_STOP,
           LUT3D_CHROMA_STOPS, LUT3D_CHROMA_PER_STOP, LUT3D_CHROMA_OUTER_STOPS, LUT3D_CHROMA_OUTER_PER_STOP,
           hashlib.sha256(probe_out.tobytes()).hexdigest())
    with _TABLES_LOCK:
        hit = _TABLES.get(key)
        if hit is not None:
            _TABLES.move_to_end(key)
            return hit
    result = _bake(chain, meta, probe_out)
    with _TABLES_LOCK:
        _TABLES[key] = result
        while len(_TABLES) > TABLES_CACHED:
            _TABLES.popitem(last=False)
    return result


def _bake(chain, meta: Frame, probe_out: NDArray[np.float32]) -> _Tables:
    fine = _fine_axis()
    m = fine.size
    greys = np.repeat(shaper_inverse(fine)[:, None], 3, axis=1)
    post = np.ascontiguousarray(_run_on(meta, chain, greys).T, dtype=np.float32)  # (3, M)
    post.setflags(write=False)
    # per-channel? each probe's channel c must equal the chain's output c on the grey of its value c
    k = _PROBE.shape[0]
    per_value = _run_on(meta, chain, np.repeat(_PROBE.reshape(-1, 1), 3, axis=1)).reshape(k, 3, 3)
    if _same(probe_out, np.einsum("kcc->kc", per_value)):
        return _Tables(1, post, np.zeros((1, 3), np.float32))
    u, c = _lattice_axes()
    uu, aa, bb = np.meshgrid(u, c, c, indexing="ij")
    table = _run_on(meta, chain, _colours_of(uu.ravel(), aa.ravel(), bb.ravel())).astype(np.float64)
    p64 = post.astype(np.float64)
    if np.all(np.isfinite(p64)) and np.all(np.diff(p64, axis=1) >= 0):
        # each output as a coordinate on the grey response: exact on the grey axis
        index = np.arange(m, dtype=np.float64)
        coord = np.empty_like(table)
        for ch in range(3):
            p = p64[ch] + index * 1e-12  # strictly increasing where float32 saturates
            v = table[:, ch]
            q = np.interp(v, p, index)
            q = np.where(v < p[0], (v - p[0]) / (p[1] - p[0]), q)
            q = np.where(v > p[-1], m - 1 + (v - p[-1]) / (p[-1] - p[-2]), q)
            coord[:, ch] = q
        lattice = np.ascontiguousarray(coord, dtype=np.float32)
        mode = 4
    else:
        lattice = np.ascontiguousarray(table, dtype=np.float32)
        mode = 3
    lattice.setflags(write=False)
    return _Tables(mode, post, lattice)


# ---------------------------------------------------------------- linear prefix
def _prefix_matrix(frame: Frame, prefix) -> NDArray[np.float32] | None:
    """The 3x3 matrix of the linear prefix on this frame's metadata, or None when not linear."""
    if not prefix:
        return np.eye(3, dtype=np.float32)
    test = np.array([0.3, -0.2, 1.7], np.float64)
    data = np.array([[[1, 0, 0], [0, 1, 0], [0, 0, 1], [0, 0, 0], list(test)]], np.float32)
    out = _run_steps(frame.replace(data=data, history=()), prefix).data.reshape(5, 3).astype(np.float64)
    M = out[:3].T
    if not (np.all(np.isfinite(M)) and np.allclose(out[3], 0, atol=1e-7)
            and np.allclose(out[4], M @ test, rtol=1e-4, atol=1e-6)):
        return None
    return np.ascontiguousarray(M, dtype=np.float32)


# ------------------------------------------------------------------ gain fields
def _grid(n: int, step: int) -> tuple[NDArray[np.intp], NDArray[np.int64], NDArray[np.float32]]:
    """Sample positions every ``step`` px (and the last), and per pixel the cell and weight."""
    pos = np.arange(0, n, step)
    if pos[-1] != n - 1:
        pos = np.append(pos, n - 1)
    if pos.size == 1:
        pos = np.array([0, 0])
    idx = np.minimum(np.searchsorted(pos, np.arange(n), side="right") - 1, pos.size - 2).astype(np.int64)
    span = (pos[idx + 1] - pos[idx]).astype(np.float64)
    w = np.where(span > 0, (np.arange(n) - pos[idx]) / np.maximum(span, 1), 0.0).astype(np.float32)
    return pos, idx, w


def _vignette_gain_coarse(frame: Frame, p, ys: NDArray, xs: NDArray) -> NDArray[np.float64] | None:
    """The ``look_vignette`` multiplier at pixels ``ys`` x ``xs``: ``(len(ys), len(xs), 1 or 3)`` or None.

    The same formulas as :func:`rawlab.look.vignette.look_vignette`, with the
    lens correction gain evaluated by that module at the sample positions.
    """
    from rawlab.look.vignette import lens_correction_gain

    h, w = frame.height, frame.width
    m = None
    keep = p.keep_lens_falloff
    pending = lens_correction_gain(frame, rows=ys, cols=xs) if keep != 1.0 else None
    applied = (lens_correction_gain(frame, frame.applied_opcodes, rows=ys, cols=xs)
               if keep != 0.0 and frame.applied_opcodes else None)
    for G, exponent in ((pending, 1.0 - keep), (applied, -keep)):
        if G is None:
            continue
        g = np.power(np.maximum(np.asarray(G, np.float64), 1e-6), exponent)
        g = g if g.ndim == 3 else g[..., None]
        m = g if m is None else m * g
    if p.amount_ev != 0.0:
        y = (ys.astype(np.float64) + 0.5 - h / 2.0)[:, None]
        x = (xs.astype(np.float64) + 0.5 - w / 2.0)[None, :]
        r = np.sqrt(x * x + y * y) / (0.5 * float(np.hypot(h, w)))
        t = np.clip((r - p.midpoint) / (1.0 - p.midpoint), 0.0, 1.0)
        added = np.exp2(p.amount_ev * t * t * (3.0 - 2.0 * t))[..., None]
        m = added if m is None else m * added
    return m


@functools.lru_cache(maxsize=1)
def _grain_field_cached(h: int, w: int, size_px: float, seed: int) -> NDArray[np.float32]:
    """The grain stage's own field (deterministic in its arguments), kept for the next image of this size."""
    from rawlab.look.grain import grain_field

    field = np.ascontiguousarray(grain_field(h, w, size_px=size_px, seed=seed), dtype=np.float32)
    field.setflags(write=False)
    return field


# ------------------------------------------------------------------------ stage
@stage(FUSED_STAGE, params=FusedParams, consumes=(Encoding.CAMERA_RGB, Encoding.XYZ_D50, Encoding.RGB))
def fused_pointwise(frame: Frame, p: FusedParams) -> Frame:
    """Run a run of point-wise steps (and vignette, grain) in one pass (see the module docstring).

    In and out: what the replaced steps take and give.  The result equals the
    steps run one by one within the tables' interpolation error, on every pixel
    (pixels the tables cannot represent run through the exact stages).
    """
    prefix, gains, chain, grain, crop = _split(p.steps)
    # metadata, history and the stages' own checks: the exact path on one pixel
    probe = frame.replace(data=np.full((1, 1, 3), 0.18, np.float32))
    meta_out = _run_steps(probe, p.steps)
    meta_chain = _run_steps(probe, prefix + gains)
    M = _prefix_matrix(frame, prefix)
    if M is None or (grain and meta_out.transfer is not Transfer.SRGB):
        return fused_pointwise_reference(frame, p)  # not expressible here: the exact path
    h, w = frame.height, frame.width
    top, left, oh, ow = 0, 0, h, w  # the output: the default crop when the run ends with it
    if crop and crop[0].params.mode != "none" and frame.sensor.crop_px is not None:
        from rawlab.geometry.crop import clamp_crop_px

        rect = clamp_crop_px(frame.sensor.crop_px, h, w)
        if rect is not None:
            top, left, oh, ow = rect
    # gain field
    gain = None
    step = max(1, min(GAIN_STEP_PX, min(h, w) // 64))  # at least 64 samples across the short side
    ys, iy, wy = _grid(h, step)
    xs, ix, wx = _grid(w, step)
    for s in gains:
        g = _vignette_gain_coarse(frame, s.params, ys, xs)
        if g is not None:
            gain = g if gain is None else gain * g
    # point-wise chain
    tables = _Tables(0, np.zeros((3, 2), np.float32), np.zeros((1, 3), np.float32))
    if chain:
        tables = _tables(chain, meta_chain.replace(history=()))
    u_axis, c_axis = _lattice_axes()
    # grain
    grain_field = np.zeros(1, np.float32)
    amount = 0.0
    if grain and grain[0].params.amount != 0.0:
        gp = grain[0].params
        grain_field = _grain_field_cached(h, w, gp.size_per_mille * min(h, w) / 1000.0, gp.seed).reshape(-1)
        amount = gp.amount
    from rawlab.look._common import luminance_weights

    lw = luminance_weights(meta_out.primaries)
    gain_arr = np.ascontiguousarray(gain if gain is not None else np.ones((2, 2, 1)), dtype=np.float32)
    src = np.ascontiguousarray(frame.data, dtype=np.float32)
    out = np.empty((oh, ow, 3), np.float32)
    mask = np.zeros((oh, ow), np.uint8)
    counts = np.zeros(oh, np.int64)
    _fused_kernel(src, M, gain is not None, gain_arr, iy, wy, ix, wx, tables.mode, np.float32(SHAPER_EPS), _POLY,
                  np.float32(_S_LO), np.float32(LUT1D_PER_STOP), tables.post,
                  np.float32(u_axis[0]), np.float32(LUT3D_U_PER_STOP), np.float32(LUT3D_CHROMA_STOPS),
                  np.float32(LUT3D_CHROMA_PER_STOP), np.float32(LUT3D_CHROMA_OUTER_PER_STOP),
                  np.float32(_chroma_centre()), u_axis.size, c_axis.size, tables.lattice,
                  amount != 0.0, grain_field, np.float32(amount), lw, top, left, out, mask, counts)
    if counts.any():
        _run_exact(out, mask, counts, chain, meta_chain, grain_field if amount != 0.0 else None, amount, lw,
                   origin=(top, left), source_width=w)
    return meta_out.replace(data=out)


def _run_exact(out, mask, counts, chain, meta_chain: Frame, grain_field, amount: float, lw, *,
               origin: tuple[int, int] = (0, 0), source_width: int | None = None) -> None:
    """Recompute the flagged pixels of ``out`` (which hold the chain's inputs) with the exact stages, in place.

    ``out`` is the crop at ``origin`` of a source ``source_width`` wide, on whose grid the grain field is.
    """
    w = out.shape[1]
    rows = np.flatnonzero(counts)
    r, c = np.nonzero(mask[rows])
    flat = rows[r] * w + c
    values = out.reshape(-1, 3)
    result = _run_on(meta_chain.replace(history=()), chain, values[flat]) if chain else values[flat]
    if grain_field is not None:
        from rawlab.look.grain import add_grain

        at = (rows[r] + origin[0]) * (source_width or w) + c + origin[1]
        result = add_grain(result.reshape(1, -1, 3), grain_field[at], amount=amount,
                           luminance_weights_rgb=lw).reshape(-1, 3)
    values[flat] = result


def fused_pointwise_reference(frame: Frame, p: FusedParams) -> Frame:
    """The replaced steps run one by one (the reference the fused pass is tested against)."""
    return _run_steps(frame, p.steps)


@njit(cache=True, inline="always")
def _lookup1(post, c, q, qmax):  # pragma: no cover - compiled
    # linear interpolation on a fine table, linear extrapolation beyond its ends (branch-free)
    i = np.int32(min(max(q, np.float32(0.0)), qmax))
    f = q - np.float32(i)
    return post[c, i] + f * (post[c, i + 1] - post[c, i])


@njit(parallel=True, cache=True)
def _fused_kernel(src, M, use_gain, gain, iy, wy, ix, wx, mode, eps, poly, s_lo, k_fine, post,
                  u_lo, k_u, c_in, k_c, k_c_out, c_mid, nu, nc, lattice, use_grain, grain, amount, lw,
                  top, left, out, mask, counts):  # pragma: no cover - compiled
    # Speed notes: indices are int32 and the tetrahedron is chosen without branches
    # (data-dependent branches per pixel cost more than the arithmetic).
    w_src = src.shape[1]
    h, w = out.shape[0], out.shape[1]  # the output: the crop of src at (top, left)
    ng = gain.shape[2]
    gw = gain.shape[1]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    fmax = np.float32(post.shape[1] - 1)
    qmax = np.float32(post.shape[1] - 2)
    umax = np.float32(nu - 1)
    cmax = np.float32(nc - 1)
    nu2 = np.int32(nu - 2)
    nc2 = np.int32(nc - 2)
    su = np.int32(nc * nc)
    snc = np.int32(nc)
    third = np.float32(1.0 / 3.0)
    log2_eps = np.float32(math.log2(eps))
    p0, p1, p2, p3, p4, p5 = poly[0], poly[1], poly[2], poly[3], poly[4], poly[5]
    for y in prange(h):
        ys = y + top
        val = np.empty((w, 3), np.float32)
        shp = np.empty((w, 3), np.float32)
        mag = np.empty(3 * w, np.float32)
        bits = mag.view(np.int32)
        res = np.empty((w, 3), np.float32)
        okr = np.empty(w, np.bool_)
        vtx = np.empty((w if mode >= 3 else 1, 4), np.int32)
        wts = np.empty((w if mode >= 3 else 1, 4), np.float32)
        # 1. matrix and gain
        grow = np.empty((gw, ng), np.float32)
        if use_gain:
            j = iy[ys]
            ty = wy[ys]
            for i in range(gw):
                for c in range(ng):
                    grow[i, c] = (one - ty) * gain[j, i, c] + ty * gain[j + 1, i, c]
        for x in range(w):
            r = src[ys, x + left, 0]
            g = src[ys, x + left, 1]
            b = src[ys, x + left, 2]
            v0 = M[0, 0] * r + M[0, 1] * g + M[0, 2] * b
            v1 = M[1, 0] * r + M[1, 1] * g + M[1, 2] * b
            v2 = M[2, 0] * r + M[2, 1] * g + M[2, 2] * b
            if use_gain:
                i = ix[x + left]
                tx = wx[x + left]
                if ng == 3:
                    v0 *= (one - tx) * grow[i, 0] + tx * grow[i + 1, 0]
                    v1 *= (one - tx) * grow[i, 1] + tx * grow[i + 1, 1]
                    v2 *= (one - tx) * grow[i, 2] + tx * grow[i + 1, 2]
                else:
                    gg = (one - tx) * grow[i, 0] + tx * grow[i + 1, 0]
                    v0 *= gg
                    v1 *= gg
                    v2 *= gg
            val[x, 0] = v0
            val[x, 1] = v1
            val[x, 2] = v2
        # 2. shaper: log2 from the exponent and a polynomial on the mantissa
        if mode != 0:
            vf = val.reshape(3 * w)
            sf = shp.reshape(3 * w)
            for i in range(3 * w):
                mag[i] = abs(vf[i]) + eps
            for i in range(3 * w):
                bi = bits[i]
                e = np.float32((bi >> 23) - 127)
                t = np.float32(bi & 0x007FFFFF) * np.float32(1.0 / 8388608.0)
                q = t + t * (one - t) * (p0 + t * (p1 + t * (p2 + t * (p3 + t * (p4 + t * p5)))))
                s = e + q - log2_eps
                sf[i] = s if vf[i] >= zero else -s
        # 3. tables: one loop per mode (no per-pixel mode branches); ``res`` gets the
        # outputs, ``okr`` whether the tables could represent the pixel
        if mode == 1:
            for x in range(w):
                q0 = (shp[x, 0] - s_lo) * k_fine
                q1 = (shp[x, 1] - s_lo) * k_fine
                q2 = (shp[x, 2] - s_lo) * k_fine
                ok = ((q0 >= zero) & (q0 <= fmax) & (q1 >= zero) & (q1 <= fmax) & (q2 >= zero) & (q2 <= fmax))
                q0 = q0 if ok else zero  # NaN never reaches an index
                q1 = q1 if ok else zero
                q2 = q2 if ok else zero
                okr[x] = ok
                res[x, 0] = _lookup1(post, 0, q0, qmax)
                res[x, 1] = _lookup1(post, 1, q1, qmax)
                res[x, 2] = _lookup1(post, 2, q2, qmax)
        elif mode >= 3:
            # 3a. lattice coordinates, cell and tetrahedron: arithmetic only (vectorises)
            for x in range(w):
                s0 = shp[x, 0]
                s1 = shp[x, 1]
                s2 = shp[x, 2]
                tu = ((s0 + s1 + s2) * third - u_lo) * k_u
                da = s0 - s1
                db = s2 - s1
                ma = abs(da)
                mb = abs(db)
                ka = k_c * min(ma, c_in) + k_c_out * max(ma - c_in, zero)
                kb = k_c * min(mb, c_in) + k_c_out * max(mb - c_in, zero)
                ta = c_mid + (ka if da >= zero else -ka)
                tb = c_mid + (kb if db >= zero else -kb)
                ok = ((tu >= zero) & (tu <= umax) & (ta >= zero) & (ta <= cmax) & (tb >= zero) & (tb <= cmax))
                tu = tu if ok else zero  # NaN never reaches an index
                ta = ta if ok else zero
                tb = tb if ok else zero
                okr[x] = ok
                i0 = min(np.int32(tu), nu2)
                j0 = min(np.int32(ta), nc2)
                k0 = min(np.int32(tb), nc2)
                fu = tu - np.float32(i0)
                fa = ta - np.float32(j0)
                fb = tb - np.float32(k0)
                base = i0 * su + j0 * snc + k0
                # the tetrahedron: step along the axes in order of decreasing fraction
                c_ua = fu > fa
                c_ab = fa > fb
                c_ub = fu > fb
                first = (np.int32(1) + (su - np.int32(1)) * np.int32(c_ua & c_ub)
                         + (snc - np.int32(1)) * np.int32(c_ab & (not c_ua)))
                last = (np.int32(1) + (su - np.int32(1)) * np.int32((not c_ua) & (not c_ub))
                        + (snc - np.int32(1)) * np.int32(c_ua & (not c_ab)))
                hi = max(fu, max(fa, fb))
                lo = min(fu, min(fa, fb))
                mid = fu + fa + fb - hi - lo
                corner = base + su + snc + np.int32(1)
                vtx[x, 0] = base
                vtx[x, 1] = base + first
                vtx[x, 2] = corner - last
                vtx[x, 3] = corner
                wts[x, 0] = one - hi
                wts[x, 1] = hi - mid
                wts[x, 2] = mid - lo
                wts[x, 3] = lo
            # 3b. gather and blend
            for x in range(w):
                a0 = vtx[x, 0]
                a1 = vtx[x, 1]
                a2 = vtx[x, 2]
                a3 = vtx[x, 3]
                w0 = wts[x, 0]
                w1 = wts[x, 1]
                w2 = wts[x, 2]
                w3 = wts[x, 3]
                res[x, 0] = w0 * lattice[a0, 0] + w1 * lattice[a1, 0] + w2 * lattice[a2, 0] + w3 * lattice[a3, 0]
                res[x, 1] = w0 * lattice[a0, 1] + w1 * lattice[a1, 1] + w2 * lattice[a2, 1] + w3 * lattice[a3, 1]
                res[x, 2] = w0 * lattice[a0, 2] + w1 * lattice[a1, 2] + w2 * lattice[a2, 2] + w3 * lattice[a3, 2]
            if mode == 4:
                # the lattice holds coordinates on the fine grey response
                for x in range(w):
                    res[x, 0] = _lookup1(post, 0, res[x, 0], qmax)
                    res[x, 1] = _lookup1(post, 1, res[x, 1], qmax)
                    res[x, 2] = _lookup1(post, 2, res[x, 2], qmax)
        # 4. the exact stages take the pixels the tables could not represent; grain; output
        bad = 0
        for x in range(w):
            if mode == 0:
                o0 = val[x, 0]
                o1 = val[x, 1]
                o2 = val[x, 2]
            else:
                o0 = res[x, 0]
                o1 = res[x, 1]
                o2 = res[x, 2]
                if not (okr[x] & (abs(o0) < np.inf) & (abs(o1) < np.inf) & (abs(o2) < np.inf)):
                    # keep the chain's input for _run_exact
                    mask[y, x] = 1
                    bad += 1
                    out[y, x, 0] = val[x, 0]
                    out[y, x, 1] = val[x, 1]
                    out[y, x, 2] = val[x, 2]
                    continue
            if use_grain:  # the look_grain formula on the encoded result
                t = lw[0] * o0 + lw[1] * o1 + lw[2] * o2
                t = min(one, max(zero, t))
                dg = amount * np.float32(4.0) * t * (one - t) * grain[ys * w_src + x + left]
                o0 += dg
                o1 += dg
                o2 += dg
            out[y, x, 0] = o0
            out[y, x, 1] = o1
            out[y, x, 2] = o2
        counts[y] = bad
