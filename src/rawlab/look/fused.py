"""Fusing runs of point-wise stages into one pass: a speed optimisation of :func:`rawlab.pipeline.develop`.

The stages stay the reference; this module only changes *how* a recipe runs.
:func:`fuse_recipe` replaces each run of fusable steps, e.g. ::

    camera_to_xyz, xyz_to_rgb, exposure, look_white_balance_bias,     (linear: one 3x3 matrix)
    look_vignette,                                                    (a smooth gain field)
    look_saturation, look_hsl, look_tone_curve, look_split_tone,
    output_transfer, look_lut,                                        (point-wise: one 3D LUT)
    look_grain                                                        (added after the LUT)

by one ``fused_pointwise`` step whose params hold the steps it replaces.  That
stage makes one pass over the image (Numba, float32, one new output array)::

    v   = M @ rgb                    M: the linear prefix, measured by running its
                                     stages on the basis vectors (metadata-dependent)
    v  *= gain(y, x)                 vignettes, evaluated on a grid every 8 px (less on
                                     small images) and interpolated bilinearly (smooth)
    out = LUT(shaper(v))             the point-wise chain baked into a lattice by
                                     running its stages on the lattice points
    out += grain                     the stage's own grain field and formula

The LUT is sampled on a *pseudo-logarithmic* shaper: the lattice coordinate of
a value ``x`` is affine in the IEEE-754 bit pattern of ``|x| + eps`` (the
piecewise-linear log2 of J. Blinn, "Floating-point tricks", IEEE CG&A 17(4),
1997), signed for negative (noise, out-of-gamut) values.  It costs one add
and one integer subtraction per value, spaces lattice points evenly in stops
over :data:`SHAPER_RANGE` (scene-linear values from ``-2`` to ``64``; a quarter
of the lattice for the negatives) and linearly near zero.  A chain that acts
on each channel alone (the default develop: filmic and the sRGB curve) is
detected on the lattice and baked into a fine per-channel 1D table instead
(linear interpolation over 1/64 stop: mean CIEDE2000 to the exact path about
0.0003).  Otherwise a 65^3 lattice with tetrahedral interpolation (Kasson et
al. 1995, see :mod:`rawlab.look.lut`) holds each output as a coordinate on
the chain's fine per-channel response to greys, which is applied after it
(the usual shaper / 3D / 1D split of colour management): greys and per-channel
curves are exact up to the fine table and the lattice only interpolates what
the colour operations add (mean CIEDE2000 0.05-0.35 on the built-in looks).
Values outside the shaper's range are clamped to it (the exact stages would
carry them on); NaN stays NaN.  The tables are cached per chain and working
space.

The metadata of the result (transfer, clip level, history) is that of the
exact path: every replaced stage also runs on a 1-pixel probe frame with the
real metadata, so the history lists each replaced stage (then
``fused_pointwise``), and a misplaced stage raises the same error as unfused.
Where the pass cannot express a run (a linear stage that is not linear on this
frame, grain on linear data) it runs the steps one by one.  The grain field is
the grain stage's own, kept for the next image of the same size.
"""

from __future__ import annotations

import functools
import math
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, ClassVar

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
]

FUSED_STAGE = "fused_pointwise"
#: Point-wise stages that are 3x3 linear maps per frame (folded into one matrix).
LINEAR_STAGES = ("camera_to_xyz", "xyz_to_rgb", "exposure", "look_white_balance_bias")
#: Position-dependent stages the fused pass takes over (a gain before the LUT, grain after it).
GAIN_STAGES = ("look_vignette",)
GRAIN_STAGES = ("look_grain",)
#: Scene-linear range the LUT lattice covers (values beyond are clamped).
SHAPER_RANGE = (-2.0, 64.0)
#: Share of the lattice for negative values.
SHAPER_NEGATIVE_SHARE = 0.25
#: Below this magnitude the shaper is linear (a value near 0 has no stops).
SHAPER_EPS = 2.0**-10
LUT3D_SIZE = 65
#: Per-channel table: 64 lattice intervals per stop.
LUT1D_PER_STOP = 64
#: Largest spacing of the gain-field grid (pixels).
GAIN_STEP_PX = 8


@dataclass(frozen=True)
class FusedParams(Params):
    """Parameters of ``fused_pointwise``: the recipe steps it replaces, in order."""

    VERSION: ClassVar[int] = 1
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


def _split(steps) -> tuple[list, list, list, list]:
    """``(linear prefix, gains, LUT chain, grain)`` of a fusable run (see :func:`fuse_recipe`)."""
    i = 0
    prefix, gains, chain, grain = [], [], [], []
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
    if i != len(steps):
        raise ValueError(f"not a fusable run: {[s.stage for s in steps]}")
    return prefix, gains, chain, grain


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
    return i


def fuse_recipe(recipe):
    """``recipe`` with each run of two or more fusable steps replaced by one ``fused_pointwise`` step.

    A run is: linear stages (:data:`LINEAR_STAGES`), then vignettes, then
    point-wise stages (registered with ``pointwise=True``), then at most one
    ``look_grain``; any part may be empty.  Other steps are kept as they are.
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
def _bits(x: float) -> int:
    return int(np.array([x], np.float32).view(np.int32)[0])


@functools.lru_cache(maxsize=8)
def _shaper(size: int) -> tuple[float, float, float, float, int]:
    """``(k_neg, k_pos, g0, eps, bits_eps)`` of the shaper with ``size`` lattice points.

    Lattice coordinate ``g0 + k_pos * (bits(x + eps) - bits(eps))`` for ``x >= 0`` and
    ``g0 - k_neg * (bits(-x + eps) - bits(eps))`` below; negative values (noise,
    out-of-gamut colours) get :data:`SHAPER_NEGATIVE_SHARE` of the lattice.
    """
    lo, hi = SHAPER_RANGE
    eps = float(np.float32(SHAPER_EPS))
    be = _bits(eps)
    g0 = round((size - 1) * SHAPER_NEGATIVE_SHARE)
    k_neg = g0 / float(_bits(-lo + eps) - be)
    k_pos = (size - 1 - g0) / float(_bits(hi + eps) - be)
    return k_neg, k_pos, float(g0), eps, be


def _shaper_inverse(g: NDArray, size: int) -> NDArray[np.float64]:
    """Scene-linear value of lattice coordinates ``g`` (exact inverse of the shaper, float64)."""
    k_neg, k_pos, g0, eps, be = _shaper(size)
    g = np.asarray(g, np.float64)
    d = np.where(g < g0, (g0 - g) / k_neg, (g - g0) / k_pos)  # distance in bit units
    bits = be + d  # bit pattern of |x| + eps
    e = np.floor(bits / 2**23)
    mant = bits / 2**23 - e  # fraction of the octave (linear in |x| inside it)
    mag = 2.0 ** (e - 127) * (1.0 + mant) - eps
    return np.where(g < g0, -mag, mag)


def shaper_coordinate_reference(x: NDArray, size: int) -> NDArray[np.float64]:
    """NumPy twin of the kernel's shaper: lattice coordinate of scene-linear ``x`` (clamped)."""
    k_neg, k_pos, g0, eps, be = _shaper(size)
    a = (np.abs(np.asarray(x, np.float32)) + np.float32(eps)).astype(np.float32)
    d = a.view(np.int32).astype(np.int64) - be
    g = np.where(np.asarray(x) < 0, g0 - d * k_neg, g0 + d * k_pos)
    return np.clip(g, 0, size - 1)


def _fine_size() -> int:
    """Points of the per-channel tables: :data:`LUT1D_PER_STOP` per stop on the positive side."""
    stops = (_bits(SHAPER_RANGE[1] + SHAPER_EPS) - _bits(SHAPER_EPS)) / 2**23
    return int(np.ceil(stops * LUT1D_PER_STOP / (1.0 - SHAPER_NEGATIVE_SHARE))) + 1


# ------------------------------------------------------------------ table baking
_TABLES: "OrderedDict[tuple, tuple[int, NDArray[np.float32]]]" = OrderedDict()
_TABLES_MAX = 16


def _run_steps(frame: Frame, steps) -> Frame:
    for s in steps:
        frame = s.spec(frame, s.params)
    return frame


def _bake(chain, meta: Frame) -> tuple[int, NDArray[np.float32], NDArray[np.float32]]:
    """``(mode, table1, table3)`` of the point-wise ``chain`` for frames like ``meta``.

    mode 1: a per-channel chain, ``table1`` ``(3, M)`` on the fine shaper grid;
    mode 3: ``table3`` ``(N, N, N, 3)`` holds the outputs;
    mode 4: ``table1`` is the chain's response to greys (each channel
    increasing) and ``table3`` holds each output as a coordinate on it, so
    greys are exact and the lattice interpolates only what colour adds.
    """
    # repr, not params_hash: LutParams leaves its table out of the hash (it is no TOML data)
    key = (tuple((s.stage, s.params.VERSION, repr(s.params)) for s in chain), meta.encoding, meta.primaries, meta.transfer,
           SHAPER_RANGE, SHAPER_EPS, SHAPER_NEGATIVE_SHARE, LUT3D_SIZE, LUT1D_PER_STOP)
    hit = _TABLES.get(key)
    if hit is not None:
        _TABLES.move_to_end(key)
        return hit
    n = LUT3D_SIZE
    axis = _shaper_inverse(np.arange(n, dtype=np.float64), n)
    r, g, b = np.meshgrid(axis, axis, axis, indexing="ij")
    lattice = np.stack([r, g, b], axis=-1).reshape(n * n, n, 3).astype(np.float32)
    probe = meta.replace(data=lattice, history=())
    table = np.ascontiguousarray(_run_steps(probe, chain).data.reshape(n, n, n, 3), dtype=np.float32)
    # per-channel chain? output c must depend on input c only
    separable = all(
        np.allclose(np.moveaxis(table[..., c], c, 0), np.moveaxis(table[..., c], c, 0)[:, :1, :1], rtol=0, atol=1e-6)
        for c in range(3)
    ) and np.all(np.isfinite(table))
    m = _fine_size()
    grey = _shaper_inverse(np.arange(m, dtype=np.float64), m).astype(np.float32)
    diag = np.repeat(grey[:, None], 3, axis=1).reshape(m, 1, 3)
    post = np.ascontiguousarray(_run_steps(meta.replace(data=diag, history=()), chain).data.reshape(m, 3).T,
                                dtype=np.float32)
    if separable:
        result = (1, post, np.zeros((2, 2, 2, 3), np.float32))
    elif np.all(np.isfinite(post)) and np.all(np.diff(post.astype(np.float64), axis=1) >= 0):
        # store each output as a coordinate on the grey response: exact on the grey axis
        coord = np.empty_like(table)
        index = np.arange(m, dtype=np.float64)
        for c in range(3):
            p = post[c].astype(np.float64) + index * 1e-12  # strictly increasing where float32 saturates
            v = table[..., c].astype(np.float64)
            q = np.interp(v, p, index)
            lo_slope = 1.0 / (p[1] - p[0])
            hi_slope = 1.0 / (p[-1] - p[-2])
            q = np.where(v < p[0], (v - p[0]) * lo_slope, q)
            q = np.where(v > p[-1], m - 1 + (v - p[-1]) * hi_slope, q)
            coord[..., c] = q
        result = (4, post, np.ascontiguousarray(coord, dtype=np.float32))
    else:
        result = (3, np.zeros((3, 2), np.float32), table)
    result[1].setflags(write=False)
    result[2].setflags(write=False)
    _TABLES[key] = result
    while len(_TABLES) > _TABLES_MAX:
        _TABLES.popitem(last=False)
    return result


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

    The same formulas as :func:`rawlab.look.vignette.look_vignette`; the lens
    correction gain is computed by that module on the full grid and sampled.
    """
    from rawlab.look.vignette import lens_correction_gain

    h, w = frame.height, frame.width
    m = None
    keep = p.keep_lens_falloff
    pending = lens_correction_gain(frame) if keep != 1.0 else None
    applied = lens_correction_gain(frame, frame.applied_opcodes) if keep != 0.0 and frame.applied_opcodes else None
    for G, exponent in ((pending, 1.0 - keep), (applied, -keep)):
        if G is None:
            continue
        Gs = np.asarray(G, np.float64)[np.ix_(ys, xs)]
        g = np.power(np.maximum(Gs, 1e-6), exponent)
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


@functools.lru_cache(maxsize=2)
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
    steps run one by one within the LUT's interpolation error.
    """
    prefix, gains, chain, grain = _split(p.steps)
    # metadata, history and the stages' own checks: the exact path on one pixel
    probe = frame.replace(data=np.full((1, 1, 3), 0.18, np.float32))
    meta_out = _run_steps(probe, p.steps)
    after_prefix = _run_steps(probe, prefix)
    M = _prefix_matrix(frame, prefix)
    if M is None or (grain and meta_out.transfer is not Transfer.SRGB):
        return fused_pointwise_reference(frame, p)  # not expressible here: the exact path
    h, w = frame.height, frame.width
    # gain field
    gain = None
    step = max(1, min(GAIN_STEP_PX, min(h, w) // 64))  # at least 64 samples across the short side
    ys, iy, wy = _grid(h, step)
    xs, ix, wx = _grid(w, step)
    if gains:
        for s in gains:
            g = _vignette_gain_coarse(frame, s.params, ys, xs)
            if g is not None:
                gain = g if gain is None else gain * g
    # point-wise chain
    mode, table1, table3 = 0, np.zeros((3, 2), np.float32), np.zeros((2, 2, 2, 3), np.float32)
    if chain:
        mode, table1, table3 = _bake(chain, after_prefix)
    n = table1.shape[1] if mode == 1 else table3.shape[0]
    k_neg, k_pos, g0, eps, be = _shaper(n)
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
    out = np.empty((h, w, 3), np.float32)
    _fused_kernel(src, M, gain is not None, gain_arr, iy, wy, ix, wx,
                  mode, np.float32(eps), np.int32(be), np.float32(k_neg), np.float32(k_pos), np.float32(g0),
                  table3, table1,
                  amount != 0.0, grain_field, np.float32(amount), lw, out)
    return meta_out.replace(data=out)


def fused_pointwise_reference(frame: Frame, p: FusedParams) -> Frame:
    """The replaced steps run one by one (the reference the fused pass is tested against)."""
    return _run_steps(frame, p.steps)


@njit(cache=True, inline="always")
def _tetra_weights(n, x, y, z):  # pragma: no cover - compiled
    """Flat indices of the 4 vertices of the tetrahedron holding (x, y, z) and their weights."""
    n1 = n - 1
    r0 = min(int(x), n1 - 1)
    g0 = min(int(y), n1 - 1)
    b0 = min(int(z), n1 - 1)
    fr = x - r0
    fg = y - g0
    fb = z - b0
    sr = n * n
    sg = n
    base = r0 * sr + g0 * sg + b0
    # branch-free: the walk steps along the axes in order of decreasing fraction
    a = fr > fg
    b = fg > fb
    c = fr > fb
    first = sr if (a and c) else (sg if (b and not a) else 1)
    last = sr if (not a and not c) else (sg if (a and not b) else 1)
    hi = max(fr, max(fg, fb))
    lo = min(fr, min(fg, fb))
    mid = fr + fg + fb - hi - lo
    top = base + sr + sg + 1
    return base, base + first, top - last, top, 1 - hi, hi - mid, mid - lo, lo


@njit(cache=True, inline="always")
def _post(table1, c, q):  # pragma: no cover - compiled
    # linear interpolation on the grey response, linear extrapolation beyond its ends
    n1 = table1.shape[1] - 1
    i = min(max(int(math.floor(q)), 0), n1 - 1)
    f = q - np.float32(i)
    return table1[c, i] + f * (table1[c, i + 1] - table1[c, i])


@njit(parallel=True, cache=True)
def _fused_kernel(src, M, use_gain, gain, iy, wy, ix, wx, mode, eps, be, k_neg, k_pos, g0, table3, table1,
                  use_grain, grain, amount, lw, out):  # pragma: no cover - compiled
    h, w = src.shape[0], src.shape[1]
    nc = gain.shape[2]
    gmax = np.float32(table1.shape[1] - 1) if mode == 1 else np.float32(table3.shape[0] - 1)
    n3 = table3.shape[0]
    flat3 = table3.reshape(n3 * n3 * n3, 3)
    one = np.float32(1.0)
    for y in prange(h):
        mag = np.empty((w, 3), np.float32)
        val = np.empty((w, 3), np.float32)
        # 1. matrix and gain
        j = iy[y]
        ty = wy[y]
        for x in range(w):
            r = src[y, x, 0]
            g = src[y, x, 1]
            b = src[y, x, 2]
            for c in range(3):
                v = M[c, 0] * r + M[c, 1] * g + M[c, 2] * b
                if use_gain:
                    i = ix[x]
                    tx = wx[x]
                    cc = c if nc == 3 else 0
                    top = (one - tx) * gain[j, i, cc] + tx * gain[j, i + 1, cc]
                    bot = (one - tx) * gain[j + 1, i, cc] + tx * gain[j + 1, i + 1, cc]
                    v *= (one - ty) * top + ty * bot
                val[x, c] = v
                mag[x, c] = abs(v) + eps
        if mode == 0:
            for x in range(w):
                for c in range(3):
                    out[y, x, c] = val[x, c]
            continue
        # 2. shaper: lattice coordinate from the bit pattern (pseudo-log2)
        bits = mag.view(np.int32)
        for x in range(w):
            gr = np.float32(0.0)
            gg = np.float32(0.0)
            gb = np.float32(0.0)
            nan = False
            for c in range(3):
                v = val[x, c]
                if v != v:
                    nan = True
                d = np.float32(bits[x, c] - be)
                q = g0 - d * k_neg if v < 0 else g0 + d * k_pos
                q = min(max(q, np.float32(0.0)), gmax)
                if c == 0:
                    gr = q
                elif c == 1:
                    gg = q
                else:
                    gb = q
            if nan:
                out[y, x, 0] = np.nan
                out[y, x, 1] = np.nan
                out[y, x, 2] = np.nan
                continue
            # 3. table
            if mode >= 3:
                i0, i1, i2, i3, w0, w1, w2, w3 = _tetra_weights(n3, gr, gg, gb)
                o0 = w0 * flat3[i0, 0] + w1 * flat3[i1, 0] + w2 * flat3[i2, 0] + w3 * flat3[i3, 0]
                o1 = w0 * flat3[i0, 1] + w1 * flat3[i1, 1] + w2 * flat3[i2, 1] + w3 * flat3[i3, 1]
                o2 = w0 * flat3[i0, 2] + w1 * flat3[i1, 2] + w2 * flat3[i2, 2] + w3 * flat3[i3, 2]
                if mode == 4:
                    o0 = _post(table1, 0, o0)
                    o1 = _post(table1, 1, o1)
                    o2 = _post(table1, 2, o2)
            else:
                n1 = table1.shape[1] - 1
                i0 = min(int(gr), n1 - 1)
                f0 = gr - i0
                o0 = table1[0, i0] + f0 * (table1[0, i0 + 1] - table1[0, i0])
                i1 = min(int(gg), n1 - 1)
                f1 = gg - i1
                o1 = table1[1, i1] + f1 * (table1[1, i1 + 1] - table1[1, i1])
                i2 = min(int(gb), n1 - 1)
                f2 = gb - i2
                o2 = table1[2, i2] + f2 * (table1[2, i2 + 1] - table1[2, i2])
            # 4. grain (the look_grain formula on the encoded result)
            if use_grain:
                t = lw[0] * o0 + lw[1] * o1 + lw[2] * o2
                t = min(one, max(np.float32(0.0), t))
                dg = amount * np.float32(4.0) * t * (one - t) * grain[y * w + x]
                o0 += dg
                o1 += dg
                o2 += dg
            out[y, x, 0] = o0
            out[y, x, 1] = o1
            out[y, x, 2] = o2
