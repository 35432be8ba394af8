"""rawlab: an open camera imaging system.

Public API (imported lazily so ``import rawlab`` stays cheap):

* :func:`rawlab.read` -- any RAW file into a :class:`~rawlab.core.frame.Frame`
* :func:`rawlab.read_bayer` -- a headerless sensor dump, described by the caller
* :func:`rawlab.develop` -- run a recipe on a frame
* :class:`rawlab.Recipe` -- an ordered list of stages with params, from TOML
* :func:`rawlab.write` -- encode a developed frame to JPEG / TIFF / PNG
* :func:`rawlab.write_dng` -- write a frame as a DNG
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "read": ("rawlab.io.read", "read"),
    "read_bayer": ("rawlab.io.bayer", "read_bayer"),
    "develop": ("rawlab.pipeline", "develop"),
    "Recipe": ("rawlab.pipeline", "Recipe"),
    "write": ("rawlab.io.encode", "write_image"),
    "write_dng": ("rawlab.io.dng_write", "write_dng"),
    "Frame": ("rawlab.core.frame", "Frame"),
    "Encoding": ("rawlab.core.frame", "Encoding"),
}

__all__ = sorted(_LAZY) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'rawlab' has no attribute {name!r}")
