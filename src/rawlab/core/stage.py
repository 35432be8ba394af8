"""The stage registry.

A stage is a pure function ``(Frame, Params) -> Frame``.  The :func:`stage`
decorator records what encoding it consumes and produces and which params class
it takes, checks the frame at the boundary, and appends a
:class:`~rawlab.core.frame.StageRecord` to the frame's history.

A frame that already is what a stage produces (for example a LinearRaw DNG,
which needs no demosaicing) passes through that stage unchanged, and the
history notes the skip.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

from rawlab.core.frame import Encoding, Frame, StageRecord
from rawlab.core.params import Params
from rawlab.errors import StageError

StageFunc = Callable[[Frame, Params], Frame]


@dataclass(frozen=True)
class StageSpec:
    """What the registry knows of a stage."""

    name: str
    func: StageFunc
    params_cls: type[Params]
    consumes: tuple[Encoding, ...]
    produces: Encoding | None
    doc: str
    pointwise: bool = False

    @property
    def version(self) -> int:
        """Version of the stage's params (a change of results bumps it)."""
        return self.params_cls.VERSION

    def __call__(self, frame: Frame, params: Params | None = None) -> Frame:
        return self.func(frame, params if params is not None else self.params_cls())


_REGISTRY: dict[str, StageSpec] = {}


def stage(
    name: str,
    *,
    params: type[Params],
    consumes: Encoding | tuple[Encoding, ...],
    produces: Encoding | None = None,
    pointwise: bool = False,
) -> Callable[[StageFunc], StageFunc]:
    """Register ``func`` as stage ``name``.

    Parameters
    ----------
    name
        Name used by recipes and the CLI.
    params
        The stage's :class:`~rawlab.core.params.Params` subclass.
    consumes
        Encoding(s) the stage accepts.
    produces
        Encoding of the result; ``None`` when it keeps the input's encoding.
    pointwise
        True when each output pixel depends only on the same input pixel's
        values, the params and the frame's metadata (not on its position or
        neighbours): :mod:`rawlab.look.fused` may then fold the stage into one
        pass with its point-wise neighbours.
    """
    accepted = consumes if isinstance(consumes, tuple) else (consumes,)

    def decorate(func: StageFunc) -> StageFunc:
        @functools.wraps(func)
        def run(frame: Frame, p: Params | None = None) -> Frame:
            p = params() if p is None else p
            if not isinstance(p, params):
                raise StageError(f"stage {name!r} expects {params.__name__}, got {type(p).__name__}")
            if frame.encoding not in accepted:
                if produces is not None and frame.encoding is produces:
                    return frame.with_record(StageRecord(name, params.VERSION, p.params_hash(), skipped=True))
                raise StageError(
                    f"stage {name!r} expects a frame encoded as "
                    f"{' or '.join(e.value for e in accepted)}, got {frame.encoding.value}"
                )
            out = func(frame, p)
            return out.with_record(StageRecord(name, params.VERSION, p.params_hash()))

        if name in _REGISTRY and _REGISTRY[name].func.__wrapped__ is not func:  # type: ignore[attr-defined]
            raise ValueError(f"stage {name!r} is registered twice")
        _REGISTRY[name] = StageSpec(name, run, params, accepted, produces, (func.__doc__ or "").strip(), pointwise)
        return run

    return decorate


def get_stage(name: str) -> StageSpec:
    """The registered stage called ``name`` (stage modules are imported by :mod:`rawlab.pipeline`)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(name) from None


def registered_stages() -> dict[str, StageSpec]:
    """A copy of the registry, name -> spec."""
    return dict(_REGISTRY)
