"""Recipes: loading, validation errors that name the file and key, editing."""

from __future__ import annotations

import pytest

from rawlab.errors import InvalidParams
from rawlab.pipeline import Recipe, builtin_recipes

DEFAULT_ORDER = (
    "dng_opcodes_raw",
    "normalize",
    "dng_opcodes_linear",
    "white_balance",
    "highlights",
    "demosaic",
    "dng_opcodes_rgb",
    "camera_to_xyz",
    "xyz_to_rgb",
    "exposure",
    "filmic",
    "output_transfer",
    "crop",
    "orientation",
)


def test_default_recipe_has_the_documented_order():
    recipe = Recipe.builtin("default")
    assert recipe.stage_names() == DEFAULT_ORDER
    assert {"default", "linear"} <= set(builtin_recipes())
    assert Recipe.load("default").stage_names() == DEFAULT_ORDER


def test_with_params_validates_and_keeps_other_values():
    recipe = Recipe.builtin("default").with_params("demosaic", method="bilinear")
    step = dict(zip(recipe.stage_names(), recipe.steps))["demosaic"]
    assert step.params.method == "bilinear"
    with pytest.raises(InvalidParams, match="demosaic"):
        recipe.with_params("demosaic", method="magic")
    with pytest.raises(InvalidParams, match="no stage 'sharpen'"):
        recipe.with_params("sharpen", amount=1.0)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("name = 'x'\n[[stages]]\nstage = 'warp_drive'\n", r"stages\[0\]\.stage: unknown stage 'warp_drive'"),
        ("[[stages]]\nstage = 'demosaic'\nmethod = 'magic'\n", r"stages\[0\] \(demosaic\): .*method: expected one of"),
        ("[[stages]]\nstage = 'exposure'\nexposure_ev = 'bright'\n", r"exposure_ev: expected a number"),
        ("[[stages]]\nstage = 'normalize'\n[[stages]]\nstage = 'demosaic'\nspeed = 3\n", r"stages\[1\] \(demosaic\): unknown parameter 'speed'"),
        ("name = 'x'\n", r"'stages' must be a non-empty array"),
        ("colour = 1\n[[stages]]\nstage = 'crop'\n", r"unknown key 'colour'"),
        ("[[stages]\nstage = 'crop'\n", r"not valid TOML"),
    ],
)
def test_bad_recipe_files_name_the_file_and_the_key(tmp_path, text, expected):
    path = tmp_path / "mine.toml"
    path.write_text(text)
    with pytest.raises(InvalidParams, match=expected) as info:
        Recipe.from_toml(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message


def test_missing_recipe_file_and_unknown_builtin():
    with pytest.raises(InvalidParams, match="cannot read recipe"):
        Recipe.from_toml("/nonexistent/recipe.toml")
    with pytest.raises(InvalidParams, match="built-in recipes: default"):
        Recipe.builtin("fancy")


def test_recipe_round_trips_through_its_dict():
    recipe = Recipe.builtin("default")
    again = Recipe.from_dict(recipe.to_dict(), source="copy")
    assert [s.params.params_hash() for s in again.steps] == [s.params.params_hash() for s in recipe.steps]
