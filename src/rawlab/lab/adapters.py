"""Pipelines under test: small adapters that turn one DNG into the image a user would see.

Every adapter renders the same DNG with the tool's defaults (camera white
balance, the tool's default look) to an sRGB-encoded image and returns it as
16-bit where the tool can write 16 bits, plus the 8-bit image the user would
get (the 16-bit rendering rounded to 8 bits: ``round(v / 257)``, the same
rendering, so one run serves both).  The lab decodes every output with the
sRGB transfer (IEC 61966-2-1), as a viewer would.

=============  ====================================================================
name           what runs
=============  ====================================================================
``rawlab``     :func:`rawlab.pipeline.develop` with a recipe and optional look;
               ``rawlab:RECIPE`` and ``rawlab:RECIPE+LOOK`` (e.g. ``rawlab:default+vivid``)
``rawpy``      LibRaw through rawpy, ``postprocess(use_camera_wb=True, output_bps=16)``
               (AHD demosaic, LibRaw's default BT.709 gamma and auto-brightness)
``dcraw``      Debian ``dcraw -c -w -T -6`` (camera white balance, 16-bit TIFF to stdout)
``darktable``  ``darktable-cli IN OUT.tif --core --configdir TMP`` (16-bit TIFF, default
               history for raw files)
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
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from rawlab.errors import InvalidParams, RawlabError

#: Names accepted by :func:`make_adapter` (``rawlab`` also takes ``rawlab:RECIPE[+LOOK]``).
PIPELINES = ("rawlab", "rawpy", "dcraw", "darktable", "rawtherapee")
#: Seconds an external tool may take for one small chart image before it counts as hung.
TOOL_TIMEOUT_S = 120.0


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
        Wall time of the rendering (including the tool's start-up).
    """

    srgb16: NDArray[np.uint16]
    srgb8: NDArray[np.uint8]
    bits: int
    seconds: float

    def encoded_float(self) -> NDArray[np.float32]:
        """(H, W, 3) float32 sRGB-encoded values in 0..1 from the deepest output."""
        if self.bits == 16:
            return self.srgb16.astype(np.float32) * np.float32(1.0 / 65535.0)
        return self.srgb8.astype(np.float32) * np.float32(1.0 / 255.0)


def _to_8bit(srgb16: NDArray[np.uint16]) -> NDArray[np.uint8]:
    return ((srgb16.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _rendered(image: NDArray, seconds: float, where: str) -> RenderedImage:
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 4:
        a = a[..., :3]
    if a.ndim != 3 or a.shape[2] != 3:
        raise PipelineFailed(f"expected an RGB image, got shape {a.shape}", path=where)
    if a.dtype == np.uint8:
        return RenderedImage(np.ascontiguousarray(a.astype(np.uint16) * 257), np.ascontiguousarray(a), 8, seconds)
    if a.dtype == np.uint16:
        a = np.ascontiguousarray(a)
        return RenderedImage(a, _to_8bit(a), 16, seconds)
    if a.dtype.kind == "f":
        a16 = np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 65535.0).astype(np.uint16)
        return RenderedImage(a16, _to_8bit(a16), 16, seconds)
    raise PipelineFailed(f"unexpected output sample type {a.dtype}", path=where)


class Adapter(Protocol):
    """What the lab needs from a pipeline under test."""

    name: str

    def check(self) -> None:
        """Raise :class:`PipelineUnavailable` when the pipeline cannot run here."""

    def render(self, dng_path: Path) -> RenderedImage:
        """Render ``dng_path`` to the user's sRGB image."""


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

    def render(self, dng_path: Path) -> RenderedImage:
        from rawlab.core.frame import Encoding, Primaries, Transfer
        from rawlab.io.encode import quantize_unorm
        from rawlab.io.read import read
        from rawlab.pipeline import develop

        t0 = time.perf_counter()
        frame = develop(read(dng_path), self._recipe())
        if frame.encoding is not Encoding.RGB or frame.primaries is not Primaries.SRGB:
            raise PipelineFailed(
                f"recipe {self.recipe!r} does not end in sRGB (got {frame.encoding.value}, {frame.primaries})",
                path=str(dng_path),
            )
        data = frame.data
        if frame.transfer is Transfer.LINEAR:  # a linear recipe: encode as a viewer expects (IEC 61966-2-1)
            v = np.clip(data, 0.0, 1.0)
            data = np.where(v <= 0.0031308, 12.92 * v, 1.055 * np.power(v, 1 / 2.4) - 0.055).astype(np.float32)
        srgb16 = np.asarray(quantize_unorm(data, bits=16))
        return _rendered(srgb16, time.perf_counter() - t0, str(dng_path))


@dataclass
class RawpyAdapter:
    """LibRaw (rawpy) with its defaults: AHD, camera white balance, 16-bit output."""

    name: str = "rawpy"

    def check(self) -> None:
        try:
            import rawpy  # noqa: F401
        except ImportError as exc:  # pragma: no cover - a project dependency
            raise PipelineUnavailable(f"rawpy is not installed ({exc})") from None

    def render(self, dng_path: Path) -> RenderedImage:
        import rawpy

        t0 = time.perf_counter()
        try:
            with rawpy.imread(str(dng_path)) as raw:
                rgb = raw.postprocess(use_camera_wb=True, output_bps=16)
        except (rawpy.LibRawError, OSError) as exc:
            raise PipelineFailed(f"LibRaw cannot render it: {exc}", path=str(dng_path)) from None
        return _rendered(rgb, time.perf_counter() - t0, str(dng_path))


def _run_tool(cmd: list[str], *, where: str, env: dict[str, str] | None = None,
              capture_stdout: bool = False) -> bytes:
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=TOOL_TIMEOUT_S, env=env, check=False)
    except FileNotFoundError:
        raise PipelineUnavailable(f"{cmd[0]} is not installed") from None
    except subprocess.TimeoutExpired:
        raise PipelineFailed(f"{Path(cmd[0]).name} took more than {TOOL_TIMEOUT_S:g} s", path=where) from None
    if proc.returncode != 0:
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

    def render(self, dng_path: Path) -> RenderedImage:
        exe = _require("dcraw", "dcraw")
        t0 = time.perf_counter()
        out = _run_tool([exe, "-c", "-w", "-T", "-6", str(dng_path)], where=str(dng_path), capture_stdout=True)
        return _rendered(_read_tiff(out, str(dng_path)), time.perf_counter() - t0, str(dng_path))


@dataclass
class DarktableAdapter:
    """darktable-cli with its default raw history, 16-bit TIFF, private config folder."""

    name: str = "darktable"

    def check(self) -> None:
        _require("darktable-cli", "darktable")

    def render(self, dng_path: Path) -> RenderedImage:
        exe = _require("darktable-cli", "darktable")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rawlab-dt-") as tmp:
            out = Path(tmp) / "out.tif"
            _run_tool(
                [exe, str(dng_path), str(out), "--core", "--configdir", str(Path(tmp) / "config"),
                 "--conf", "plugins/imageio/format/tiff/bpp=16", "--conf", "plugins/imageio/format/tiff/compress=0"],
                where=str(dng_path),
            )
            if not out.is_file():
                raise PipelineFailed("darktable-cli wrote no image", path=str(dng_path))
            image = _read_tiff(out, str(dng_path))
        return _rendered(image, time.perf_counter() - t0, str(dng_path))


@dataclass
class RawTherapeeAdapter:
    """rawtherapee-cli with the default raw profile (``-d``), 16-bit TIFF, HOME in a private folder."""

    name: str = "rawtherapee"

    def check(self) -> None:
        _require("rawtherapee-cli", "rawtherapee")

    def render(self, dng_path: Path) -> RenderedImage:
        exe = _require("rawtherapee-cli", "rawtherapee")
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="rawlab-rt-") as tmp:
            out = Path(tmp) / "out.tif"
            env = {**os.environ, "HOME": tmp, "XDG_CONFIG_HOME": str(Path(tmp) / "config"),
                   "XDG_CACHE_HOME": str(Path(tmp) / "cache")}
            _run_tool([exe, "-q", "-Y", "-d", "-t", "-b16", "-o", str(out), "-c", str(dng_path)],
                      where=str(dng_path), env=env)
            if not out.is_file():
                raise PipelineFailed("rawtherapee-cli wrote no image", path=str(dng_path))
            image = _read_tiff(out, str(dng_path))
        return _rendered(image, time.perf_counter() - t0, str(dng_path))


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
