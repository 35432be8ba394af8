"""Pipelines under test: small adapters that turn one DNG into the image a user would see.

Every adapter renders the same DNG with the tool's defaults (camera white
balance, the tool's default look) to an sRGB-encoded image and returns it as
16-bit where the tool can write 16 bits, plus the 8-bit image the user would
get (the 16-bit rendering rounded to 8 bits: ``round(v / 257)``, the same
rendering, so one run serves both).  The lab decodes that output with the
sRGB transfer (IEC 61966-2-1), as a viewer would.

On request (``render(..., linear=True)``) an adapter also gives a **linear
rendering**: the same tool, defaults and look, written as 16-bit linear
values in the sRGB (Rec. 709) primaries and without automatic brightening.
The lab measures colour on it (:mod:`rawlab.lab.run`), so that a tool's
output transfer (LibRaw and dcraw write a BT.709 curve, not sRGB) and its
histogram-driven brightening do not read as colour error.  How each tool
makes it:

=============  ====================================================================
name           linear rendering
=============  ====================================================================
``rawlab``     the same recipe with ``output_transfer = "linear"``
``rawpy``      ``postprocess(..., gamma=(1, 1), no_auto_bright=True)``
``dcraw``      ``dcraw -c -w -4 -T`` (``-4``: linear 16-bit, no auto-brightening)
``darktable``  ``--icc-type LIN_REC709`` (the default history, linear Rec. 709 output)
``rawtherapee`` a ``.pp3`` that sets the output profile to a linear sRGB ICC profile
               written by :func:`rawlab.color.icc.icc_profile`
=============  ====================================================================

darktable-cli and rawtherapee-cli start slowly (a second or two each), so
:meth:`render_many` renders a list of DNGs in one invocation of the tool.

=============  ====================================================================
name           what runs
=============  ====================================================================
``rawlab``     :func:`rawlab.pipeline.develop` with a recipe and optional look;
               ``rawlab:RECIPE`` and ``rawlab:RECIPE+LOOK`` (e.g. ``rawlab:default+vivid``)
``rawpy``      LibRaw through rawpy, ``postprocess(use_camera_wb=True, output_bps=16)``
               (AHD demosaic, LibRaw's default BT.709 gamma and auto-brightness)
``dcraw``      Debian ``dcraw -c -w -T -6`` (camera white balance, 16-bit TIFF to stdout)
``darktable``  ``darktable-cli IN OUT.tif --core --configdir TMP --library :memory:``
               (16-bit TIFF, default history for raw files)
``rawtherapee`` ``rawtherapee-cli -q -Y -d -t -b16 -o OUT.tif -c IN`` (the default raw
               profile, HOME pointed at a private folder)
=============  ====================================================================

A missing tool raises :class:`PipelineUnavailable` (one line); the lab run
records it and goes on with the other pipelines.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams, RawlabError

#: Names accepted by :func:`make_adapter` (``rawlab`` also takes ``rawlab:RECIPE[+LOOK]``).
PIPELINES = ("rawlab", "rawpy", "dcraw", "darktable", "rawtherapee")
#: Seconds an external tool may take for one small chart image before it counts as hung.
TOOL_TIMEOUT_S = 120.0
#: Extra seconds allowed per further image when a tool renders several in one invocation.
TOOL_TIMEOUT_PER_IMAGE_S = 20.0


class PipelineUnavailable(RawlabError):
    """A pipeline's tool is not installed or cannot run here."""


class PipelineFailed(RawlabError):
    """A pipeline ran but did not produce an image."""


@dataclass(frozen=True, eq=False)
class RenderedImage:
    """One pipeline's rendering of one DNG.

    Attributes
    ----------
    srgb16
        (H, W, 3) uint16, sRGB-encoded (what the tool writes at 16 bits; for
        8-bit-only tools the 8-bit values times 257).
    srgb8
        (H, W, 3) uint8, the image the user would see.
    bits
        16 when the tool wrote 16 bits, else 8.
    seconds
        Wall time of the rendering (including the tool's start-up; a share of it
        when several images were rendered in one invocation).
    linear16
        (H, W, 3) uint16 linear rendering (sRGB primaries, no auto-brightening; see
        the module docstring), or None when it was not asked for.
    """

    srgb16: NDArray[np.uint16]
    srgb8: NDArray[np.uint8]
    bits: int
    seconds: float
    linear16: NDArray[np.uint16] | None = None

    def encoded_float(self) -> NDArray[np.float32]:
        """(H, W, 3) float32 sRGB-encoded values in 0..1 from the deepest output."""
        if self.bits == 16:
            return self.srgb16.astype(np.float32) * np.float32(1.0 / 65535.0)
        return self.srgb8.astype(np.float32) * np.float32(1.0 / 255.0)

    def linear_float(self) -> NDArray[np.float32] | None:
        """(H, W, 3) float32 linear rendering in 0..1, or None when there is none."""
        if self.linear16 is None:
            return None
        return self.linear16.astype(np.float32) * np.float32(1.0 / 65535.0)


def _to_8bit(srgb16: NDArray[np.uint16]) -> NDArray[np.uint8]:
    return ((srgb16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _rgb16(image: NDArray, where: str) -> tuple[NDArray[np.uint16], int]:
    """A tool's RGB output as (H, W, 3) uint16 and its bit depth (8-bit values times 257)."""
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise PipelineFailed(f"expected an RGB image, got shape {a.shape}", path=where)
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a.astype(np.uint16) * 257), 8
    if a.dtype == np.uint16:
        return np.ascontiguousarray(a), 16
    if a.dtype.kind == "f":
        return np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 65535.0).astype(np.uint16), 16
    raise PipelineFailed(f"unexpected output sample type {a.dtype}", path=where)


def _rendered(image: NDArray, seconds: float, where: str, linear: NDArray | None = None) -> RenderedImage:
    a16, bits = _rgb16(image, where)
    a8 = _to_8bit(a16) if bits == 16 else np.ascontiguousarray(np.asarray(image)[..., :3])
    lin16 = None
    if linear is not None:
        lin16, _ = _rgb16(linear, where)
        if lin16.shape != a16.shape:
            raise PipelineFailed(f"linear rendering {lin16.shape} differs in size from the sRGB one {a16.shape}",
                                 path=where)
    return RenderedImage(a16, a8, bits, seconds, lin16)


class Adapter(Protocol):
    """What the lab needs from a pipeline under test."""

    name: str

    def check(self) -> None:
        """Raise :class:`PipelineUnavailable` when the pipeline cannot run here."""

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        """Render ``dng_path`` to the user's sRGB image (and the linear rendering when asked)."""


def render_many(adapter: Adapter, dng_paths: Sequence[Path], *,
                linear: Sequence[bool] | None = None) -> list[RenderedImage | RawlabError]:
    """Render several DNGs with one adapter; one entry per path, a :class:`RawlabError` where it failed.

    Adapters with a ``render_many`` method (the slow-starting command-line tools) render the
    whole list in one invocation; others render one file at a time.
    """
    flags = [False] * len(dng_paths) if linear is None else [bool(v) for v in linear]
    if len(flags) != len(dng_paths):
        raise InvalidParams("render_many: one 'linear' flag per path")
    own = getattr(adapter, "render_many", None)
    if own is not None:
        return own(list(dng_paths), linear=flags)
    out: list[RenderedImage | RawlabError] = []
    for path, lin in zip(dng_paths, flags):
        try:
            out.append(adapter.render(Path(path), linear=lin))
        except PipelineUnavailable:
            raise
        except RawlabError as exc:
            out.append(exc)
    return out


@dataclass
class RawlabAdapter:
    """rawlab's own develop with a recipe (built-in name or file) and an optional look."""

    recipe: str = "default"
    look: str | None = None
    name: str = "rawlab"

    def check(self) -> None:
        self._recipe()  # raises InvalidParams / RawlabError for an unknown recipe or look

    def _recipe(self):
        from rawlab.look.apply import apply_look_options
        from rawlab.pipeline import Recipe

        recipe = Recipe.load(self.recipe)
        return apply_look_options(recipe, look=self.look) if self.look else recipe

    def _develop(self, frame, recipe, where: str):
        from rawlab.core.frame import Encoding, Primaries
        from rawlab.pipeline import develop

        out = develop(frame, recipe)
        if out.encoding is not Encoding.RGB or out.primaries is not Primaries.SRGB:
            raise PipelineFailed(
                f"recipe {self.recipe!r} does not end in sRGB (got {out.encoding.value}, {out.primaries})",
                path=where,
            )
        return out.data, out.transfer

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        from rawlab.core.frame import Transfer
        from rawlab.io.encode import quantize_unorm
        from rawlab.io.read import read

        t0 = time.perf_counter()
        where = str(dng_path)
        frame = read(dng_path)
        recipe = self._recipe()
        data, transfer = self._develop(frame, recipe, where)
        lin = None
        if transfer is Transfer.LINEAR:  # a linear recipe: encode as a viewer expects (IEC 61966-2-1)
            lin = data
            v = np.clip(data, 0.0, 1.0)
            data = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)
        elif linear:
            if "output_transfer" not in recipe.stage_names():
                raise PipelineFailed(f"recipe {self.recipe!r} has no output_transfer stage to make linear",
                                     path=where)
            lin, _ = self._develop(frame, recipe.with_params("output_transfer", transfer="linear"), where)
        srgb16 = np.asarray(quantize_unorm(data, bits=16))
        lin16 = np.asarray(quantize_unorm(lin, bits=16)) if (linear and lin is not None) else None
        return _rendered(srgb16, time.perf_counter() - t0, where, lin16)


@dataclass
class RawpyAdapter:
    """LibRaw (rawpy) with its defaults: AHD, camera white balance, 16-bit output."""

    name: str = "rawpy"

    def check(self) -> None:
        try:
            import rawpy  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a project dependency
            raise PipelineUnavailable(f"rawpy is not installed ({exc})") from None

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        import rawpy

        t0 = time.perf_counter()
        lin = None
        try:
            with rawpy.imread(str(dng_path)) as raw:
                rgb = raw.postprocess(use_camera_wb=True, output_bps=16)
                if linear:
                    lin = raw.postprocess(use_camera_wb=True, output_bps=16, gamma=(1, 1), no_auto_bright=True)
        except (rawpy.LibRawError, OSError) as exc:
            raise PipelineFailed(f"LibRaw cannot render it: {exc}", path=str(dng_path)) from None
        return _rendered(rgb, time.perf_counter() - t0, str(dng_path), lin)


def _run_tool(cmd: list[str], *, where: str, env: dict[str, str] | None = None,
              capture_stdout: bool = False, timeout_s: float = TOOL_TIMEOUT_S,
              allow_failure: bool = False) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout_s, env=env, check=False)
    except FileNotFoundError:
        raise PipelineUnavailable(f"{cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise PipelineFailed(f"{Path(cmd[0]).name} took more than {timeout_s:g} s", path=where) from None
    if proc.returncode != 0 and not allow_failure:
        msg = " ".join(proc.stderr.decode("utf-8", "replace").split())[-200:]
        raise PipelineFailed(f"{Path(cmd[0]).name} failed (exit {proc.returncode}): {msg}", path=where)
    return proc.stdout if capture_stdout else b""


def _require(tool: str, package: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise PipelineUnavailable(f"{tool} is not installed (Debian package {package})")
    return path


def _read_tiff(data_or_path: bytes | Path, where: str) -> NDArray:
    import io

    import tifffile

    try:
        src = io.BytesIO(data_or_path) if isinstance(data_or_path, bytes) else str(data_or_path)
        return tifffile.imread(src)
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the tool's failure
        raise PipelineFailed(f"cannot read the tool's TIFF output: {exc}", path=where) from None


@dataclass
class DcrawAdapter:
    """Dave Coffin's dcraw: ``-w`` camera white balance, AHD (its default), 16-bit TIFF."""

    name: str = "dcraw"

    def check(self) -> None:
        _require("dcraw", "dcraw")

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        exe = _require("dcraw", "dcraw")
        where = str(dng_path)
        t0 = time.perf_counter()
        out = _run_tool([exe, "-c", "-w", "-T", "-6", where], where=where, capture_stdout=True)
        lin = None
        if linear:
            lin = _read_tiff(_run_tool([exe, "-c", "-w", "-4", "-T", where], where=where, capture_stdout=True), where)
        return _rendered(_read_tiff(out, where), time.perf_counter() - t0, where, lin)


def _batch_outputs(paths: Sequence[Path], folder: Path, *, seconds: float,
                   linear_folder: Path | None, linear: Sequence[bool],
                   failure: RawlabError | None) -> list[RenderedImage | RawlabError]:
    """Collect ``folder/<stem>.tif`` (and the linear one) for each path of a batch run."""
    out: list[RenderedImage | RawlabError] = []
    share = seconds / max(len(paths), 1)
    for path, lin in zip(paths, linear):
        where = str(path)
        tif = folder / f"{Path(path).stem}.tif"
        try:
            if not tif.is_file():
                raise failure if failure is not None else PipelineFailed("the tool wrote no image", path=where)
            image = _read_tiff(tif, where)
            lin_image = None
            if lin:
                ltif = linear_folder / f"{Path(path).stem}.tif"  # type: ignore[operator]
                if not ltif.is_file():
                    raise PipelineFailed("the tool wrote no linear image", path=where)
                lin_image = _read_tiff(ltif, where)
            out.append(_rendered(image, share, where, lin_image))
        except PipelineFailed as exc:
            out.append(exc)
    return out


def _check_stems(paths: Sequence[Path]) -> None:
    stems = [Path(p).stem for p in paths]
    if len(set(stems)) != len(stems):
        raise InvalidParams("render_many: the DNG file names (without folder) must be distinct")


def _render_one(adapter, dng_path: Path, linear: bool) -> RenderedImage:
    """One file through a batch adapter's ``render_many`` (its error raised)."""
    result = adapter.render_many([Path(dng_path)], linear=[linear])[0]
    if isinstance(result, RawlabError):
        raise result
    return result


@dataclass
class DarktableAdapter:
    """darktable-cli with its default raw history, 16-bit TIFF, private config folder."""

    name: str = "darktable"

    def check(self) -> None:
        _require("darktable-cli", "darktable")

    def _export(self, exe: str, inputs: Sequence[Path], dest: str, tmp: Path, *, linear: bool,
                where: str) -> RawlabError | None:
        cmd = [exe]
        for p in inputs:
            cmd += ["--import", str(p)]
        cmd += [dest, "--out-ext", "tif"]
        if linear:
            cmd += ["--icc-type", "LIN_REC709"]
        cmd += ["--core", "--configdir", str(tmp / "config"), "--library", ":memory:",
                "--conf", "plugins/imageio/format/tiff/bpp=16", "--conf", "plugins/imageio/format/tiff/compress=0"]
        timeout = TOOL_TIMEOUT_S + TOOL_TIMEOUT_PER_IMAGE_S * (len(inputs) - 1)
        try:
            _run_tool(cmd, where=where, timeout_s=timeout)
        except PipelineFailed as exc:  # keep what was written; the files without output carry the error
            return exc
        return None

    def render_many(self, dng_paths: Sequence[Path], *, linear: Sequence[bool]) -> list[RenderedImage | RawlabError]:
        exe = _require("darktable-cli", "darktable")
        _check_stems(dng_paths)
        if not dng_paths:
            return []
        where = str(dng_paths[0]) if len(dng_paths) == 1 else str(Path(dng_paths[0]).parent)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rawlab-dt-") as tmp_s:
            tmp = Path(tmp_s)
            (tmp / "srgb").mkdir()
            (tmp / "linear").mkdir()
            failure = self._export(exe, dng_paths, str(tmp / "srgb" / "$(FILE_NAME)"), tmp, linear=False, where=where)
            lin_inputs = [p for p, f in zip(dng_paths, linear) if f]
            if lin_inputs:
                failure = self._export(exe, lin_inputs, str(tmp / "linear" / "$(FILE_NAME)"), tmp, linear=True,
                                       where=where) or failure
            return _batch_outputs(dng_paths, tmp / "srgb", seconds=time.perf_counter() - t0,
                                  linear_folder=tmp / "linear", linear=linear, failure=failure)

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        return _render_one(self, dng_path, linear)


@dataclass
class RawTherapeeAdapter:
    """rawtherapee-cli with the default raw profile (``-d``), 16-bit TIFF, HOME in a private folder."""

    name: str = "rawtherapee"

    def check(self) -> None:
        _require("rawtherapee-cli", "rawtherapee")

    def render_many(self, dng_paths: Sequence[Path], *, linear: Sequence[bool]) -> list[RenderedImage | RawlabError]:
        from rawlab.color.icc import icc_profile
        from rawlab.core.frame import Primaries, Transfer

        exe = _require("rawtherapee-cli", "rawtherapee")
        _check_stems(dng_paths)
        if not dng_paths:
            return []
        where = str(dng_paths[0]) if len(dng_paths) == 1 else str(Path(dng_paths[0]).parent)
        t0 = time.perf_counter()
        timeout = TOOL_TIMEOUT_S + TOOL_TIMEOUT_PER_IMAGE_S * (len(dng_paths) - 1)
        with tempfile.TemporaryDirectory(prefix="rawlab-rt-") as tmp_s:
            tmp = Path(tmp_s)
            env = {**os.environ, "HOME": tmp_s, "XDG_CONFIG_HOME": str(tmp / "config"),
                   "XDG_CACHE_HOME": str(tmp / "cache")}
            (tmp / "srgb").mkdir()
            (tmp / "linear").mkdir()
            failure: RawlabError | None = None
            try:
                _run_tool([exe, "-q", "-Y", "-d", "-t", "-b16", "-o", str(tmp / "srgb"), "-c",
                           *[str(p) for p in dng_paths]], where=where, env=env, timeout_s=timeout)
            except PipelineFailed as exc:
                failure = exc
            lin_inputs = [p for p, f in zip(dng_paths, linear) if f]
            if lin_inputs:
                icc = tmp / "rawlab-linear-srgb.icc"
                icc.write_bytes(icc_profile(Primaries.SRGB, transfer=Transfer.LINEAR))
                pp3 = tmp / "linear.pp3"
                pp3.write_text(f"[Color Management]\nOutputProfile=file:{icc}\n", encoding="utf-8")
                try:
                    _run_tool([exe, "-q", "-Y", "-d", "-p", str(pp3), "-t", "-b16", "-o", str(tmp / "linear"), "-c",
                               *[str(p) for p in lin_inputs]], where=where, env=env, timeout_s=timeout)
                except PipelineFailed as exc:
                    failure = failure or exc
            return _batch_outputs(dng_paths, tmp / "srgb", seconds=time.perf_counter() - t0,
                                  linear_folder=tmp / "linear", linear=linear, failure=failure)

    def render(self, dng_path: Path, *, linear: bool = False) -> RenderedImage:
        return _render_one(self, dng_path, linear)


def make_adapter(name: str) -> Adapter:
    """The adapter for a pipeline name (see :data:`PIPELINES`; ``rawlab:RECIPE[+LOOK]``).

    Raises
    ------
    InvalidParams
        Unknown pipeline name.
    """
    key = name.strip()
    if key == "rawlab" or key.startswith("rawlab:"):
        spec = key[len("rawlab:"):] if ":" in key else "default"
        recipe, _, look = spec.partition("+")
        return RawlabAdapter(recipe=recipe or "default", look=look or None, name=key)
    table = {"rawpy": RawpyAdapter, "libraw": RawpyAdapter, "dcraw": DcrawAdapter,
             "darktable": DarktableAdapter, "rawtherapee": RawTherapeeAdapter}
    if key not in table:
        raise InvalidParams(f"unknown pipeline {name!r}; expected one of {', '.join(PIPELINES)} "
                            "(or rawlab:RECIPE[+LOOK])")
    adapter = table[key]()
    adapter.name = key
    return adapter
