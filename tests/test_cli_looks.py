"""The looks on the command line: ``rawlab looks``, ``looks export``, ``develop --look/--mode/--frame``.

Success paths check the files written (size, pixels, EXIF, a .cube another
tool reads); bad input must give one line naming the file and the key, exit
status 2, and no output.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rawlab.cli import main
from rawlab.look import builtin_looks, load_look


@pytest.fixture(scope="module")
def sample_dng(tmp_path_factory) -> Path:
    from rawlab.sample import make_sample

    return make_sample(tmp_path_factory.mktemp("looks_cli") / "sample.dng", size=(256, 192), seed=5)


@pytest.fixture(scope="module")
def plain(sample_dng, tmp_path_factory) -> np.ndarray:
    out = tmp_path_factory.mktemp("plain")
    assert main(["develop", str(sample_dng), "-o", str(out), "--format", "png"]) == 0
    return np.asarray(Image.open(out / "sample.png"))


def _develop(sample_dng: Path, out: Path, *extra: str) -> tuple[int, Path]:
    rc = main(["develop", str(sample_dng), "-o", str(out), "--format", "png", *extra])
    return rc, out / "sample.png"


def _one_error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    return err[0]


def test_looks_lists_every_builtin_look_with_its_description(capsys):
    assert main(["looks"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines]
    assert names == list(builtin_looks())
    assert {"authentic", "vibrant", "natural", "vivid", "mono", "mono-hc", "sepia", "film"} <= set(names)
    for line, name in zip(lines, names):
        assert line.split(None, 1)[1].strip() == load_look(name).description


def test_looks_export_writes_a_cube_that_colour_science_reads(tmp_path, capsys):
    import colour

    target = tmp_path / "vibrant.cube"
    assert main(["looks", "export", "vibrant", str(target), "--size", "17"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    lut = colour.read_LUT(str(target))
    assert lut.table.shape == (17, 17, 17, 3)
    assert np.all(np.isfinite(lut.table)) and 0.0 <= lut.table.min() and lut.table.max() <= 1.0
    # a saturation look: a muted colour comes out more saturated, greys stay grey
    muted = np.array([0.6, 0.45, 0.4])
    out = lut.apply(muted)
    assert np.ptp(out) > np.ptp(muted)
    grey = lut.apply(np.array([0.5, 0.5, 0.5]))
    assert np.ptp(grey) < 0.01


def test_looks_export_of_an_unknown_look_is_one_line(tmp_path, capsys):
    assert main(["looks", "export", "no-such-look", str(tmp_path / "x.cube")]) == 2
    assert "no-such-look" in _one_error_line(capsys)
    assert not (tmp_path / "x.cube").exists()


@pytest.mark.parametrize("look", ["authentic", "vibrant", "mono"])
def test_develop_with_a_look_changes_the_photo_as_the_look_says(look, sample_dng, plain, tmp_path):
    rc, path = _develop(sample_dng, tmp_path, "--look", look)
    assert rc == 0
    img = np.asarray(Image.open(path))
    assert img.shape == plain.shape
    assert not np.array_equal(img, plain)
    chroma = np.ptp(img.astype(np.int16), axis=-1).mean()
    plain_chroma = np.ptp(plain.astype(np.int16), axis=-1).mean()
    if look == "mono":
        assert np.ptp(img.astype(np.int16), axis=-1).max() <= 1  # no colour left
    elif look == "vibrant":
        assert chroma > 1.1 * plain_chroma


def test_develop_with_a_look_file_of_the_user(sample_dng, tmp_path):
    look = tmp_path / "mine.toml"
    look.write_text('name = "mine"\ndescription = "warmer"\n'
                    '[[stages]]\nstage = "look_white_balance_bias"\nwarmth_mired = 20.0\n')
    rc, path = _develop(sample_dng, tmp_path / "out", "--look", str(look))
    assert rc == 0 and path.exists()


@pytest.mark.parametrize("mode, target_mm", [("50mm", 50.0), ("90mm", 90.0)])
def test_develop_focal_mode_crops_to_the_equivalent_field_of_view(mode, target_mm, sample_dng, plain, tmp_path):
    # the sample is a 50 mm-equivalent capture: 90mm keeps 50/90 of each side
    rc, path = _develop(sample_dng, tmp_path, "--mode", mode)
    assert rc == 0
    img = Image.open(path)
    h, w = plain.shape[:2]
    scale = 50.0 / target_mm
    assert img.size == (round(w * scale), round(h * scale))
    exif = img.getexif().get_ifd(0x8769)
    assert exif.get(0xA405) == round(target_mm)  # FocalLengthIn35mmFilm of the crop
    assert float(exif.get(0x920A)) == pytest.approx(50.0)  # the lens's real focal length is kept


def test_develop_panorama_mode(sample_dng, plain, tmp_path):
    rc, path = _develop(sample_dng, tmp_path, "--mode", "65x24")
    assert rc == 0
    w, h = Image.open(path).size
    assert w == plain.shape[1] and abs(w / h - 65 / 24) < 0.02


def test_develop_focal_mode_cannot_widen(sample_dng, tmp_path, capsys):
    rc, path = _develop(sample_dng, tmp_path / "out", "--mode", "35mm")
    assert rc == 2
    line = _one_error_line(capsys)
    assert "cannot widen" in line and "50 mm" in line and str(sample_dng) in line
    assert not (tmp_path / "out").exists()


def test_develop_focal_mode_without_a_focal_length_says_why(sample_dng, tmp_path, capsys):
    from rawlab.io.dng_write import write_dng
    from rawlab.io.read import read

    frame = read(sample_dng)
    blind = write_dng(frame.replace(exif=None, capture=dataclasses.replace(frame.capture, focal_length_mm=None,
                                                                           focal_length_35mm_mm=None)),
                      tmp_path / "nofocal.dng")
    rc = main(["develop", str(blind), "-o", str(tmp_path / "out"), "--mode", "50mm"])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "nofocal.dng" in line and "unknown" in line


@pytest.mark.parametrize("style, colour", [("white", 255), ("black", 0)])
def test_develop_frame_adds_a_caption_border_and_keeps_exif(style, colour, sample_dng, plain, tmp_path):
    from rawlab.caption.border import caption_layout
    from rawlab.io.read import read

    rc = main(["develop", str(sample_dng), "-o", str(tmp_path), "--frame", style])
    assert rc == 0
    img = Image.open(tmp_path / "sample.jpg")
    h, w = plain.shape[:2]
    layout = caption_layout(h, w, read(sample_dng).capture)
    assert img.size == (layout.canvas_hw[1], layout.canvas_hw[0]) and layout.canvas_hw[0] > h
    arr = np.asarray(img.convert("RGB")).astype(np.int16)
    assert abs(int(np.median(arr[-3:, :3])) - colour) <= 3  # the band's corner
    assert "50mm" in layout.settings and "f/5.6" in layout.settings and "ISO 100" in layout.settings
    exif = img.getexif()
    assert exif.get(0x010F) == "rawlab" and exif.get(0x0112, 1) == 1
    assert img.info.get("icc_profile")


def test_bad_look_file_names_the_file_and_the_key(sample_dng, tmp_path, capsys):
    look = tmp_path / "bad.toml"
    look.write_text('name = "bad"\ndescription = "x"\n[[stages]]\nstage = "look_saturation"\nsaturation = 9.0\n')
    rc = main(["develop", str(sample_dng), "-o", str(tmp_path / "out"), "--look", str(look)])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "bad.toml" in line and "saturation" in line
    assert not (tmp_path / "out").exists()


def test_look_with_a_malformed_cube_names_the_look_file_and_the_stage(sample_dng, tmp_path, capsys):
    (tmp_path / "broken.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n1 1\n")
    look = tmp_path / "withlut.toml"
    look.write_text('name = "withlut"\ndescription = "x"\n[[stages]]\nstage = "look_lut"\ncube = "broken.cube"\n')
    rc = main(["develop", str(sample_dng), "-o", str(tmp_path / "out"), "--look", str(look)])
    assert rc == 2
    line = _one_error_line(capsys)
    assert "withlut.toml" in line and "stages[0].cube" in line and "broken.cube" in line
