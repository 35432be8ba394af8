"""Make docs/looks_contact_sheet.jpg (one scene in every look) and print each look's measured character.

The scene is the built-in sample (``rawlab.sample.make_sample``, a scikit-image
photo unprocessed into a DNG); the measurements use the simulator's
ColorChecker under D65 (``rawlab.sim``, a lens without vignetting for colour)
and a flat field with the lens's vignetting, measured by ``rawlab.lab``.

    python benchmarks/make_contact_sheet.py [--out docs/looks_contact_sheet.jpg]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _decode(v):
    v = np.clip(np.asarray(v, np.float64), 0, 1)
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def measure(name: str | None) -> dict[str, float]:
    """ΔE2000 mean and chroma level on the ColorChecker, corner vignetting kept, mid-tone slope."""
    from rawlab.lab import measure_colorchecker, vignetting_ev
    from rawlab.look import apply_look
    from rawlab.pipeline import Recipe, develop
    from rawlab.sim import capture, load_camera, optics, scene

    base = Recipe.builtin("default")
    recipe = apply_look(base, name) if name else base
    cam = load_camera("phone-small")
    flat_lens = dataclasses.replace(cam, optics=dataclasses.replace(cam.optics, vignetting_cos4=False, vignetting_poly=()))
    sc = scene.colorchecker((300, 200))
    out = _decode(develop(capture(sc, flat_lens, iso=50, seed=1).frame, recipe).data)
    patches = np.array([out[t:b, l:r].reshape(-1, 3).mean(0) for t, l, b, r in (p["box"] for p in sc.geometry["patches"])])
    cc = measure_colorchecker(patches)
    ff = capture(scene.flat_field((240, 180), reflectance=0.5), cam, iso=50, seed=1, gainmap_opcode=True)
    kept = vignetting_ev(_decode(develop(ff.frame, recipe).data), corner_fraction=0.08).mean_ev
    lens = vignetting_ev(optics.vignetting_gain(cam, 180, 240), corner_fraction=0.08).mean_ev
    # mid-tone slope: d L* / d log2(exposure) of the neutral patches 20..22 (least squares)
    L = cc.Lab_measured_D50[19:23, 0]
    Y_ref = np.array([0.591, 0.362, 0.198, 0.090])
    slope = float(np.polyfit(np.log2(Y_ref), L, 1)[0])
    return {"dE": cc.delta_e_2000_mean, "chroma": cc.chroma_level_pct, "vignetting_kept": kept / lens,
            "slope": slope}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "docs" / "looks_contact_sheet.jpg"))
    parser.add_argument("--image", default="coffee")
    args = parser.parse_args()

    from PIL import Image, ImageDraw

    from rawlab.caption.border import _font
    from rawlab.io.read import read
    from rawlab.look import apply_look, builtin_looks
    from rawlab.pipeline import Recipe, develop
    from rawlab.sample import make_sample

    tmp = Path(tempfile.mkdtemp(prefix="contact_"))
    frame = read(make_sample(tmp / "s.dng", image=args.image, size=(400, 266)))
    names = [None] + builtin_looks()
    tiles = []
    base = Recipe.builtin("default")
    for name in names:
        out = develop(frame, apply_look(base, name) if name else base)
        img = Image.fromarray((np.clip(out.data, 0, 1) * 255 + 0.5).astype(np.uint8))
        label_h = 26
        tile = Image.new("RGB", (img.width, img.height + label_h), "white")
        tile.paste(img, (0, 0))
        ImageDraw.Draw(tile).text((6, img.height + label_h / 2), name or "default (no look)", fill=(30, 30, 30),
                                  font=_font(15, True), anchor="lm")
        tiles.append(tile)
    cols, gap = 3, 6
    tw, th = tiles[0].size
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * tw + (cols + 1) * gap, rows * th + (rows + 1) * gap), "white")
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        sheet.paste(tile, (gap + c * (tw + gap), gap + r * (th + gap)))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, quality=85, optimize=True)
    print(f"wrote {args.out} ({Path(args.out).stat().st_size / 1024:.0f} KB)")

    print("| look | ΔE2000 mean | chroma level | lens vignetting kept | mid-tone slope (L*/EV) |")
    print("|---|---|---|---|---|")
    for name in names:
        m = measure(name)
        print(f"| {name or 'default'} | {m['dE']:.2f} | {m['chroma']:.0f} % | {100 * m['vignetting_kept']:.0f} % "
              f"| {m['slope']:.1f} |")


if __name__ == "__main__":
    main()
