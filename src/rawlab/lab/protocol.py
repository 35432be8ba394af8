"""Lab protocols as data: which cameras, ISOs, lights and charts, with fixed seeds.

A protocol is a TOML file (built-in ones live in ``lab/protocols/``)::

    name = "quick"
    version = 1
    seed = 20260101
    cameras = ["phone-1in"]
    isos = [100, 3200]

    [[conditions]]
    name = "D65 bright"
    illuminant = "D65"            # rawlab.sim illuminant
    white_luminance_cd_m2 = 2000  # luminance of a white diffuser in that light
    # isos = [3200, 12800]        # optional: this condition's own ISO ladder
    # cameras = ["fullframe"]     # optional: this condition's own cameras (instead of the protocol's)
    # charts = ["colorchecker"]   # optional: only these of the protocol's charts

    [charts.colorchecker]         # a rawlab.sim scene name
    size = [300, 200]             # [width, height], sensor pixels
    # other keys are passed to the scene constructor (angle_deg, seed, ...)

Each capture's noise seed is ``[seed, camera index, condition index, ISO index,
chart index]`` hashed by NumPy's SeedSequence, so a protocol gives the same
captures every time and adding a chart does not change the others.  Camera
indices count the protocol's ``cameras`` first, then the cameras that only
conditions name, in order of appearance; chart indices count the protocol's
charts, whether or not a condition measures them, so appending a condition
changes no earlier capture.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rawlab.errors import CorruptFile, InvalidParams

#: Chart scenes a protocol may name (measured by :mod:`rawlab.lab.run`).
PROTOCOL_CHARTS = ("colorchecker", "slanted_edge", "dead_leaves", "flat_field", "gray_steps",
                   "siemens_star", "dot_grid")


@dataclass(frozen=True, slots=True)
class Condition:
    """A lighting condition: illuminant, scene brightness and optionally its own ISO ladder,
    its own cameras and a subset of the charts (e.g. a colour-only condition)."""

    name: str
    illuminant: str
    white_luminance_cd_m2: float
    isos: tuple[float, ...] | None = None
    cameras: tuple[str, ...] | None = None
    charts: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class ChartSpec:
    """One chart of the protocol: the sim scene name, its size and scene options."""

    name: str
    size_wh: tuple[int, int]
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CaptureSet:
    """One point of the plan: camera x condition x ISO (all charts are captured for it)."""

    camera: str
    condition: Condition
    iso: float
    index: tuple[int, int, int]

    @property
    def key(self) -> str:
        """Stable identifier, e.g. ``phone-1in/D65 bright/ISO100``."""
        return f"{self.camera}/{self.condition.name}/ISO{self.iso:g}"

    def includes(self, chart: str) -> bool:
        """Whether this set captures ``chart`` (a condition may limit its charts)."""
        return self.condition.charts is None or chart in self.condition.charts

    def seed(self, base_seed: int, chart_index: int) -> int:
        """Noise seed of one chart capture in this set (SeedSequence of the plan position)."""
        ss = np.random.SeedSequence([int(base_seed), *self.index, int(chart_index)])
        return int(ss.generate_state(1, dtype=np.uint32)[0])


@dataclass(frozen=True, slots=True)
class Protocol:
    """A lab test plan (see the module docstring for the file format)."""

    name: str
    version: int
    description: str
    seed: int
    cameras: tuple[str, ...]
    isos: tuple[float, ...]
    conditions: tuple[Condition, ...]
    charts: tuple[ChartSpec, ...]

    def all_cameras(self) -> tuple[str, ...]:
        """The protocol's cameras, then those only conditions name (the camera index order)."""
        out = list(self.cameras)
        for cond in self.conditions:
            out += [c for c in cond.cameras or () if c not in out]
        return tuple(out)

    def capture_sets(self) -> Iterator[CaptureSet]:
        """Every camera x condition x ISO of the plan, in a fixed order."""
        for ci, camera in enumerate(self.all_cameras()):
            for ki, cond in enumerate(self.conditions):
                if camera not in (cond.cameras or self.cameras):
                    continue
                for ii, iso in enumerate(cond.isos or self.isos):
                    yield CaptureSet(camera, cond, float(iso), (ci, ki, ii))

    def restricted(self, *, cameras: list[str] | None = None, isos: list[float] | None = None,
                   conditions: list[str] | None = None) -> "Protocol":
        """The same protocol limited to some cameras, ISOs or condition names."""
        p = self
        if cameras:
            keep = []
            for c in p.conditions:
                if c.cameras is None:
                    keep.append(c)
                elif any(cam in cameras for cam in c.cameras):
                    keep.append(replace(c, cameras=tuple(cam for cam in c.cameras if cam in cameras)))
            p = replace(p, cameras=tuple(cameras), conditions=tuple(keep))
        if isos:
            p = replace(p, isos=tuple(float(v) for v in isos),
                        conditions=tuple(replace(c, isos=None) for c in p.conditions))
        if conditions:
            known = {c.name for c in p.conditions}
            missing = [c for c in conditions if c not in known]
            if missing:
                raise InvalidParams(f"unknown condition {missing[0]!r}; protocol {p.name!r} has "
                                    f"{', '.join(sorted(known))}")
            p = replace(p, conditions=tuple(c for c in p.conditions if c.name in conditions))
        return p

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "version": self.version, "description": self.description, "seed": self.seed,
            "cameras": list(self.cameras), "isos": list(self.isos),
            "conditions": [{"name": c.name, "illuminant": c.illuminant,
                            "white_luminance_cd_m2": c.white_luminance_cd_m2,
                            **({"isos": list(c.isos)} if c.isos else {}),
                            **({"cameras": list(c.cameras)} if c.cameras else {}),
                            **({"charts": list(c.charts)} if c.charts else {})} for c in self.conditions],
            "charts": {c.name: {"size": list(c.size_wh), **c.options} for c in self.charts},
        }


def _need(data: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in data:
        raise InvalidParams(f"protocol is missing '{key}'", path=where)
    value = data[key]
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidParams(f"protocol key '{key}' has the wrong type ({type(value).__name__})", path=where)
    return value


def _isos(values: Any, key: str, where: str) -> tuple[float, ...]:
    if not isinstance(values, list) or not values or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 1 <= v <= 1e6 for v in values):
        raise InvalidParams(f"'{key}' must be a non-empty list of ISO numbers", path=where)
    return tuple(float(v) for v in values)


def protocol_from_dict(data: dict[str, Any], *, source: str = "<protocol>") -> Protocol:
    """Build and validate a :class:`Protocol` from parsed TOML.

    Raises
    ------
    InvalidParams
        A missing or malformed key, naming it.
    """
    from rawlab.sim.camera import builtin_cameras
    from rawlab.sim.spectral import ILLUMINANTS

    name = _need(data, "name", str, source)
    version = _need(data, "version", int, source)
    seed = _need(data, "seed", int, source)
    cameras = _need(data, "cameras", list, source)
    known_cams = set(builtin_cameras())
    for cam in cameras:
        if not isinstance(cam, str) or (cam not in known_cams and not cam.endswith(".toml")):
            raise InvalidParams(f"unknown camera {cam!r}; built-in: {', '.join(sorted(known_cams))}", path=source)
    isos = _isos(data.get("isos"), "isos", source)
    conds = []
    for i, c in enumerate(_need(data, "conditions", list, source)):
        if not isinstance(c, dict):
            raise InvalidParams(f"conditions[{i}] must be a table", path=source)
        cname = _need(c, "name", str, source)
        ill = _need(c, "illuminant", str, source)
        if ill not in ILLUMINANTS:
            raise InvalidParams(f"condition {cname!r}: unknown illuminant {ill!r}; known: {', '.join(ILLUMINANTS)}",
                                path=source)
        lum = _need(c, "white_luminance_cd_m2", (int, float), source)
        if not 0.01 <= lum <= 1e6:
            raise InvalidParams(f"condition {cname!r}: white_luminance_cd_m2 must be 0.01..1e6, got {lum}", path=source)
        own = _isos(c["isos"], f"conditions[{i}].isos", source) if "isos" in c else None
        own_cams = None
        if "cameras" in c:
            own_cams = c["cameras"]
            if not isinstance(own_cams, list) or not own_cams:
                raise InvalidParams(f"condition {cname!r}: 'cameras' must be a non-empty list", path=source)
            for cam in own_cams:
                if not isinstance(cam, str) or (cam not in known_cams and not cam.endswith(".toml")):
                    raise InvalidParams(f"condition {cname!r}: unknown camera {cam!r}; built-in: "
                                        f"{', '.join(sorted(known_cams))}", path=source)
            own_cams = tuple(own_cams)
        own_charts = c.get("charts")
        if own_charts is not None and (not isinstance(own_charts, list) or not own_charts
                                       or not all(isinstance(v, str) for v in own_charts)):
            raise InvalidParams(f"condition {cname!r}: 'charts' must be a non-empty list of chart names", path=source)
        conds.append(Condition(cname, ill, float(lum), own, own_cams,
                               tuple(own_charts) if own_charts is not None else None))
    if not conds:
        raise InvalidParams("protocol has no conditions", path=source)
    charts = []
    for cname, spec in _need(data, "charts", dict, source).items():
        if cname not in PROTOCOL_CHARTS:
            raise InvalidParams(f"unknown chart {cname!r}; known: {', '.join(PROTOCOL_CHARTS)}", path=source)
        if not isinstance(spec, dict):
            raise InvalidParams(f"charts.{cname} must be a table", path=source)
        size = spec.get("size")
        if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and 32 <= v <= 8192 for v in size)):
            raise InvalidParams(f"charts.{cname}.size must be [width, height], 32..8192 px, got {size!r}", path=source)
        charts.append(ChartSpec(cname, (int(size[0]), int(size[1])), {k: v for k, v in spec.items() if k != "size"}))
    if not charts:
        raise InvalidParams("protocol has no charts", path=source)
    names = {c.name for c in charts}
    for cond in conds:
        for chart in cond.charts or ():
            if chart not in names:
                raise InvalidParams(f"condition {cond.name!r}: chart {chart!r} is not among the protocol's charts "
                                    f"({', '.join(sorted(names))})", path=source)
    return Protocol(name, version, str(data.get("description", "")), seed, tuple(cameras), isos,
                    tuple(conds), tuple(charts))


def builtin_protocols() -> list[str]:
    """Names of the built-in protocols (``default``, ``quick``, ``report``)."""
    folder = resources.files("rawlab.lab") / "protocols"
    return sorted(Path(str(f)).stem for f in folder.iterdir() if str(f).endswith(".toml"))


def load_protocol(name_or_path: str | Path = "default") -> Protocol:
    """A built-in protocol by name, or a protocol TOML file.

    Raises
    ------
    InvalidParams
        Unknown name, unreadable file or invalid content; CorruptFile for bad TOML.
    """
    text_path = str(name_or_path)
    if text_path in builtin_protocols():
        f = resources.files("rawlab.lab") / "protocols" / f"{text_path}.toml"
        source, text = str(f), f.read_text(encoding="utf-8")
    else:
        p = Path(name_or_path)
        if not p.is_file():
            raise InvalidParams(f"unknown protocol {text_path!r}; built-in: {', '.join(builtin_protocols())}",
                                path=str(p) if p.suffix else None)
        source = str(p)
        if p.stat().st_size > 1 << 20:
            raise InvalidParams("protocol file is larger than 1 MiB", path=source)
        try:
            text = p.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InvalidParams(f"cannot read the protocol ({exc.__class__.__name__})", path=source) from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise CorruptFile(f"protocol is not valid TOML ({exc})", path=source) from None
    return protocol_from_dict(data, source=source)
