"""The ``rawlab`` command line.

Exit codes: 0 done, 2 bad input or usage, 1 internal error.  Every failure is
one line on stderr naming the file and the problem; a batch goes on past a bad
file and reports the failures at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Callable, Sequence

from rawlab.errors import RawlabError
from rawlab.look.cli import add_develop_look_arguments, add_looks_parser, apply_look_options, finish_frame, run_looks
from rawlab.burst.cli import add_burst_parser, run_burst
from rawlab.lab.cli import add_lab_parser, run_lab
from rawlab.sim.cli import add_simulate_parser, run_simulate

EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT = 0, 1, 2

FORMAT_SUFFIX = {"jpeg": ".jpg", "tiff": ".tif", "png": ".png", "heif": ".heic"}
SPACES = {"srgb": "srgb", "p3": "display_p3", "display_p3": "display_p3", "rec2020": "rec2020"}


class _Parser(argparse.ArgumentParser):
    """argparse with one-line usage errors (exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"rawlab: {message} (see 'rawlab {self.prog.split()[-1]} --help')\n")


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="rawlab", description="An open camera imaging system.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks of internal errors")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("info", help="show what a RAW file contains")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("develop", help="develop RAW files into photos")
    p.add_argument("files", nargs="+")
    p.add_argument("-o", "--output", default=".", help="output folder (default: current folder)")
    p.add_argument("--format", choices=sorted(FORMAT_SUFFIX), default="jpeg")
    p.add_argument("--quality", type=int, default=92, help="JPEG/HEIF quality 1..100 (default 92)")
    p.add_argument("--bits", type=int, choices=(8, 16), default=None, help="bit depth for PNG/TIFF")
    p.add_argument("--space", choices=sorted(SPACES), default="srgb", help="output colour space")
    p.add_argument("--recipe", default="default", help="built-in recipe name or a recipe .toml file")
    add_develop_look_arguments(p)

    p = sub.add_parser("sample", help="make the built-in sample RAW (a DNG)")
    p.add_argument("-o", "--output", required=True, help="DNG file to write")
    p.add_argument("--image", default="astronaut", help="scikit-image photo to unprocess")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", default=None, help="WIDTHxHEIGHT to resize the photo to first")
    p.add_argument("--oversample", type=int, default=None,
                   help="sensor pixels per photo pixel and side, 1..4 (default 2)")

    sub.add_parser("recipes", help="list the built-in recipes")
    add_looks_parser(sub)
    add_simulate_parser(sub)
    add_burst_parser(sub)
    add_lab_parser(sub)
    return parser


def _out_path(src: str, out_dir: Path, fmt: str) -> Path:
    return out_dir / (Path(src).stem + FORMAT_SUFFIX[fmt])


def _cmd_info(args: argparse.Namespace) -> int:
    from rawlab.info import describe, format_text
    from rawlab.io.read import read

    frame = read(args.file)
    info = describe(frame)
    if args.json:
        print(json.dumps({"file": args.file, **info}, indent=2))
    else:
        print(format_text(args.file, info))
    return EXIT_OK


def _cmd_develop(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from rawlab.io.encode import write_image
    from rawlab.io.read import read
    from rawlab.pipeline import Recipe, develop

    if not 1 <= args.quality <= 100:
        raise RawlabError(f"--quality must be in 1..100, got {args.quality}")
    recipe = Recipe.load(args.recipe)
    if "xyz_to_rgb" in recipe.stage_names():
        recipe = recipe.with_params("xyz_to_rgb", space=SPACES[args.space])
    recipe = apply_look_options(recipe, look=args.look, mode=args.mode)
    out_dir = Path(args.output)
    if out_dir.exists() and not out_dir.is_dir():
        raise RawlabError("output must be a folder", path=str(out_dir))

    failures: list[str] = []
    internal = False
    files = list(args.files)
    bar = tqdm(files, unit="file", disable=len(files) < 2 or not sys.stderr.isatty(), file=sys.stderr)
    for name in bar:
        try:
            target = _out_path(name, out_dir, args.format)
            if target.resolve() == Path(name).resolve():
                raise RawlabError("output would overwrite the input", path=name)
            developed = develop(read(name), recipe)
            for line in _unapplied_required_opcodes(name, developed):
                tqdm.write(f"rawlab: warning: {line}", file=sys.stderr)
            frame = finish_frame(developed, args)
            out_dir.mkdir(parents=True, exist_ok=True)  # only once there is something to write
            written = write_image(frame, target, format=args.format, quality=args.quality, bit_depth=args.bits)
            tqdm.write(str(written), file=sys.stdout)
        except RawlabError as exc:
            message = str(exc) if exc.path else f"{name}: {exc}"
            failures.append(message)
            tqdm.write(f"rawlab: {message}", file=sys.stderr)
        except MemoryError:
            failures.append(f"{name}: out of memory")
            tqdm.write(f"rawlab: {name}: out of memory", file=sys.stderr)
            internal = True
        except Exception as exc:  # noqa: BLE001 - the batch goes on; reported below
            if args.debug:
                raise
            failures.append(f"{name}: internal error: {type(exc).__name__}: {exc}")
            tqdm.write(f"rawlab: {name}: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
            internal = True
    if failures and len(files) > 1:
        print(f"rawlab: {len(failures)} of {len(files)} files failed:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
    if internal:
        return EXIT_INTERNAL
    return EXIT_BAD_INPUT if failures else EXIT_OK


def _unapplied_required_opcodes(name: str, frame) -> list[str]:
    """One line per DNG opcode that is not flagged optional and that the develop could not apply.

    The DNG specification (1.6, chapter 7) says a reader that cannot apply
    such an opcode should not present the image as correct: the photo is
    still written, with this warning.
    """
    return [
        f"{name}: OpcodeList{op.list_index} {op.name} is required but was not applied; the photo may be wrong"
        for op in frame.opcodes
        if not op.optional
    ]


def _cmd_sample(args: argparse.Namespace) -> int:
    from rawlab.sample import BUILTIN_OVERSAMPLE, make_sample

    size = None
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            raise RawlabError(f"--size must be WIDTHxHEIGHT, got {args.size!r}") from None
        size = (w, h)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    oversample = BUILTIN_OVERSAMPLE if args.oversample is None else args.oversample
    path = make_sample(args.output, image=args.image, seed=args.seed, size=size, oversample=oversample)
    print(path)
    return EXIT_OK


def _cmd_recipes(args: argparse.Namespace) -> int:
    from rawlab.pipeline import Recipe, builtin_recipes

    for name in builtin_recipes():
        print(f"{name:12s} {Recipe.builtin(name).description}")
    return EXIT_OK


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "info": _cmd_info,
    "develop": _cmd_develop,
    "sample": _cmd_sample,
    "recipes": _cmd_recipes,
    "looks": run_looks,
    "simulate": run_simulate,
    "burst": run_burst,
    "lab": run_lab,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rawlab`` command."""
    args = _build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except RawlabError as exc:
        print(f"rawlab: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("rawlab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (``rawlab info x | head``)
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        except OSError:
            pass
        return EXIT_OK
    except Exception as exc:  # noqa: BLE001 - one line unless --debug
        if args.debug or os.environ.get("RAWLAB_DEBUG"):
            raise
        print(f"rawlab: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
