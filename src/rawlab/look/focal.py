"""The 35 mm-equivalent focal length of a capture, for the focal-length modes and the caption.

A 35 mm-equivalent focal length gives the capture's angle of view on a
36 x 24 mm frame (CIPA DC-008, EXIF FocalLengthIn35mmFilm): the focal length
times the crop factor, ``43.27 mm / diagonal`` of the image area.  In order:

1. ``capture.focal_length_35mm_mm``: the file's FocalLengthIn35mmFilm, or what
   the reader computed from the file's own focal-plane resolution or sensor
   size (:func:`rawlab.io.exif.raw_file_crop_factor`);
2. ``capture.focal_length_mm`` times the camera's crop factor from the lensfun
   camera database (``<camera>``: maker, model, ``cropfactor``, the same
   diagonal ratio), where it is installed (Debian: ``liblensfun-data-v1``,
   which darktable depends on) and knows the camera;
3. otherwise it is unknown, and :attr:`EquivalentFocalLength.why` says why.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from rawlab.core.metadata import CaptureInfo

__all__ = ["EquivalentFocalLength", "LENSFUN_DIRS", "equivalent_focal_length", "lensfun_crop_factor"]

#: Where the lensfun database is looked for (its updates first); ``RAWLAB_LENSFUN_DIR`` adds one in front.
LENSFUN_DIRS: tuple[Path, ...] = (
    Path("/var/lib/lensfun-updates/version_1"),
    Path("/usr/share/lensfun/version_1"),
    Path("/usr/local/share/lensfun/version_1"),
)


@dataclass(frozen=True)
class EquivalentFocalLength:
    """The 35 mm-equivalent focal length (``mm``, None when unknown), where it came from, or why it is unknown."""

    mm: float | None
    source: str
    why: str = ""


def _norm(text: str | None) -> str:
    return " ".join((text or "").lower().split())


def _dirs() -> tuple[Path, ...]:
    extra = os.environ.get("RAWLAB_LENSFUN_DIR")
    return ((Path(extra),) if extra else ()) + LENSFUN_DIRS


@functools.lru_cache(maxsize=4)
def _lensfun_cameras(dirs: tuple[Path, ...]) -> tuple[tuple[frozenset[str], frozenset[str], float], ...]:
    """``(makers, models, crop factor)`` of every ``<camera>`` in the lensfun XML files under ``dirs``."""
    cameras = []
    for folder in dirs:
        if not folder.is_dir():
            continue
        for path in sorted(folder.glob("*.xml")):
            try:
                root = ET.parse(path).getroot()
            except (ET.ParseError, OSError):
                continue
            for cam in root.iter("camera"):
                try:
                    crop = float(cam.findtext("cropfactor") or "nan")
                except ValueError:
                    continue
                if not crop > 0:
                    continue
                makers = frozenset(_norm(m.text) for m in cam.findall("maker") if m.text)
                models = frozenset(_norm(m.text) for m in cam.findall("model") if m.text)
                if models:
                    cameras.append((makers, models, crop))
    return tuple(cameras)


def lensfun_database_found() -> bool:
    """True when a lensfun database with cameras is installed (see :data:`LENSFUN_DIRS`)."""
    return bool(_lensfun_cameras(_dirs()))


def lensfun_crop_factor(make: str | None, model: str | None) -> float | None:
    """The camera's crop factor from the lensfun database, or None when it is not there.

    The model must match (case and spacing aside); among several cameras with
    that model, the maker decides, and a remaining disagreement gives None.
    """
    m, k = _norm(model), _norm(make)
    if not m:
        return None
    hits = [c for c in _lensfun_cameras(_dirs()) if m in c[1]]
    same_maker = [c for c in hits if k and k in c[0]]
    chosen = same_maker or hits
    crops = {round(c[2], 4) for c in chosen}
    return chosen[0][2] if len(crops) == 1 else None


def equivalent_focal_length(capture: CaptureInfo) -> EquivalentFocalLength:
    """The capture's 35 mm-equivalent focal length (see the module docstring)."""
    f35 = capture.focal_length_35mm_mm
    if f35 is not None and f35 > 0:
        return EquivalentFocalLength(float(f35), "file")
    f = capture.focal_length_mm
    camera = " ".join(p for p in (capture.make, capture.model) if p) or "this camera"
    if not (f is not None and f > 0):
        return EquivalentFocalLength(None, "", "the file records no focal length")
    crop = lensfun_crop_factor(capture.make, capture.model)
    if crop is not None:
        return EquivalentFocalLength(float(f) * crop, "lensfun")
    where = "the lensfun camera database" if lensfun_database_found() else \
        "the lensfun camera database (not installed)"
    return EquivalentFocalLength(
        None, "", f"the file records a {f:g} mm focal length but no FocalLengthIn35mmFilm, focal-plane "
                  f"resolution or sensor size, and {camera} is not in {where}")
