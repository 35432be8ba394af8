"""Signature looks as data: tone curve, colour, vignette, grain, monochrome, 3D LUTs.

Importing this package registers the look stages (``look_*`` and
``mode_crop``).  Built-in looks live in ``rawlab/look/looks/*.toml``; see
:mod:`rawlab.look.apply` for how a look enters a develop recipe.

>>> from rawlab.pipeline import Recipe, develop
>>> from rawlab.look import apply_look
>>> recipe = apply_look(Recipe.builtin("default"), "authentic")  # doctest: +SKIP
"""

from rawlab.look import grain, hsl, lut, modes, mono, saturation, splittone, tonecurve, vignette, wbbias  # noqa: F401
from rawlab.look.apply import (
    LOOK_STAGE_GROUPS,
    Look,
    apply_look,
    apply_look_options,
    builtin_looks,
    export_look_cube,
    load_look,
    look_from_dict,
    look_to_lut,
)
from rawlab.look.lut import Lut3D, apply_lut_tetrahedral, read_cube, write_cube

__all__ = [
    "LOOK_STAGE_GROUPS",
    "Look",
    "Lut3D",
    "apply_look",
    "apply_look_options",
    "apply_lut_tetrahedral",
    "builtin_looks",
    "export_look_cube",
    "load_look",
    "look_from_dict",
    "look_to_lut",
    "read_cube",
    "write_cube",
]
