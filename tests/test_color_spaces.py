"""xyz_to_rgb: XYZ (D50) -> linear RGB, against colour-science with Bradford adaptation."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from rawlab.color.spaces import PRIMARIES_BY_SPACE, XYZToRGBParams, matrix_XYZ_D50_to_RGB, xyz_to_rgb
from rawlab.core.frame import Encoding, Frame, Primaries
from rawlab.errors import InvalidParams

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import colour

COLOUR_NAMES = {"srgb": "sRGB", "display_p3": "Display P3", "rec2020": "ITU-R BT.2020", "prophoto": "ProPhoto RGB"}
XY_D50 = np.array([0.3457, 0.3585])


@pytest.mark.parametrize("space", sorted(COLOUR_NAMES))
def test_matches_colour_science(space):
    rng = np.random.default_rng(5)
    XYZ = rng.uniform(-0.05, 1.2, size=(64, 3))
    frame = Frame(XYZ.reshape(8, 8, 3).astype(np.float32), Encoding.XYZ_D50)
    out = xyz_to_rgb(frame, XYZToRGBParams(space=space))
    expected = colour.XYZ_to_RGB(
        frame.data.reshape(-1, 3).astype(np.float64), COLOUR_NAMES[space], illuminant=XY_D50,
        chromatic_adaptation_transform="Bradford",
    )
    assert out.encoding is Encoding.RGB and out.primaries is PRIMARIES_BY_SPACE[space]
    np.testing.assert_allclose(out.data.reshape(-1, 3), expected, atol=1e-5)
    # the D50 white is RGB (1, 1, 1) (to the rounding of the published matrices)
    np.testing.assert_allclose(matrix_XYZ_D50_to_RGB(space) @ colour.xy_to_XYZ(XY_D50), 1.0, atol=3e-4)
    np.testing.assert_allclose(out.clip_level, np.inf)  # unknown clip level stays unknown


def test_matrix_is_cached_and_read_only():
    M = matrix_XYZ_D50_to_RGB("rec2020")
    assert M is matrix_XYZ_D50_to_RGB("rec2020") and not M.flags.writeable
    with pytest.raises(InvalidParams):
        XYZToRGBParams(space="adobe_rgb")


def test_clip_level_of_the_d50_white_maps_to_rgb():
    XYZ_D50 = colour.xy_to_XYZ(XY_D50)
    frame = Frame(np.zeros((2, 2, 3), np.float32), Encoding.XYZ_D50, clip_level=2 * XYZ_D50)
    out = xyz_to_rgb(frame, XYZToRGBParams(space="prophoto"))
    np.testing.assert_allclose(out.clip_level, [2, 2, 2], atol=1e-3)
    assert out.primaries is Primaries.PROPHOTO
