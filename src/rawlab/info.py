"""A plain description of a frame's metadata, for ``rawlab info`` and the API."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rawlab.core.frame import Frame
from rawlab.core.opcodes import UnknownOpcode


def _plain(value: Any) -> Any:
    """JSON-friendly version of a metadata value."""
    if isinstance(value, np.ndarray):
        return np.round(value.astype(np.float64), 6).tolist()
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return value


def describe(frame: Frame) -> dict[str, Any]:
    """Everything a user may want to know about a freshly read frame.

    Returns a nested mapping of plain Python values (JSON-serialisable).
    """
    sensor = frame.sensor
    return {
        "encoding": frame.encoding.value,
        "width": frame.width,
        "height": frame.height,
        "cfa": sensor.cfa.name if sensor.cfa is not None else None,
        "bits_per_sample": sensor.bits_per_sample,
        "black_level_dn": _plain(sensor.black_level_dn),
        "white_level_dn": _plain(sensor.white_level_dn),
        "active_area": _plain(sensor.active_area),
        "default_crop": _plain(sensor.crop_px),
        "linearization_table_entries": None
        if sensor.linearization_table is None
        else int(sensor.linearization_table.size),
        "noise_profile": _plain(sensor.noise_profile),
        "color": _plain(frame.color),
        "capture": _plain(frame.capture),
        "lens": _plain(frame.lens),
        "opcodes": [
            {
                "list": op.list_index,
                "name": op.name,
                "id": op.opcode_id,
                "optional": op.optional,
                "known": not isinstance(op, UnknownOpcode),
            }
            for op in frame.opcodes
        ],
    }


def format_text(path: str, info: dict[str, Any]) -> str:
    """Human-readable, one fact per line."""
    cap = info["capture"]
    lines = [f"{path}"]
    lines.append(
        f"  image      {info['width']} x {info['height']} {info['encoding']}"
        + (f" {info['cfa']}" if info["cfa"] else "")
        + f", {info['bits_per_sample']}-bit"
    )
    lines.append(f"  levels     black {info['black_level_dn']}  white {info['white_level_dn']}")
    if info["active_area"]:
        lines.append(f"  active     {info['active_area']} (top, left, bottom, right)")
    if info["default_crop"]:
        lines.append(f"  crop       {info['default_crop']} (top, left, height, width)")
    camera = " ".join(v for v in (cap.get("make"), cap.get("model")) if v)
    if camera:
        lines.append(f"  camera     {camera}")
    settings = []
    if cap.get("iso"):
        settings.append(f"ISO {cap['iso']:g}")
    if cap.get("exposure_time_s"):
        t = cap["exposure_time_s"]
        settings.append(f"1/{1 / t:.0f} s" if t < 1 else f"{t:g} s")
    if cap.get("f_number"):
        settings.append(f"f/{cap['f_number']:g}")
    if cap.get("focal_length_mm"):
        settings.append(f"{cap['focal_length_mm']:g} mm")
    if cap.get("focal_length_35mm_mm"):
        settings.append(f"({cap['focal_length_35mm_mm']:g} mm eq.)")
    if settings:
        lines.append(f"  settings   {' '.join(settings)}")
    if cap.get("datetime_original"):
        lines.append(f"  taken      {cap['datetime_original']}")
    if info["lens"] and info["lens"].get("model"):
        lines.append(f"  lens       {info['lens']['model']}")
    color = info["color"]
    if color.get("as_shot_neutral"):
        lines.append(f"  neutral    {color['as_shot_neutral']}")
    if color.get("M_XYZ_to_camera_1") is not None:
        lines.append(
            f"  matrices   ColorMatrix1 (illuminant {color['illuminant_1']})"
            + (f", ColorMatrix2 (illuminant {color['illuminant_2']})" if color.get("M_XYZ_to_camera_2") else "")
            + (", ForwardMatrix" if color.get("M_forward_1") else "")
        )
    else:
        lines.append("  matrices   none (gray-world / sRGB fallback)")
    if color.get("baseline_exposure_ev"):
        lines.append(f"  baseline   {color['baseline_exposure_ev']:+.2f} EV")
    if info["noise_profile"]:
        lines.append(f"  noise      {info['noise_profile']}")
    for op in info["opcodes"]:
        flag = "" if op["known"] else "  (unknown: kept, not applied)"
        lines.append(f"  opcode     list {op['list']}: {op['name']}{' optional' if op['optional'] else ''}{flag}")
    return "\n".join(lines)
