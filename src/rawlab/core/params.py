"""Frozen, typed, ranged and versioned stage parameters.

A stage's parameters are a frozen dataclass deriving from :class:`Params`.
Each field is declared with :func:`param`, which records its range, choices,
unit and a one-line description; the values are checked when the object is
built, so a wrong value fails at the stage boundary with a message that says
what was expected and what arrived.  ``VERSION`` changes whenever a default or
a meaning changes: results never change silently.

Example
-------
>>> from dataclasses import dataclass
>>> @dataclass(frozen=True)
... class SharpenParams(Params):
...     VERSION = 1
...     radius_px: float = param(1.0, min=0.3, max=10.0, unit="px", doc="blur radius")
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import typing
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping

from rawlab.errors import InvalidParams


def param(
    default: Any,
    *,
    min: float | None = None,  # noqa: A002 - reads naturally at the call site
    max: float | None = None,  # noqa: A002
    choices: tuple[Any, ...] | None = None,
    unit: str | None = None,
    doc: str = "",
) -> Any:
    """Declare a parameter field with its default, range and description."""
    metadata = {"min": min, "max": max, "choices": choices, "unit": unit, "doc": doc}
    if isinstance(default, (list, dict, set)):
        raise TypeError("mutable defaults are not allowed; use a tuple")
    return field(default=default, metadata=metadata)


def _check_value(cls_name: str, name: str, hint: Any, value: Any, meta: Mapping[str, Any]) -> Any:
    """Coerce and check one value; return it (possibly converted)."""
    where = f"{cls_name}.{name}"
    origin = typing.get_origin(hint)
    if hint is bool:
        if not isinstance(value, bool):
            raise InvalidParams(f"{where}: expected true or false, got {value!r}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidParams(f"{where}: expected an integer, got {value!r}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidParams(f"{where}: expected a number, got {value!r}")
        value = float(value)
        if value != value:
            raise InvalidParams(f"{where}: expected a number, got NaN")
    elif hint is str:
        if not isinstance(value, str):
            raise InvalidParams(f"{where}: expected a string, got {value!r}")
    elif origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InvalidParams(f"{where}: expected a list of numbers, got {value!r}")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            inner = [args[0]] * len(value)
        else:
            if len(value) != len(args):
                raise InvalidParams(f"{where}: expected {len(args)} values, got {len(value)}")
            inner = list(args)
        value = tuple(
            _check_value(cls_name, f"{name}[{i}]", h, v, {}) for i, (h, v) in enumerate(zip(inner, value))
        )
        for v in value:
            _check_range(where, v, meta)
        return value
    elif typing.get_origin(hint) is typing.Union or type(hint).__name__ == "UnionType":
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_value(cls_name, name, arg, value, meta)
            except InvalidParams as exc:
                errors.append(str(exc))
        raise InvalidParams(errors[0] if errors else f"{where}: unexpected value {value!r}")
    choices = meta.get("choices")
    if choices is not None and value not in choices:
        raise InvalidParams(f"{where}: expected one of {', '.join(map(str, choices))}, got {value!r}")
    _check_range(where, value, meta)
    return value


def _check_range(where: str, value: Any, meta: Mapping[str, Any]) -> None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        lo, hi = meta.get("min"), meta.get("max")
        unit = f" {meta['unit']}" if meta.get("unit") else ""
        if lo is not None and value < lo or hi is not None and value > hi:
            raise InvalidParams(f"{where}: expected a value in [{lo}, {hi}]{unit}, got {value!r}")


@dataclass(frozen=True)
class Params:
    """Base class of all stage parameters (see the module docstring)."""

    VERSION: ClassVar[int] = 1

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = _check_value(type(self).__name__, f.name, hints[f.name], getattr(self, f.name), f.metadata)
            object.__setattr__(self, f.name, value)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], *, source: str | None = None) -> "Params":
        """Build params from a mapping (a recipe's table), naming ``source`` in errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        prefix = f"{source}: " if source else ""
        if unknown:
            raise InvalidParams(
                f"{prefix}unknown parameter {unknown[0]!r} for {cls.__name__}; expected one of "
                f"{', '.join(sorted(known)) or '(none)'}"
            )
        try:
            return cls(**dict(values))
        except InvalidParams as exc:
            raise InvalidParams(f"{prefix}{exc.message}") from None

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping of the values (tuples become lists, as in TOML)."""
        return {
            f.name: list(v) if isinstance(v := getattr(self, f.name), tuple) else v
            for f in dataclasses.fields(self)
        }

    def params_hash(self) -> str:
        """A short stable hash of the class, its version and its values."""
        payload = json.dumps(
            {"class": type(self).__name__, "version": self.VERSION, "values": self.to_dict()},
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:12]

    @classmethod
    def describe(cls) -> list[dict[str, Any]]:
        """Field descriptions (name, type, default, range, choices, unit, doc) for forms and docs."""
        hints = typing.get_type_hints(cls)
        out = []
        for f in dataclasses.fields(cls):
            out.append({"name": f.name, "type": str(hints[f.name]), "default": f.default, **f.metadata})
        return out
