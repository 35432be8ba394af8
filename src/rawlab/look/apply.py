"""Looks as data: load a look file and insert its operations into a develop recipe.

A look is a recipe fragment (TOML) with a one-line description::

    name = "authentic"
    description = "Faithful colour, deeper contrast, the lens's natural vignetting kept."

    [[stages]]
    stage = "look_tone_curve"
    contrast = 1.1

Only look operations may appear (:data:`LOOK_STAGE_GROUPS`).  Each goes where
its colour state is, whatever its place in the file (the order within a group
is the file's):

=========  ==========================================================  ========================
group      stages                                                      where in the recipe
=========  ==========================================================  ========================
scene      white-balance bias, vignette, mono, HSL, saturation         before ``filmic`` (linear, scene-referred)
tone       ``look_tone_curve``                                         replaces ``filmic``
display    split toning                                                after the tone curve (linear, display-referred)
encoded    ``look_lut``, ``look_grain``                                after ``output_transfer`` (sRGB-encoded)
geometry   ``mode_crop``                                               last (upright image)
=========  ==========================================================  ========================
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

import numpy as np
from numpy.typing import NDArray

from rawlab.core.frame import Encoding, Frame, Primaries, Transfer
from rawlab.errors import InvalidParams, RawlabError
from rawlab.pipeline import Recipe, RecipeStep

__all__ = [
    "LOOK_DIR",
    "LOOK_STAGE_GROUPS",
    "Look",
    "apply_look",
    "apply_look_options",
    "builtin_looks",
    "export_look_cube",
    "load_look",
    "look_to_lut",
]

LOOK_DIR = Path(__file__).resolve().parent / "looks"

#: Look operation -> the recipe group it belongs to (see the module docstring).
LOOK_STAGE_GROUPS: dict[str, str] = {
    "look_white_balance_bias": "scene",
    "look_vignette": "scene",
    "look_mono": "scene",
    "look_hsl": "scene",
    "look_saturation": "scene",
    "look_tone_curve": "tone",
    "look_split_tone": "display",
    "look_lut": "encoded",
    "look_grain": "encoded",
    "mode_crop": "geometry",
}
#: Operations that depend on the pixel position; left out of a LUT export.
SPATIAL_STAGES = ("look_vignette", "look_grain", "mode_crop")


@dataclass(frozen=True)
class Look:
    """A named, described list of look operations with validated params."""

    name: str
    description: str
    steps: tuple[RecipeStep, ...]
    source: str = "<look>"

    def group(self, group: str) -> list[RecipeStep]:
        """The steps of one group, in file order."""
        return [s for s in self.steps if LOOK_STAGE_GROUPS[s.stage] == group]

    def to_dict(self) -> dict[str, Any]:
        """The look as TOML-shaped data."""
        return {"name": self.name, "description": self.description,
                "stages": [{"stage": s.stage, **s.params.to_dict()} for s in self.steps]}


def _import_stages() -> None:
    import rawlab.look  # noqa: F401 - registers the look stages


def builtin_looks() -> list[str]:
    """Names of the built-in looks."""
    return sorted(p.stem for p in LOOK_DIR.glob("*.toml"))


def look_from_dict(data: Mapping[str, Any], *, source: str = "<look>", base_dir: Path | None = None) -> Look:
    """Validate a parsed look table; errors name ``source``, the stage index and the key."""
    _import_stages()
    if not isinstance(data, Mapping):
        raise InvalidParams(f"{source}: expected a table at the top level")
    raw_steps = data.get("stages")
    if isinstance(raw_steps, list):
        for i, raw in enumerate(raw_steps):
            name = raw.get("stage") if isinstance(raw, Mapping) else None
            if isinstance(name, str) and name not in LOOK_STAGE_GROUPS:
                raise InvalidParams(
                    f"{source}: stages[{i}].stage: unknown look operation {name!r}; expected one of "
                    f"{', '.join(sorted(LOOK_STAGE_GROUPS))}"
                )
    recipe = Recipe.from_dict(data, source=source)
    steps = []
    for i, step in enumerate(recipe.steps):
        if step.stage == "look_lut":
            from rawlab.look.lut import read_cube

            cube = step.params.cube  # type: ignore[attr-defined]
            if not cube and step.params.lut is None:  # type: ignore[attr-defined]
                raise InvalidParams(f"{source}: stages[{i}].cube: a look_lut needs a .cube file")
            if cube and step.params.lut is None:  # type: ignore[attr-defined]
                path = Path(cube)
                if not path.is_absolute() and base_dir is not None:
                    path = base_dir / path
                try:
                    lut = read_cube(path)
                except RawlabError as exc:
                    # one line: the look file and its key, then the .cube file and its problem
                    raise type(exc)(f"{source}: stages[{i}].cube: {exc}") from None
                step = RecipeStep("look_lut", replace(step.params, lut=lut))  # type: ignore[type-var]
        steps.append(step)
    return Look(name=recipe.name, description=recipe.description, steps=tuple(steps), source=source)


def load_look(name_or_path: str | Path) -> Look:
    """A built-in look by name (``rawlab looks`` lists them) or a look file by path."""
    text = str(name_or_path)
    if text.endswith(".toml") or "/" in text or Path(text).is_file():
        path = Path(text)
    else:
        path = LOOK_DIR / f"{text}.toml"
        if not path.is_file():
            raise InvalidParams(f"unknown look {text!r}; built-in looks: {', '.join(builtin_looks())}")
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidParams(f"cannot read look: {exc.strerror or exc}", path=str(path)) from None
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidParams(f"{path}: not valid TOML: {exc}") from None
    return look_from_dict(data, source=str(path), base_dir=path.parent)


def _anchor(names: tuple[str, ...], *candidates: str) -> int:
    for c in candidates:
        if c in names:
            return names.index(c)
    return len(names)


def apply_look(recipe: Recipe, look: Look | str | Path) -> Recipe:
    """``recipe`` with the look's operations inserted where their colour state is.

    The look's ``look_tone_curve`` replaces the recipe's ``filmic``; without one
    the recipe's ``filmic`` stays.  Raises :class:`InvalidParams` when the
    recipe lacks what a look operation needs (``output_transfer`` for LUTs and grain).
    """
    if not isinstance(look, Look):
        look = load_look(look)
    steps = [s for s in recipe.steps]
    names = tuple(s.stage for s in steps)
    tone = look.group("tone")
    tone_at = _anchor(names, "filmic", "output_transfer", "crop", "orientation")
    has_filmic = tone_at < len(names) and names[tone_at] == "filmic"
    if tone and has_filmic:
        steps[tone_at : tone_at + 1] = tone
    else:
        steps[tone_at:tone_at] = tone
    after_tone = tone_at + (len(tone) if tone else int(has_filmic))
    steps[after_tone:after_tone] = look.group("display")
    steps[tone_at:tone_at] = look.group("scene")
    encoded = look.group("encoded")
    if encoded:
        names = tuple(s.stage for s in steps)
        if "output_transfer" not in names:
            raise InvalidParams(
                f"look {look.name!r}: {encoded[0].stage} needs an output_transfer stage in recipe {recipe.name!r}"
            )
        at = names.index("output_transfer") + 1
        steps[at:at] = encoded
    steps.extend(look.group("geometry"))
    return replace(recipe, name=f"{recipe.name}+{look.name}", steps=tuple(steps))


def apply_look_options(recipe: Recipe, *, look: str | Path | None = None, mode: str | None = None) -> Recipe:
    """The develop command's ``--look NAME|FILE`` and ``--mode 35mm|50mm|90mm|65x24``.

    Returns ``recipe`` with the look (see :func:`apply_look`) and a final
    ``mode_crop`` step; ``None`` leaves that part out.
    """
    if look is not None:
        recipe = apply_look(recipe, load_look(look))
    if mode is not None:
        _import_stages()
        from rawlab.look.modes import MODES, ModeCropParams

        if mode not in MODES:
            raise InvalidParams(f"unknown mode {mode!r}; expected one of {', '.join(MODES)}")
        recipe = replace(recipe, steps=recipe.steps + (RecipeStep("mode_crop", ModeCropParams(mode=mode)),))
    return recipe


# ------------------------------------------------------------------- LUT export
def _srgb_decode(v: NDArray) -> NDArray[np.float64]:
    v = np.asarray(v, np.float64)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def _filmic_inverse(y: NDArray, t: float, w: float) -> NDArray[np.float64]:
    """Inverse of :mod:`rawlab.tone.filmic` (its docstring gives the closed form)."""
    from rawlab.tone.filmic import filmic_shoulder_k

    k = filmic_shoulder_k(t, w)
    y = np.asarray(y, np.float64)
    arg = np.maximum(1.0 - k * (y - t), 1e-12)
    return np.where(y > t, t - np.log(arg) / k, y)


def look_to_lut(look: Look | str | Path, *, size: int = 33, base: Recipe | None = None) -> "Lut3D":  # noqa: F821
    """Sample a look as a 3D LUT from the base develop's output to the look's output.

    Input of the LUT: what ``base`` (default: the built-in ``default`` recipe)
    gives, sRGB-encoded sRGB.  Each lattice point is decoded, taken back
    through the base's ``filmic`` curve to scene-referred linear, and run
    through the look's scene, tone, display and encoded operations (the
    position-dependent ones, vignette, grain and mode crop, are left out).
    Applying the LUT after the base develop thus reproduces the look up to
    interpolation and the clipping of scene values above the base's white point.

    The output is clipped to the encoded range ``[0, 1]``: colours the look
    pushes out of the sRGB gamut would be clipped by any 8-bit encoder, and a
    .cube whose entries stay in its range is what other tools expect (a
    colour grading application may clip, wrap or reject entries beyond it).
    """
    from rawlab.look.lut import Lut3D
    from rawlab.tone.filmic import FilmicParams

    if not isinstance(look, Look):
        look = load_look(look)
    if not 2 <= size <= 129:
        raise InvalidParams(f"LUT size must be 2..129, got {size}")
    base = Recipe.builtin("default") if base is None else base
    filmic = next((s for s in base.steps if s.stage == "filmic"), RecipeStep("filmic", FilmicParams()))
    fp: FilmicParams = filmic.params  # type: ignore[assignment]
    grid = np.linspace(0.0, 1.0, size)
    r, g, b = np.meshgrid(grid, grid, grid, indexing="ij")
    encoded = np.stack([r, g, b], axis=-1).reshape(size * size, size, 3)
    scene = _filmic_inverse(_srgb_decode(encoded), fp.shoulder_start, fp.white_point)
    frame = Frame(data=scene.astype(np.float32), encoding=Encoding.RGB, primaries=Primaries.SRGB,
                  transfer=Transfer.LINEAR)
    from rawlab.tone.transfer import OutputTransferParams

    chain = look.group("scene") + (look.group("tone") or [filmic]) + look.group("display")
    chain += [RecipeStep("output_transfer", OutputTransferParams(transfer="srgb"))] + look.group("encoded")
    for step in chain:
        if step.stage in SPATIAL_STAGES:
            continue
        frame = step.spec(frame, step.params)
    table = np.clip(frame.data.reshape(size, size, size, 3), 0.0, 1.0)
    return Lut3D(table=table, title=f"rawlab look {look.name}")


def export_look_cube(look: Look | str | Path, path: str | Path, *, size: int = 33) -> Path:
    """Write a look as a ``.cube`` 3D LUT (see :func:`look_to_lut`)."""
    from rawlab.look.lut import write_cube

    lut = look_to_lut(look, size=size)
    return write_cube(lut, path)
