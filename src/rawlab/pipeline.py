"""Recipes and :func:`develop`: run an ordered list of stages on a frame.

A :class:`Recipe` is data: a name, a one-line description and an ordered list
of stage names with their params, loaded from TOML.  Built-in recipes live in
``rawlab/recipes/*.toml``; a user's file is loaded the same way and validated
on load, with errors that name the file, the key and what was expected::

    name = "default"
    description = "..."

    [[stages]]
    stage = "demosaic"
    method = "malvar2004"
"""

from __future__ import annotations

import importlib
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Mapping

from rawlab.core.frame import Frame
from rawlab.core.params import Params
from rawlab.core.stage import StageSpec, get_stage, registered_stages
from rawlab.errors import InvalidParams, RawlabError

#: Modules that register stages; imported on first use of the registry.
STAGE_MODULES: tuple[str, ...] = (
    "rawlab.sensor.normalize",
    "rawlab.sensor.opcodes",
    "rawlab.optics.dng_warp",
    "rawlab.color.whitebalance",
    "rawlab.color.highlights",
    "rawlab.demosaic.stage",
    "rawlab.color.dng_matrices",
    "rawlab.color.spaces",
    "rawlab.tone.exposure",
    "rawlab.tone.filmic",
    "rawlab.tone.transfer",
    "rawlab.geometry.crop",
    "rawlab.geometry.orientation",
    "rawlab.look.tonecurve",
    "rawlab.look.saturation",
    "rawlab.look.hsl",
    "rawlab.look.splittone",
    "rawlab.look.wbbias",
    "rawlab.look.vignette",
    "rawlab.look.grain",
    "rawlab.look.mono",
    "rawlab.look.lut",
    "rawlab.look.modes",
    "rawlab.look.fused",
)

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"


def load_stages() -> dict[str, StageSpec]:
    """Import every stage module and return the registry (name -> spec)."""
    for module in STAGE_MODULES:
        importlib.import_module(module)
    return registered_stages()


@dataclass(frozen=True)
class RecipeStep:
    """One stage of a recipe with its validated params."""

    stage: str
    params: Params

    @property
    def spec(self) -> StageSpec:
        """The registered stage."""
        return get_stage(self.stage)


@dataclass(frozen=True)
class Recipe:
    """An ordered list of stages with their params."""

    name: str
    steps: tuple[RecipeStep, ...]
    description: str = ""

    # ----------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<recipe>") -> "Recipe":
        """Validate a parsed recipe table; errors name ``source`` and the key."""
        stages = load_stages()
        if not isinstance(data, Mapping):
            raise InvalidParams(f"{source}: expected a table at the top level")
        unknown = sorted(set(data) - {"name", "description", "stages"})
        if unknown:
            raise InvalidParams(
                f"{source}: unknown key {unknown[0]!r}; expected name, description, stages"
            )
        name = data.get("name", Path(source).stem)
        description = data.get("description", "")
        if not isinstance(name, str) or not isinstance(description, str):
            raise InvalidParams(f"{source}: 'name' and 'description' must be strings")
        raw_steps = data.get("stages")
        if not isinstance(raw_steps, list) or not raw_steps:
            raise InvalidParams(f"{source}: 'stages' must be a non-empty array of tables ([[stages]])")
        steps = []
        for i, raw in enumerate(raw_steps):
            where = f"{source}: stages[{i}]"
            if not isinstance(raw, Mapping):
                raise InvalidParams(f"{where}: expected a table")
            values = dict(raw)
            stage_name = values.pop("stage", None)
            if not isinstance(stage_name, str):
                raise InvalidParams(f"{where}.stage: expected a stage name, got {stage_name!r}")
            if stage_name not in stages:
                raise InvalidParams(
                    f"{where}.stage: unknown stage {stage_name!r}; expected one of {', '.join(sorted(stages))}"
                )
            params = stages[stage_name].params_cls.from_dict(values, source=f"{where} ({stage_name})")
            steps.append(RecipeStep(stage_name, params))
        return cls(name=name, steps=tuple(steps), description=description)

    @classmethod
    def from_toml(cls, path: str | Path) -> "Recipe":
        """Load a recipe file."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidParams(f"cannot read recipe: {exc.strerror or exc}", path=str(path)) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise InvalidParams(f"{path}: not valid TOML: {exc}") from None
        return cls.from_dict(data, source=str(path))

    @classmethod
    def builtin(cls, name: str = "default") -> "Recipe":
        """A recipe shipped with rawlab (see :func:`builtin_recipes`)."""
        path = RECIPE_DIR / f"{name}.toml"
        if not path.is_file():
            raise InvalidParams(
                f"unknown recipe {name!r}; built-in recipes: {', '.join(builtin_recipes())}"
            )
        return cls.from_toml(path)

    @classmethod
    def load(cls, name_or_path: str | Path) -> "Recipe":
        """A built-in recipe by name, or a recipe file by path."""
        text = str(name_or_path)
        if text.endswith(".toml") or "/" in text or Path(text).is_file():
            return cls.from_toml(text)
        return cls.builtin(text)

    # ------------------------------------------------------------------ editing
    def stage_names(self) -> tuple[str, ...]:
        """Names of the stages, in order."""
        return tuple(step.stage for step in self.steps)

    def with_params(self, stage: str, **changes: Any) -> "Recipe":
        """A copy with params of every step named ``stage`` changed (validated)."""
        if stage not in self.stage_names():
            raise InvalidParams(f"recipe {self.name!r} has no stage {stage!r}")
        steps = []
        for step in self.steps:
            if step.stage == stage:
                values = {**step.params.to_dict(), **changes}
                step = RecipeStep(stage, type(step.params).from_dict(values, source=f"{self.name}: {stage}"))
            steps.append(step)
        return replace(self, steps=tuple(steps))

    def without(self, *stages: str) -> "Recipe":
        """A copy without the named stages."""
        return replace(self, steps=tuple(s for s in self.steps if s.stage not in stages))

    def to_dict(self) -> dict[str, Any]:
        """The recipe as a plain mapping (the TOML layout)."""
        return {
            "name": self.name,
            "description": self.description,
            "stages": [{"stage": s.stage, **s.params.to_dict()} for s in self.steps],
        }


def builtin_recipes() -> list[str]:
    """Names of the built-in recipes."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.toml"))


def develop(frame: Frame, recipe: Recipe | str | Path | None = None, *, fuse: bool = True) -> Frame:
    """Run ``recipe`` (default: the built-in ``default``) on ``frame``.

    Parameters
    ----------
    frame
        A frame from :func:`rawlab.read` or :func:`rawlab.read_bayer`.
    recipe
        A :class:`Recipe`, a built-in recipe name or a recipe file.
    fuse
        Run each run of point-wise stages (colour matrices, exposure, tone
        curve, output transfer, the look's colour operations, vignette, grain)
        as one pass through a baked LUT (:func:`rawlab.look.fused.fuse_recipe`):
        faster, equal to the stage-by-stage result within interpolation error
        (mean CIEDE2000 <= 0.5 with a look, about 0.001 without).  ``False`` runs every stage as written.

    Returns
    -------
    Frame
        The developed frame; ``history`` lists every stage that ran.
    """
    if not isinstance(frame, Frame):
        raise RawlabError(f"develop() expects a Frame, got {type(frame).__name__}; read the file first")
    if recipe is None:
        recipe = Recipe.builtin("default")
    elif not isinstance(recipe, Recipe):
        recipe = Recipe.load(recipe)
    if fuse:
        from rawlab.look.fused import fuse_recipe

        recipe = fuse_recipe(recipe)
    for step in recipe.steps:
        frame = step.spec(frame, step.params)
    return frame
