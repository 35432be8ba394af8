"""Locating a chart in a pipeline's output: chart files and registration to the truth.

Chart geometry comes from the simulator's ground truth (``SimCapture.truth``,
or the ``truth.json`` that ``rawlab simulate`` writes) or from a chart JSON
file with given coordinates for a real photo (``chart_files/*.json``).  All
boxes are ``[top, left, bottom, right]`` and points ``[x, y]`` in the pixels
of the image the geometry was made for (``size_wh``).

A pipeline's output need not have that size: rawlab crops to the DNG default
crop, RawTherapee drops a border of a few pixels, another tool may scale.
:func:`register_to_truth` estimates ``output = scale * truth + offset``:

* the scale from the sizes: 1 when the output is a crop or a padded version
  (at most :data:`MAX_CROP_PX` per side), else the mean of the width and height ratios;
* the offset by phase correlation (Kuglin & Hines 1975, "The phase
  correlation image alignment method") of the output luminance against the
  truth luminance resampled by that scale, in the overlapping central part;
  when the correlation peak is weak (a flat field has nothing to register),
  the centred placement is used and ``method`` says so.  Without scaling, the
  offset is rounded to whole pixels and must lie within the size difference
  (a crop cannot move the image further than it shrinks it); a peak outside
  that (periodic charts correlate at every period) falls back to centred.

Colour-checker detection on real photos with the ``colour-checker-detection``
package is not used: its wheel requires ``opencv-python``, which would
replace this project's ``opencv-python-headless``; real charts take given
coordinates instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from rawlab.errors import CorruptFile, InvalidParams, UnsupportedFile

#: Chart kinds the lab measures (the simulator's scene names, plus ``colorchecker`` for photos).
CHART_KINDS = ("colorchecker", "slanted_edge", "dead_leaves", "flat_field", "gray_steps",
               "siemens_star", "dot_grid")
#: Phase-correlation responses below this count as "nothing to register".
MIN_PHASE_RESPONSE = 0.05
#: Largest border (px per side) a tool may crop or pad without scaling.
MAX_CROP_PX = 16
#: Largest plausible offset of a scaled output: this many pixels plus this fraction of the image side.
MAX_SHIFT_PX = 8
MAX_SHIFT_FRACTION = 0.03
#: Largest chart file accepted (a chart JSON is a few kB).
MAX_CHART_BYTES = 8 << 20


@dataclass(frozen=True, slots=True)
class Registration:
    """``output_xy = scale * truth_xy + (offset_x, offset_y)``, pixels (pixel-centre coordinates).

    Attributes
    ----------
    scale
        Output pixels per truth pixel.
    offset_x, offset_y
        Translation, output pixels.
    method
        ``"identity"``, ``"phase"`` (phase correlation) or ``"centred"`` (no
        structure to register: centred placement assumed).
    response
        Phase-correlation peak response (0..1), NaN when not run.
    """

    scale: float = 1.0
    offset_x: float = 0.0
    offset_y: float = 0.0
    method: str = "identity"
    response: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"scale": self.scale, "offset_x": self.offset_x, "offset_y": self.offset_y,
                "method": self.method, "response": self.response}


def luminance_linear_srgb(rgb_linear: ArrayLike) -> NDArray[np.float32]:
    """Relative luminance Y of linear sRGB/Rec. 709 primaries (ITU-R BT.709 weights)."""
    a = np.asarray(rgb_linear, dtype=np.float32)
    return (0.2126 * a[..., 0] + 0.7152 * a[..., 1] + 0.0722 * a[..., 2]).astype(np.float32)


def _standardise(a: NDArray) -> NDArray[np.float32]:
    a = np.asarray(a, dtype=np.float32)
    s = float(a.std())
    return ((a - float(a.mean())) / (s if s > 0 else 1.0)).astype(np.float32)


def register_to_truth(output_luma: ArrayLike, truth_luma: ArrayLike) -> Registration:
    """Estimate where the truth image lies in a pipeline's output.

    Parameters
    ----------
    output_luma
        (H, W) luminance of the output (any monotonic encoding; it is standardised).
    truth_luma
        (h, w) luminance of the ground truth on the sensor grid.

    Returns
    -------
    Registration
        Scale from the sizes, offset from phase correlation (sub-pixel).
    """
    out = np.asarray(output_luma, dtype=np.float32)
    ref = np.asarray(truth_luma, dtype=np.float32)
    if out.ndim != 2 or ref.ndim != 2 or min(out.shape) < 8 or min(ref.shape) < 8:
        raise InvalidParams(f"registration needs two 2-D images of at least 8 px, got {out.shape} and {ref.shape}")
    H, W = out.shape
    h, w = ref.shape
    scale = _scale_from_sizes((W, H), (w, h))
    centred_x, centred_y = (W - scale * w) / 2.0, (H - scale * h) / 2.0
    if scale != 1.0:
        ref = cv2.resize(ref, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA)
    # Compare equal-size windows: the common central part.
    ch, cw = min(H, ref.shape[0]), min(W, ref.shape[1])
    oy0, ox0 = (H - ch) // 2, (W - cw) // 2
    ry0, rx0 = (ref.shape[0] - ch) // 2, (ref.shape[1] - cw) // 2
    a = _standardise(out[oy0:oy0 + ch, ox0:ox0 + cw])
    b = _standardise(ref[ry0:ry0 + ch, rx0:rx0 + cw])
    if float(np.abs(b).max()) == 0.0 or float(np.abs(a).max()) == 0.0:
        return Registration(scale, centred_x, centred_y, "centred", 0.0)
    window = cv2.createHanningWindow((cw, ch), cv2.CV_32F)
    (sx, sy), response = cv2.phaseCorrelate(b, a, window)
    if not response >= MIN_PHASE_RESPONSE:
        return Registration(scale, centred_x, centred_y, "centred", float(response))
    # a point at ref-window (x, y) appears at output-window (x + sx, y + sy)
    offset_x = (ox0 - rx0) + sx
    offset_y = (oy0 - ry0) + sy
    # Tools crop or pad by a few pixels: a shift far from the centred placement is a false
    # peak (a periodic chart such as a dot grid correlates at every period).
    limit = MAX_SHIFT_PX + MAX_SHIFT_FRACTION * max(H, W)
    if abs(offset_x - centred_x) > limit or abs(offset_y - centred_y) > limit:
        return Registration(scale, centred_x, centred_y, "centred", float(response))
    if scale == 1.0:
        # a crop is whole pixels; an edge chart leaves the shift along the edge loose by a pixel
        offset_x, offset_y = float(round(offset_x)), float(round(offset_y))
        if (H, W) == (h, w) and abs(offset_x) <= 1 and abs(offset_y) <= 1:
            return Registration(1.0, 0.0, 0.0, "identity", float(response))
    return Registration(scale, float(offset_x), float(offset_y), "phase", float(response))


def _scale_from_sizes(output_wh: tuple[int, int], chart_wh: tuple[int, int]) -> float:
    """1 when the output is a crop or pad of at most :data:`MAX_CROP_PX` per side, else the mean size ratio."""
    W, H = output_wh
    w, h = chart_wh
    if abs(W - w) <= 2 * MAX_CROP_PX and abs(H - h) <= 2 * MAX_CROP_PX:
        return 1.0
    return 0.5 * (H / h + W / w)


def registration_from_sizes(output_wh: tuple[int, int], chart_wh: tuple[int, int]) -> Registration:
    """Registration from sizes alone (no truth image): a centred crop/pad, or a centred scale."""
    W, H = output_wh
    w, h = chart_wh
    scale = _scale_from_sizes(output_wh, chart_wh)
    ox, oy = (W - scale * w) / 2.0, (H - scale * h) / 2.0
    method = "identity" if (scale == 1.0 and ox == 0 and oy == 0) else "centred"
    return Registration(scale, ox, oy, method)


def map_box(box: ArrayLike, reg: Registration, *, shape: tuple[int, int], shrink: float = 0.0) -> tuple[int, int, int, int]:
    """Map a truth box ``[top, left, bottom, right]`` into output pixels.

    Parameters
    ----------
    box
        Box in truth pixels (edges, so pixel ``i`` covers ``[i, i+1)``).
    reg
        The registration.
    shape
        (H, W) of the output; the box is clipped to it.
    shrink
        Fraction of the box's height and width to drop, half on each side
        (0.4 keeps the central 60 %), to stay clear of edges and blur.

    Returns
    -------
    tuple of int
        ``(top, left, bottom, right)`` in the output, possibly empty when off the image.
    """
    t, l, b, r = (float(v) for v in box)
    dy, dx = (b - t) * shrink / 2.0, (r - l) * shrink / 2.0
    t, l, b, r = t + dy, l + dx, b - dy, r - dx
    # box edges: pixel-centre offset maps edges the same way (x_edge = x_centre - 0.5 on both grids)
    T = reg.scale * t + reg.offset_y
    L = reg.scale * l + reg.offset_x
    B = reg.scale * b + reg.offset_y
    R = reg.scale * r + reg.offset_x
    H, W = shape
    top, left = int(np.clip(np.ceil(T - 1e-6), 0, H)), int(np.clip(np.ceil(L - 1e-6), 0, W))
    bottom, right = int(np.clip(np.floor(B + 1e-6), 0, H)), int(np.clip(np.floor(R + 1e-6), 0, W))
    return top, left, max(top, bottom), max(left, right)


def map_point(xy: ArrayLike, reg: Registration) -> tuple[float, float]:
    """Map a truth point ``[x, y]`` (pixel-edge coordinates, as the simulator writes them) to the output."""
    x, y = (float(v) for v in xy)
    return reg.scale * x + reg.offset_x, reg.scale * y + reg.offset_y


def crop(image: NDArray, box: tuple[int, int, int, int]) -> NDArray:
    """``image[top:bottom, left:right]`` (a view)."""
    t, l, b, r = box
    return image[t:b, l:r]


# ----------------------------------------------------------------------- chart files
def _chart_from_truth(truth: dict[str, Any], where: str) -> dict[str, Any]:
    kind = truth.get("scene")
    if kind not in CHART_KINDS:
        raise UnsupportedFile(f"truth describes scene {kind!r}, not a lab chart ({', '.join(CHART_KINDS)})",
                              path=where)
    size = truth.get("size_wh")
    return {"chart": kind, "size_wh": list(size) if size else None, "geometry": truth.get("geometry", {}),
            "exposure_ev": float(truth.get("exposure_ev", 0.0) or 0.0)}


def validate_chart(chart: dict[str, Any], *, where: str = "<chart>") -> dict[str, Any]:
    """Check a chart description ``{"chart": KIND, "size_wh": [w, h], "geometry": {...}}``.

    Raises
    ------
    InvalidParams
        Unknown kind, a missing field the kind needs, or a malformed box.
    """
    if not isinstance(chart, dict):
        raise InvalidParams("a chart must be a JSON object", path=where)
    kind = chart.get("chart")
    if kind not in CHART_KINDS:
        raise InvalidParams(f"chart kind must be one of {', '.join(CHART_KINDS)}, got {kind!r}", path=where)
    size = chart.get("size_wh")
    if size is not None:
        if not (isinstance(size, (list, tuple)) and len(size) == 2 and all(isinstance(v, int) and 8 <= v <= 100000
                                                                          for v in size)):
            raise InvalidParams(f"size_wh must be [width, height] in pixels, got {size!r}", path=where)
    geometry = chart.get("geometry")
    if not isinstance(geometry, dict):
        raise InvalidParams("chart has no 'geometry' object", path=where)
    needs = {"colorchecker": "patches", "gray_steps": "steps", "slanted_edge": "edge_center_xy",
             "siemens_star": "center_xy", "dot_grid": "dots"}
    key = needs.get(kind)
    if key is not None and key not in geometry:
        raise InvalidParams(f"{kind} chart needs geometry.{key}", path=where)
    boxes = geometry.get("patches") or geometry.get("steps") or []
    if kind == "colorchecker" and len(boxes) != 24:
        raise InvalidParams(f"a ColorChecker needs 24 patches, got {len(boxes)}", path=where)
    for i, item in enumerate(boxes):
        box = item.get("box") if isinstance(item, dict) else None
        ok = (isinstance(box, (list, tuple)) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)
              and box[2] > box[0] and box[3] > box[1])
        if not ok:
            raise InvalidParams(f"patch {i}: box must be [top, left, bottom, right] with bottom > top and "
                                f"right > left, got {box!r}", path=where)
    return chart


def load_chart(path: str | Path) -> dict[str, Any]:
    """Read a chart file: a chart JSON, a simulator ``truth.json`` (its first frame) or a built-in chart name.

    Returns
    -------
    dict
        ``{"chart": KIND, "size_wh": [w, h] or None, "geometry": {...}}`` (plus ``"truth_npz"``
        when a simulator truth file names one beside it).
    """
    if isinstance(path, str) and not path.endswith(".json") and not Path(path).exists():
        return builtin_chart(path)
    p = Path(path)
    where = str(p)
    try:
        if p.stat().st_size > MAX_CHART_BYTES:
            raise InvalidParams(f"chart file is larger than {MAX_CHART_BYTES >> 20} MiB", path=where)
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidParams("chart file not found", path=where) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidParams(f"cannot read the chart file ({exc.__class__.__name__})", path=where) from None
    except json.JSONDecodeError as exc:
        raise CorruptFile(f"chart file is not valid JSON (line {exc.lineno}: {exc.msg})", path=where) from None
    if isinstance(data, dict) and "frames" in data:
        frames = data["frames"]
        if not frames:
            raise InvalidParams("truth file holds no frames", path=where)
        chart = _chart_from_truth(frames[0], where)
        npz = frames[0].get("truth")
        if npz and (p.parent / npz).is_file():
            chart["truth_npz"] = str(p.parent / npz)
        return validate_chart(chart, where=where)
    if isinstance(data, dict) and "scene" in data and "geometry" in data:
        return validate_chart(_chart_from_truth(data, where), where=where)
    return validate_chart(data, where=where)


def builtin_charts() -> list[str]:
    """Names of the chart files shipped with rawlab (coordinates for real test photos)."""
    folder = resources.files("rawlab.lab") / "chart_files"
    return sorted(Path(str(f)).stem for f in folder.iterdir() if str(f).endswith(".json"))


def builtin_chart(name: str) -> dict[str, Any]:
    """A shipped chart file by name (see :func:`builtin_charts`)."""
    folder = resources.files("rawlab.lab") / "chart_files"
    f = folder / f"{name}.json"
    if not f.is_file():
        raise InvalidParams(f"unknown chart {name!r}; built-in: {', '.join(builtin_charts())}")
    return validate_chart(json.loads(f.read_text(encoding="utf-8")), where=str(f))
