"""3D (and 1D) LUTs: ``.cube`` import/export and tetrahedral interpolation.

File format: the Adobe/Iridas "Cube LUT Specification 1.0" (2013) as used by
colour grading tools: optional ``TITLE "..."``, ``LUT_3D_SIZE N`` (2..256) or
``LUT_1D_SIZE N``, optional ``DOMAIN_MIN r g b`` / ``DOMAIN_MAX r g b`` (or the
Resolve form ``LUT_3D_INPUT_RANGE lo hi``), ``#`` comments, then ``N^3`` rows
of ``R G B`` with red changing fastest.

Interpolation: tetrahedral (Kasson, Nin, Plouffe & Hafner, "Performing color
space conversions with three-dimensional linear interpolation", J. Electronic
Imaging 4(3), 1995): each lattice cube is split into six tetrahedra along its
grey diagonal, so greys are interpolated only from grey lattice points (a
neutral LUT keeps neutrals neutral).  Inputs outside the domain are clamped
to it (a LUT knows nothing beyond its domain).
"""

from __future__ import annotations

import hashlib
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
from numba import njit, prange
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Transfer
from rawlab.core.params import Params, param
from rawlab.core.stage import stage
from rawlab.errors import InvalidParams, LimitExceeded, StageError
from rawlab.look._common import require_transfer, rows3

__all__ = [
    "Lut3D",
    "LutParams",
    "look_lut",
    "read_cube",
    "write_cube",
    "apply_lut_tetrahedral",
    "apply_lut_tetrahedral_reference",
    "MAX_CUBE_SIZE",
]

#: Largest ``LUT_3D_SIZE`` read (129^3 rows is 26 MB as float32; larger is refused).
MAX_CUBE_SIZE = 129
MAX_1D_SIZE = 65536
MAX_CUBE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, eq=False)
class Lut3D:
    """A LUT: ``table`` is ``(N, N, N, 3)`` float32 indexed ``[r, g, b]`` for a 3D LUT,
    or ``(N, 3)`` for a 1D LUT (per-channel curves); inputs map linearly from
    ``domain_min..domain_max`` onto the lattice."""

    table: NDArray[np.float32]
    domain_min: tuple[float, float, float] = (0.0, 0.0, 0.0)
    domain_max: tuple[float, float, float] = (1.0, 1.0, 1.0)
    title: str = ""
    digest: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        t = np.ascontiguousarray(self.table, dtype=np.float32)
        if not (t.ndim == 4 and t.shape[:3] == (t.shape[0],) * 3 and t.shape[3] == 3 or t.ndim == 2 and t.shape[1] == 3):
            raise InvalidParams(f"a LUT table must be (N, N, N, 3) or (N, 3), got {t.shape}")
        if t.shape[0] < 2:
            raise InvalidParams(f"a LUT needs at least 2 points per axis, got {t.shape[0]}")
        t.setflags(write=False)
        object.__setattr__(self, "table", t)
        lo = tuple(float(v) for v in self.domain_min)
        hi = tuple(float(v) for v in self.domain_max)
        if len(lo) != 3 or len(hi) != 3 or not all(a < b for a, b in zip(lo, hi)):
            raise InvalidParams(f"a LUT domain needs DOMAIN_MIN < DOMAIN_MAX per channel, got {lo} and {hi}")
        object.__setattr__(self, "domain_min", lo)
        object.__setattr__(self, "domain_max", hi)
        h = hashlib.sha256(t.tobytes())
        h.update(repr((lo, hi)).encode())
        object.__setattr__(self, "digest", h.hexdigest()[:16])

    @property
    def is_3d(self) -> bool:
        """True for a 3D LUT."""
        return self.table.ndim == 4

    @property
    def size(self) -> int:
        """Points per axis."""
        return int(self.table.shape[0])

    def __str__(self) -> str:  # used by params hashing: content, not identity
        return f"Lut{'3D' if self.is_3d else '1D'}(size={self.size}, sha256={self.digest})"

    __repr__ = __str__


# ------------------------------------------------------------------------ .cube I/O
def _numbers(text: str, count: int, key: str, line: int, path: str) -> list[float]:
    parts = text.split()
    try:
        values = [float(v) for v in parts]
    except ValueError:
        values = []
    if len(values) != count or not all(math.isfinite(v) for v in values):
        raise InvalidParams(f"line {line}: {key}: expected {count} number(s), got {text.strip()!r}", path=path)
    return values


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def read_cube(path: str | os.PathLike[str]) -> Lut3D:
    """Read a ``.cube`` LUT (3D or 1D).

    Raises
    ------
    InvalidParams
        One line naming the file, the line and the keyword that is wrong.
    LimitExceeded
        A LUT larger than :data:`MAX_CUBE_SIZE` (3D) or the file over 64 MB.
    """
    path = Path(path)
    where = str(path)
    try:
        if path.stat().st_size > MAX_CUBE_BYTES:
            raise LimitExceeded(f"the LUT file is larger than {MAX_CUBE_BYTES >> 20} MB", path=where)
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InvalidParams(f"cannot read LUT: {exc.strerror or exc}", path=where) from None
    title = ""
    size3 = size1 = None
    lo, hi = [0.0, 0.0, 0.0], [1.0, 1.0, 1.0]
    rows: list[str] = []
    first_row_line = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line[0].isalpha() and not _is_number(line.split()[0]):
            if rows:
                raise InvalidParams(f"line {number}: keyword {line.split()[0]!r} after the table rows", path=where)
            key, _, rest = line.partition(" ")
            key = key.upper()
            if key == "TITLE":
                title = rest.strip().strip('"')
            elif key in ("LUT_3D_SIZE", "LUT_1D_SIZE"):
                n = _numbers(rest, 1, key, number, where)[0]
                limit = MAX_CUBE_SIZE if key == "LUT_3D_SIZE" else MAX_1D_SIZE
                if n != int(n) or n < 2:
                    raise InvalidParams(f"line {number}: {key}: expected an integer >= 2, got {rest.strip()!r}", path=where)
                if n > limit:
                    raise LimitExceeded(f"line {number}: {key} {int(n)} exceeds the limit {limit}", path=where)
                if key == "LUT_3D_SIZE":
                    size3 = int(n)
                else:
                    size1 = int(n)
            elif key == "DOMAIN_MIN":
                lo = _numbers(rest, 3, key, number, where)
            elif key == "DOMAIN_MAX":
                hi = _numbers(rest, 3, key, number, where)
            elif key in ("LUT_3D_INPUT_RANGE", "LUT_1D_INPUT_RANGE"):
                a, b = _numbers(rest, 2, key, number, where)
                lo, hi = [a] * 3, [b] * 3
            else:
                raise InvalidParams(f"line {number}: unknown keyword {key!r}", path=where)
        else:
            if not rows:
                first_row_line = number
            rows.append(line)
    if size3 is not None and size1 is not None:
        raise InvalidParams("LUT_1D_SIZE and LUT_3D_SIZE: a file with both is not supported", path=where)
    if size3 is None and size1 is None:
        raise InvalidParams("LUT_3D_SIZE: missing (no LUT_3D_SIZE or LUT_1D_SIZE line)", path=where)
    expected = size3**3 if size3 is not None else size1
    if len(rows) != expected:
        key = "LUT_3D_SIZE" if size3 is not None else "LUT_1D_SIZE"
        raise InvalidParams(f"{key} {size3 or size1} needs {expected} table rows, found {len(rows)}", path=where)
    flat = " ".join(rows).split()
    try:
        values = np.array(flat, dtype=np.float64)
    except ValueError:
        values = None
    if values is None or values.size != 3 * expected or not np.all(np.isfinite(values)):
        for offset, row in enumerate(rows):
            parts = row.split()
            try:
                ok = len(parts) == 3 and all(math.isfinite(float(v)) for v in parts)
            except ValueError:
                ok = False
            if not ok:
                # row numbers count table rows; the line number is approximate when comments interleave
                raise InvalidParams(
                    f"table row {offset + 1} (near line {first_row_line + offset}): expected 3 numbers, got {row!r}",
                    path=where,
                )
        raise InvalidParams("table: expected 3 numbers per row", path=where)
    try:
        if size3 is not None:
            # red changes fastest: rows are ordered [b][g][r]
            table = values.reshape(size3, size3, size3, 3).transpose(2, 1, 0, 3)
        else:
            table = values.reshape(size1, 3)
        return Lut3D(table=table, domain_min=tuple(lo), domain_max=tuple(hi), title=title)
    except InvalidParams as exc:
        raise InvalidParams(f"DOMAIN_MIN/DOMAIN_MAX: {exc.message}", path=where) from None


def write_cube(lut: Lut3D, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
    """Write ``lut`` as a ``.cube`` file (atomically), 6 decimals, red fastest."""
    from rawlab.io.atomic import atomic_write

    lines = [f'TITLE "{(title if title is not None else lut.title) or "rawlab"}"']
    lines.append(f"LUT_{'3D' if lut.is_3d else '1D'}_SIZE {lut.size}")
    if lut.domain_min != (0.0, 0.0, 0.0) or lut.domain_max != (1.0, 1.0, 1.0):
        lines.append("DOMAIN_MIN " + " ".join(f"{v:.6f}" for v in lut.domain_min))
        lines.append("DOMAIN_MAX " + " ".join(f"{v:.6f}" for v in lut.domain_max))
    rows = lut.table.transpose(2, 1, 0, 3).reshape(-1, 3) if lut.is_3d else lut.table
    body = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in rows.tolist())
    data = ("\n".join(lines) + "\n" + body + "\n").encode("ascii")
    path = Path(path)
    with atomic_write(path) as fh:  # type: ignore[attr-defined]
        fh.write(data)
    return path


# ----------------------------------------------------------------- interpolation
def apply_lut_tetrahedral(rgb: NDArray[np.float32], lut: Lut3D) -> NDArray[np.float32]:
    """Apply a 3D LUT with tetrahedral interpolation (1D LUTs: linear, per channel).

    Parameters
    ----------
    rgb
        ``(..., 3)`` float32 values in the LUT's input space (for rawlab's
        looks: sRGB-encoded display values, 0..1); clamped to the domain.
    lut
        The LUT.

    Returns
    -------
    numpy.ndarray
        New float32 array of the same shape.
    """
    src = np.ascontiguousarray(rgb, dtype=np.float32).reshape(-1, 3)
    out = np.empty_like(src)
    lo = np.asarray(lut.domain_min, np.float32)
    scale = (lut.size - 1) / (np.asarray(lut.domain_max, np.float32) - lo)
    if lut.is_3d:
        _tetra_kernel(src, lut.table, lo, scale.astype(np.float32), out)
    else:
        _lut1d_kernel(src, lut.table, lo, scale.astype(np.float32), out)
    return out.reshape(np.shape(rgb))


@njit(parallel=True, cache=True)
def _tetra_kernel(src, table, lo, scale, out):  # pragma: no cover - compiled
    n1 = table.shape[0] - 1
    for i in prange(src.shape[0]):
        x = min(max((src[i, 0] - lo[0]) * scale[0], np.float32(0.0)), np.float32(n1))
        y = min(max((src[i, 1] - lo[1]) * scale[1], np.float32(0.0)), np.float32(n1))
        z = min(max((src[i, 2] - lo[2]) * scale[2], np.float32(0.0)), np.float32(n1))
        if not (x == x):
            x = np.float32(0.0)
        if not (y == y):
            y = np.float32(0.0)
        if not (z == z):
            z = np.float32(0.0)
        r0 = min(int(x), n1 - 1)
        g0 = min(int(y), n1 - 1)
        b0 = min(int(z), n1 - 1)
        fr = x - r0
        fg = y - g0
        fb = z - b0
        for c in range(3):
            c000 = table[r0, g0, b0, c]
            c111 = table[r0 + 1, g0 + 1, b0 + 1, c]
            if fr > fg:
                if fg > fb:
                    v = (1 - fr) * c000 + (fr - fg) * table[r0 + 1, g0, b0, c] + (fg - fb) * table[r0 + 1, g0 + 1, b0, c] + fb * c111
                elif fr > fb:
                    v = (1 - fr) * c000 + (fr - fb) * table[r0 + 1, g0, b0, c] + (fb - fg) * table[r0 + 1, g0, b0 + 1, c] + fg * c111
                else:
                    v = (1 - fb) * c000 + (fb - fr) * table[r0, g0, b0 + 1, c] + (fr - fg) * table[r0 + 1, g0, b0 + 1, c] + fg * c111
            else:
                if fb > fg:
                    v = (1 - fb) * c000 + (fb - fg) * table[r0, g0, b0 + 1, c] + (fg - fr) * table[r0, g0 + 1, b0 + 1, c] + fr * c111
                elif fb > fr:
                    v = (1 - fg) * c000 + (fg - fb) * table[r0, g0 + 1, b0, c] + (fb - fr) * table[r0, g0 + 1, b0 + 1, c] + fr * c111
                else:
                    v = (1 - fg) * c000 + (fg - fr) * table[r0, g0 + 1, b0, c] + (fr - fb) * table[r0 + 1, g0 + 1, b0, c] + fb * c111
            out[i, c] = v


@njit(parallel=True, cache=True)
def _lut1d_kernel(src, table, lo, scale, out):  # pragma: no cover - compiled
    n1 = table.shape[0] - 1
    for i in prange(src.shape[0]):
        for c in range(3):
            x = min(max((src[i, c] - lo[c]) * scale[c], np.float32(0.0)), np.float32(n1))
            if not (x == x):
                x = np.float32(0.0)
            k = min(int(x), n1 - 1)
            f = x - k
            out[i, c] = (1 - f) * table[k, c] + f * table[k + 1, c]


def apply_lut_tetrahedral_reference(rgb: NDArray, lut: Lut3D) -> NDArray[np.float32]:
    """NumPy (float64) twin: the tetrahedron walk written as sorted barycentric steps.

    From the cell's origin, step one lattice unit along each axis in order of
    decreasing fractional part; the weights are the differences of the sorted
    fractions (the same six tetrahedra, an independent formulation).
    """
    x = np.asarray(rgb, np.float64).reshape(-1, 3)
    lo = np.asarray(lut.domain_min)
    n1 = lut.size - 1
    t = np.nan_to_num(np.clip((x - lo) * (n1 / (np.asarray(lut.domain_max) - lo)), 0, n1))
    table = np.asarray(lut.table, np.float64)
    if not lut.is_3d:
        out = np.stack([np.interp(t[:, c], np.arange(lut.size), table[:, c]) for c in range(3)], axis=1)
        return out.reshape(np.shape(rgb)).astype(np.float32)
    base = np.minimum(np.floor(t).astype(int), n1 - 1)
    f = t - base
    order = np.argsort(-f, axis=1, kind="stable")
    fs = np.take_along_axis(f, order, axis=1)
    weights = np.concatenate([1 - fs[:, :1], fs[:, :-1] - fs[:, 1:], fs[:, -1:]], axis=1)
    idx = base.copy()
    out = weights[:, :1] * table[idx[:, 0], idx[:, 1], idx[:, 2]]
    rows = np.arange(len(x))
    for k in range(3):
        idx[rows, order[:, k]] += 1
        out += weights[:, k + 1 : k + 2] * table[idx[:, 0], idx[:, 1], idx[:, 2]]
    return out.reshape(np.shape(rgb)).astype(np.float32)


# ------------------------------------------------------------------------- stage
@dataclass(frozen=True)
class LutParams(Params):
    """Parameters of ``look_lut``.

    ``cube`` is the file named in a look (resolved relative to the look file by
    :func:`rawlab.look.load_look`, which reads it into ``lut``); the stage itself
    does no I/O and needs ``lut``.
    """

    VERSION: ClassVar[int] = 1
    cube: str = param("", doc=".cube file (relative to the look file)")
    strength: float = param(1.0, min=0.0, max=1.0, doc="blend between input (0) and LUT output (1)")
    lut: Lut3D | None = param(None, doc="the loaded LUT (set by the look loader)")

    def to_dict(self):  # the LUT itself is not TOML data: write its file name
        d = super().to_dict()
        d.pop("lut")
        return d


@stage("look_lut", params=LutParams, consumes=Encoding.RGB, pointwise=True)
def look_lut(frame: Frame, p: LutParams) -> Frame:
    """Apply a 3D/1D LUT. In and out: ``RGB``, sRGB-encoded display values (0..1 domain)."""
    require_transfer(frame, "look_lut", Transfer.SRGB)
    if p.lut is None:
        raise StageError(f"look_lut: the LUT {p.cube!r} is not loaded; load looks with rawlab.look.load_look")
    mapped = apply_lut_tetrahedral(frame.data, p.lut)
    if p.strength != 1.0:
        mapped = frame.data + np.float32(p.strength) * (mapped - frame.data)
    return frame.replace(data=mapped)
